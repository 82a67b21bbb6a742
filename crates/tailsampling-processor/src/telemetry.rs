//! The processor's own metrics, named, labelled and described as otelcol's (the stability
//! tag of its `metadata.yaml` included, so both serve the same HELP). Counters otelcol adds to
//! on every tick, even with nothing to count, are served at 0 from the start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use redline_pipeline::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};
use redline_pipeline::telemetry::{
    CounterDesc, CounterFamily, Telemetry, TAIL_SAMPLING_COUNT_TRACES_SAMPLED,
    TAIL_SAMPLING_EARLY_RELEASES_FROM_CACHE_DECISION, TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED,
    TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED, TAIL_SAMPLING_POLICY_EVALUATION_ERROR,
    TAIL_SAMPLING_POLICY_EXECUTION_COUNT, TAIL_SAMPLING_POLICY_EXECUTION_TIME_SUM,
    TAIL_SAMPLING_TRACES_DROPPED_TOO_LARGE, TAIL_SAMPLING_TRACES_ON_MEMORY,
    TAIL_SAMPLING_TRACE_DROPPED_TOO_EARLY,
};

use crate::policy::Decision;

pub struct Counters {
    traces_sampled: CounterFamily,
    global: CounterFamily,
    early_releases: CounterFamily,
    pub new_trace_ids: Arc<AtomicU64>,
    pub evaluation_errors: Arc<AtomicU64>,
    pub dropped_too_early: Arc<AtomicU64>,
    too_large: CounterFamily,
    /// Per policy, in the policies' order: evaluations and their microseconds.
    pub executions: Vec<(Arc<AtomicU64>, Arc<AtomicU64>)>,
}

fn family(
    telemetry: &Telemetry,
    name: &'static str,
    description: &'static str,
    unit: &'static str,
) -> CounterFamily {
    telemetry.counter_family(CounterDesc {
        name,
        description,
        unit,
    })
}

impl Counters {
    /// `policies` are the labels of the policies, in evaluation order.
    pub fn new(telemetry: &Telemetry, policies: &[String]) -> Counters {
        let count = family(
            telemetry,
            TAIL_SAMPLING_POLICY_EXECUTION_COUNT,
            "Total number of executions of a specific sampling policy [Development]",
            "{executions}",
        );
        let time = family(
            telemetry,
            TAIL_SAMPLING_POLICY_EXECUTION_TIME_SUM,
            "Total time spent (in microseconds) executing a specific sampling policy [Development]",
            "us",
        );
        let executions = policies
            .iter()
            .map(|p| {
                (
                    count.series_served_at_zero(&[("policy", p)]),
                    time.series_served_at_zero(&[("policy", p)]),
                )
            })
            .collect();
        Counters {
            traces_sampled: family(
                telemetry,
                TAIL_SAMPLING_COUNT_TRACES_SAMPLED,
                "Count of traces that were sampled or not per sampling policy [Development]",
                "{traces}",
            ),
            global: family(
                telemetry,
                TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED,
                "Global count of traces that were sampled or not by at least one policy [Development]",
                "{traces}",
            ),
            early_releases: family(
                telemetry,
                TAIL_SAMPLING_EARLY_RELEASES_FROM_CACHE_DECISION,
                "Number of spans that were able to be immediately released due to a decision cache hit. [Development]",
                "{spans}",
            ),
            new_trace_ids: family(
                telemetry,
                TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED,
                "Counts the arrival of new traces [Development]",
                "{traces}",
            )
            .series(&[]),
            evaluation_errors: family(
                telemetry,
                TAIL_SAMPLING_POLICY_EVALUATION_ERROR,
                "Count of sampling policy evaluation errors [Development]",
                "{errors}",
            )
            .series_served_at_zero(&[]),
            dropped_too_early: family(
                telemetry,
                TAIL_SAMPLING_TRACE_DROPPED_TOO_EARLY,
                "Count of traces that needed to be dropped before the configured wait time [Development]",
                "{traces}",
            )
            .series_served_at_zero(&[]),
            too_large: family(
                telemetry,
                TAIL_SAMPLING_TRACES_DROPPED_TOO_LARGE,
                "Count of traces that were dropped because they were too large [Development]",
                "{traces}",
            ),
            executions,
        }
    }

    pub fn policy_decision(&self, policy: &str, decision: Decision, n: u64) {
        let [sampled, kind] = decision.labels();
        self.traces_sampled
            .series(&[("policy", policy), sampled, kind])
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn trace_decision(&self, decision: Decision, n: u64) {
        let [sampled, kind] = decision.labels();
        self.global
            .series(&[sampled, kind])
            .fetch_add(n, Ordering::Relaxed);
    }

    pub fn early_release(&self, sampled: bool, spans: u64) {
        let label = if sampled { "true" } else { "false" };
        self.early_releases
            .series(&[("sampled", label)])
            .fetch_add(spans, Ordering::Relaxed);
    }

    pub fn too_large(&self) {
        self.too_large.series(&[]).fetch_add(1, Ordering::Relaxed);
    }
}

/// `sampling_traces_on_memory`, read from the store at each scrape.
pub struct TracesOnMemory<T: Send + Sync + 'static> {
    pub of: Weak<T>,
    pub count: fn(&T) -> usize,
}

impl<T: Send + Sync + 'static> MetricsSource for TracesOnMemory<T> {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let Some(of) = self.of.upgrade() else {
            return;
        };
        sink.family(&FamilyDesc {
            name: TAIL_SAMPLING_TRACES_ON_MEMORY,
            description: "Tracks the number of traces current on memory [Development]",
            unit: "{traces}",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&[], (self.count)(&of) as f64);
    }
}

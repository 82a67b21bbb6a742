//! Redline's own metrics, named as otelcol names them so existing dashboards for the
//! collector work. Every name is defined here once; components only get counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};

pub const RECEIVER_ACCEPTED_SPANS: &str = "otelcol_receiver_accepted_spans";
pub const RECEIVER_REFUSED_SPANS: &str = "otelcol_receiver_refused_spans";
pub const EXPORTER_SENT_SPANS: &str = "otelcol_exporter_sent_spans";
pub const EXPORTER_SEND_FAILED_SPANS: &str = "otelcol_exporter_send_failed_spans";
pub const EXPORTER_ENQUEUE_FAILED_SPANS: &str = "otelcol_exporter_enqueue_failed_spans";
pub const EXPORTER_QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
pub const EXPORTER_QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
/// Series a spanmetrics connector holds (gauge, label `connector`).
pub const SPANMETRICS_ACTIVE_SERIES: &str = "redline_spanmetrics_active_series";
/// Spans folded into the overflow series by the cardinality limit (counter).
pub const SPANMETRICS_OVERFLOW_SPANS: &str = "redline_spanmetrics_overflow_spans";

/// Counters of one receiver on one transport (`grpc`, `http`).
#[derive(Default, Debug)]
pub struct ReceiverCounters {
    pub accepted_spans: AtomicU64,
    pub refused_spans: AtomicU64,
}

/// Counters of one exporter.
#[derive(Default, Debug)]
pub struct ExporterCounters {
    pub sent_spans: AtomicU64,
    pub send_failed_spans: AtomicU64,
    pub enqueue_failed_spans: AtomicU64,
    /// Batches waiting in the sending queue.
    pub queue_size: AtomicI64,
    pub queue_capacity: AtomicI64,
}

/// Registry of the process's own counters.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    receivers: Mutex<BTreeMap<(String, &'static str), Arc<ReceiverCounters>>>,
    exporters: Mutex<BTreeMap<String, Arc<ExporterCounters>>>,
    /// Components' own families (e.g. spanmetrics series counts), read at collect time.
    sources: Mutex<Vec<Arc<dyn MetricsSource>>>,
    start_time_unix_nano: AtomicU64,
}

impl Telemetry {
    pub fn new() -> Self {
        let t = Self::default();
        t.inner
            .start_time_unix_nano
            .store(now_unix_nano(), Ordering::Relaxed);
        t
    }

    /// Counters for `receiver` on `transport`; the same counters for the same pair.
    pub fn receiver(&self, receiver: &str, transport: &'static str) -> Arc<ReceiverCounters> {
        self.inner
            .receivers
            .lock()
            .entry((receiver.to_owned(), transport))
            .or_default()
            .clone()
    }

    /// Adds a component's own metrics to what the telemetry endpoint serves.
    pub fn register_source(&self, source: Arc<dyn MetricsSource>) {
        self.inner.sources.lock().push(source);
    }

    pub fn start_time_unix_nano(&self) -> u64 {
        self.inner.start_time_unix_nano.load(Ordering::Relaxed)
    }

    pub fn exporter(&self, exporter: &str) -> Arc<ExporterCounters> {
        self.inner
            .exporters
            .lock()
            .entry(exporter.to_owned())
            .or_default()
            .clone()
    }
}

pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn counter_family(sink: &mut dyn MetricsSink, name: &str, description: &str) {
    sink.family(&FamilyDesc {
        name,
        description,
        unit: "{spans}",
        kind: MetricKind::Counter,
    });
}

impl MetricsSource for Telemetry {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let start = self.inner.start_time_unix_nano.load(Ordering::Relaxed);
        let receivers: Vec<_> = self
            .inner
            .receivers
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let exporters: Vec<_> = self
            .inner
            .exporters
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        type RecvField = fn(&ReceiverCounters) -> &AtomicU64;
        let recv: [(&str, &str, RecvField); 2] = [
            (
                RECEIVER_ACCEPTED_SPANS,
                "Number of spans successfully pushed into the pipeline.",
                |c| &c.accepted_spans,
            ),
            (
                RECEIVER_REFUSED_SPANS,
                "Number of spans that could not be pushed into the pipeline.",
                |c| &c.refused_spans,
            ),
        ];
        for (name, help, field) in recv {
            counter_family(sink, name, help);
            for ((id, transport), c) in &receivers {
                let labels = [("receiver", id.as_str()), ("transport", *transport)];
                sink.counter(&labels, field(c).load(Ordering::Relaxed), start, None);
            }
        }

        type ExpField = fn(&ExporterCounters) -> &AtomicU64;
        let exp: [(&str, &str, ExpField); 3] = [
            (
                EXPORTER_SENT_SPANS,
                "Number of spans successfully sent to destination.",
                |c| &c.sent_spans,
            ),
            (
                EXPORTER_SEND_FAILED_SPANS,
                "Number of spans in failed attempts to send to destination.",
                |c| &c.send_failed_spans,
            ),
            (
                EXPORTER_ENQUEUE_FAILED_SPANS,
                "Number of spans that failed to be added to the sending queue.",
                |c| &c.enqueue_failed_spans,
            ),
        ];
        for (name, help, field) in exp {
            counter_family(sink, name, help);
            for (id, c) in &exporters {
                let labels = [("exporter", id.as_str())];
                sink.counter(&labels, field(c).load(Ordering::Relaxed), start, None);
            }
        }

        type GaugeField = fn(&ExporterCounters) -> &AtomicI64;
        let gauges: [(&str, &str, GaugeField); 2] = [
            (
                EXPORTER_QUEUE_SIZE,
                "Current size of the retry queue (in batches).",
                |c| &c.queue_size,
            ),
            (
                EXPORTER_QUEUE_CAPACITY,
                "Fixed capacity of the retry queue (in batches).",
                |c| &c.queue_capacity,
            ),
        ];
        for (name, help, field) in gauges {
            sink.family(&FamilyDesc {
                name,
                description: help,
                // An annotation, not `1`: otelcol's translation turns unit `1` on a gauge
                // into a `_ratio` suffix, and these are counts of batches.
                unit: "{batches}",
                kind: MetricKind::Gauge,
            });
            for (id, c) in &exporters {
                let labels = [("exporter", id.as_str())];
                sink.gauge(&labels, field(c).load(Ordering::Relaxed) as f64);
            }
        }

        let sources: Vec<_> = self.inner.sources.lock().clone();
        for source in sources {
            source.collect(sink);
        }
    }
}

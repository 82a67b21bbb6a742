//! otelcol-contrib's `groupbyattrs` processor: the attributes named in `keys` move from each
//! span, log record or metric data point to a copy of its resource, and items under equal
//! resources and scopes are merged, so that, for example, log attributes become the resource
//! attributes Loki indexes. Without keys it only compacts a request.
//!
//! It is a [`BatchEditor`](redline_pipeline::edit::BatchEditor): it decodes each request and
//! regroups it; a request that comes out equal to what came in travels on as the bytes the
//! client sent.

mod group;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::{build_editor, undecodable, BatchEditor, Edited, OnCommit};
use redline_pipeline::telemetry::{
    CounterDesc, HistogramFamily, Telemetry, DEFAULT_BOUNDS, GROUPBYATTRS_LOG_GROUPS,
    GROUPBYATTRS_METRIC_GROUPS, GROUPBYATTRS_NUM_GROUPED_LOGS, GROUPBYATTRS_NUM_GROUPED_METRICS,
    GROUPBYATTRS_NUM_GROUPED_SPANS, GROUPBYATTRS_NUM_NON_GROUPED_LOGS,
    GROUPBYATTRS_NUM_NON_GROUPED_METRICS, GROUPBYATTRS_NUM_NON_GROUPED_SPANS,
    GROUPBYATTRS_SPAN_GROUPS,
};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, Refused,
    RunningComponent, Signal,
};
use serde::Deserialize;

use crate::group::{HasKeys, Keys, Tally};

/// The `groupbyattrs` settings, as otelcol's `groupbyattrsprocessor.Config` names them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupByAttrsConfig {
    /// Attribute keys to move to the resource. Empty (the default) only compacts.
    #[serde(default)]
    pub keys: Vec<String>,
}

impl GroupByAttrsConfig {
    /// The keys otelcol uses: empty ones left out, each once, in the configured order.
    fn grouping_keys(&self) -> Keys {
        let mut keys: Vec<String> = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            if !key.is_empty() && !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        Keys(keys)
    }

    fn repeated_keys(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        let mut repeated = Vec::new();
        for key in self.keys.iter().filter(|k| !k.is_empty()) {
            if seen.contains(&key.as_str()) {
                repeated.push(key.as_str());
            } else {
                seen.push(key);
            }
        }
        repeated
    }
}

pub struct GroupByAttrsFactory;

impl FactoryInfo for GroupByAttrsFactory {
    fn type_name(&self) -> &'static str {
        "groupbyattrs"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<GroupByAttrsConfig>().map(|_| ())
    }

    /// otelcol logs "A grouping key is already present" at start for each repeated key.
    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        let Ok(parsed) = config.parse::<GroupByAttrsConfig>() else {
            return Vec::new();
        };
        parsed
            .repeated_keys()
            .into_iter()
            .map(|key| {
                format!("keys: the grouping key {key:?} is already present; it is used once")
            })
            .collect()
    }
}

impl ProcessorFactory for GroupByAttrsFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces, Signal::Metrics, Signal::Logs]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            config
                .parse::<GroupByAttrsConfig>()
                .map(|parsed| GroupByAttrs {
                    id: config.id().to_string(),
                    signal,
                    keys: parsed.grouping_keys(),
                    counters: Arc::new(Counters::new(&ctx.telemetry, signal)),
                })
        })
    }
}

/// otelcol's counters of one signal: shared by every instance, without labels, as its
/// processor's metrics are.
struct Counters {
    grouped: Arc<AtomicU64>,
    not_grouped: Arc<AtomicU64>,
    groups: HistogramFamily,
}

impl Counters {
    fn new(telemetry: &Telemetry, signal: Signal) -> Self {
        let (grouped, not_grouped, groups) = match signal {
            Signal::Traces => (
                (
                    GROUPBYATTRS_NUM_GROUPED_SPANS,
                    "Number of spans that had attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_NUM_NON_GROUPED_SPANS,
                    "Number of spans that did not have attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_SPAN_GROUPS,
                    "Distribution of groups extracted for spans [Development]",
                ),
            ),
            Signal::Logs => (
                (
                    GROUPBYATTRS_NUM_GROUPED_LOGS,
                    "Number of logs that had attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_NUM_NON_GROUPED_LOGS,
                    "Number of logs that did not have attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_LOG_GROUPS,
                    "Distribution of groups extracted for logs [Development]",
                ),
            ),
            Signal::Metrics => (
                (
                    GROUPBYATTRS_NUM_GROUPED_METRICS,
                    "Number of metrics that had attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_NUM_NON_GROUPED_METRICS,
                    "Number of metrics that did not have attributes grouped [Development]",
                ),
                (
                    GROUPBYATTRS_METRIC_GROUPS,
                    "Distribution of groups extracted for metrics [Development]",
                ),
            ),
        };
        let desc = |(name, description): (&'static str, &'static str)| CounterDesc {
            name,
            description,
            unit: "1",
        };
        Self {
            grouped: telemetry.counter_family(desc(grouped)).series(&[]),
            not_grouped: telemetry.counter_family(desc(not_grouped)).series(&[]),
            groups: telemetry.histogram_family(desc(groups), DEFAULT_BOUNDS),
        }
    }
}

struct GroupByAttrs {
    id: String,
    signal: Signal,
    keys: Keys,
    counters: Arc<Counters>,
}

/// What regrouping one request made of it.
struct Regrouped {
    /// The encoded request and its items, `None` when it came out as it came in.
    changed: Option<(Vec<u8>, usize)>,
    tally: Tally,
    /// Resources in the request that goes on.
    groups: usize,
}

impl GroupByAttrs {
    fn regroup(&self, raw: &[u8]) -> Result<Regrouped, Refused> {
        let undecodable = |e: prost::DecodeError| undecodable(&self.id, e);
        let mut tally = Tally::default();
        macro_rules! regroup {
            ($request:ty, $group:path, $resources:ident, $items:expr) => {{
                let request = <$request>::decode(raw).map_err(undecodable)?;
                // An item with a grouping attribute changes for sure; otherwise only the
                // comparison tells whether regrouping changed anything.
                let (grouped, changed) = if request.has_keys(&self.keys) {
                    ($group(&self.keys, request, &mut tally), true)
                } else {
                    let grouped = $group(&self.keys, request.clone(), &mut tally);
                    let changed = grouped != request;
                    (grouped, changed)
                };
                let groups = grouped.$resources.len();
                let changed = changed.then(|| {
                    let items = $items(&grouped);
                    (grouped.encode_to_vec(), items)
                });
                (changed, groups)
            }};
        }
        let (changed, groups) = match self.signal {
            Signal::Traces => regroup!(
                ExportTraceServiceRequest,
                group::traces,
                resource_spans,
                |r: &ExportTraceServiceRequest| r
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len())
                    .sum::<usize>()
            ),
            Signal::Logs => regroup!(
                ExportLogsServiceRequest,
                group::logs,
                resource_logs,
                |r: &ExportLogsServiceRequest| r
                    .resource_logs
                    .iter()
                    .flat_map(|rl| &rl.scope_logs)
                    .map(|sl| sl.log_records.len())
                    .sum::<usize>()
            ),
            Signal::Metrics => regroup!(
                ExportMetricsServiceRequest,
                group::metrics,
                resource_metrics,
                |r: &ExportMetricsServiceRequest| r
                    .resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
                    .map(group::point_count)
                    .sum::<usize>()
            ),
        };
        Ok(Regrouped {
            changed,
            tally,
            groups,
        })
    }
}

impl BatchEditor for GroupByAttrs {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        Ok(self.edit_counted(batch)?.0)
    }

    fn edit_counted(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        let Regrouped {
            changed,
            tally,
            groups,
        } = self.regroup(&batch.raw)?;
        let edited = match changed {
            None => Edited::Unchanged,
            // Every item was under a metric without data: nothing is left, as in otelcol.
            Some((_, 0)) => Edited::Dropped,
            Some((raw, items)) => {
                Edited::Replaced(Batch::new(self.signal, Bytes::from(raw), items))
            }
        };
        let counters = self.counters.clone();
        let record: OnCommit = Box::new(move || {
            counters.grouped.fetch_add(tally.grouped, Ordering::Relaxed);
            counters
                .not_grouped
                .fetch_add(tally.not_grouped, Ordering::Relaxed);
            counters.groups.record(groups as f64);
        });
        Ok((edited, Some(record)))
    }
}

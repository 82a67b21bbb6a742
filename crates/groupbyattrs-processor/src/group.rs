//! The regrouping itself, on decoded requests, as otelcol's processor does it: each item's
//! grouping attributes moved to a copy of its resource, items under equal resources (by
//! attributes, in any order) and equal scopes (by name and version) merged, first seen first.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum,
    Summary,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

/// How many items had grouping attributes and how many had none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub grouped: u64,
    pub not_grouped: u64,
}

/// The grouping keys: non-empty and each once, in the configured order.
pub(crate) struct Keys(pub Vec<String>);

impl Keys {
    /// Moves the item's grouping attributes out: the first attribute of each key, in the
    /// keys' order. Each is then removed as pdata's `Map.Remove` does (the last attribute
    /// takes its place), so the item's remaining attributes are in otelcol's order.
    fn take(&self, attributes: &mut Vec<KeyValue>, tally: &mut Tally) -> Vec<KeyValue> {
        let moved: Vec<KeyValue> = self
            .0
            .iter()
            .filter_map(|key| attributes.iter().find(|kv| kv.key == *key).cloned())
            .collect();
        if moved.is_empty() {
            tally.not_grouped += 1;
        } else {
            tally.grouped += 1;
        }
        for kv in &moved {
            if let Some(i) = attributes.iter().position(|a| a.key == kv.key) {
                attributes.swap_remove(i);
            }
        }
        moved
    }
}

/// The output's resources, found by their attributes.
struct Resources<R> {
    list: Vec<R>,
    index: HashMap<Vec<u8>, usize>,
    /// Within the input resource being regrouped: the output resource by the moved
    /// attributes (their values written in the keys' order), so the resource's attributes
    /// are copied and compared once per distinct set of moved values, not once per item.
    seen: HashMap<Vec<u8>, usize>,
}

impl<R> Resources<R> {
    fn new() -> Self {
        Self {
            list: Vec::new(),
            index: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    /// The items that follow come from the next input resource.
    fn next_input(&mut self) {
        self.seen.clear();
    }

    /// The output resource for an item of `origin` whose grouping attributes are `moved`,
    /// made with `make` from its attributes when it is new. Only the attributes carry over:
    /// otelcol's new resource has no dropped count and its container no schema URL.
    fn get(
        &mut self,
        origin: &[KeyValue],
        moved: Vec<KeyValue>,
        make: impl FnOnce(Resource) -> R,
    ) -> &mut R {
        let mut moved_key = Vec::new();
        for kv in &moved {
            write_bytes(kv.key.as_bytes(), &mut moved_key);
            write_value(kv.value.as_ref(), &mut moved_key);
        }
        if let Some(&at) = self.seen.get(&moved_key) {
            return &mut self.list[at];
        }
        let mut attributes = origin.to_vec();
        for kv in moved {
            match attributes.iter_mut().find(|a| a.key == kv.key) {
                Some(existing) => existing.value = kv.value,
                None => attributes.push(kv),
            }
        }
        let key = map_key(&attributes);
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None => {
                self.list.push(make(Resource {
                    attributes,
                    ..Resource::default()
                }));
                self.index.insert(key, self.list.len() - 1);
                self.list.len() - 1
            }
        };
        self.seen.insert(moved_key, at);
        &mut self.list[at]
    }
}

/// The item's scope in `scopes`: the first with the same name and version, or a new one
/// with a copy of the scope (its container's schema URL is not kept).
fn scope_in<S>(
    scopes: &mut Vec<S>,
    scope: &Option<InstrumentationScope>,
    scope_of: impl Fn(&S) -> &Option<InstrumentationScope>,
    make: impl FnOnce(InstrumentationScope) -> S,
) -> usize {
    let wanted = name_version(scope);
    match scopes
        .iter()
        .position(|s| name_version(scope_of(s)) == wanted)
    {
        Some(at) => at,
        None => {
            scopes.push(make(scope.clone().unwrap_or_default()));
            scopes.len() - 1
        }
    }
}

fn name_version(scope: &Option<InstrumentationScope>) -> (&str, &str) {
    scope
        .as_ref()
        .map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()))
}

fn attributes_of(resource: &Option<Resource>) -> &[KeyValue] {
    resource.as_ref().map_or(&[], |r| &r.attributes)
}

pub(crate) fn traces(
    keys: &Keys,
    request: ExportTraceServiceRequest,
    tally: &mut Tally,
) -> ExportTraceServiceRequest {
    let mut out = Resources::new();
    for rs in request.resource_spans {
        out.next_input();
        for ss in rs.scope_spans {
            for mut span in ss.spans {
                let moved = keys.take(&mut span.attributes, tally);
                let group = out.get(attributes_of(&rs.resource), moved, |resource| {
                    ResourceSpans {
                        resource: Some(resource),
                        ..ResourceSpans::default()
                    }
                });
                let at = scope_in(
                    &mut group.scope_spans,
                    &ss.scope,
                    |s| &s.scope,
                    |scope| ScopeSpans {
                        scope: Some(scope),
                        ..ScopeSpans::default()
                    },
                );
                group.scope_spans[at].spans.push(span);
            }
        }
    }
    ExportTraceServiceRequest {
        resource_spans: out.list,
    }
}

pub(crate) fn logs(
    keys: &Keys,
    request: ExportLogsServiceRequest,
    tally: &mut Tally,
) -> ExportLogsServiceRequest {
    let mut out = Resources::new();
    for rl in request.resource_logs {
        out.next_input();
        for sl in rl.scope_logs {
            for mut log in sl.log_records {
                let moved = keys.take(&mut log.attributes, tally);
                let group = out.get(attributes_of(&rl.resource), moved, |resource| {
                    ResourceLogs {
                        resource: Some(resource),
                        ..ResourceLogs::default()
                    }
                });
                let at = scope_in(
                    &mut group.scope_logs,
                    &sl.scope,
                    |s| &s.scope,
                    |scope| ScopeLogs {
                        scope: Some(scope),
                        ..ScopeLogs::default()
                    },
                );
                group.scope_logs[at].log_records.push(log);
            }
        }
    }
    ExportLogsServiceRequest {
        resource_logs: out.list,
    }
}

/// Metrics are regrouped point by point: each point joins the metric of the same name and
/// type in its new scope. A metric without data has no points and disappears, as in otelcol.
pub(crate) fn metrics(
    keys: &Keys,
    request: ExportMetricsServiceRequest,
    tally: &mut Tally,
) -> ExportMetricsServiceRequest {
    let mut out = Resources::new();
    for rm in request.resource_metrics {
        out.next_input();
        for sm in rm.scope_metrics {
            for mut m in sm.metrics {
                let Some(data) = m.data.take() else {
                    continue;
                };
                let empty = empty_like(&data);
                let place = PointPlace {
                    resource: &rm.resource,
                    scope: &sm.scope,
                    metric: &m,
                    empty: &empty,
                };
                macro_rules! regroup {
                    ($points:expr, $variant:ident) => {
                        for mut point in $points {
                            let metric =
                                place.metric_in(&mut out, keys, &mut point.attributes, tally);
                            if let Some(metric::Data::$variant(d)) = &mut metric.data {
                                d.data_points.push(point);
                            }
                        }
                    };
                }
                match data {
                    metric::Data::Gauge(g) => regroup!(g.data_points, Gauge),
                    metric::Data::Sum(s) => regroup!(s.data_points, Sum),
                    metric::Data::Histogram(h) => regroup!(h.data_points, Histogram),
                    metric::Data::ExponentialHistogram(e) => {
                        regroup!(e.data_points, ExponentialHistogram)
                    }
                    metric::Data::Summary(s) => regroup!(s.data_points, Summary),
                }
            }
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: out.list,
    }
}

/// Where the points of one metric came from.
struct PointPlace<'x> {
    resource: &'x Option<Resource>,
    scope: &'x Option<InstrumentationScope>,
    metric: &'x Metric,
    /// The metric's data without points.
    empty: &'x metric::Data,
}

impl PointPlace<'_> {
    /// The metric a point of this place goes into, its grouping attributes taken out.
    fn metric_in<'o>(
        &self,
        out: &'o mut Resources<ResourceMetrics>,
        keys: &Keys,
        attributes: &mut Vec<KeyValue>,
        tally: &mut Tally,
    ) -> &'o mut Metric {
        let moved = keys.take(attributes, tally);
        let group = out.get(attributes_of(self.resource), moved, |resource| {
            ResourceMetrics {
                resource: Some(resource),
                ..ResourceMetrics::default()
            }
        });
        let at = scope_in(
            &mut group.scope_metrics,
            self.scope,
            |s| &s.scope,
            |scope| ScopeMetrics {
                scope: Some(scope),
                ..ScopeMetrics::default()
            },
        );
        metric_in(
            &mut group.scope_metrics[at].metrics,
            self.metric,
            self.empty,
        )
    }
}

/// The metric named as `like` with data of `empty`'s type in `metrics`, or a new one with its
/// name, description, unit, metadata and `empty` (no points; for sums and histograms, their
/// temporality and monotonicity).
fn metric_in<'m>(
    metrics: &'m mut Vec<Metric>,
    like: &Metric,
    empty: &metric::Data,
) -> &'m mut Metric {
    let same_type = |d: &Option<metric::Data>| {
        d.as_ref()
            .is_some_and(|d| std::mem::discriminant(d) == std::mem::discriminant(empty))
    };
    let at = match metrics
        .iter()
        .position(|m| m.name == like.name && same_type(&m.data))
    {
        Some(at) => at,
        None => {
            metrics.push(Metric {
                name: like.name.clone(),
                description: like.description.clone(),
                unit: like.unit.clone(),
                metadata: like.metadata.clone(),
                data: Some(empty.clone()),
            });
            metrics.len() - 1
        }
    };
    &mut metrics[at]
}

/// Data of `data`'s type without points.
fn empty_like(data: &metric::Data) -> metric::Data {
    match data {
        metric::Data::Gauge(_) => metric::Data::Gauge(Gauge::default()),
        metric::Data::Sum(s) => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }),
        metric::Data::Histogram(h) => metric::Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: h.aggregation_temporality,
        }),
        metric::Data::ExponentialHistogram(e) => {
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: Vec::new(),
                aggregation_temporality: e.aggregation_temporality,
            })
        }
        metric::Data::Summary(_) => metric::Data::Summary(Summary::default()),
    }
}

/// What makes two attribute maps one resource for otelcol (`pdatautil.MapHash`): every
/// key in sorted order with the value of its first attribute, maps inside values sorted the
/// same way, lists in order.
fn map_key(attributes: &[KeyValue]) -> Vec<u8> {
    let mut out = Vec::new();
    write_map(attributes, &mut out);
    out
}

fn write_map(attributes: &[KeyValue], out: &mut Vec<u8>) {
    let mut keys: Vec<&str> = attributes.iter().map(|kv| kv.key.as_str()).collect();
    keys.sort_unstable();
    out.push(b'{');
    for key in keys {
        let value = attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref());
        write_bytes(key.as_bytes(), out);
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn write_value(value: Option<&AnyValue>, out: &mut Vec<u8>) {
    match value.and_then(|v| v.value.as_ref()) {
        None => out.push(b'e'),
        Some(any_value::Value::StringValue(s)) => {
            out.push(b's');
            write_bytes(s.as_bytes(), out);
        }
        Some(any_value::Value::BoolValue(b)) => out.extend_from_slice(&[b'b', u8::from(*b)]),
        Some(any_value::Value::IntValue(i)) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_le_bytes());
        }
        Some(any_value::Value::DoubleValue(d)) => {
            out.push(b'd');
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(any_value::Value::BytesValue(b)) => {
            out.push(b'y');
            write_bytes(b, out);
        }
        Some(any_value::Value::ArrayValue(a)) => {
            out.push(b'[');
            for v in &a.values {
                write_value(Some(v), out);
            }
            out.push(b']');
        }
        Some(any_value::Value::KvlistValue(m)) => write_map(&m.values, out),
        // Profiles' string table reference: never in the signals Redline carries.
        Some(any_value::Value::StringValueStrindex(i)) => {
            out.push(b'x');
            out.extend_from_slice(&i.to_le_bytes());
        }
    }
}

/// A metric's data points, of whichever kind.
pub(crate) fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(e)) => e.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    }
}

/// Whether an item of the request has an attribute of `keys`: then regrouping changes it.
pub(crate) trait HasKeys {
    fn has_keys(&self, keys: &Keys) -> bool;
}

fn any_key(keys: &Keys, attributes: &[KeyValue]) -> bool {
    attributes.iter().any(|kv| keys.0.contains(&kv.key))
}

impl HasKeys for ExportTraceServiceRequest {
    fn has_keys(&self, keys: &Keys) -> bool {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .any(|span| any_key(keys, &span.attributes))
    }
}

impl HasKeys for ExportLogsServiceRequest {
    fn has_keys(&self, keys: &Keys) -> bool {
        self.resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .any(|log| any_key(keys, &log.attributes))
    }
}

impl HasKeys for ExportMetricsServiceRequest {
    fn has_keys(&self, keys: &Keys) -> bool {
        let point_has = |m: &Metric| match &m.data {
            None => false,
            Some(metric::Data::Gauge(g)) => {
                g.data_points.iter().any(|p| any_key(keys, &p.attributes))
            }
            Some(metric::Data::Sum(s)) => {
                s.data_points.iter().any(|p| any_key(keys, &p.attributes))
            }
            Some(metric::Data::Histogram(h)) => {
                h.data_points.iter().any(|p| any_key(keys, &p.attributes))
            }
            Some(metric::Data::ExponentialHistogram(e)) => {
                e.data_points.iter().any(|p| any_key(keys, &p.attributes))
            }
            Some(metric::Data::Summary(s)) => {
                s.data_points.iter().any(|p| any_key(keys, &p.attributes))
            }
        };
        self.resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .any(point_has)
    }
}

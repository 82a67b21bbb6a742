//! One request in, one metrics request out: each resource's items counted into the metrics
//! of their sections, under a copy of the resource's attributes and the connector's scope.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use redline_otlp_wire::{walk_lazy, LazySpanView, LazyTraceVisitor, ResourceView, ScopeView};
use redline_ottl::{ExecError, Item, ItemScope};

use crate::config::Definitions;
use crate::tally::{key_value, Attributes, Decoded, Tally};

/// The scope otelcol's connector names on what it emits.
pub(crate) const SCOPE_NAME: &str =
    "github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector";

/// The metrics request made of one request's counts, and its number of data points.
pub(crate) struct Counted {
    pub request: ExportMetricsServiceRequest,
    pub points: usize,
}

/// Builds the output: one `ResourceMetrics` per resource whose tallies counted something.
struct Output {
    request: ExportMetricsServiceRequest,
    points: usize,
    now: u64,
}

impl Output {
    fn new(now: u64) -> Self {
        Self {
            request: ExportMetricsServiceRequest::default(),
            points: 0,
            now,
        }
    }

    /// Appends a resource's metrics under its `attributes`, made only when something counted.
    fn resource(&mut self, attributes: impl FnOnce() -> Vec<KeyValue>, tallies: [Tally<'_>; 2]) {
        if tallies.iter().all(Tally::is_empty) {
            return;
        }
        let mut metrics: Vec<Metric> = Vec::new();
        for tally in tallies {
            self.points += tally.append_to(&mut metrics, self.now);
        }
        self.request.resource_metrics.push(ResourceMetrics {
            resource: Some(Resource {
                attributes: attributes(),
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        });
    }

    fn done(self) -> Counted {
        Counted {
            request: self.request,
            points: self.points,
        }
    }
}

/// Traces are counted in place, on the request's bytes: a span's fields are read only when a
/// condition asks for them, and only the attributes that become dimensions are copied.
pub(crate) fn traces(
    definitions: &Definitions,
    request: &[u8],
    now: u64,
) -> Result<Counted, ExecError> {
    let mut walk = TraceWalk {
        definitions,
        out: Output::new(now),
        resource: None,
        scope: None,
        spans: Tally::new(&definitions.spans),
        events: Tally::new(&definitions.span_events),
        error: None,
    };
    walk_lazy(request, &mut walk)?;
    walk.close_resource();
    match walk.error {
        Some(e) => Err(e),
        None => Ok(walk.out.done()),
    }
}

struct TraceWalk<'d, 'a> {
    definitions: &'d Definitions,
    out: Output,
    resource: Option<ResourceView<'a>>,
    scope: Option<ScopeView<'a>>,
    spans: Tally<'d>,
    events: Tally<'d>,
    /// The first evaluation error: the request fails, so nothing more is counted.
    error: Option<ExecError>,
}

impl TraceWalk<'_, '_> {
    fn close_resource(&mut self) {
        let spans = std::mem::replace(&mut self.spans, Tally::new(&self.definitions.spans));
        let events = std::mem::replace(&mut self.events, Tally::new(&self.definitions.span_events));
        if let Some(resource) = self.resource.take() {
            self.out.resource(
                || resource.attributes().map(|kv| key_value(&kv)).collect(),
                [spans, events],
            );
        }
    }
}

impl<'a> LazyTraceVisitor<'a> for TraceWalk<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.close_resource();
        self.resource = Some(*resource);
        self.scope = None;
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.scope = Some(*scope);
    }

    fn span(&mut self, span: &LazySpanView<'a>) {
        let (Some(resource), None) = (&self.resource, &self.error) else {
            return;
        };
        let scope = self.scope.as_ref();
        let resource_attributes = resource.attributes_ref();
        let scope_attributes = scope.map(ScopeView::attributes_ref);
        let scope_attributes: &dyn Attributes = match &scope_attributes {
            Some(a) => a,
            None => &Decoded(&[]),
        };
        self.spans.saw_time(span.start_time_unix_nano());
        self.spans.saw_time(span.end_time_unix_nano());
        self.spans.look_up([
            &span.attributes_ref(),
            scope_attributes,
            &resource_attributes,
        ]);
        let counted = self
            .spans
            .count(|set| set.matches_wire_span(resource, scope, span, None))
            .and_then(|()| {
                for event in span.events() {
                    self.events.saw_time(event.time_unix_nano());
                    self.events.look_up([
                        &event.attributes_ref(),
                        scope_attributes,
                        &resource_attributes,
                    ]);
                    self.events
                        .count(|set| set.matches_wire_span(resource, scope, span, Some(&event)))?;
                }
                Ok(())
            });
        if let Err(e) = counted {
            self.error = Some(e);
        }
    }
}

pub(crate) fn logs(
    definitions: &Definitions,
    request: &mut ExportLogsServiceRequest,
    now: u64,
) -> Result<Counted, ExecError> {
    let mut out = Output::new(now);
    for rl in &mut request.resource_logs {
        let ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        } = rl;
        let mut logs = Tally::new(&definitions.logs);
        for sl in scope_logs {
            let ScopeLogs {
                scope,
                log_records,
                schema_url: scope_schema_url,
            } = sl;
            let mut at = ItemScope {
                resource: &mut *resource,
                resource_schema_url: &mut *schema_url,
                scope,
                scope_schema_url,
            };
            for log in log_records {
                // The record's own time; otelcol does not fall back to the observed time.
                logs.saw_time(log.time_unix_nano);
                logs.look_up([
                    &Decoded(&log.attributes),
                    &Decoded(at.scope_attributes()),
                    &Decoded(at.resource_attributes()),
                ]);
                logs.count(|set| set.matches_item(at.reborrow(), Item::Log(&mut *log)))?;
            }
        }
        out.resource(|| copy_attributes(resource), [logs, Tally::new(&[])]);
    }
    Ok(out.done())
}

pub(crate) fn metrics(
    definitions: &Definitions,
    request: &mut ExportMetricsServiceRequest,
    now: u64,
) -> Result<Counted, ExecError> {
    let mut out = Output::new(now);
    for rm in &mut request.resource_metrics {
        let ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        } = rm;
        let mut metrics = Tally::new(&definitions.metrics);
        let mut points = Tally::new(&definitions.data_points);
        for sm in scope_metrics {
            let ScopeMetrics {
                scope,
                metrics: list,
                schema_url: scope_schema_url,
            } = sm;
            let mut at = ItemScope {
                resource: &mut *resource,
                resource_schema_url: &mut *schema_url,
                scope,
                scope_schema_url,
            };
            for metric in list {
                // The metric section has no attributes of its own, only its scope's and
                // resource's.
                metrics.look_up([
                    &Decoded(&[]),
                    &Decoded(at.scope_attributes()),
                    &Decoded(at.resource_attributes()),
                ]);
                metrics.count(|set| set.matches_item(at.reborrow(), Item::Metric(&mut *metric)))?;
                // A metric without data has no points (otelcol fails the whole request on it:
                // compatibility.md §40).
                for i in 0..redline_ottl::point_count(metric) {
                    let Some((time, own)) = point(metric, i) else {
                        continue;
                    };
                    points.saw_time(time);
                    points.look_up([
                        &Decoded(own),
                        &Decoded(at.scope_attributes()),
                        &Decoded(at.resource_attributes()),
                    ]);
                    points.count(|set| {
                        set.matches_item(at.reborrow(), Item::DataPoint(&mut *metric, i))
                    })?;
                }
            }
        }
        out.resource(|| copy_attributes(resource), [metrics, points]);
    }
    Ok(out.done())
}

/// A data point's time and attributes.
fn point(
    metric: &Metric,
    i: usize,
) -> Option<(u64, &[opentelemetry_proto::tonic::common::v1::KeyValue])> {
    Some(match metric.data.as_ref()? {
        Data::Gauge(g) => g
            .data_points
            .get(i)
            .map(|p| (p.time_unix_nano, &p.attributes[..]))?,
        Data::Sum(s) => s
            .data_points
            .get(i)
            .map(|p| (p.time_unix_nano, &p.attributes[..]))?,
        Data::Histogram(h) => h
            .data_points
            .get(i)
            .map(|p| (p.time_unix_nano, &p.attributes[..]))?,
        Data::ExponentialHistogram(e) => e
            .data_points
            .get(i)
            .map(|p| (p.time_unix_nano, &p.attributes[..]))?,
        Data::Summary(s) => s
            .data_points
            .get(i)
            .map(|p| (p.time_unix_nano, &p.attributes[..]))?,
    })
}

fn copy_attributes(resource: &Option<Resource>) -> Vec<KeyValue> {
    resource
        .as_ref()
        .map_or_else(Vec::new, |r| r.attributes.clone())
}

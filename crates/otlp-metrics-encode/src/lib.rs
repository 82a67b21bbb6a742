//! Encodes what a [`MetricsSource`] yields as an OTLP `ExportMetricsServiceRequest`.
//!
//! Redline's metrics are pulled (`redline_pipeline::metrics`): a source walks its state into
//! a [`MetricsSink`]. This crate is the sink that turns that walk into OTLP, so a push
//! exporter (Redline's own telemetry, span metrics over OTLP) only chooses a resource, a
//! scope and a time. The mapping is OTLP's usual one:
//!
//! - a counter is a monotonic `Sum` of integers,
//! - a gauge is a `Gauge` of doubles,
//! - a histogram is an explicit-bucket `Histogram` with its sum and exemplars,
//! - float points, summaries and exponential histograms (what a source holds of OTLP
//!   metrics it received) keep their OTLP form,
//!
//! each family one `Metric`, every label a string attribute in the order given. With
//! [`Temporality::Delta`] the [`Encoder`] remembers what it sent last, per series, and sends
//! counters and histograms as the change since then.

mod delta;
mod handoff;
mod resources;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar as OtlpExemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_pipeline::metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint,
};

/// The OTLP types, for callers that build resources or send the request.
pub use opentelemetry_proto::tonic as proto;

use delta::DeltaState;
pub use handoff::{data_points, hand_over};
pub use resources::group_by_resource_attribute;

/// How counters and histograms are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    /// The totals since each series started.
    Cumulative,
    /// The change since the previous request of the same [`Encoder`].
    Delta,
}

/// What a request says about the metrics besides their points.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub resource: Resource,
    /// The resource's schema URL (empty for none).
    pub schema_url: String,
    pub scope_name: String,
    pub scope_version: String,
}

impl Target {
    /// A resource of string attributes.
    pub fn with_attributes<'a>(attributes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            resource: Resource {
                attributes: attributes
                    .into_iter()
                    .map(|(k, v)| string_kv(k, v))
                    .collect(),
                ..Resource::default()
            },
            ..Self::default()
        }
    }
}

/// Encodes the walks of metrics sources as OTLP requests.
#[derive(Debug)]
pub struct Encoder {
    temporality: Temporality,
    delta: DeltaState,
    dropped_points: u64,
}

impl Encoder {
    pub fn new(temporality: Temporality) -> Self {
        Self {
            temporality,
            delta: DeltaState::default(),
            dropped_points: 0,
        }
    }

    /// The request for what `source` holds now. `time_unix_nano` is the time of every point;
    /// `start_time_unix_nano` is the start of points the source gives none for (gauges, and
    /// counters or histograms that report 0).
    pub fn request(
        &mut self,
        source: &dyn MetricsSource,
        target: &Target,
        start_time_unix_nano: u64,
        time_unix_nano: u64,
    ) -> ExportMetricsServiceRequest {
        let mut sink = Sink {
            temporality: self.temporality,
            delta: (self.temporality == Temporality::Delta).then_some(&mut self.delta),
            start: start_time_unix_nano,
            time: time_unix_nano,
            metrics: Vec::new(),
            current: None,
            dropped_points: 0,
        };
        source.collect(&mut sink);
        let Sink {
            mut metrics,
            dropped_points,
            ..
        } = sink;
        self.dropped_points += dropped_points;
        if self.temporality == Temporality::Delta {
            self.delta.finish(time_unix_nano);
        }
        // A family without points says nothing; OTLP receivers may refuse an empty metric.
        metrics.retain(has_points);
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(target.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: target.scope_name.clone(),
                        version: target.scope_version.clone(),
                        ..InstrumentationScope::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: target.schema_url.clone(),
            }],
        }
    }

    /// [`Encoder::request`] as protobuf bytes.
    pub fn encode(
        &mut self,
        source: &dyn MetricsSource,
        target: &Target,
        start_time_unix_nano: u64,
        time_unix_nano: u64,
    ) -> Vec<u8> {
        self.request(source, target, start_time_unix_nano, time_unix_nano)
            .encode_to_vec()
    }

    /// Points the sources gave outside a family, or of another kind than their family's;
    /// they are left out of the requests. A correct source gives none.
    pub fn dropped_points(&self) -> u64 {
        self.dropped_points
    }
}

fn has_points(m: &Metric) -> bool {
    match &m.data {
        Some(metric::Data::Sum(s)) => !s.data_points.is_empty(),
        Some(metric::Data::Gauge(g)) => !g.data_points.is_empty(),
        Some(metric::Data::Histogram(h)) => !h.data_points.is_empty(),
        Some(metric::Data::Summary(s)) => !s.data_points.is_empty(),
        Some(metric::Data::ExponentialHistogram(h)) => !h.data_points.is_empty(),
        None => false,
    }
}

pub(crate) fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn attributes(labels: &[(&str, &str)]) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| string_kv(k, v)).collect()
}

fn exemplar(e: &Exemplar, value: exemplar::Value) -> OtlpExemplar {
    OtlpExemplar {
        filtered_attributes: Vec::new(),
        time_unix_nano: e.time_unix_nano,
        span_id: e.span_id.to_vec(),
        trace_id: e.trace_id.to_vec(),
        value: Some(value),
    }
}

/// The walk of one request.
struct Sink<'a> {
    temporality: Temporality,
    delta: Option<&'a mut DeltaState>,
    start: u64,
    time: u64,
    metrics: Vec<Metric>,
    /// Kind of the family being walked (its metric is the last of `metrics`).
    current: Option<MetricKind>,
    dropped_points: u64,
}

impl Sink<'_> {
    fn temporality(&self) -> i32 {
        match self.temporality {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }

    /// A point of `kind` belongs to the current family: counts it as dropped if not.
    fn accepts(&mut self, kind: MetricKind) -> bool {
        let ok = self.current == Some(kind);
        if !ok {
            self.dropped_points += 1;
        }
        ok
    }

    /// A point's own time, or the request's for a point observed "now".
    fn time_or_now(&self, time_unix_nano: u64) -> u64 {
        if time_unix_nano == 0 {
            self.time
        } else {
            time_unix_nano
        }
    }

    /// The data of the current family, and its name (which, with the labels, keys a series
    /// for delta temporality).
    fn current_data(&mut self) -> Option<(&mut metric::Data, &str)> {
        let m = self.metrics.last_mut()?;
        Some((m.data.as_mut()?, m.name.as_str()))
    }
}

impl MetricsSink for Sink<'_> {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        let temporality = self.temporality();
        let data = match desc.kind {
            MetricKind::Counter => metric::Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality,
                is_monotonic: true,
            }),
            MetricKind::Gauge => metric::Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            MetricKind::Histogram => metric::Data::Histogram(Histogram {
                data_points: Vec::new(),
                aggregation_temporality: temporality,
            }),
            MetricKind::Summary => metric::Data::Summary(Summary {
                data_points: Vec::new(),
            }),
            MetricKind::ExponentialHistogram => {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: Vec::new(),
                    aggregation_temporality: temporality,
                })
            }
        };
        self.metrics.push(Metric {
            name: desc.name.to_owned(),
            description: desc.description.to_owned(),
            unit: desc.unit.to_owned(),
            metadata: Vec::new(),
            data: Some(data),
        });
        self.current = Some(desc.kind);
    }

    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        value: u64,
        start_time_unix_nano: u64,
        exemplar_in: Option<&Exemplar>,
    ) {
        if !self.accepts(MetricKind::Counter) {
            return;
        }
        let start = if start_time_unix_nano == 0 {
            self.start
        } else {
            start_time_unix_nano
        };
        let time = self.time;
        let delta = self.delta.as_deref_mut();
        let Some((metric::Data::Sum(sum), name)) = self
            .metrics
            .last_mut()
            .and_then(|m| Some((m.data.as_mut()?, m.name.as_str())))
        else {
            return;
        };
        // Cumulative: the totals, and every exemplar. Delta: the change since the last
        // request, and exemplars taken since.
        let (value, start, since) = match delta {
            Some(d) => d.counter(name, labels, value, start),
            None => (value, start, 0),
        };
        let exemplars = exemplar_in.filter(|e| e.time_unix_nano > since).map(|e| {
            // An integer sum takes integer exemplars; counted things are whole.
            let v = e.value.round().clamp(i64::MIN as f64, i64::MAX as f64) as i64;
            exemplar(e, exemplar::Value::AsInt(v))
        });
        sum.data_points.push(NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: time,
            exemplars: exemplars.into_iter().collect(),
            flags: 0,
            // OTLP sums are signed: a count past i64::MAX (never reached) saturates.
            value: Some(number_data_point::Value::AsInt(
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
        });
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        if !self.accepts(MetricKind::Gauge) {
            return;
        }
        let (start, time) = (self.start, self.time);
        let Some((metric::Data::Gauge(gauge), _)) = self.current_data() else {
            return;
        };
        gauge.data_points.push(NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: time,
            exemplars: Vec::new(),
            flags: 0,
            value: Some(number_data_point::Value::AsDouble(value)),
        });
    }

    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        if !self.accepts(MetricKind::Histogram) {
            return;
        }
        let start = if point.start_time_unix_nano == 0 {
            self.start
        } else {
            point.start_time_unix_nano
        };
        let time = self.time;
        let delta = self.delta.as_deref_mut();
        let Some((metric::Data::Histogram(h), name)) = self
            .metrics
            .last_mut()
            .and_then(|m| Some((m.data.as_mut()?, m.name.as_str())))
        else {
            return;
        };
        let d = match delta {
            Some(d) => d.histogram(name, labels, point, start),
            None => delta::HistogramDelta {
                start,
                since: 0,
                bucket_counts: point.bucket_counts.to_vec(),
                sum: point.sum,
                count: point.count,
            },
        };
        h.data_points.push(HistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: d.start,
            time_unix_nano: time,
            count: d.count,
            sum: Some(d.sum),
            bucket_counts: d.bucket_counts,
            explicit_bounds: point.bounds.to_vec(),
            exemplars: point
                .exemplars
                .iter()
                .filter(|e| e.time_unix_nano > d.since)
                .map(|e| exemplar(e, exemplar::Value::AsDouble(e.value)))
                .collect(),
            flags: 0,
            min: None,
            max: None,
        });
    }

    fn number(&mut self, labels: &[(&str, &str)], point: &NumberPoint<'_>) {
        // Float points are already totals a source received; turning them into deltas is not
        // something an encoder of cumulative stores can do exactly.
        let kind = match self.current {
            Some(MetricKind::Counter) if self.temporality == Temporality::Cumulative => {
                MetricKind::Counter
            }
            _ => MetricKind::Gauge,
        };
        if !self.accepts(kind) {
            return;
        }
        let start = point.start_time_unix_nano;
        let time = self.time_or_now(point.time_unix_nano);
        let data_point = NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: time,
            exemplars: point
                .exemplars
                .iter()
                .map(|e| exemplar(e, exemplar::Value::AsDouble(e.value)))
                .collect(),
            flags: 0,
            value: Some(number_data_point::Value::AsDouble(point.value)),
        };
        match self.current_data() {
            Some((metric::Data::Sum(sum), _)) => sum.data_points.push(data_point),
            Some((metric::Data::Gauge(gauge), _)) => gauge.data_points.push(data_point),
            _ => {}
        }
    }

    fn summary(&mut self, labels: &[(&str, &str)], point: &SummaryPoint<'_>) {
        if !self.accepts(MetricKind::Summary) {
            return;
        }
        let time = self.time_or_now(point.time_unix_nano);
        let Some((metric::Data::Summary(summary), _)) = self.current_data() else {
            return;
        };
        summary.data_points.push(SummaryDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: point.start_time_unix_nano,
            time_unix_nano: time,
            count: point.count,
            sum: point.sum,
            quantile_values: point
                .quantiles
                .iter()
                .map(|&(quantile, value)| ValueAtQuantile { quantile, value })
                .collect(),
            flags: 0,
        });
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        point: &ExponentialHistogramPoint<'_>,
    ) {
        if self.temporality == Temporality::Delta {
            self.dropped_points += 1;
            return;
        }
        if !self.accepts(MetricKind::ExponentialHistogram) {
            return;
        }
        let time = self.time_or_now(point.time_unix_nano);
        let Some((metric::Data::ExponentialHistogram(h), _)) = self.current_data() else {
            return;
        };
        let buckets = |offset, counts: &[u64]| exponential_histogram_data_point::Buckets {
            offset,
            bucket_counts: counts.to_vec(),
        };
        h.data_points.push(ExponentialHistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: point.start_time_unix_nano,
            time_unix_nano: time,
            count: point.count,
            sum: point.sum,
            scale: point.scale,
            zero_count: point.zero_count,
            positive: Some(buckets(point.positive_offset, point.positive_counts)),
            negative: Some(buckets(point.negative_offset, point.negative_counts)),
            flags: 0,
            exemplars: point
                .exemplars
                .iter()
                .map(|e| exemplar(e, exemplar::Value::AsDouble(e.value)))
                .collect(),
            min: None,
            max: None,
            zero_threshold: point.zero_threshold,
        });
    }
}

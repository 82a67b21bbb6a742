//! The metrics edge: how a metrics exporter reads what a connector aggregated.
//!
//! Metrics are pulled, not pushed. The spanmetrics connector keeps cumulative state; an
//! exporter (Prometheus at scrape time, remote write on its interval) asks every source of its
//! pipeline to walk that state into a [`MetricsSink`]. Nothing is copied into an intermediate
//! data model, so rendering 100k series costs one pass over them.
//!
//! Names and units are OpenTelemetry's (`traces.spanmetrics.duration`, unit `ms`; label keys
//! such as `service.name`); translating them to Prometheus conventions (`_milliseconds`,
//! `_total`, dots to underscores) is the exporter's job, as in otelcol.

/// The shape of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A cumulative, monotonic sum ([`MetricsSink::counter`] or [`MetricsSink::number`]).
    Counter,
    /// A value that goes up and down ([`MetricsSink::gauge`] or [`MetricsSink::number`]).
    Gauge,
    /// A cumulative explicit-bucket histogram ([`MetricsSink::histogram`]).
    Histogram,
    /// Precomputed quantiles with a count and sum ([`MetricsSink::summary`]).
    Summary,
    /// A cumulative base-2 exponential histogram ([`MetricsSink::exponential_histogram`]);
    /// Prometheus calls it a native histogram.
    ExponentialHistogram,
}

/// Describes one metric family; every point that follows belongs to it until the next one.
#[derive(Clone, Copy, Debug)]
pub struct FamilyDesc<'a> {
    /// OpenTelemetry metric name, e.g. `traces.spanmetrics.calls`.
    pub name: &'a str,
    pub description: &'a str,
    /// UCUM unit: `1`, `ms`, `s`, `By`.
    pub unit: &'a str,
    pub kind: MetricKind,
}

/// A sampled span that illustrates a point: links a metric to a trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exemplar {
    /// The measured value, in the family's unit (a duration for histograms, 1 for counters).
    pub value: f64,
    pub time_unix_nano: u64,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// One cumulative histogram point.
#[derive(Clone, Copy, Debug)]
pub struct HistogramPoint<'a> {
    /// Upper-inclusive bucket bounds, ascending, without +Inf.
    pub bounds: &'a [f64],
    /// Per-bucket (not cumulative) counts; `bounds.len() + 1` entries, the last one for +Inf.
    pub bucket_counts: &'a [u64],
    pub sum: f64,
    pub count: u64,
    pub start_time_unix_nano: u64,
    /// When the point was observed; 0 means "now" (a connector's live state).
    pub time_unix_nano: u64,
    /// At most one exemplar per bucket; exporters attach each to the bucket its value falls in.
    pub exemplars: &'a [Exemplar],
}

/// One counter or gauge point with a float value, as OTLP sums and gauges carry them.
#[derive(Clone, Copy, Debug)]
pub struct NumberPoint<'a> {
    /// Prometheus' stale marker (`f64::from_bits(0x7ff0_0000_0000_0002)`) ends a series in
    /// push exporters.
    pub value: f64,
    /// 0 when unknown.
    pub start_time_unix_nano: u64,
    /// When the point was observed; 0 means "now".
    pub time_unix_nano: u64,
    pub exemplars: &'a [Exemplar],
}

/// One summary point: quantiles computed by the application.
#[derive(Clone, Copy, Debug)]
pub struct SummaryPoint<'a> {
    pub count: u64,
    pub sum: f64,
    /// `(quantile, value)` pairs, quantile in `[0, 1]`, in the order received.
    pub quantiles: &'a [(f64, f64)],
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
}

/// One cumulative base-2 exponential histogram point, in OTLP's terms: bucket `i` of a
/// range covers `(base^(offset+i), base^(offset+i+1)]` with `base = 2^(2^-scale)`.
#[derive(Clone, Copy, Debug)]
pub struct ExponentialHistogramPoint<'a> {
    pub scale: i32,
    pub count: u64,
    /// `None` when the point carries no sum (OTLP's optional `sum`).
    pub sum: Option<f64>,
    pub zero_count: u64,
    /// Values with an absolute value at most this count as zero.
    pub zero_threshold: f64,
    pub positive_offset: i32,
    /// Per-bucket (not cumulative) counts.
    pub positive_counts: &'a [u64],
    pub negative_offset: i32,
    pub negative_counts: &'a [u64],
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub exemplars: &'a [Exemplar],
}

/// Receives the points of a source, family by family. Labels are `(key, value)` pairs with
/// OpenTelemetry keys; their order is the order the exporter writes them in.
pub trait MetricsSink {
    fn family(&mut self, desc: &FamilyDesc<'_>);
    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        value: u64,
        start_time_unix_nano: u64,
        exemplar: Option<&Exemplar>,
    );
    fn gauge(&mut self, labels: &[(&str, &str)], value: f64);
    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>);
    /// A float point of a [`MetricKind::Counter`] or [`MetricKind::Gauge`] family, with its
    /// own times and exemplars (OTLP sums and gauges).
    fn number(&mut self, labels: &[(&str, &str)], point: &NumberPoint<'_>);
    fn summary(&mut self, labels: &[(&str, &str)], point: &SummaryPoint<'_>);
    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        point: &ExponentialHistogramPoint<'_>,
    );
}

/// Prometheus' stale marker: a NaN no computation produces, which ends a series.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// Something that holds metrics an exporter can read.
pub trait MetricsSource: Send + Sync + 'static {
    /// Walks the current state into `sink`. Implementations must not hold a lock that stops
    /// ingestion for the whole walk (lock one shard at a time, or copy first).
    fn collect(&self, sink: &mut dyn MetricsSink);

    /// How often the source would push its state in otelcol (spanmetrics'
    /// `metrics_flush_interval`). Push-based exporters (remote write) default their interval
    /// to it, so an otelcol file keeps its cadence; `None` when the source has no opinion.
    fn flush_interval(&self) -> Option<std::time::Duration> {
        None
    }
}

//! spanmetrics connector: sharded RED aggregation over raw OTLP spans.
//!
//! [`SpanMetrics`] is the whole connector without any pipeline: feed it encoded
//! `ExportTraceServiceRequest`s with [`SpanMetrics::aggregate`] and read it as a
//! [`redline_pipeline::MetricsSource`]. [`SpanMetricsFactory`] wires it into a pipeline.
//!
//! Families (namespace `N`, default `traces.span.metrics`): `N.calls` (counter, unit `1`),
//! `N.errors` (counter, unit `1`, Redline addition: spans with status ERROR, labels without
//! `status.code`), `N.duration` (histogram, unit `ms` or `s`), and with `events.enabled`
//! `N.events` (counter: one per span event, kept by a second store of the same kind).
//! Labels: `service.name`, `span.name`, `span.kind`, `status.code`, then the configured
//! dimensions in order, then those of the family: `calls_dimensions` for `N.calls` and
//! `N.errors`, `histogram.dimensions` for `N.duration`, the event dimensions for `N.events`.
//! When calls and duration have dimensions of their own, a second store keeps the duration.
//! Glob dimensions' labels (every matching attribute) are kept together in one dimension
//! value, after the synthetic ones, and rendered as labels of their own.
//!
//! Differences from the Go connector, on purpose (docs/architecture.md §4):
//! - Series are keyed by their labels only, so spans of one service from several resources
//!   add into one series (Go keys by the whole resource).
//! - `aggregation_cardinality_limit` is one limit over all series (Go: per resource and
//!   metric). Beyond it, new label sets fold into one series whose only label is
//!   `otel.metric.overflow="true"`, as in Go, where the overflow point carries no span
//!   labels either (Go keeps the resource attributes, which Redline does not serve as
//!   labels). The overflow series is not counted in the limit.
//! - Exemplars are on by default; one (the most recent) per series.
//! - `metrics_expiration` is checked with millisecond precision by a background sweep every
//!   `metrics_flush_interval` and at every collect.
//! - With `storage: <file_storage id>` (Redline's key) the series survive a restart
//!   (`checkpoint`): Go starts every counter from zero.
//! - Exporters that read sources (Prometheus, remote write) read the store in place at scrape
//!   or push time; to others (`otlp`, `otlphttp`, `debug`) the connector pushes OTLP every
//!   `metrics_flush_interval`, as Go does, with one resource per `service.name` whose only
//!   attribute is `service.name` (Go copies the span's whole resource).

mod aggregate;
mod checkpoint;
mod collect;
pub mod config;
mod factory;
mod glob_labels;
mod push;
mod series;

pub use aggregate::SpanMetrics;
pub use checkpoint::CheckpointError;
pub use config::Config;
pub use factory::SpanMetricsFactory;
pub use redline_otlp_wire::WireError;

/// The only label of the overflow series.
pub const OVERFLOW_LABEL: &str = "otel.metric.overflow";

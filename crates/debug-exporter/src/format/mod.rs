//! What the debug exporter prints for one batch, in otelcol v0.161's formats: a summary line
//! of counts (`basic`), then one line per item (`normal`) or every field (`detailed`).

mod detailed;
mod exp_histogram;
mod names;
mod normal;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric};
use prost::Message;
use redline_pipeline::Signal;

use crate::config::Verbosity;

/// The counts of the summary line, per signal, as otelcol names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counts {
    Traces {
        resource_spans: usize,
        spans: usize,
    },
    Metrics {
        resource_metrics: usize,
        metrics: usize,
        data_points: usize,
    },
    Logs {
        resource_logs: usize,
        log_records: usize,
    },
}

impl Counts {
    /// The summary's message: `Traces`, `Metrics` or `Logs`.
    pub fn message(&self) -> &'static str {
        match self {
            Counts::Traces { .. } => "Traces",
            Counts::Metrics { .. } => "Metrics",
            Counts::Logs { .. } => "Logs",
        }
    }

    /// The counts as otelcol's console encoder writes its fields:
    /// `{"resource spans": 2, "spans": 4}`.
    pub fn fields(&self) -> String {
        match *self {
            Counts::Traces {
                resource_spans,
                spans,
            } => format!(r#"{{"resource spans": {resource_spans}, "spans": {spans}}}"#),
            Counts::Metrics {
                resource_metrics,
                metrics,
                data_points,
            } => format!(
                r#"{{"resource metrics": {resource_metrics}, "metrics": {metrics}, "data points": {data_points}}}"#
            ),
            Counts::Logs {
                resource_logs,
                log_records,
            } => format!(r#"{{"resource logs": {resource_logs}, "log records": {log_records}}}"#),
        }
    }
}

/// One batch, rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub counts: Counts,
    /// The `normal` or `detailed` text (each line ending in a newline); `None` at `basic`.
    pub text: Option<String>,
}

impl Rendered {
    /// The batch as otelcol prints it with `use_internal_logger: false`: the summary, a tab
    /// and its fields, then the text and the newline the logger ends every entry with.
    pub fn console(&self) -> String {
        let mut out = format!("{}\t{}\n", self.counts.message(), self.counts.fields());
        if let Some(text) = &self.text {
            out.push_str(text);
            out.push('\n');
        }
        out
    }
}

/// A batch that cannot be printed.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode the {signal} request: {source}")]
pub struct RenderError {
    pub signal: Signal,
    #[source]
    pub source: prost::DecodeError,
}

/// Decodes one encoded export request of `signal` and renders it at `verbosity`.
pub fn render(signal: Signal, raw: &[u8], verbosity: Verbosity) -> Result<Rendered, RenderError> {
    let decode_error = |source| RenderError { signal, source };
    match signal {
        Signal::Traces => {
            let req = ExportTraceServiceRequest::decode(raw).map_err(decode_error)?;
            let counts = Counts::Traces {
                resource_spans: req.resource_spans.len(),
                spans: req
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len())
                    .sum(),
            };
            let text = match verbosity {
                Verbosity::Basic => None,
                Verbosity::Normal => Some(normal::traces(&req)),
                Verbosity::Detailed => Some(detailed::traces(&req)),
            };
            Ok(Rendered { counts, text })
        }
        Signal::Metrics => {
            let req = ExportMetricsServiceRequest::decode(raw).map_err(decode_error)?;
            let metrics = || {
                req.resource_metrics
                    .iter()
                    .flat_map(|rm| &rm.scope_metrics)
                    .flat_map(|sm| &sm.metrics)
            };
            let counts = Counts::Metrics {
                resource_metrics: req.resource_metrics.len(),
                metrics: metrics().count(),
                data_points: metrics().map(data_point_count).sum(),
            };
            let text = match verbosity {
                Verbosity::Basic => None,
                Verbosity::Normal => Some(normal::metrics(&req)),
                Verbosity::Detailed => Some(detailed::metrics(&req)),
            };
            Ok(Rendered { counts, text })
        }
        Signal::Logs => {
            let req = ExportLogsServiceRequest::decode(raw).map_err(decode_error)?;
            let counts = Counts::Logs {
                resource_logs: req.resource_logs.len(),
                log_records: req
                    .resource_logs
                    .iter()
                    .flat_map(|rl| &rl.scope_logs)
                    .map(|sl| sl.log_records.len())
                    .sum(),
            };
            let text = match verbosity {
                Verbosity::Basic => None,
                Verbosity::Normal => Some(normal::logs(&req)),
                Verbosity::Detailed => Some(detailed::logs(&req)),
            };
            Ok(Rendered { counts, text })
        }
    }
}

/// Data points of a metric, of whatever type (pdata's `DataPointCount`).
fn data_point_count(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    }
}

#[cfg(test)]
mod tests;

//! The receiver's view of the lean wire walkers: is a request well-formed, how many items
//! does it hold, and (traces) how many spans carry invalid ids.

use bytes::Bytes;
use redline_otlp_wire::SpanNames;
use redline_pipeline::TapWalks;

/// What the walker learned about one encoded ExportTraceServiceRequest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    pub spans: usize,
    pub spans_with_invalid_ids: usize,
}

/// Walks `raw` without decoding it into owned types, noting where each span's name lies.
/// The walker accepts exactly what prost accepts, so the slow path's decode cannot fail on a
/// request that passed here.
/// `taps` see every resource, scope and span on the way.
pub(crate) fn validate<'a>(
    raw: &'a Bytes,
    taps: &mut TapWalks<'a>,
) -> Result<(Stats, SpanNames), String> {
    match redline_otlp_wire::validate_with_span_names_visiting(raw, taps) {
        Ok((s, names)) => Ok((
            Stats {
                spans: s.spans,
                spans_with_invalid_ids: s.spans_with_invalid_ids,
            },
            names,
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// Validates an `ExportMetricsServiceRequest`; returns its data points, the unit of
/// otelcol's `accepted_metric_points`.
pub(crate) fn validate_metrics(raw: &Bytes) -> Result<usize, String> {
    redline_otlp_wire::validate_metrics(raw)
        .map(|s| s.data_points)
        .map_err(|e| e.to_string())
}

/// Validates an `ExportLogsServiceRequest`; returns its log records.
pub(crate) fn validate_logs(raw: &Bytes) -> Result<usize, String> {
    redline_otlp_wire::validate_logs(raw)
        .map(|s| s.log_records)
        .map_err(|e| e.to_string())
}

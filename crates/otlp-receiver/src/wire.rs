//! The receiver's view of the lean wire walker: is a request well-formed, how many spans does
//! it hold, and how many of them carry invalid ids.

use bytes::Bytes;

/// What the walker learned about one encoded ExportTraceServiceRequest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    pub spans: usize,
    pub spans_with_invalid_ids: usize,
}

/// Walks `raw` without decoding it into owned types. The walker accepts exactly what prost
/// accepts, so the slow path's decode cannot fail on a request that passed here.
pub(crate) fn validate(raw: &Bytes) -> Result<Stats, String> {
    match redline_otlp_wire::validate(raw) {
        Ok(s) => Ok(Stats {
            spans: s.spans,
            spans_with_invalid_ids: s.spans_with_invalid_ids,
        }),
        Err(e) => Err(e.to_string()),
    }
}

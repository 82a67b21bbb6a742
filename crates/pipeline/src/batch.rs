//! The unit of data that travels through a traces pipeline.

use bytes::Bytes;

/// One OTLP `ExportTraceServiceRequest`, still protobuf-encoded.
///
/// Receivers validate `raw` with the lean wire walker before a batch exists, so every
/// consumer may assume it is a well-formed request. Exporters forward `raw` as is (no decode,
/// no re-encode), and two batches concatenated byte-wise are again one valid request, because
/// their repeated `resource_spans` fields merge.
#[derive(Clone, Debug)]
pub struct TracesBatch {
    pub raw: Bytes,
    /// Number of spans in `raw`, counted once by the receiver.
    pub span_count: usize,
}

impl TracesBatch {
    pub fn new(raw: Bytes, span_count: usize) -> Self {
        Self { raw, span_count }
    }

    /// Size of the encoded request, the unit queues are bounded in.
    pub fn byte_len(&self) -> usize {
        self.raw.len()
    }
}

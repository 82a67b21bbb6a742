//! The unit of data that travels through a pipeline.

use bytes::Bytes;

use crate::component::Signal;

/// One OTLP export request (`ExportTraceServiceRequest`, `ExportMetricsServiceRequest` or
/// `ExportLogsServiceRequest`, as `signal` says), still protobuf-encoded.
///
/// Receivers validate `raw` with the lean wire walker before a batch exists, so every
/// consumer may assume it is a well-formed request of its signal. Exporters forward `raw` as
/// is (no decode, no re-encode), and two batches of one signal concatenated byte-wise are
/// again one valid request, because their repeated top-level fields merge
/// (docs/architecture.md §1). A pipeline carries one signal; the service graph only connects
/// components that support it, so a consumer never sees a batch of a signal it was not
/// built for.
#[derive(Clone, Debug)]
pub struct Batch {
    pub signal: Signal,
    pub raw: Bytes,
    /// Spans, metric data points or log records in `raw`, counted once by the receiver:
    /// the unit of otelcol's `accepted_spans` / `accepted_metric_points` /
    /// `accepted_log_records` counters.
    pub items: usize,
}

impl Batch {
    pub fn new(signal: Signal, raw: Bytes, items: usize) -> Self {
        Self { signal, raw, items }
    }

    pub fn traces(raw: Bytes, spans: usize) -> Self {
        Self::new(Signal::Traces, raw, spans)
    }

    /// Size of the encoded request, the unit queues are bounded in.
    pub fn byte_len(&self) -> usize {
        self.raw.len()
    }
}

//! The unit of data that travels through a pipeline.

use bytes::Bytes;
use redline_otlp_wire::SpanNames;

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
    /// Where the span names of `raw` lie, when the receiver's validation recorded them.
    /// Private, and only ever handed out for the buffer it was taken from.
    span_names: Option<SpanNames>,
}

impl Batch {
    pub fn new(signal: Signal, raw: Bytes, items: usize) -> Self {
        Self {
            signal,
            raw,
            items,
            span_names: None,
        }
    }

    /// A traces batch of the request `names` was taken from by validation: consumers that
    /// read only span names (the OTTL dry run) then need no walk of their own.
    pub fn validated_traces(names: SpanNames, spans: usize) -> Self {
        Self {
            signal: Signal::Traces,
            raw: names.request().clone(),
            items: spans,
            span_names: Some(names),
        }
    }

    /// Where the span names of `raw` lie, if validation recorded them for these very bytes.
    pub fn span_names(&self) -> Option<&SpanNames> {
        self.span_names
            .as_ref()
            .filter(|names| names.describes(&self.raw))
    }

    pub fn traces(raw: Bytes, spans: usize) -> Self {
        Self::new(Signal::Traces, raw, spans)
    }

    /// Size of the encoded request, the unit queues are bounded in.
    pub fn byte_len(&self) -> usize {
        self.raw.len()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::*;

    fn request(name: &str) -> Bytes {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: name.into(),
            ..Span::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![span],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        };
        Bytes::from(req.encode_to_vec())
    }

    #[test]
    fn span_names_are_handed_out_only_for_the_bytes_they_describe() {
        let raw = request("GET /a");
        let (_, names) = redline_otlp_wire::validate_with_span_names(&raw).expect("valid");
        let mut batch = Batch::validated_traces(names, 1);
        assert_eq!(batch.raw, raw);
        let named: Vec<_> = batch.span_names().expect("recorded").iter().collect();
        assert_eq!(named, [Some(&b"GET /a"[..])]);
        assert!(
            batch.clone().span_names().is_some(),
            "clones share the bytes"
        );
        // Bytes swapped in afterwards, even equal ones, are not the bytes that were indexed.
        batch.raw = Bytes::from(raw.to_vec());
        assert!(batch.span_names().is_none());
        assert!(Batch::traces(raw, 1).span_names().is_none());
    }
}

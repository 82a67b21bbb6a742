//! The unit of data that travels through a pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use redline_otlp_wire::SpanNames;

use crate::client::ClientMetadata;
use crate::consumer::TapId;

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
    /// The gzip member the client sent, when it decompressed to exactly `raw`: a gzip
    /// exporter sends it instead of compressing `raw` again. Private, and only ever handed out
    /// for the buffer it was taken from, so a processor that replaces `raw` loses it.
    gzip: Option<GzipFrame>,
    /// The span taps that already counted this request during the receiver's walk.
    taps: Option<Arc<TapReceipt>>,
    /// The client's metadata, when the receiver kept it (`include_metadata`). Unlike the
    /// fields above it describes the request, not these bytes: a processor's replacement
    /// keeps it ([`replacing`](Self::replacing)).
    client: Option<ClientMetadata>,
}

/// Which span taps counted a request while the receiver validated it, each claimable once.
#[derive(Debug)]
struct TapReceipt {
    /// Kept so that no other buffer can take its address while the receipt lives.
    of: Bytes,
    taps: Vec<(TapId, AtomicBool)>,
}

/// A client's gzip member and the buffer it decompressed to.
#[derive(Clone, Debug)]
struct GzipFrame {
    /// Kept (a reference, not a copy) so that no other buffer can take its address while the
    /// frame lives: the pointer comparison in [`Batch::gzip_frame`] then identifies it.
    of: Bytes,
    frame: Bytes,
}

impl Batch {
    pub fn new(signal: Signal, raw: Bytes, items: usize) -> Self {
        Self {
            signal,
            raw,
            items,
            span_names: None,
            gzip: None,
            taps: None,
            client: None,
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
            gzip: None,
            taps: None,
            client: None,
        }
    }

    /// This batch with the client's gzip encoding of `of`: `frame` must be one whole gzip
    /// member that decompresses to exactly `of` (the receiver checks that its decoder used
    /// all of it). Kept only while `raw` is `of` itself, the same buffer: when it is not
    /// (the receiver dropped invalid spans and re-encoded), nothing is kept.
    pub fn with_gzip_frame(mut self, of: &Bytes, frame: Bytes) -> Self {
        if same_buffer(of, &self.raw) {
            self.gzip = Some(GzipFrame {
                of: of.clone(),
                frame,
            });
        }
        self
    }

    /// This batch as sent by a client whose metadata the receiver kept.
    pub fn with_client(mut self, client: ClientMetadata) -> Self {
        self.client = (!client.is_empty()).then_some(client);
        self
    }

    /// The client's metadata, when the receiver kept any.
    pub fn client(&self) -> Option<&ClientMetadata> {
        self.client.as_ref()
    }

    /// Replaces the client's metadata (the `batch` processor narrowing it to its keys).
    pub fn set_client(&mut self, client: Option<ClientMetadata>) {
        self.client = client.filter(|c| !c.is_empty());
    }

    /// A batch of new bytes standing for this one (a processor's edit): the same signal and
    /// client, nothing that described the old bytes.
    pub fn replacing(&self, raw: Bytes, items: usize) -> Self {
        let mut batch = Self::new(self.signal, raw, items);
        batch.client = self.client.clone();
        batch
    }

    /// The client's gzip encoding of `raw`, if the receiver kept it for these very bytes.
    pub fn gzip_frame(&self) -> Option<&Bytes> {
        self.gzip
            .as_ref()
            .filter(|g| same_buffer(&g.of, &self.raw))
            .map(|g| &g.frame)
    }

    /// Lets go of the client's gzip frame, for a holder that will not send it.
    pub fn drop_gzip_frame(&mut self) {
        self.gzip = None;
    }

    /// Whether this batch holds a gzip frame (one that no longer describes `raw` included).
    pub fn holds_gzip_frame(&self) -> bool {
        self.gzip.is_some()
    }

    /// This batch, marked as already counted by the span taps `tapped` (the receiver
    /// committed their walks of `raw`). Each tap's consumer claims the mark once
    /// ([`claim_tap`](Self::claim_tap)) instead of reading the request again.
    pub fn with_tap_receipt(mut self, tapped: Vec<TapId>) -> Self {
        if !tapped.is_empty() {
            self.taps = Some(Arc::new(TapReceipt {
                of: self.raw.clone(),
                taps: tapped
                    .into_iter()
                    .map(|id| (id, AtomicBool::new(false)))
                    .collect(),
            }));
        }
        self
    }

    /// Whether tap `id` already counted these very bytes and this is the first claim: a
    /// consumer reached again with the same request (through another pipeline) counts it
    /// again, as it would have without the tap.
    pub fn claim_tap(&self, id: TapId) -> bool {
        let Some(receipt) = self.taps.as_ref() else {
            return false;
        };
        same_buffer(&receipt.of, &self.raw)
            && receipt
                .taps
                .iter()
                .any(|(t, claimed)| *t == id && !claimed.swap(true, Ordering::AcqRel))
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

    /// Bytes this batch keeps alive: the request, plus the client's gzip frame when it holds
    /// one. What a queue bounded in memory counts.
    pub fn held_bytes(&self) -> usize {
        self.raw.len() + self.gzip.as_ref().map_or(0, |g| g.frame.len())
    }
}

/// The same bytes in the same place (the same buffer, or a slice of it covering the same
/// range), not merely equal ones.
fn same_buffer(a: &Bytes, b: &Bytes) -> bool {
    a.as_ptr() == b.as_ptr() && a.len() == b.len()
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

    #[test]
    fn a_gzip_frame_is_handed_out_only_for_the_bytes_it_decompressed_to() {
        let raw = request("GET /a");
        let frame = Bytes::from_static(b"stands for the client's gzip member");
        let mut batch = Batch::traces(raw.clone(), 1).with_gzip_frame(&raw, frame.clone());
        assert_eq!(batch.gzip_frame(), Some(&frame));
        assert_eq!(batch.held_bytes(), raw.len() + frame.len());
        assert_eq!(batch.byte_len(), raw.len(), "the request alone, as before");
        assert_eq!(batch.clone().gzip_frame(), Some(&frame), "clones share it");

        // A processor that puts other bytes in `raw`, even equal ones, loses it.
        batch.raw = Bytes::from(raw.to_vec());
        assert!(batch.gzip_frame().is_none());
        assert!(batch.holds_gzip_frame(), "still held until dropped");
        batch.drop_gzip_frame();
        assert!(!batch.holds_gzip_frame());
        assert_eq!(batch.held_bytes(), raw.len());

        // A frame of other bytes (the receiver re-encoded the request) is not kept at all.
        let reencoded = Bytes::from(raw.to_vec());
        let other = Batch::traces(reencoded, 1).with_gzip_frame(&raw, frame.clone());
        assert!(!other.holds_gzip_frame());
        // Nor one of a part of the request.
        let part = Batch::traces(raw.clone(), 1).with_gzip_frame(&raw.slice(1..), frame);
        assert!(part.gzip_frame().is_none());
        assert_eq!(part.held_bytes(), raw.len());
    }

    #[test]
    fn a_tap_receipt_is_claimed_once_per_tap_and_only_for_its_bytes() {
        let raw = request("GET /c");
        let (a, b, other) = (TapId::unique(), TapId::unique(), TapId::unique());
        let batch = Batch::traces(raw.clone(), 1).with_tap_receipt(vec![a, b]);
        let copy = batch.clone();
        assert!(
            !batch.claim_tap(other),
            "a tap that did not walk the request"
        );
        assert!(copy.claim_tap(a), "fan-out clones share the receipt");
        assert!(
            !batch.claim_tap(a),
            "a second delivery to the same tap counts again"
        );
        assert!(batch.claim_tap(b));

        // A processor that replaces the bytes (equal or not) leaves nothing claimable.
        let mut changed = Batch::traces(raw.clone(), 1).with_tap_receipt(vec![a]);
        changed.raw = Bytes::from(raw.to_vec());
        assert!(!changed.claim_tap(a));
        assert!(!Batch::traces(raw, 1)
            .with_tap_receipt(Vec::new())
            .claim_tap(a));
    }

    #[test]
    fn validated_traces_keep_a_frame_of_the_validated_buffer() {
        let raw = request("GET /b");
        let (_, names) = redline_otlp_wire::validate_with_span_names(&raw).expect("valid");
        let frame = Bytes::from_static(b"gz");
        let batch = Batch::validated_traces(names, 1).with_gzip_frame(&raw, frame.clone());
        assert_eq!(batch.gzip_frame(), Some(&frame));
        assert!(batch.span_names().is_some());
    }
}

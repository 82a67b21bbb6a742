//! Pre-encoded requests. A [`Template`] is one encoded `ExportTraceServiceRequest` plus the
//! offsets of the bytes that change per send (ids and timestamps), found once by walking the
//! encoded bytes. Sending a template is then a copy and a few dozen fixed-width writes, with
//! no protobuf encoding on the clock.

use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_wire::{SpanView, TraceVisitor, WireError};

use crate::ids;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the encoded request does not walk: {0}")]
    Walk(#[from] WireError),
    #[error("span {span}: {what}")]
    Layout { span: usize, what: String },
}

/// One pre-encoded request and where to patch it.
#[derive(Clone, Debug)]
pub struct Template {
    bytes: Bytes,
    /// Where each trace id's sequence half (8 bytes) starts.
    trace_seq: Vec<usize>,
    /// Where each span id and parent span id starts, with its index part.
    span_ids: Vec<(usize, u64)>,
    /// Where each start/end time (fixed64 LE) starts.
    times: Vec<usize>,
    spans: usize,
}

impl Template {
    /// Encodes `request`, whose ids must follow the [`ids`] layout with sequence 0.
    pub fn encode(request: &ExportTraceServiceRequest) -> Result<Self, EncodeError> {
        let bytes = request.encode_to_vec();
        let mut finder = OffsetFinder {
            base: bytes.as_ptr() as usize,
            trace_seq: Vec::new(),
            span_ids: Vec::new(),
            times: Vec::new(),
            error: None,
            spans: 0,
        };
        let stats = redline_otlp_wire::walk(&bytes, &mut finder)?;
        if let Some(e) = finder.error {
            return Err(e);
        }
        Ok(Self {
            bytes: Bytes::from(bytes),
            trace_seq: finder.trace_seq,
            span_ids: finder.span_ids,
            times: finder.times,
            spans: stats.spans,
        })
    }

    pub fn spans(&self) -> usize {
        self.spans
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The request as encoded (sequence 0, unshifted times).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// A copy with the ids of send number `seq` and every timestamp moved by `shift_ns`.
    pub fn instantiate(&self, seq: u64, shift_ns: u64) -> Bytes {
        let mut b = BytesMut::from(&self.bytes[..]);
        let seq_be = seq.to_be_bytes();
        for &at in &self.trace_seq {
            if let Some(dst) = b.get_mut(at..at + 8) {
                dst.copy_from_slice(&seq_be);
            }
        }
        for &(at, low) in &self.span_ids {
            if let Some(dst) = b.get_mut(at..at + 8) {
                dst.copy_from_slice(&ids::span_id_from_low(low, seq));
            }
        }
        if shift_ns != 0 {
            for &at in &self.times {
                if let Some(dst) = b.get_mut(at..at + 8) {
                    let mut v = [0u8; 8];
                    v.copy_from_slice(dst);
                    let t = u64::from_le_bytes(v).saturating_add(shift_ns);
                    dst.copy_from_slice(&t.to_le_bytes());
                }
            }
        }
        b.freeze()
    }
}

struct OffsetFinder {
    base: usize,
    trace_seq: Vec<usize>,
    span_ids: Vec<(usize, u64)>,
    times: Vec<usize>,
    error: Option<EncodeError>,
    spans: usize,
}

impl OffsetFinder {
    fn offset(&self, s: &[u8]) -> usize {
        // The views borrow from the encoded buffer, so the pointer difference is the offset.
        (s.as_ptr() as usize).wrapping_sub(self.base)
    }

    fn fail(&mut self, what: String) {
        if self.error.is_none() {
            self.error = Some(EncodeError::Layout {
                span: self.spans,
                what,
            });
        }
    }

    /// Offset of the 8 value bytes of the fixed64 field `tag` holding `value` in the span:
    /// the value is searched for with its tag byte and must occur exactly once.
    fn fixed64(&mut self, raw: &[u8], tag: u8, value: u64) -> Option<usize> {
        let mut pat = [0u8; 9];
        pat[0] = tag;
        pat[1..].copy_from_slice(&value.to_le_bytes());
        let mut hits = raw.windows(9).enumerate().filter(|(_, w)| *w == pat);
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(self.offset(raw) + i + 1),
            _ => {
                self.fail(format!("cannot locate fixed64 field {tag:#x} = {value}"));
                None
            }
        }
    }
}

impl<'a> TraceVisitor<'a> for OffsetFinder {
    fn span(&mut self, span: &SpanView<'a>) {
        let (t, s, p) = (span.trace_id(), span.span_id(), span.parent_span_id());
        if t.len() != 16 || s.len() != 8 || !(p.is_empty() || p.len() == 8) {
            self.fail("ids are not 16/8 bytes".into());
            return;
        }
        let t_at = self.offset(t);
        self.trace_seq.push(t_at + 8);
        for id in [s, p] {
            if id.len() == 8 {
                let mut v = [0u8; 8];
                v.copy_from_slice(id);
                let at = self.offset(id);
                self.span_ids.push((at, ids::span_id_low(v)));
            }
        }
        let raw = span.raw();
        // Field 7 and 8, wire type 1 (fixed64): tags 0x39 and 0x41.
        if let Some(at) = self.fixed64(raw, 0x39, span.start_time_unix_nano()) {
            self.times.push(at);
        }
        if let Some(at) = self.fixed64(raw, 0x41, span.end_time_unix_nano()) {
            self.times.push(at);
        }
        self.spans += 1;
    }
}

#[cfg(test)]
#[path = "encode_tests.rs"]
mod tests;

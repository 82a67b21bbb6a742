//! Pre-encoded requests. A [`Template`] is one encoded export request plus the offsets of the
//! bytes that change per send (ids and timestamps), found once by walking the encoded bytes.
//! Sending a template is then a copy and a few dozen fixed-width writes, with no protobuf
//! encoding on the clock. Traces get fresh trace and span ids and times per send; metrics
//! (points' `time_unix_nano`) and logs (records' time and observed time) fresh times.

use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
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
    #[error("the encoded request does not scan at byte {at}: {what}")]
    Scan { at: usize, what: &'static str },
}

/// Where the times of a metrics request are: resource_metrics(1) / scope_metrics(2) /
/// metrics(2) / gauge(5), sum(7), histogram(9), exponential_histogram(10), summary(11) /
/// data_points(1) / time_unix_nano(3).
const METRIC_TIMES: [&[u32]; 6] = [&[1], &[2], &[2], &[5, 7, 9, 10, 11], &[1], &[3]];
/// resource_logs(1) / scope_logs(2) / log_records(2) / time_unix_nano(1),
/// observed_time_unix_nano(11).
const LOG_TIMES: [&[u32]; 4] = [&[1], &[2], &[2], &[1, 11]];

/// One pre-encoded request and where to patch it.
#[derive(Clone, Debug)]
pub struct Template {
    bytes: Bytes,
    /// Where each trace id's sequence half (8 bytes) starts.
    trace_seq: Vec<usize>,
    /// Where each span id and parent span id starts, with its index part.
    span_ids: Vec<(usize, u64)>,
    /// Where each time to move (fixed64 LE) starts.
    times: Vec<usize>,
    /// Spans, data points or log records.
    items: usize,
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
            items: stats.spans,
        })
    }

    /// Encodes a metrics request; its data points are counted by the receiver's walker.
    pub fn metrics(request: &ExportMetricsServiceRequest) -> Result<Self, EncodeError> {
        let bytes = request.encode_to_vec();
        let items = redline_otlp_wire::validate_metrics(&bytes)?.data_points;
        Self::with_times(bytes, items, &METRIC_TIMES)
    }

    /// Encodes a logs request; its records are counted by the receiver's walker.
    pub fn logs(request: &ExportLogsServiceRequest) -> Result<Self, EncodeError> {
        let bytes = request.encode_to_vec();
        let items = redline_otlp_wire::validate_logs(&bytes)?.log_records;
        Self::with_times(bytes, items, &LOG_TIMES)
    }

    fn with_times(bytes: Vec<u8>, items: usize, path: &[&[u32]]) -> Result<Self, EncodeError> {
        let mut times = Vec::new();
        fixed64_offsets(&bytes, 0, path, &mut times)?;
        Ok(Self {
            bytes: Bytes::from(bytes),
            trace_seq: Vec::new(),
            span_ids: Vec::new(),
            times,
            items,
        })
    }

    /// Spans, data points or log records in the request.
    pub fn items(&self) -> usize {
        self.items
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

/// Appends to `out` the offsets of the fixed64 fields reached by `path` in the message `buf`
/// (at `base` in the request): each level but the last lists the message fields to descend
/// into, the last the fixed64 fields wanted. Every other field is skipped.
fn fixed64_offsets(
    buf: &[u8],
    base: usize,
    path: &[&[u32]],
    out: &mut Vec<usize>,
) -> Result<(), EncodeError> {
    let Some((here, deeper)) = path.split_first() else {
        return Ok(());
    };
    let mut i = 0;
    while i < buf.len() {
        let at = base + i;
        let bad = move |what| EncodeError::Scan { at, what };
        let (key, n) = varint(&buf[i..]).ok_or_else(|| bad("truncated key"))?;
        i += n;
        let wanted = here.contains(&((key >> 3) as u32));
        match key & 7 {
            0 => i += varint(&buf[i..]).ok_or_else(|| bad("truncated varint"))?.1,
            1 => {
                if wanted && deeper.is_empty() {
                    out.push(base + i);
                }
                i += 8;
            }
            2 => {
                let (len, n) = varint(&buf[i..]).ok_or_else(|| bad("truncated length"))?;
                i += n;
                let end = i.checked_add(len as usize).filter(|e| *e <= buf.len());
                let end = end.ok_or_else(|| bad("length past the end"))?;
                if wanted && !deeper.is_empty() {
                    fixed64_offsets(&buf[i..end], base + i, deeper, out)?;
                }
                i = end;
            }
            5 => i += 4,
            _ => return Err(bad("unexpected wire type")),
        }
    }
    if i > buf.len() {
        return Err(EncodeError::Scan {
            at: base + buf.len(),
            what: "fixed field past the end",
        });
    }
    Ok(())
}

/// A protobuf varint and its length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
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

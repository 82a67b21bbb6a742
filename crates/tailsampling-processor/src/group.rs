//! A request split by trace without decoding it: for each resource, one `ResourceSpans` per
//! trace holding that trace's spans under their scopes, as otelcol's `groupSpansByTraceKey`
//! splits it. Every field but the spans is copied as received (resource, scope, schema URLs,
//! fields Redline does not know), and each span is its bytes as the client sent them, so
//! what is held costs what it weighs on the wire and what is forwarded is what came in.

use bytes::{BufMut, Bytes};
use prost::encoding::{decode_key, decode_varint, encode_key, encode_varint, skip_field};
use prost::encoding::{DecodeContext, WireType};
use prost::DecodeError;

/// Why a request could not be split (the receiver validated it, so only a bug gets here).
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("a field's length runs past the end of its message")]
    Truncated,
}

use crate::store::{TraceGroup, TraceId};

/// `ExportTraceServiceRequest.resource_spans`, `ResourceSpans.scope_spans`,
/// `ScopeSpans.spans`: the repeated field each level nests the next in.
const NESTED: u32 = 2;
const RESOURCE_SPANS: u32 = 1;
const SPAN_TRACE_ID: u32 = 1;
const SPAN_PARENT_SPAN_ID: u32 = 4;

/// One field of a message: its number, value (for length-delimited fields) and every byte
/// of it, key included.
struct Field<'a> {
    number: u32,
    value: &'a [u8],
    whole: &'a [u8],
}

/// The fields of an encoded message, in order.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.rest;
        let mut cursor = self.rest;
        let field = (|| {
            let (number, wire_type) = decode_key(&mut cursor)?;
            let value = if wire_type == WireType::LengthDelimited {
                let len = usize::try_from(decode_varint(&mut cursor)?)
                    .map_err(|_| SplitError::Truncated)?;
                let value = cursor.get(..len).ok_or(SplitError::Truncated)?;
                cursor = &cursor[len..];
                value
            } else {
                skip_field(wire_type, number, &mut cursor, DecodeContext::default())?;
                &[][..]
            };
            Ok(Field {
                number,
                value,
                whole: &start[..start.len() - cursor.len()],
            })
        })();
        self.rest = if field.is_ok() { cursor } else { &[] };
        Some(field)
    }
}

fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

/// The spans of one trace under one resource, while they are gathered.
struct Gathering<'a> {
    id: TraceId,
    /// (index of the scope in the resource, the trace's spans in it).
    scopes: Vec<(usize, Vec<&'a [u8]>)>,
    span_count: i64,
    has_root: bool,
}

/// The request's spans grouped by resource and trace, each group an encoded `ResourceSpans`.
pub fn by_trace(request: &[u8]) -> Result<Vec<TraceGroup>, SplitError> {
    let mut groups = Vec::new();
    for rs in fields(request) {
        let rs = rs?;
        if rs.number != RESOURCE_SPANS {
            continue;
        }
        let mut head = Vec::new();
        // Each scope: the fields other than its spans, as received.
        let mut scope_heads: Vec<Vec<u8>> = Vec::new();
        let mut gathering: Vec<Gathering<'_>> = Vec::new();
        for field in fields(rs.value) {
            let field = field?;
            if field.number != NESTED {
                head.extend_from_slice(field.whole);
                continue;
            }
            let scope = scope_heads.len();
            let mut scope_head = Vec::new();
            for f in fields(field.value) {
                let f = f?;
                if f.number != NESTED {
                    scope_head.extend_from_slice(f.whole);
                    continue;
                }
                let (id, is_root) = span_ids(f.value)?;
                let at = match gathering.iter().position(|g| g.id == id) {
                    Some(at) => at,
                    None => {
                        gathering.push(Gathering {
                            id,
                            scopes: Vec::new(),
                            span_count: 0,
                            has_root: false,
                        });
                        gathering.len() - 1
                    }
                };
                let g = &mut gathering[at];
                match g.scopes.last_mut() {
                    Some((s, spans)) if *s == scope => spans.push(f.whole),
                    _ => g.scopes.push((scope, vec![f.whole])),
                }
                g.span_count += 1;
                g.has_root |= is_root;
            }
            scope_heads.push(scope_head);
        }
        for g in gathering {
            let spans = encode_resource_spans(&head, &scope_heads, &g.scopes);
            groups.push(TraceGroup {
                id: g.id,
                size_bytes: spans.len() as u64,
                spans,
                span_count: g.span_count,
                has_root: g.has_root,
            });
        }
    }
    Ok(groups)
}

/// A span's trace id and whether it is a root (no parent, or an all-zero one). A field
/// present twice counts as its last value, as a decoder reads it.
fn span_ids(span: &[u8]) -> Result<(TraceId, bool), SplitError> {
    let (mut trace, mut parent): (&[u8], &[u8]) = (&[], &[]);
    for f in fields(span) {
        let f = f?;
        match f.number {
            SPAN_TRACE_ID => trace = f.value,
            SPAN_PARENT_SPAN_ID => parent = f.value,
            _ => {}
        }
    }
    // pdata's trace id is 16 bytes (the receiver refuses other lengths).
    let mut id = [0u8; 16];
    let n = trace.len().min(16);
    id[..n].copy_from_slice(&trace[..n]);
    Ok((id, parent.iter().all(|b| *b == 0)))
}

fn put_len_field(out: &mut Vec<u8>, number: u32, len: usize) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

fn encode_resource_spans(
    head: &[u8],
    scope_heads: &[Vec<u8>],
    scopes: &[(usize, Vec<&[u8]>)],
) -> Bytes {
    let mut out = Vec::with_capacity(
        head.len()
            + scopes
                .iter()
                .map(|(s, spans)| {
                    16 + scope_heads.get(*s).map_or(0, Vec::len)
                        + spans.iter().map(|b| b.len()).sum::<usize>()
                })
                .sum::<usize>(),
    );
    out.extend_from_slice(head);
    for (s, spans) in scopes {
        let scope_head = scope_heads.get(*s).map_or(&[][..], Vec::as_slice);
        let len = scope_head.len() + spans.iter().map(|b| b.len()).sum::<usize>();
        put_len_field(&mut out, NESTED, len);
        out.extend_from_slice(scope_head);
        for span in spans {
            out.extend_from_slice(span);
        }
    }
    Bytes::from(out)
}

/// Encoded `ResourceSpans` messages as one request.
pub fn request_of(parts: &[Bytes]) -> Bytes {
    let len: usize = parts
        .iter()
        .map(|p| 1 + prost::encoding::encoded_len_varint(p.len() as u64) + p.len())
        .sum();
    let mut out = Vec::with_capacity(len);
    for p in parts {
        put_len_field(&mut out, RESOURCE_SPANS, p.len());
        out.put_slice(p);
    }
    Bytes::from(out)
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;

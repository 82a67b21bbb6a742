//! The validation walk that also remembers where each span's name lies, so that a consumer
//! reading only names (the OTTL dry run's memo) needs no walk of its own.

use std::sync::Arc;

use bytes::Bytes;

use super::{walk_single_pass, ResourceView, ScopeView, SpanView, TraceVisitor, WalkStats};
use crate::error::WireError;

/// Where each span's `name` lies in a traces request that [`validate_with_span_names`]
/// accepted, in wire order. Holds the request's bytes, so the positions can only ever be
/// read against the buffer they were taken from; [`SpanNames::describes`] tells a holder
/// whether a buffer is that one. Cheap to clone.
#[derive(Clone)]
pub struct SpanNames {
    raw: Bytes,
    /// Byte range of each span's name (the last `name` field, as prost keeps), in `raw`.
    ranges: Arc<[(usize, usize)]>,
}

impl std::fmt::Debug for SpanNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanNames")
            .field("request_len", &self.raw.len())
            .field("spans", &self.ranges.len())
            .finish()
    }
}

impl SpanNames {
    /// Whether `raw` is the very buffer these names were taken from (same memory, same
    /// length): a check in O(1), not a comparison of contents.
    pub fn describes(&self, raw: &Bytes) -> bool {
        self.raw.as_ptr() == raw.as_ptr() && self.raw.len() == raw.len()
    }

    /// The validated request.
    pub fn request(&self) -> &Bytes {
        &self.raw
    }

    /// Spans in the request.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the request has no span.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Each span's name as UTF-8 bytes (validation checked them), in wire order. The ranges
    /// were taken from the request itself, so an item is `None` only if that ever failed to
    /// hold; a reader treats it as a name it does not know.
    pub fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        self.ranges
            .iter()
            .map(|&(start, end)| self.raw.get(start..end))
    }
}

/// [`validate`](super::validate), also returning where every span's name lies. One walk, as
/// `validate` makes; a vector entry per span is the only extra cost.
pub fn validate_with_span_names(raw: &Bytes) -> Result<(WalkStats, SpanNames), WireError> {
    validate_with_span_names_visiting(raw, &mut super::NoopVisitor)
}

/// [`validate_with_span_names`], also handing every resource, scope and span to `visitor`
/// as the walk meets them: a reader of the request needs no walk of its own. On an invalid
/// request the visitor has seen the parts before the fault, so it must hold what it saw
/// until the walk has returned `Ok`.
pub fn validate_with_span_names_visiting<'a, V: TraceVisitor<'a>>(
    raw: &'a Bytes,
    visitor: &mut V,
) -> Result<(WalkStats, SpanNames), WireError> {
    let mut collect = NameRanges {
        base: raw.as_ptr() as usize,
        ranges: Vec::with_capacity(raw.len() / 256),
        also: visitor,
    };
    let stats = walk_single_pass(raw, &mut collect)?;
    let names = SpanNames {
        raw: raw.clone(),
        ranges: collect.ranges.into(),
    };
    Ok((stats, names))
}

struct NameRanges<'v, V> {
    base: usize,
    ranges: Vec<(usize, usize)>,
    also: &'v mut V,
}

impl<'a, V: TraceVisitor<'a>> TraceVisitor<'a> for NameRanges<'_, V> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.also.resource(resource);
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.also.scope(scope);
    }

    fn span_keys(&self) -> &'a super::SpanKeys {
        self.also.span_keys()
    }

    fn span(&mut self, span: &SpanView<'a>) {
        self.also.span(span);
        // A name borrowed from the request: its address minus the request's is its offset.
        // An absent name is a static empty string, outside the request: the range of the
        // empty slice at 0 reads the same empty name.
        let name = span.name();
        let start = (name.as_ptr() as usize).wrapping_sub(self.base);
        let range = if name.is_empty() {
            (0, 0)
        } else {
            (start, start.saturating_add(name.len()))
        };
        self.ranges.push(range);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(payload.len()).expect("short field")];
        out.extend_from_slice(payload);
        out
    }

    /// A request of one resource and one scope holding `spans` (encoded span messages).
    fn request(spans: &[Vec<u8>]) -> Bytes {
        let scope: Vec<u8> = spans.iter().flat_map(|s| field(0x12, s)).collect();
        let resource_spans = field(0x12, &scope);
        Bytes::from(field(0x0a, &resource_spans))
    }

    fn span(names: &[&str]) -> Vec<u8> {
        let mut out = field(0x0a, &[1; 16]);
        out.extend(field(0x12, &[2; 8]));
        for name in names {
            out.extend(field(0x2a, name.as_bytes()));
        }
        out
    }

    #[test]
    fn names_in_wire_order_the_last_name_field_winning() {
        let raw = request(&[span(&["GET /a"]), span(&[]), span(&["first", "second"])]);
        let (stats, names) = validate_with_span_names(&raw).expect("valid");
        assert_eq!(stats.spans, 3);
        let got: Vec<Option<&[u8]>> = names.iter().collect();
        assert_eq!(got, [Some(&b"GET /a"[..]), Some(b""), Some(b"second")]);
    }

    #[test]
    fn describes_only_the_buffer_it_was_taken_from() {
        let raw = request(&[span(&["x"])]);
        let (_, names) = validate_with_span_names(&raw).expect("valid");
        assert!(names.describes(&raw.clone()));
        assert!(!names.describes(&Bytes::from(raw.to_vec())));
        assert!(!names.describes(&raw.slice(1..)));
    }

    #[test]
    fn refuses_what_validate_refuses() {
        let raw = Bytes::from_static(&[0x0a, 0x05, 0x12]);
        assert!(validate_with_span_names(&raw).is_err());
        assert!(super::super::validate(&raw).is_err());
    }
}

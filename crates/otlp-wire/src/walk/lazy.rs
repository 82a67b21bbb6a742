//! The lazy walk: spans handed out undecoded, each field read from the span's bytes only when
//! asked for.
//!
//! A caller that looks at one or two fields of every span (a dry run checking `name`) pays for
//! one scan of the span's keys per field it reads, instead of decoding every scalar and
//! checking every string of every span as [`SpanView`] does.

use super::events_links::{EventIter, LinkIter};
use super::views::{ResourceView, ScopeView};
use crate::cursor::{Cursor, Value};
use crate::scan::{last_len, LastLen};
use crate::value::{AnyValueView, AttributeIter, AttributesRef};

/// Callbacks for [`walk_lazy`](super::walk_lazy), in the order of
/// [`TraceVisitor`](super::TraceVisitor). All methods default to no-ops.
pub trait LazyTraceVisitor<'a> {
    /// Called once per `ResourceSpans`, before its scopes and spans.
    fn resource(&mut self, resource: &ResourceView<'a>) {
        let _ = resource;
    }
    /// Called once per `ScopeSpans`, before its spans.
    fn scope(&mut self, scope: &ScopeView<'a>) {
        let _ = scope;
    }
    /// Called for every span.
    fn span(&mut self, span: &LazySpanView<'a>) {
        let _ = span;
    }
}

/// One span of a validated request, decoded field by field on demand. Every accessor scans
/// the span's keys (protobuf lets a field repeat, the last occurrence wins), so read a field
/// once and keep it rather than asking again. Same values as [`SpanView`](super::SpanView)'s
/// accessors of the same name.
#[derive(Debug, Clone, Copy)]
pub struct LazySpanView<'a> {
    raw: &'a [u8],
    index: usize,
}

impl<'a> LazySpanView<'a> {
    pub(super) fn new(raw: &'a [u8], index: usize) -> Self {
        LazySpanView { raw, index }
    }

    /// The value of the last occurrence of field `tag`.
    #[inline]
    fn last(&self, tag: u32) -> Option<Value<'a>> {
        let mut cursor = Cursor::new(self.raw);
        let mut found = None;
        while let Some((t, v)) = cursor.next_lenient() {
            if t == tag {
                found = Some(v);
            }
        }
        found
    }

    fn bytes(&self, tag: u32) -> &'a [u8] {
        match last_len(self.raw, tag) {
            LastLen::Found(payload) => return payload,
            LastLen::Absent => return &[],
            LastLen::Unusual => {}
        }
        match self.last(tag) {
            Some(Value::Len(c)) => c.rest(),
            _ => &[],
        }
    }

    fn string(&self, tag: u32) -> &'a str {
        // Validated bytes are always UTF-8; the fallback only keeps this total.
        std::str::from_utf8(self.bytes(tag)).unwrap_or("")
    }

    fn varint(&self, tag: u32) -> u64 {
        match self.last(tag) {
            Some(Value::Varint(x)) => x,
            _ => 0,
        }
    }

    fn fixed64(&self, tag: u32) -> u64 {
        match self.last(tag) {
            Some(Value::Fixed64(x)) => x,
            _ => 0,
        }
    }

    /// Field `tag` of the merged `status` (its occurrences merge: the last value wins).
    fn status_field(&self, tag: u32) -> Option<Value<'a>> {
        let mut span = Cursor::new(self.raw);
        let mut found = None;
        while let Some((t, v)) = span.next_lenient() {
            if let (15, Value::Len(mut status)) = (t, v) {
                while let Some((t, v)) = status.next_lenient() {
                    if t == tag {
                        found = Some(v);
                    }
                }
            }
        }
        found
    }

    /// Index of this span within its `ScopeSpans`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// `trace_id` (empty when absent).
    pub fn trace_id(&self) -> &'a [u8] {
        self.bytes(1)
    }
    /// `span_id` (empty when absent).
    pub fn span_id(&self) -> &'a [u8] {
        self.bytes(2)
    }
    /// `trace_state`.
    pub fn trace_state(&self) -> &'a str {
        self.string(3)
    }
    /// `parent_span_id` (empty for root spans).
    pub fn parent_span_id(&self) -> &'a [u8] {
        self.bytes(4)
    }
    /// `name`.
    pub fn name(&self) -> &'a str {
        self.string(5)
    }
    /// `name` as encoded, not checked for UTF-8 (for a caller that compares or hashes it).
    pub fn name_bytes(&self) -> &'a [u8] {
        self.bytes(5)
    }
    /// `kind` as the raw enum value.
    pub fn kind(&self) -> i32 {
        self.varint(6) as i32
    }
    /// `start_time_unix_nano`.
    pub fn start_time_unix_nano(&self) -> u64 {
        self.fixed64(7)
    }
    /// `end_time_unix_nano`.
    pub fn end_time_unix_nano(&self) -> u64 {
        self.fixed64(8)
    }
    /// Span attributes in wire order.
    pub fn attributes(&self) -> AttributeIter<'a> {
        self.attributes_ref().iter()
    }
    /// The span attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.raw, &[9])
    }
    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn attribute(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.attributes().get(key)
    }
    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.varint(10) as u32
    }
    /// Span events in wire order.
    pub fn events(&self) -> EventIter<'a> {
        EventIter::of_span(self.raw)
    }
    /// `dropped_events_count`.
    pub fn dropped_events_count(&self) -> u32 {
        self.varint(12) as u32
    }
    /// Span links in wire order.
    pub fn links(&self) -> LinkIter<'a> {
        LinkIter::of_span(self.raw)
    }
    /// `dropped_links_count`.
    pub fn dropped_links_count(&self) -> u32 {
        self.varint(14) as u32
    }
    /// `status.code` as the raw enum value.
    pub fn status_code(&self) -> i32 {
        match self.status_field(3) {
            Some(Value::Varint(x)) => x as i32,
            _ => 0,
        }
    }
    /// `status.message`.
    pub fn status_message(&self) -> &'a str {
        match self.status_field(2) {
            Some(Value::Len(c)) => std::str::from_utf8(c.rest()).unwrap_or(""),
            _ => "",
        }
    }
    /// `flags`.
    pub fn flags(&self) -> u32 {
        match self.last(16) {
            Some(Value::Fixed32(x)) => x,
            _ => 0,
        }
    }
    /// The encoded `Span` message.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

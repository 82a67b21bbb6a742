//! The resource, scope and span views handed to a [`TraceVisitor`](super::TraceVisitor).
//!
//! Their fields are filled by the walker while it validates; attributes, events and links
//! are kept as raw bytes and decoded lazily when asked for.

use super::events_links::{EventIter, LinkIter};
use super::SpanKeys;
use crate::value::{raw_key, AnyValueView, AttributeIter, AttributesRef, LazyAttribute};

/// The `resource` of one `ResourceSpans` (all its occurrences merged).
#[derive(Debug, Clone, Copy)]
pub struct ResourceView<'a> {
    pub(super) raw: &'a [u8],
    pub(super) index: usize,
    pub(super) dropped_attributes_count: u32,
    pub(super) schema_url: &'a str,
}

impl<'a> ResourceView<'a> {
    /// Index of this `ResourceSpans` in the request.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Resource attributes in wire order (concatenated across repeated
    /// `resource` occurrences, as protobuf merging does).
    pub fn attributes(&self) -> AttributeIter<'a> {
        self.attributes_ref().iter()
    }
    /// The resource attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.raw, &[1, 1])
    }

    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn attribute(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.attributes().get(key)
    }

    /// The service name the way the Go spanmetrics connector reads it:
    /// `None` when there is no `service.name` attribute (Go skips the
    /// resource's spans), otherwise `Value.Str()` of the first one — the
    /// string, or `""` if that attribute is not a string.
    pub fn service_name(&self) -> Option<&'a str> {
        self.attribute("service.name").map(|v| v.str_or_empty())
    }

    /// `Resource.dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }

    /// `ResourceSpans.schema_url`.
    pub fn schema_url(&self) -> &'a str {
        self.schema_url
    }

    /// The encoded `ResourceSpans` message (resource and all its scopes).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

/// The instrumentation scope of one `ScopeSpans` (all occurrences merged).
#[derive(Debug, Clone, Copy)]
pub struct ScopeView<'a> {
    pub(super) raw: &'a [u8],
    pub(super) index: usize,
    pub(super) name: &'a str,
    pub(super) version: &'a str,
    pub(super) dropped_attributes_count: u32,
    pub(super) schema_url: &'a str,
}

impl<'a> ScopeView<'a> {
    /// Index of this `ScopeSpans` within its `ResourceSpans`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// `InstrumentationScope.name`.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// `InstrumentationScope.version`.
    pub fn version(&self) -> &'a str {
        self.version
    }
    /// Scope attributes in wire order.
    pub fn attributes(&self) -> AttributeIter<'a> {
        self.attributes_ref().iter()
    }
    /// The scope attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.raw, &[1, 3])
    }
    /// `InstrumentationScope.dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
    /// `ScopeSpans.schema_url`.
    pub fn schema_url(&self) -> &'a str {
        self.schema_url
    }
}

/// One span. Scalars are decoded eagerly in the validation scan; attributes,
/// events and links are re-scanned lazily when asked for, except the attributes of the keys
/// the walk noted.
#[derive(Debug, Clone, Copy)]
pub struct SpanView<'a> {
    /// The keys whose first attribute the walk notes in `noted`.
    pub(super) keys: &'a SpanKeys,
    /// The `KeyValue` message of each key's first attribute, by the key's slot; empty when
    /// the span has none (a noted attribute always has bytes: its key is not empty).
    pub(super) noted: [&'a [u8]; SpanKeys::MAX],
    pub(super) raw: &'a [u8],
    /// From the first `attributes` field to the end of the last one: lookups scan only this.
    pub(super) attrs: &'a [u8],
    pub(super) index: usize,
    pub(super) trace_id: &'a [u8],
    pub(super) span_id: &'a [u8],
    pub(super) parent_span_id: &'a [u8],
    pub(super) trace_state: &'a str,
    pub(super) name: &'a str,
    pub(super) kind: i32,
    pub(super) start_time_unix_nano: u64,
    pub(super) end_time_unix_nano: u64,
    pub(super) dropped_attributes_count: u32,
    pub(super) dropped_events_count: u32,
    pub(super) dropped_links_count: u32,
    pub(super) status_code: i32,
    pub(super) status_message: &'a str,
    pub(super) flags: u32,
}

impl<'a> SpanView<'a> {
    /// An empty view, to be filled by the walk, noting `keys`.
    #[inline(always)]
    pub(super) fn noting(keys: &'a SpanKeys) -> Self {
        SpanView {
            keys,
            noted: [&[]; SpanKeys::MAX],
            raw: &[],
            attrs: &[],
            index: 0,
            trace_id: &[],
            span_id: &[],
            parent_span_id: &[],
            trace_state: "",
            name: "",
            kind: 0,
            start_time_unix_nano: 0,
            end_time_unix_nano: 0,
            dropped_attributes_count: 0,
            dropped_events_count: 0,
            dropped_links_count: 0,
            status_code: 0,
            status_message: "",
            flags: 0,
        }
    }

    /// Called by the walk with each attribute's `KeyValue` message, in wire order.
    #[inline(always)]
    pub(super) fn note_attribute(&mut self, kv: &'a [u8]) {
        if let Some(slot) = self.keys.position(raw_key(kv)) {
            if let Some(noted) = self.noted.get_mut(slot) {
                if noted.is_empty() {
                    *noted = kv; // the first attribute of a key wins, as in pdata
                }
            }
        }
    }

    /// Index of this span within its `ScopeSpans`.
    pub fn index(&self) -> usize {
        self.index
    }
    /// `trace_id` (empty when absent; not length-checked, see [`Self::has_valid_ids`]).
    pub fn trace_id(&self) -> &'a [u8] {
        self.trace_id
    }
    /// `span_id` (empty when absent).
    pub fn span_id(&self) -> &'a [u8] {
        self.span_id
    }
    /// `parent_span_id` (empty for root spans).
    pub fn parent_span_id(&self) -> &'a [u8] {
        self.parent_span_id
    }
    /// `trace_state`.
    pub fn trace_state(&self) -> &'a str {
        self.trace_state
    }
    /// `name`.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// `kind` as the raw enum value (any i32; 0 = unspecified, 1 internal,
    /// 2 server, 3 client, 4 producer, 5 consumer).
    pub fn kind(&self) -> i32 {
        self.kind
    }
    /// `start_time_unix_nano`.
    pub fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }
    /// `end_time_unix_nano`.
    pub fn end_time_unix_nano(&self) -> u64 {
        self.end_time_unix_nano
    }
    /// Span attributes in wire order.
    pub fn attributes(&self) -> AttributeIter<'a> {
        self.attributes_ref().iter()
    }
    /// The span attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.attrs, &[9])
    }
    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn attribute(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.lazy_attribute(key.as_bytes()).map(|a| a.value())
    }
    /// The first attribute with this key, its value not yet decoded. For a key of the
    /// walk's [`SpanKeys`] (its visitor's [`span_keys`](super::TraceVisitor::span_keys)) a
    /// lookup of what the walk noted; for any other, a scan.
    #[inline]
    pub fn lazy_attribute(&self, key: &[u8]) -> Option<LazyAttribute<'a>> {
        match self.keys.position(key) {
            Some(slot) => self
                .noted
                .get(slot)
                .filter(|kv| !kv.is_empty())
                .map(|kv| LazyAttribute::of(kv)),
            None => self.attributes().lazy().find(|a| a.key_bytes() == key),
        }
    }
    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
    /// Span events in wire order.
    pub fn events(&self) -> EventIter<'a> {
        EventIter::of_span(self.raw)
    }
    /// `dropped_events_count`.
    pub fn dropped_events_count(&self) -> u32 {
        self.dropped_events_count
    }
    /// Span links in wire order.
    pub fn links(&self) -> LinkIter<'a> {
        LinkIter::of_span(self.raw)
    }
    /// `dropped_links_count`.
    pub fn dropped_links_count(&self) -> u32 {
        self.dropped_links_count
    }
    /// `status.code` as the raw enum value (0 unset, 1 ok, 2 error; any i32).
    pub fn status_code(&self) -> i32 {
        self.status_code
    }
    /// `status.message`.
    pub fn status_message(&self) -> &'a str {
        self.status_message
    }
    /// `flags` (W3C trace flags in the low byte, OTLP bits above).
    pub fn flags(&self) -> u32 {
        self.flags
    }
    /// True when the trace id is 16 bytes, the span id 8 bytes, and neither is
    /// all zeros.
    pub fn has_valid_ids(&self) -> bool {
        self.trace_id.len() == 16
            && self.span_id.len() == 8
            && self.trace_id.iter().any(|&b| b != 0)
            && self.span_id.iter().any(|&b| b != 0)
    }
    /// The encoded `Span` message.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

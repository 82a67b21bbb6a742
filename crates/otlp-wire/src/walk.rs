//! The validating walker and the resource/scope/span views it hands out.

use crate::cursor::{wrong_type, Cursor, Value};
use crate::error::{WireError, WireErrorKind, WireType};
use crate::value::AttributeIter;
use crate::RECURSION_LIMIT;

/// Callbacks for [`walk`]. All methods default to no-ops.
///
/// Order: for each `ResourceSpans`, `resource` once, then for each of its
/// `ScopeSpans`, `scope` once followed by `span` for each span. The resource
/// (and scope) is reported first even when it comes after the spans on the
/// wire, which protobuf allows.
pub trait TraceVisitor<'a> {
    /// Called once per `ResourceSpans`, before its scopes and spans.
    fn resource(&mut self, resource: &ResourceView<'a>) {
        let _ = resource;
    }
    /// Called once per `ScopeSpans`, before its spans.
    fn scope(&mut self, scope: &ScopeView<'a>) {
        let _ = scope;
    }
    /// Called for every span.
    fn span(&mut self, span: &SpanView<'a>) {
        let _ = span;
    }
}

/// A visitor that does nothing (what [`validate`] uses).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopVisitor;

impl TraceVisitor<'_> for NoopVisitor {}

/// Counts gathered while walking.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WalkStats {
    /// `ResourceSpans` messages.
    pub resource_spans: usize,
    /// `ScopeSpans` messages.
    pub scope_spans: usize,
    /// Spans.
    pub spans: usize,
    /// Spans whose trace id is not 16 bytes, span id not 8 bytes, or either is
    /// all zeros (invalid per the OTLP spec; still walked and reported).
    pub spans_with_invalid_ids: usize,
}

/// Validates the whole request, then walks it, calling `visitor`.
///
/// The visitor is only called for a request that is entirely valid, so a bad
/// request changes nothing downstream. This costs a second pass over the bytes;
/// when the bytes were already checked with [`validate`] (the receiver does),
/// use [`walk_single_pass`].
///
/// Accepts exactly what `prost` accepts for `ExportTraceServiceRequest`
/// (same wire rules, UTF-8 checks, recursion limit of 100). Never panics.
pub fn walk<'a, V: TraceVisitor<'a>>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<WalkStats, WireError> {
    validate(request)?;
    walk_single_pass(request, visitor)
}

/// Walks and validates in one pass. Same acceptance and errors as [`walk`],
/// but on invalid input the visitor may already have been called for the
/// spans before the error. Meant for bytes already checked with [`validate`].
pub fn walk_single_pass<'a, V: TraceVisitor<'a>>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<WalkStats, WireError> {
    let mut walker = Walker::<V, true> {
        visitor,
        stats: WalkStats::default(),
    };
    walker.request(Cursor::new(request))?;
    Ok(walker.stats)
}

/// Walks a request that [`validate`] already accepted, without checking it again: the
/// contents of attributes, events, links and entity refs are not looked at (views decode
/// them lazily when asked), and no UTF-8 check is made on strings the views do not hand out.
/// On such bytes it reports exactly what [`walk`] reports, at a fraction of the cost.
///
/// On bytes that were not validated it never panics and stays memory-safe, but it may
/// accept input [`validate`] refuses (and report views of it), or stop with an error at the
/// first structural fault it meets in the fields it reads.
pub fn walk_validated<'a, V: TraceVisitor<'a>>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<WalkStats, WireError> {
    let mut walker = Walker::<V, false> {
        visitor,
        stats: WalkStats::default(),
    };
    walker.request(Cursor::new(request))?;
    Ok(walker.stats)
}

/// Validates the request without visiting (walk with a no-op visitor).
pub fn validate(request: &[u8]) -> Result<WalkStats, WireError> {
    walk_single_pass(request, &mut NoopVisitor)
}

/// The `resource` of one `ResourceSpans` (all its occurrences merged).
#[derive(Debug, Clone, Copy)]
pub struct ResourceView<'a> {
    raw: &'a [u8],
    index: usize,
    dropped_attributes_count: u32,
    schema_url: &'a str,
}

impl<'a> ResourceView<'a> {
    /// Index of this `ResourceSpans` in the request.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Resource attributes in wire order (concatenated across repeated
    /// `resource` occurrences, as protobuf merging does).
    pub fn attributes(&self) -> AttributeIter<'a> {
        AttributeIter::new(self.raw, &[1, 1])
    }

    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn attribute(&self, key: &str) -> Option<crate::AnyValueView<'a>> {
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
    raw: &'a [u8],
    index: usize,
    name: &'a str,
    version: &'a str,
    dropped_attributes_count: u32,
    schema_url: &'a str,
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
        AttributeIter::new(self.raw, &[1, 3])
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
/// events and links are re-scanned lazily when asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanView<'a> {
    raw: &'a [u8],
    /// From the first `attributes` field to the end of the last one: lookups scan only this.
    attrs: &'a [u8],
    index: usize,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    parent_span_id: &'a [u8],
    trace_state: &'a str,
    name: &'a str,
    kind: i32,
    start_time_unix_nano: u64,
    end_time_unix_nano: u64,
    dropped_attributes_count: u32,
    dropped_events_count: u32,
    dropped_links_count: u32,
    status_code: i32,
    status_message: &'a str,
    flags: u32,
}

impl<'a> SpanView<'a> {
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
        AttributeIter::new(self.attrs, &[9])
    }
    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn attribute(&self, key: &str) -> Option<crate::AnyValueView<'a>> {
        self.attributes().get(key)
    }
    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
    /// Span events in wire order.
    pub fn events(&self) -> EventIter<'a> {
        EventIter {
            inner: crate::value::PathIter::new(self.raw, &[11]),
        }
    }
    /// `dropped_events_count`.
    pub fn dropped_events_count(&self) -> u32 {
        self.dropped_events_count
    }
    /// Span links in wire order.
    pub fn links(&self) -> LinkIter<'a> {
        LinkIter {
            inner: crate::value::PathIter::new(self.raw, &[13]),
        }
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

/// One span event (decoded on demand from a validated span).
#[derive(Debug, Clone, Copy, Default)]
pub struct EventView<'a> {
    raw: &'a [u8],
    time_unix_nano: u64,
    name: &'a str,
    dropped_attributes_count: u32,
}

impl<'a> EventView<'a> {
    /// `time_unix_nano`.
    pub fn time_unix_nano(&self) -> u64 {
        self.time_unix_nano
    }
    /// `name`.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// Event attributes in wire order.
    pub fn attributes(&self) -> AttributeIter<'a> {
        AttributeIter::new(self.raw, &[3])
    }
    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
}

/// One span link (decoded on demand from a validated span).
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkView<'a> {
    raw: &'a [u8],
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a str,
    dropped_attributes_count: u32,
    flags: u32,
}

impl<'a> LinkView<'a> {
    /// `trace_id`.
    pub fn trace_id(&self) -> &'a [u8] {
        self.trace_id
    }
    /// `span_id`.
    pub fn span_id(&self) -> &'a [u8] {
        self.span_id
    }
    /// `trace_state`.
    pub fn trace_state(&self) -> &'a str {
        self.trace_state
    }
    /// Link attributes in wire order.
    pub fn attributes(&self) -> AttributeIter<'a> {
        AttributeIter::new(self.raw, &[4])
    }
    /// `dropped_attributes_count`.
    pub fn dropped_attributes_count(&self) -> u32 {
        self.dropped_attributes_count
    }
    /// `flags`.
    pub fn flags(&self) -> u32 {
        self.flags
    }
}

/// Iterator over a span's events.
#[derive(Debug, Clone)]
pub struct EventIter<'a> {
    inner: crate::value::PathIter<'a>,
}

impl<'a> Iterator for EventIter<'a> {
    type Item = EventView<'a>;
    fn next(&mut self) -> Option<EventView<'a>> {
        let raw = self.inner.next()?;
        let mut ev = EventView {
            raw,
            ..EventView::default()
        };
        let mut c = Cursor::new(raw);
        while let Some((tag, v)) = c.next_lenient() {
            match (tag, v) {
                (1, Value::Fixed64(x)) => ev.time_unix_nano = x,
                (2, Value::Len(s)) => ev.name = std::str::from_utf8(s.rest()).unwrap_or(""),
                (4, Value::Varint(x)) => ev.dropped_attributes_count = x as u32,
                _ => {}
            }
        }
        Some(ev)
    }
}

/// Iterator over a span's links.
#[derive(Debug, Clone)]
pub struct LinkIter<'a> {
    inner: crate::value::PathIter<'a>,
}

impl<'a> Iterator for LinkIter<'a> {
    type Item = LinkView<'a>;
    fn next(&mut self) -> Option<LinkView<'a>> {
        let raw = self.inner.next()?;
        let mut link = LinkView {
            raw,
            ..LinkView::default()
        };
        let mut c = Cursor::new(raw);
        while let Some((tag, v)) = c.next_lenient() {
            match (tag, v) {
                (1, Value::Len(s)) => link.trace_id = s.rest(),
                (2, Value::Len(s)) => link.span_id = s.rest(),
                (3, Value::Len(s)) => {
                    link.trace_state = std::str::from_utf8(s.rest()).unwrap_or("");
                }
                (5, Value::Varint(x)) => link.dropped_attributes_count = x as u32,
                (6, Value::Fixed32(x)) => link.flags = x,
                _ => {}
            }
        }
        Some(link)
    }
}

// ---------------------------------------------------------------------------
// Validation. Each function validates one message type; `r` is prost's
// remaining recursion budget for the fields of that message (100 for the
// request's own fields). A nested message needs `r > 0` and gets `r - 1`;
// an unknown field also needs `r > 0` (prost's `skip_field`).
// ---------------------------------------------------------------------------

/// `CHECK`: validate everything (prost's rules), or only walk what the views need
/// ([`walk_validated`]).
struct Walker<'v, V, const CHECK: bool> {
    visitor: &'v mut V,
    stats: WalkStats,
}

/// Budget for a nested message field, or `TooDeep`.
#[inline]
fn nest(r: u32, at: usize) -> Result<u32, WireError> {
    r.checked_sub(1)
        .ok_or_else(|| WireError::new(WireErrorKind::TooDeep, at))
}

#[inline]
fn len<'a>(v: Value<'a>, at: usize) -> Result<Cursor<'a>, WireError> {
    match v {
        Value::Len(c) => Ok(c),
        other => Err(wrong_type(WireType::Len, &other, at)),
    }
}

#[inline]
fn string<'a>(v: Value<'a>, at: usize) -> Result<&'a str, WireError> {
    let c = len(v, at)?;
    std::str::from_utf8(c.rest()).map_err(|_| WireError::new(WireErrorKind::InvalidUtf8, c.pos()))
}

/// Checks a `string` field whose text is not needed. Nearly all OTLP strings are ASCII,
/// which is checked a word at a time; anything else gets the full UTF-8 validation.
#[inline]
fn check_string(v: Value<'_>, at: usize) -> Result<(), WireError> {
    let c = len(v, at)?;
    let bytes = c.rest();
    if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
        Ok(())
    } else {
        Err(WireError::new(WireErrorKind::InvalidUtf8, c.pos()))
    }
}

#[inline]
fn varint(v: Value<'_>, at: usize) -> Result<u64, WireError> {
    match v {
        Value::Varint(x) => Ok(x),
        other => Err(wrong_type(WireType::Varint, &other, at)),
    }
}

#[inline]
fn fixed64(v: Value<'_>, at: usize) -> Result<u64, WireError> {
    match v {
        Value::Fixed64(x) => Ok(x),
        other => Err(wrong_type(WireType::Fixed64, &other, at)),
    }
}

#[inline]
fn fixed32(v: Value<'_>, at: usize) -> Result<u32, WireError> {
    match v {
        Value::Fixed32(x) => Ok(x),
        other => Err(wrong_type(WireType::Fixed32, &other, at)),
    }
}

impl<'a, V: TraceVisitor<'a>, const CHECK: bool> Walker<'_, V, CHECK> {
    fn request(&mut self, mut c: Cursor<'a>) -> Result<(), WireError> {
        let r = RECURSION_LIMIT;
        while !c.at_end() {
            let at = c.pos();
            let (tag, v) = c.next_field()?;
            match tag {
                1 => {
                    let index = self.stats.resource_spans;
                    let inner = len(v, at).map_err(|e| e.field(1, "resource_spans"))?;
                    let r1 = nest(r, at)?;
                    self.resource_spans(inner, r1, index)
                        .map_err(|e| e.within(format_args!("resource_spans {index}")))?;
                    self.stats.resource_spans += 1;
                }
                _ => c
                    .skip_unknown(tag, v, r, at)
                    .map_err(|e| e.field(tag, "unknown"))?,
            }
        }
        Ok(())
    }

    fn resource_spans(&mut self, c: Cursor<'a>, r: u32, index: usize) -> Result<(), WireError> {
        // Pass 1: everything except the scopes, so the merged resource is
        // known before any span is reported, wherever it sits on the wire.
        let mut view = ResourceView {
            raw: c.rest(),
            index,
            dropped_attributes_count: 0,
            schema_url: "",
        };
        let mut p = c;
        while !p.at_end() {
            let at = p.pos();
            let (tag, v) = p.next_field()?;
            match tag {
                1 => {
                    let inner = len(v, at).map_err(|e| e.field(1, "resource"))?;
                    let r1 = nest(r, at).map_err(|e| e.field(1, "resource"))?;
                    resource::<CHECK>(inner, r1, &mut view.dropped_attributes_count)
                        .map_err(|e| e.field(1, "resource"))?;
                }
                2 => {
                    // Validated in pass 2; only the wire type matters here.
                    len(v, at).map_err(|e| e.field(2, "scope_spans"))?;
                }
                3 => view.schema_url = string(v, at).map_err(|e| e.field(3, "schema_url"))?,
                _ => p
                    .skip_unknown(tag, v, r, at)
                    .map_err(|e| e.field(tag, "unknown"))?,
            }
        }
        self.visitor.resource(&view);

        // Pass 2: the scopes, in wire order.
        let mut p = c;
        let mut scope_index = 0usize;
        while let Some((tag, v)) = p.next_lenient() {
            if let (2, Value::Len(inner)) = (tag, v) {
                let r1 = nest(r, inner.pos())?;
                self.scope_spans(inner, r1, scope_index)
                    .map_err(|e| e.within(format_args!("scope_spans {scope_index}")))?;
                scope_index += 1;
                self.stats.scope_spans += 1;
            }
        }
        Ok(())
    }

    fn scope_spans(&mut self, c: Cursor<'a>, r: u32, index: usize) -> Result<(), WireError> {
        let mut view = ScopeView {
            raw: c.rest(),
            index,
            name: "",
            version: "",
            dropped_attributes_count: 0,
            schema_url: "",
        };
        let mut p = c;
        while !p.at_end() {
            let at = p.pos();
            let (tag, v) = p.next_field()?;
            match tag {
                1 => {
                    let inner = len(v, at).map_err(|e| e.field(1, "scope"))?;
                    let r1 = nest(r, at).map_err(|e| e.field(1, "scope"))?;
                    scope::<CHECK>(inner, r1, &mut view).map_err(|e| e.field(1, "scope"))?;
                }
                2 => {
                    len(v, at).map_err(|e| e.field(2, "spans"))?;
                }
                3 => view.schema_url = string(v, at).map_err(|e| e.field(3, "schema_url"))?,
                _ => p
                    .skip_unknown(tag, v, r, at)
                    .map_err(|e| e.field(tag, "unknown"))?,
            }
        }
        self.visitor.scope(&view);

        let mut p = c;
        let mut span_index = 0usize;
        while let Some((tag, v)) = p.next_lenient() {
            if let (2, Value::Len(inner)) = (tag, v) {
                let r1 = nest(r, inner.pos())?;
                // Filled in place: a span view is ~200 bytes, not worth copying around.
                let mut view = SpanView::default();
                span::<CHECK>(inner, r1, span_index, &mut view)
                    .map_err(|e| e.within(format_args!("span {span_index}")))?;
                let span = &view;
                self.stats.spans += 1;
                if !span.has_valid_ids() {
                    self.stats.spans_with_invalid_ids += 1;
                }
                self.visitor.span(span);
                span_index += 1;
            }
        }
        Ok(())
    }
}

fn resource<const CHECK: bool>(
    mut c: Cursor<'_>,
    r: u32,
    dropped: &mut u32,
) -> Result<(), WireError> {
    let mut attr = 0usize;
    let mut entity = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => {
                let inner = len(v, at).map_err(|e| e.field(1, "attributes"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    key_value(inner, r1).map_err(|e| e.within(format_args!("attribute {attr}")))?;
                }
                attr += 1;
            }
            2 => {
                *dropped = varint(v, at).map_err(|e| e.field(2, "dropped_attributes_count"))? as u32
            }
            3 => {
                let inner = len(v, at).map_err(|e| e.field(3, "entity_refs"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    entity_ref(inner, r1)
                        .map_err(|e| e.within(format_args!("entity_ref {entity}")))?;
                }
                entity += 1;
            }
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn entity_ref(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => check_string(v, at).map_err(|e| e.field(1, "schema_url"))?,
            2 => check_string(v, at).map_err(|e| e.field(2, "type"))?,
            3 => check_string(v, at).map_err(|e| e.field(3, "id_keys"))?,
            4 => check_string(v, at).map_err(|e| e.field(4, "description_keys"))?,
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn scope<'a, const CHECK: bool>(
    mut c: Cursor<'a>,
    r: u32,
    view: &mut ScopeView<'a>,
) -> Result<(), WireError> {
    let mut attr = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => view.name = string(v, at).map_err(|e| e.field(1, "name"))?,
            2 => view.version = string(v, at).map_err(|e| e.field(2, "version"))?,
            3 => {
                let inner = len(v, at).map_err(|e| e.field(3, "attributes"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    key_value(inner, r1).map_err(|e| e.within(format_args!("attribute {attr}")))?;
                }
                attr += 1;
            }
            4 => {
                view.dropped_attributes_count =
                    varint(v, at).map_err(|e| e.field(4, "dropped_attributes_count"))? as u32;
            }
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn span<'a, const CHECK: bool>(
    mut c: Cursor<'a>,
    r: u32,
    index: usize,
    s: &mut SpanView<'a>,
) -> Result<(), WireError> {
    s.raw = c.rest();
    s.index = index;
    let (mut attr, mut event, mut link) = (0usize, 0usize, 0usize);
    // Where the attributes start and end (absolute offsets), so lookups skip the rest.
    let (mut attrs_from, mut attrs_to) = (usize::MAX, 0usize);
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => s.trace_id = len(v, at).map_err(|e| e.field(1, "trace_id"))?.rest(),
            2 => s.span_id = len(v, at).map_err(|e| e.field(2, "span_id"))?.rest(),
            3 => s.trace_state = string(v, at).map_err(|e| e.field(3, "trace_state"))?,
            4 => s.parent_span_id = len(v, at).map_err(|e| e.field(4, "parent_span_id"))?.rest(),
            5 => s.name = string(v, at).map_err(|e| e.field(5, "name"))?,
            // Enums decode as int32: any varint, truncated to 32 bits.
            6 => s.kind = varint(v, at).map_err(|e| e.field(6, "kind"))? as i32,
            7 => {
                s.start_time_unix_nano =
                    fixed64(v, at).map_err(|e| e.field(7, "start_time_unix_nano"))?;
            }
            8 => {
                s.end_time_unix_nano =
                    fixed64(v, at).map_err(|e| e.field(8, "end_time_unix_nano"))?;
            }
            9 => {
                let inner = len(v, at).map_err(|e| e.field(9, "attributes"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    key_value(inner, r1).map_err(|e| e.within(format_args!("attribute {attr}")))?;
                }
                attrs_from = attrs_from.min(at);
                attrs_to = c.pos();
                attr += 1;
            }
            10 => {
                s.dropped_attributes_count =
                    varint(v, at).map_err(|e| e.field(10, "dropped_attributes_count"))? as u32;
            }
            11 => {
                let inner = len(v, at).map_err(|e| e.field(11, "events"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    event_msg(inner, r1).map_err(|e| e.within(format_args!("event {event}")))?;
                }
                event += 1;
            }
            12 => {
                s.dropped_events_count =
                    varint(v, at).map_err(|e| e.field(12, "dropped_events_count"))? as u32;
            }
            13 => {
                let inner = len(v, at).map_err(|e| e.field(13, "links"))?;
                if CHECK {
                    let r1 = nest(r, at)?;
                    link_msg(inner, r1).map_err(|e| e.within(format_args!("link {link}")))?;
                }
                link += 1;
            }
            14 => {
                s.dropped_links_count =
                    varint(v, at).map_err(|e| e.field(14, "dropped_links_count"))? as u32;
            }
            15 => {
                // A repeated singular message merges: each field keeps its last value.
                let inner = len(v, at).map_err(|e| e.field(15, "status"))?;
                let r1 = nest(r, at).map_err(|e| e.field(15, "status"))?;
                status(inner, r1, s).map_err(|e| e.field(15, "status"))?;
            }
            16 => s.flags = fixed32(v, at).map_err(|e| e.field(16, "flags"))?,
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    if attrs_from < attrs_to {
        s.attrs = c.slice(attrs_from, attrs_to);
    }
    Ok(())
}

fn status<'a>(mut c: Cursor<'a>, r: u32, s: &mut SpanView<'a>) -> Result<(), WireError> {
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            2 => s.status_message = string(v, at).map_err(|e| e.field(2, "message"))?,
            3 => s.status_code = varint(v, at).map_err(|e| e.field(3, "code"))? as i32,
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn event_msg(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attr = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => drop(fixed64(v, at).map_err(|e| e.field(1, "time_unix_nano"))?),
            2 => check_string(v, at).map_err(|e| e.field(2, "name"))?,
            3 => {
                let inner = len(v, at).map_err(|e| e.field(3, "attributes"))?;
                let r1 = nest(r, at)?;
                key_value(inner, r1).map_err(|e| e.within(format_args!("attribute {attr}")))?;
                attr += 1;
            }
            4 => drop(varint(v, at).map_err(|e| e.field(4, "dropped_attributes_count"))?),
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn link_msg(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attr = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => drop(len(v, at).map_err(|e| e.field(1, "trace_id"))?),
            2 => drop(len(v, at).map_err(|e| e.field(2, "span_id"))?),
            3 => check_string(v, at).map_err(|e| e.field(3, "trace_state"))?,
            4 => {
                let inner = len(v, at).map_err(|e| e.field(4, "attributes"))?;
                let r1 = nest(r, at)?;
                key_value(inner, r1).map_err(|e| e.within(format_args!("attribute {attr}")))?;
                attr += 1;
            }
            5 => drop(varint(v, at).map_err(|e| e.field(5, "dropped_attributes_count"))?),
            6 => drop(fixed32(v, at).map_err(|e| e.field(6, "flags"))?),
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

/// Whether a `KeyValue` has the shape nearly every encoder writes and is valid: an ASCII
/// key, then at most one `value` holding at most one scalar (ASCII string, bool, int,
/// double), all with one-byte lengths. `false` only means "take the general path", which
/// decides (and reports errors) exactly as prost does.
#[inline(always)]
fn key_value_is_simple(kv: &[u8], r: u32) -> bool {
    let [0x0a, klen, rest @ ..] = kv else {
        return false;
    };
    let Some((key, rest)) = rest.split_at_checked(usize::from(*klen)) else {
        return false;
    };
    if *klen >= 0x80 || !key.is_ascii() {
        return false;
    }
    match rest {
        [] => true,
        // The value is a nested message: it needs one level of recursion budget.
        [0x12, vlen, value @ ..] if *vlen < 0x80 && value.len() == usize::from(*vlen) && r > 0 => {
            any_value_is_simple(value)
        }
        _ => false,
    }
}

#[inline(always)]
fn any_value_is_simple(v: &[u8]) -> bool {
    match v {
        [] => true,
        [0x0a, slen, s @ ..] => *slen < 0x80 && s.len() == usize::from(*slen) && s.is_ascii(),
        [0x10, b] => *b < 0x80,
        // int_value: the varint must end exactly at the end of the message.
        [0x18, rest @ ..] => match rest.split_last() {
            Some((last, init)) => *last < 0x80 && init.len() < 9 && init.iter().all(|b| *b >= 0x80),
            None => false,
        },
        [0x21, double @ ..] => double.len() == 8,
        _ => false,
    }
}

fn key_value(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    if key_value_is_simple(c.rest(), r) {
        return Ok(());
    }
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => check_string(v, at).map_err(|e| e.field(1, "key"))?,
            2 => {
                let inner = len(v, at).map_err(|e| e.field(2, "value"))?;
                let r1 = nest(r, at).map_err(|e| e.field(2, "value"))?;
                any_value(inner, r1).map_err(|e| e.field(2, "value"))?;
            }
            3 => drop(varint(v, at).map_err(|e| e.field(3, "key_strindex"))?),
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn any_value(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => check_string(v, at).map_err(|e| e.field(1, "string_value"))?,
            2 => drop(varint(v, at).map_err(|e| e.field(2, "bool_value"))?),
            3 => drop(varint(v, at).map_err(|e| e.field(3, "int_value"))?),
            4 => drop(fixed64(v, at).map_err(|e| e.field(4, "double_value"))?),
            5 => {
                let inner = len(v, at).map_err(|e| e.field(5, "array_value"))?;
                let r1 = nest(r, at).map_err(|e| e.field(5, "array_value"))?;
                array_value(inner, r1).map_err(|e| e.field(5, "array_value"))?;
            }
            6 => {
                let inner = len(v, at).map_err(|e| e.field(6, "kvlist_value"))?;
                let r1 = nest(r, at).map_err(|e| e.field(6, "kvlist_value"))?;
                kvlist_value(inner, r1).map_err(|e| e.field(6, "kvlist_value"))?;
            }
            7 => drop(len(v, at).map_err(|e| e.field(7, "bytes_value"))?),
            8 => drop(varint(v, at).map_err(|e| e.field(8, "string_value_strindex"))?),
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn array_value(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut i = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => {
                let inner = len(v, at).map_err(|e| e.field(1, "values"))?;
                let r1 = nest(r, at)?;
                any_value(inner, r1).map_err(|e| e.within(format_args!("element {i}")))?;
                i += 1;
            }
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

fn kvlist_value(mut c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut i = 0usize;
    while !c.at_end() {
        let at = c.pos();
        let (tag, v) = c.next_field()?;
        match tag {
            1 => {
                let inner = len(v, at).map_err(|e| e.field(1, "values"))?;
                let r1 = nest(r, at)?;
                key_value(inner, r1).map_err(|e| e.within(format_args!("entry {i}")))?;
                i += 1;
            }
            _ => c
                .skip_unknown(tag, v, r, at)
                .map_err(|e| e.field(tag, "unknown"))?,
        }
    }
    Ok(())
}

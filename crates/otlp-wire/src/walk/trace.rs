//! Readers of the messages inside `ResourceSpans` and `ScopeSpans`: resource, scope, span
//! and the span's parts.
//!
//! Each reads one message type, filling the view it belongs to. `CHECK` is the walker's
//! mode: validate everything with prost's rules, or (for
//! [`walk_validated`](super::walk_validated)) read only what the views hand out and leave
//! the repeated sub-messages to the lazy views.

use super::attributes::key_value;
use super::fields::{Elements, Fields};
use super::views::{ScopeView, SpanView};
use crate::cursor::Cursor;
use crate::error::{WireError, WireType};

/// `Resource`: validates it and keeps `dropped_attributes_count` (the attributes are
/// re-scanned lazily from the `ResourceSpans` bytes).
pub(super) fn resource<const CHECK: bool>(
    c: Cursor<'_>,
    r: u32,
    dropped: &mut u32,
) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut entity_refs = Elements::new("entity_refs", "entity_ref");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => attributes.read::<CHECK>(f, |c, r| key_value(c, r))?,
            2 => *dropped = f.varint("dropped_attributes_count")? as u32,
            3 => entity_refs.read::<CHECK>(f, entity_ref)?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

fn entity_ref(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_string("schema_url")?,
            2 => f.check_string("type")?,
            3 => f.check_string("id_keys")?,
            4 => f.check_string("description_keys")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `InstrumentationScope`, into `view` (last value of each scalar wins).
pub(super) fn scope<'a, const CHECK: bool>(
    c: Cursor<'a>,
    r: u32,
    view: &mut ScopeView<'a>,
) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => view.name = f.string("name")?,
            2 => view.version = f.string("version")?,
            3 => attributes.read::<CHECK>(f, |c, r| key_value(c, r))?,
            4 => view.dropped_attributes_count = f.varint("dropped_attributes_count")? as u32,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `Span` number `index` of its `ScopeSpans`, into `s`.
// Inlined into the walker's span loop, as `status` into this one: as separate calls the
// decode benches ran 10-15% slower.
#[inline]
pub(super) fn span<'a, const CHECK: bool>(
    c: Cursor<'a>,
    r: u32,
    index: usize,
    s: &mut SpanView<'a>,
) -> Result<(), WireError> {
    s.raw = c.rest();
    s.index = index;
    let mut attributes = Elements::new("attributes", "attribute");
    let mut events = Elements::new("events", "event");
    let mut links = Elements::new("links", "link");
    // Where the attributes start and end (absolute offsets), so lookups skip the rest.
    let (mut attrs_from, mut attrs_to) = (usize::MAX, 0usize);
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => s.trace_id = f.bytes("trace_id")?,
            2 => s.span_id = f.bytes("span_id")?,
            3 => s.trace_state = f.string("trace_state")?,
            4 => s.parent_span_id = f.bytes("parent_span_id")?,
            5 => s.name = f.string("name")?,
            // Enums decode as int32: any varint, truncated to 32 bits.
            6 => s.kind = f.varint("kind")? as i32,
            7 => s.start_time_unix_nano = f.fixed64("start_time_unix_nano")?,
            8 => s.end_time_unix_nano = f.fixed64("end_time_unix_nano")?,
            9 => {
                let kv = attributes.read_bytes::<CHECK>(f, |c, r| key_value(c, r))?;
                if !s.keys.is_empty() {
                    s.note_attribute(kv);
                }
                attrs_from = attrs_from.min(f.at);
                attrs_to = fields.pos();
            }
            10 => s.dropped_attributes_count = f.varint("dropped_attributes_count")? as u32,
            11 => events.read::<CHECK>(f, event)?,
            12 => s.dropped_events_count = f.varint("dropped_events_count")? as u32,
            13 => links.read::<CHECK>(f, link)?,
            14 => s.dropped_links_count = f.varint("dropped_links_count")? as u32,
            // A repeated singular message merges: each field keeps its last value.
            15 => f.singular("status", |c, r| status(c, r, s))?,
            16 => s.flags = f.fixed32("flags")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    if attrs_from < attrs_to {
        s.attrs = fields.slice(attrs_from, attrs_to);
    }
    Ok(())
}

#[inline]
fn status<'a>(c: Cursor<'a>, r: u32, s: &mut SpanView<'a>) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            2 => s.status_message = f.string("message")?,
            3 => s.status_code = f.varint("code")? as i32,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `Span.Event`: validated only; [`EventView`](super::EventView) decodes it lazily.
fn event(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_type(WireType::Fixed64, "time_unix_nano")?,
            2 => f.check_string("name")?,
            3 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            4 => f.check_type(WireType::Varint, "dropped_attributes_count")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `Span.Link`: validated only; [`LinkView`](super::LinkView) decodes it lazily.
fn link(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_type(WireType::Len, "trace_id")?,
            2 => f.check_type(WireType::Len, "span_id")?,
            3 => f.check_string("trace_state")?,
            4 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            5 => f.check_type(WireType::Varint, "dropped_attributes_count")?,
            6 => f.check_type(WireType::Fixed32, "flags")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

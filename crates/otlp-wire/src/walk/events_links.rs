//! Span events and links: views decoded on demand from the bytes of a validated span.

use crate::cursor::{Cursor, Value};
use crate::value::{AttributeIter, AttributesRef, PathIter};

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
        self.attributes_ref().iter()
    }
    /// The event attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.raw, &[3])
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
        self.attributes_ref().iter()
    }
    /// The link attributes as a copyable handle.
    pub fn attributes_ref(&self) -> AttributesRef<'a> {
        AttributesRef::new(self.raw, &[4])
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
    inner: PathIter<'a>,
}

impl<'a> EventIter<'a> {
    /// The events (`Span` field 11) of the encoded span `span`.
    pub(super) fn of_span(span: &'a [u8]) -> Self {
        EventIter {
            inner: PathIter::new(span, &[11]),
        }
    }
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
    inner: PathIter<'a>,
}

impl<'a> LinkIter<'a> {
    /// The links (`Span` field 13) of the encoded span `span`.
    pub(super) fn of_span(span: &'a [u8]) -> Self {
        LinkIter {
            inner: PathIter::new(span, &[13]),
        }
    }
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

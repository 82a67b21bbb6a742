//! The traversal: request → `ResourceSpans` → `ScopeSpans` → spans, calling the visitor.

use super::fields::{nest, Fields};
use super::trace::{resource, scope, span};
use super::views::{ResourceView, ScopeView, SpanView};
use super::{TraceVisitor, WalkStats};
use crate::cursor::{Cursor, Value};
use crate::error::{WireError, WireType};
use crate::RECURSION_LIMIT;

/// Walks `request`, calling `visitor`. `CHECK`: validate everything (prost's rules), or
/// only read what the views need ([`walk_validated`](super::walk_validated)).
#[inline]
pub(super) fn run<'a, V: TraceVisitor<'a>, const CHECK: bool>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<WalkStats, WireError> {
    let mut walker = Walker::<V, CHECK> {
        visitor,
        stats: WalkStats::default(),
    };
    walker.request(Cursor::new(request))?;
    Ok(walker.stats)
}

struct Walker<'v, V, const CHECK: bool> {
    visitor: &'v mut V,
    stats: WalkStats,
}

impl<'a, V: TraceVisitor<'a>, const CHECK: bool> Walker<'_, V, CHECK> {
    fn request(&mut self, c: Cursor<'a>) -> Result<(), WireError> {
        let mut fields = Fields::new(c, RECURSION_LIMIT);
        while let Some(f) = fields.next_field()? {
            match f.tag {
                1 => {
                    let index = self.stats.resource_spans;
                    let inner = f.payload("resource_spans")?;
                    let r = nest(RECURSION_LIMIT, f.at)?;
                    self.resource_spans(inner, r, index)
                        .map_err(|e| e.within(format_args!("resource_spans {index}")))?;
                    self.stats.resource_spans += 1;
                }
                _ => fields.skip_unknown(f)?,
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
        let mut fields = Fields::new(c, r);
        while let Some(f) = fields.next_field()? {
            match f.tag {
                1 => f.singular("resource", |c, r| {
                    resource::<CHECK>(c, r, &mut view.dropped_attributes_count)
                })?,
                // Read in pass 2; only the wire type matters here.
                2 => f.check_type(WireType::Len, "scope_spans")?,
                3 => view.schema_url = f.string("schema_url")?,
                _ => fields.skip_unknown(f)?,
            }
        }
        self.visitor.resource(&view);

        // Pass 2: the scopes, in wire order.
        each_nested(c, r, 2, "scope_spans", |inner, r, index| {
            self.scope_spans(inner, r, index)?;
            self.stats.scope_spans += 1;
            Ok(())
        })
    }

    fn scope_spans(&mut self, c: Cursor<'a>, r: u32, index: usize) -> Result<(), WireError> {
        // Pass 1 as for the resource: the merged scope first.
        let mut view = ScopeView {
            raw: c.rest(),
            index,
            name: "",
            version: "",
            dropped_attributes_count: 0,
            schema_url: "",
        };
        let mut fields = Fields::new(c, r);
        while let Some(f) = fields.next_field()? {
            match f.tag {
                1 => f.singular("scope", |c, r| scope::<CHECK>(c, r, &mut view))?,
                2 => f.check_type(WireType::Len, "spans")?,
                3 => view.schema_url = f.string("schema_url")?,
                _ => fields.skip_unknown(f)?,
            }
        }
        self.visitor.scope(&view);

        each_nested(c, r, 2, "span", |inner, r, index| {
            // Filled in place: a span view is ~200 bytes, not worth copying around.
            let mut view = SpanView::default();
            span::<CHECK>(inner, r, index, &mut view)?;
            self.stats.spans += 1;
            if !view.has_valid_ids() {
                self.stats.spans_with_invalid_ids += 1;
            }
            self.visitor.span(&view);
            Ok(())
        })
    }
}

/// Pass 2 over a message whose fields pass 1 already read strictly: calls `read` on each
/// `tag` field in wire order with the nested budget and its index, naming the element
/// (`"{label} {index}"`) in errors.
#[inline(always)]
fn each_nested<'a>(
    mut c: Cursor<'a>,
    r: u32,
    tag: u32,
    label: &str,
    mut read: impl FnMut(Cursor<'a>, u32, usize) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut index = 0usize;
    while let Some((field, value)) = c.next_lenient() {
        if let Value::Len(inner) = value {
            if field == tag {
                let r = nest(r, inner.pos())?;
                read(inner, r, index).map_err(|e| e.within(format_args!("{label} {index}")))?;
                index += 1;
            }
        }
    }
    Ok(())
}

//! The traversal: request → `ResourceSpans` → `ScopeSpans` → spans, calling the visitor.

use super::fields::{nest, Fields};
use super::lazy::{LazySpanView, LazyTraceVisitor};
use super::trace::{resource, scope, span};
use super::views::{ResourceView, ScopeView, SpanView};
use super::{SpanKeys, TraceVisitor, WalkStats};
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
    let keys = visitor.span_keys();
    let mut walker = Walker::<Decoded<'_, 'a, V, CHECK>, CHECK> {
        sink: Decoded { visitor, keys },
        stats: WalkStats::default(),
    };
    walker.request(Cursor::new(request))?;
    Ok(walker.stats)
}

/// [`walk_lazy`](super::walk_lazy): the trusting walk, spans left undecoded.
pub(super) fn run_lazy<'a, V: LazyTraceVisitor<'a>>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<(), WireError> {
    let mut walker = Walker::<Lazy<'_, V>, false> {
        sink: Lazy(visitor),
        stats: WalkStats::default(),
    };
    walker.request(Cursor::new(request))
}

/// What the walker does with what it finds: the two walks differ only in how a span is
/// read and reported.
trait Sink<'a> {
    fn resource(&mut self, resource: &ResourceView<'a>);
    fn scope(&mut self, scope: &ScopeView<'a>);
    /// Span number `index` of its scope, whose fields `c` covers with budget `r`. `false`
    /// when the span's ids are known to be invalid.
    fn span(&mut self, c: Cursor<'a>, r: u32, index: usize) -> Result<bool, WireError>;
}

/// Every span decoded into a [`SpanView`] (validated on the way when `CHECK`), noting the
/// attributes of the visitor's `keys`.
struct Decoded<'v, 'a, V, const CHECK: bool> {
    visitor: &'v mut V,
    keys: &'a SpanKeys,
}

impl<'a, V: TraceVisitor<'a>, const CHECK: bool> Sink<'a> for Decoded<'_, 'a, V, CHECK> {
    #[inline(always)]
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.visitor.resource(resource);
    }

    #[inline(always)]
    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.visitor.scope(scope);
    }

    #[inline(always)]
    fn span(&mut self, c: Cursor<'a>, r: u32, index: usize) -> Result<bool, WireError> {
        // Filled in place: a span view is ~300 bytes, not worth copying around.
        let mut view = SpanView::noting(self.keys);
        span::<CHECK>(c, r, index, &mut view)?;
        self.visitor.span(&view);
        Ok(view.has_valid_ids())
    }
}

/// Every span handed out as its bytes.
struct Lazy<'v, V>(&'v mut V);

impl<'a, V: LazyTraceVisitor<'a>> Sink<'a> for Lazy<'_, V> {
    #[inline(always)]
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.0.resource(resource);
    }

    #[inline(always)]
    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.0.scope(scope);
    }

    /// The ids are not looked at: the lazy walk does not count invalid ones.
    #[inline(always)]
    fn span(&mut self, c: Cursor<'a>, _: u32, index: usize) -> Result<bool, WireError> {
        self.0.span(&LazySpanView::new(c.rest(), index));
        Ok(true)
    }
}

struct Walker<S, const CHECK: bool> {
    sink: S,
    stats: WalkStats,
}

impl<'a, S: Sink<'a>, const CHECK: bool> Walker<S, CHECK> {
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
        self.sink.resource(&view);

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
        self.sink.scope(&view);

        each_nested(c, r, 2, "span", |inner, r, index| {
            let valid_ids = self.sink.span(inner, r, index)?;
            self.stats.spans += 1;
            if !valid_ids {
                self.stats.spans_with_invalid_ids += 1;
            }
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

//! The validating walker: entry points, the visitor it calls, and the views it hands out.
//!
//! `walker` drives the traversal and calls the visitor; `trace` reads the fields of the
//! resource, scope and span messages, `attributes` validates `KeyValue`/`AnyValue` trees,
//! all through the typed field reads of `fields`. The views live in `views` and
//! `events_links`.
//!
//! Metrics and logs requests are validated (not walked) by `metrics` and `logs`, through
//! the same field reads, the same attribute and resource/scope readers, and the
//! resource/scope envelope of `envelope`.

mod attributes;
mod envelope;
mod events_links;
mod fields;
mod lazy;
mod logs;
mod metrics;
mod span_keys;
mod span_names;
mod trace;
mod views;
mod walker;

pub use events_links::{EventIter, EventView, LinkIter, LinkView};
pub use lazy::{LazySpanView, LazyTraceVisitor};
pub use logs::{validate_logs, LogsStats};
pub use metrics::{validate_metrics, MetricsStats};
pub use span_keys::SpanKeys;
pub use span_names::{validate_with_span_names, validate_with_span_names_visiting, SpanNames};
pub use views::{ResourceView, ScopeView, SpanView};

use crate::error::WireError;

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
    /// The span attribute keys this visitor looks up: the walk notes the first attribute of
    /// each as it reads them, and [`SpanView::lazy_attribute`] finds those without a scan.
    /// Asked once per walk.
    fn span_keys(&self) -> &'a SpanKeys {
        SpanKeys::none()
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
    walker::run::<V, true>(request, visitor)
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
    walker::run::<V, false>(request, visitor)
}

/// Walks a request that [`validate`] already accepted, as [`walk_validated`] does, but hands
/// out each span undecoded: a [`LazySpanView`] reads a field from the span's bytes when asked.
/// The cheapest walk for a visitor that reads a few fields of each span. Same guarantees as
/// [`walk_validated`] on bytes that were not validated.
pub fn walk_lazy<'a, V: LazyTraceVisitor<'a>>(
    request: &'a [u8],
    visitor: &mut V,
) -> Result<(), WireError> {
    walker::run_lazy(request, visitor)
}

/// Validates the request without visiting (walk with a no-op visitor).
pub fn validate(request: &[u8]) -> Result<WalkStats, WireError> {
    walk_single_pass(request, &mut NoopVisitor)
}

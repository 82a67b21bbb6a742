//! Zero-allocation OTLP wire-format walker (traces) and validator (traces, metrics, logs).
//!
//! Reads an encoded `ExportTraceServiceRequest` in place (docs/architecture.md §1): no
//! decode into owned structs, no allocation per span. [`walk`] validates the
//! request with exactly prost's acceptance rules and reports each resource,
//! scope and span to a [`TraceVisitor`] as borrowed views; attributes are
//! re-scanned lazily from the span's bytes only when asked for.
//!
//! The other two signals are validated the same way, without a visitor:
//! [`validate_metrics`] checks an `ExportMetricsServiceRequest` and counts its metrics and
//! data points (as the Collector counts accepted metric points), [`validate_logs`] checks an
//! `ExportLogsServiceRequest` and counts its log records. Both accept exactly what prost
//! accepts.
//!
//! [`splice_resources`] rewrites only the resources of a request of any signal (for
//! processors that change nothing else), copying every other byte as received.
//!
//! ```
//! use redline_otlp_wire::{walk, ResourceView, SpanView, TraceVisitor};
//!
//! struct Count<'a> { service: Option<&'a str>, spans: Vec<(&'a str, &'a str)> }
//! impl<'a> TraceVisitor<'a> for Count<'a> {
//!     fn resource(&mut self, r: &ResourceView<'a>) { self.service = r.service_name(); }
//!     fn span(&mut self, s: &SpanView<'a>) {
//!         if let Some(svc) = self.service { self.spans.push((svc, s.name())); }
//!     }
//! }
//! let mut v = Count { service: None, spans: Vec::new() };
//! let stats = walk(&[], &mut v).unwrap();
//! assert_eq!(stats.spans, 0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cursor;
pub mod enums;
mod error;
mod scan;
mod splice;
mod value;
mod walk;
pub mod write;

pub use error::{WireError, WireErrorKind, WireType};
pub use splice::{splice_resources, ResourceEdit, ResourceSlot, SpliceError};
pub use value::{
    AnyValueView, ArrayIter, ArrayView, AttributeIter, AttributesRef, KeyValueView, KvListView,
    LazyAttribute, LazyAttributes,
};
pub use walk::{
    validate, validate_logs, validate_metrics, validate_with_span_names,
    validate_with_span_names_visiting, walk, walk_lazy, walk_single_pass, walk_validated,
    EventIter, EventView, LazySpanView, LazyTraceVisitor, LinkIter, LinkView, LogsStats,
    MetricsStats, NoopVisitor, ResourceView, ScopeView, SpanKeys, SpanNames, SpanView,
    TraceVisitor, WalkStats,
};

/// prost 0.14's recursion limit (`prost::RECURSION_LIMIT`, not public there).
pub const RECURSION_LIMIT: u32 = 100;

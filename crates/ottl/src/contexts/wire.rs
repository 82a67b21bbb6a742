//! The dry-run context: borrowed views of an encoded traces request. Read-only; nothing here
//! allocates for strings or attribute maps.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use redline_otlp_wire::{EventView, LazySpanView, ResourceView, ScopeView};

use super::{
    int_of, kind_deprecated_string, kind_string, span_id, span_id_string, trace_id, trace_id_string,
};
use crate::error::EvalError;
use crate::eval::Reader;
use crate::paths::{EventField, Field, ResourceField, ScopeField, SpanField};
use std::cell::Cell;

use crate::value::{MapRef, OpaqueKind, Value};

/// The views an item is read from, borrowed from the walk: built once per span (or event),
/// so it stays four pointers.
#[derive(Clone, Copy)]
pub(crate) struct WireCtx<'v, 'a> {
    pub resource: &'v ResourceView<'a>,
    pub scope: Option<&'v ScopeView<'a>>,
    /// Undecoded: each field is read from the span's bytes when a statement asks for it.
    pub span: Option<&'v LazySpanView<'a>>,
    pub event: Option<&'v EventView<'a>>,
}

fn missing(what: &str) -> EvalError {
    EvalError::new(format!("internal: no {what} in this context"))
}

impl Reader for WireCtx<'_, '_> {
    // Inlined into the evaluator: returned through memory, the value is read back with wider
    // loads than the stores that wrote it, and the CPU stalls on every read.
    #[inline(always)]
    fn read(&self, field: Field) -> Result<Value<'_>, EvalError> {
        Ok(match field {
            Field::Resource(f) => match f {
                ResourceField::Attributes => {
                    Value::Map(MapRef::Wire(self.resource.attributes_ref()))
                }
                ResourceField::DroppedAttributesCount => {
                    int_of(self.resource.dropped_attributes_count().into())
                }
                ResourceField::SchemaUrl => Value::str(self.resource.schema_url()),
            },
            Field::Scope(f) => {
                let s = self.scope.ok_or_else(|| missing("scope"))?;
                match f {
                    ScopeField::Name => Value::str(s.name()),
                    ScopeField::Version => Value::str(s.version()),
                    ScopeField::Attributes => Value::Map(MapRef::Wire(s.attributes_ref())),
                    ScopeField::DroppedAttributesCount => {
                        int_of(s.dropped_attributes_count().into())
                    }
                    ScopeField::SchemaUrl => Value::str(s.schema_url()),
                }
            }
            Field::Span(f) => {
                let s = self.span.ok_or_else(|| missing("span"))?;
                read_span(s, f)
            }
            Field::SpanEvent(f) => {
                let e = self.event.ok_or_else(|| missing("span event"))?;
                match f {
                    EventField::TimeUnixNano => int_of(e.time_unix_nano()),
                    EventField::Name => Value::str(e.name()),
                    EventField::Attributes => Value::Map(MapRef::Wire(e.attributes_ref())),
                    EventField::DroppedAttributesCount => {
                        int_of(e.dropped_attributes_count().into())
                    }
                }
            }
            Field::Cache => Value::Map(MapRef::Proto(&[])),
            Field::Log(_) | Field::Metric(_) | Field::DataPoint(_) => {
                return Err(missing("log or metric"))
            }
        })
    }

    fn cache(&self) -> &[KeyValue] {
        &[]
    }
}

#[inline(always)]
fn read_span<'a>(s: &LazySpanView<'a>, f: SpanField) -> Value<'a> {
    match f {
        SpanField::TraceId => trace_id(s.trace_id()),
        SpanField::TraceIdString => trace_id_string(s.trace_id()),
        SpanField::SpanId => span_id(s.span_id()),
        SpanField::SpanIdString => span_id_string(s.span_id()),
        SpanField::ParentSpanId => span_id(s.parent_span_id()),
        SpanField::ParentSpanIdString => span_id_string(s.parent_span_id()),
        SpanField::TraceState | SpanField::TraceStateKey => Value::str(s.trace_state()),
        SpanField::Name => Value::str(s.name()),
        SpanField::Kind => Value::Int(s.kind().into()),
        SpanField::KindString => Value::str(kind_string(s.kind())),
        SpanField::KindDeprecatedString => Value::str(kind_deprecated_string(s.kind())),
        SpanField::StartTimeUnixNano => int_of(s.start_time_unix_nano()),
        SpanField::EndTimeUnixNano => int_of(s.end_time_unix_nano()),
        SpanField::Attributes => Value::Map(MapRef::Wire(s.attributes_ref())),
        SpanField::DroppedAttributesCount => int_of(s.dropped_attributes_count().into()),
        SpanField::Events => Value::Opaque {
            kind: OpaqueKind::SpanEvents,
            len: s.events().count(),
        },
        SpanField::DroppedEventsCount => int_of(s.dropped_events_count().into()),
        SpanField::Links => Value::Opaque {
            kind: OpaqueKind::SpanLinks,
            len: s.links().count(),
        },
        SpanField::DroppedLinksCount => int_of(s.dropped_links_count().into()),
        SpanField::Status => Value::Opaque {
            kind: OpaqueKind::Status,
            len: 0,
        },
        SpanField::StatusCode => Value::Int(s.status_code().into()),
        SpanField::StatusMessage => Value::str(s.status_message()),
        SpanField::Flags => int_of(s.flags().into()),
    }
}

/// A span's [`WireCtx`] with its name already read, noting whether an evaluation asked for
/// anything else: one that did not has a verdict that depends on the name alone.
pub(crate) struct NameOnly<'c, 'v, 'a> {
    ctx: &'c WireCtx<'v, 'a>,
    name: &'a str,
    read_other: Cell<bool>,
}

impl<'c, 'v, 'a> NameOnly<'c, 'v, 'a> {
    pub(crate) fn new(ctx: &'c WireCtx<'v, 'a>, name: &'a str) -> Self {
        NameOnly {
            ctx,
            name,
            read_other: Cell::new(false),
        }
    }

    /// Whether the evaluation read a field other than the span's name, or the cache.
    pub(crate) fn read_other(&self) -> bool {
        self.read_other.get()
    }
}

impl Reader for NameOnly<'_, '_, '_> {
    #[inline(always)]
    fn read(&self, field: Field) -> Result<Value<'_>, EvalError> {
        if field == Field::Span(SpanField::Name) {
            return Ok(Value::str(self.name));
        }
        self.read_other.set(true);
        self.ctx.read(field)
    }

    fn cache(&self) -> &[KeyValue] {
        self.read_other.set(true);
        self.ctx.cache()
    }
}

//! The prost-backed context: reads and writes fields of the item and of the items above it.

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, Span, Status};

use super::{
    expect_span_id, expect_trace_id, int_of, kind_deprecated_string, kind_from_deprecated,
    kind_from_string, kind_string, parse_hex_id, span_id, span_id_string, trace_id,
    trace_id_string,
};
use crate::error::EvalError;
use crate::eval::Reader;
use crate::paths::{EventField, Field, LogField, ResourceField, ScopeField, SpanField};
use crate::value::{MapRef, OpaqueKind, Value};
use crate::write::{expect_int, expect_string, Writer};

pub(crate) use super::proto_metrics::MetricParts;

/// The resource of a `Resource{Spans,Logs,Metrics}` and its schema url.
pub(crate) struct ResourceParts<'a> {
    pub resource: &'a mut Option<Resource>,
    pub schema_url: &'a mut String,
}

/// The scope of a `Scope{Spans,Logs,Metrics}` and its schema url.
pub(crate) struct ScopeParts<'a> {
    pub scope: &'a mut Option<InstrumentationScope>,
    pub schema_url: &'a mut String,
}

/// Everything a statement may reach; the compiler only lets paths through whose item is set.
pub(crate) struct ProtoCtx<'a> {
    pub resource: ResourceParts<'a>,
    pub scope: Option<ScopeParts<'a>>,
    pub span: Option<&'a mut Span>,
    /// Index of the event in `span.events` (span event context).
    pub event: Option<usize>,
    pub log: Option<&'a mut LogRecord>,
    pub metric: Option<MetricParts<'a>>,
    pub cache: Vec<KeyValue>,
}

fn missing(what: &str) -> EvalError {
    EvalError::new(format!("internal: no {what} in this context"))
}

const NO_KEYS: &[KeyValue] = &[];

impl<'a> ProtoCtx<'a> {
    pub(crate) fn new(resource: ResourceParts<'a>) -> Self {
        Self {
            resource,
            scope: None,
            span: None,
            event: None,
            log: None,
            metric: None,
            cache: Vec::new(),
        }
    }

    fn span(&self) -> Result<&Span, EvalError> {
        self.span.as_deref().ok_or_else(|| missing("span"))
    }

    fn span_mut(&mut self) -> Result<&mut Span, EvalError> {
        self.span.as_deref_mut().ok_or_else(|| missing("span"))
    }

    fn event(&self) -> Result<&span::Event, EvalError> {
        let i = self.event.ok_or_else(|| missing("span event"))?;
        self.span()?
            .events
            .get(i)
            .ok_or_else(|| missing("span event"))
    }

    fn event_mut(&mut self) -> Result<&mut span::Event, EvalError> {
        let i = self.event.ok_or_else(|| missing("span event"))?;
        self.span_mut()?
            .events
            .get_mut(i)
            .ok_or_else(|| missing("span event"))
    }

    fn log(&self) -> Result<&LogRecord, EvalError> {
        self.log.as_deref().ok_or_else(|| missing("log record"))
    }

    fn log_mut(&mut self) -> Result<&mut LogRecord, EvalError> {
        self.log.as_deref_mut().ok_or_else(|| missing("log record"))
    }

    fn scope(&self) -> Result<&ScopeParts<'a>, EvalError> {
        self.scope.as_ref().ok_or_else(|| missing("scope"))
    }

    fn scope_mut(&mut self) -> Result<&mut InstrumentationScope, EvalError> {
        let parts = self.scope.as_mut().ok_or_else(|| missing("scope"))?;
        Ok(parts.scope.get_or_insert_with(Default::default))
    }

    fn resource_mut(&mut self) -> &mut Resource {
        self.resource.resource.get_or_insert_with(Default::default)
    }
}

impl Reader for ProtoCtx<'_> {
    fn read(&self, field: Field) -> Result<Value<'_>, EvalError> {
        Ok(match field {
            Field::Resource(f) => {
                let r = self.resource.resource.as_ref();
                match f {
                    ResourceField::Attributes => {
                        Value::Map(MapRef::Proto(r.map_or(NO_KEYS, |r| &r.attributes)))
                    }
                    ResourceField::DroppedAttributesCount => {
                        int_of(r.map_or(0, |r| r.dropped_attributes_count).into())
                    }
                    ResourceField::SchemaUrl => Value::str(self.resource.schema_url),
                }
            }
            Field::Scope(f) => {
                let parts = self.scope()?;
                let s = parts.scope.as_ref();
                match f {
                    ScopeField::Name => Value::str(s.map_or("", |s| &s.name)),
                    ScopeField::Version => Value::str(s.map_or("", |s| &s.version)),
                    ScopeField::Attributes => {
                        Value::Map(MapRef::Proto(s.map_or(NO_KEYS, |s| &s.attributes)))
                    }
                    ScopeField::DroppedAttributesCount => {
                        int_of(s.map_or(0, |s| s.dropped_attributes_count).into())
                    }
                    ScopeField::SchemaUrl => Value::str(parts.schema_url),
                }
            }
            Field::Span(f) => read_span(self.span()?, f),
            Field::SpanEvent(f) => {
                let e = self.event()?;
                match f {
                    EventField::TimeUnixNano => int_of(e.time_unix_nano),
                    EventField::Name => Value::str(&e.name),
                    EventField::Attributes => Value::Map(MapRef::Proto(&e.attributes)),
                    EventField::DroppedAttributesCount => int_of(e.dropped_attributes_count.into()),
                }
            }
            Field::Log(f) => read_log(self.log()?, f),
            Field::Metric(f) => self
                .metric
                .as_ref()
                .ok_or_else(|| missing("metric"))?
                .read_metric(f)?,
            Field::DataPoint(f) => self
                .metric
                .as_ref()
                .ok_or_else(|| missing("data point"))?
                .read_point(f)?,
            Field::Cache => Value::Map(MapRef::Proto(&self.cache)),
        })
    }

    fn cache(&self) -> &[KeyValue] {
        &self.cache
    }
}

fn read_span(s: &Span, f: SpanField) -> Value<'_> {
    let status = s.status.as_ref();
    match f {
        SpanField::TraceId => trace_id(&s.trace_id),
        SpanField::TraceIdString => trace_id_string(&s.trace_id),
        SpanField::SpanId => span_id(&s.span_id),
        SpanField::SpanIdString => span_id_string(&s.span_id),
        SpanField::ParentSpanId => span_id(&s.parent_span_id),
        SpanField::ParentSpanIdString => span_id_string(&s.parent_span_id),
        SpanField::TraceState | SpanField::TraceStateKey => Value::str(&s.trace_state),
        SpanField::Name => Value::str(&s.name),
        SpanField::Kind => Value::Int(s.kind.into()),
        SpanField::KindString => Value::str(kind_string(s.kind)),
        SpanField::KindDeprecatedString => Value::str(kind_deprecated_string(s.kind)),
        SpanField::StartTimeUnixNano => int_of(s.start_time_unix_nano),
        SpanField::EndTimeUnixNano => int_of(s.end_time_unix_nano),
        SpanField::Attributes => Value::Map(MapRef::Proto(&s.attributes)),
        SpanField::DroppedAttributesCount => int_of(s.dropped_attributes_count.into()),
        SpanField::Events => Value::Opaque {
            kind: OpaqueKind::SpanEvents,
            len: s.events.len(),
        },
        SpanField::DroppedEventsCount => int_of(s.dropped_events_count.into()),
        SpanField::Links => Value::Opaque {
            kind: OpaqueKind::SpanLinks,
            len: s.links.len(),
        },
        SpanField::DroppedLinksCount => int_of(s.dropped_links_count.into()),
        SpanField::Status => Value::Opaque {
            kind: OpaqueKind::Status,
            len: 0,
        },
        SpanField::StatusCode => Value::Int(status.map_or(0, |st| st.code).into()),
        SpanField::StatusMessage => Value::str(status.map_or("", |st| &st.message)),
        SpanField::Flags => int_of(s.flags.into()),
    }
}

fn read_log(l: &LogRecord, f: LogField) -> Value<'_> {
    match f {
        LogField::TimeUnixNano => int_of(l.time_unix_nano),
        LogField::ObservedTimeUnixNano => int_of(l.observed_time_unix_nano),
        LogField::SeverityNumber => Value::Int(l.severity_number.into()),
        LogField::SeverityText => Value::str(&l.severity_text),
        LogField::Body => Value::from_any(l.body.as_ref()),
        LogField::BodyString => Value::Str(redline_pdata_text::as_string(l.body.as_ref())),
        LogField::Attributes => Value::Map(MapRef::Proto(&l.attributes)),
        LogField::DroppedAttributesCount => int_of(l.dropped_attributes_count.into()),
        LogField::Flags => int_of(l.flags.into()),
        LogField::TraceId => trace_id(&l.trace_id),
        LogField::TraceIdString => trace_id_string(&l.trace_id),
        LogField::SpanId => span_id(&l.span_id),
        LogField::SpanIdString => span_id_string(&l.span_id),
        LogField::EventName => Value::str(&l.event_name),
    }
}

fn not_settable(what: &str) -> EvalError {
    EvalError::new(format!("setting {what} is not supported"))
}

impl Writer for ProtoCtx<'_> {
    fn write(&mut self, field: Field, value: Value<'static>) -> Result<(), EvalError> {
        match field {
            Field::Resource(ResourceField::DroppedAttributesCount) => {
                self.resource_mut().dropped_attributes_count = expect_int(&value)? as u32;
            }
            Field::Resource(ResourceField::SchemaUrl) => {
                *self.resource.schema_url = expect_string(value)?;
            }
            Field::Scope(ScopeField::Name) => self.scope_mut()?.name = expect_string(value)?,
            Field::Scope(ScopeField::Version) => self.scope_mut()?.version = expect_string(value)?,
            Field::Scope(ScopeField::DroppedAttributesCount) => {
                self.scope_mut()?.dropped_attributes_count = expect_int(&value)? as u32
            }
            Field::Scope(ScopeField::SchemaUrl) => {
                let parts = self.scope.as_mut().ok_or_else(|| missing("scope"))?;
                *parts.schema_url = expect_string(value)?;
            }
            Field::Span(f) => write_span(self.span_mut()?, f, value)?,
            Field::SpanEvent(f) => {
                let e = self.event_mut()?;
                match f {
                    EventField::TimeUnixNano => e.time_unix_nano = expect_int(&value)? as u64,
                    EventField::Name => e.name = expect_string(value)?,
                    EventField::DroppedAttributesCount => {
                        e.dropped_attributes_count = expect_int(&value)? as u32
                    }
                    EventField::Attributes => return Err(not_settable("spanevent.attributes")),
                }
            }
            Field::Log(f) => write_log(self.log_mut()?, f, value)?,
            Field::Metric(f) => self
                .metric
                .as_mut()
                .ok_or_else(|| missing("metric"))?
                .write_metric(f, value)?,
            Field::DataPoint(f) => self
                .metric
                .as_mut()
                .ok_or_else(|| missing("data point"))?
                .write_point(f, value)?,
            Field::Resource(ResourceField::Attributes)
            | Field::Scope(ScopeField::Attributes)
            | Field::Cache => return Err(not_settable("a map through write")),
        }
        Ok(())
    }

    fn map_mut(&mut self, field: Field) -> Result<&mut Vec<KeyValue>, EvalError> {
        Ok(match field {
            Field::Resource(ResourceField::Attributes) => &mut self.resource_mut().attributes,
            Field::Scope(ScopeField::Attributes) => &mut self.scope_mut()?.attributes,
            Field::Span(SpanField::Attributes) => &mut self.span_mut()?.attributes,
            Field::SpanEvent(EventField::Attributes) => &mut self.event_mut()?.attributes,
            Field::Log(LogField::Attributes) => &mut self.log_mut()?.attributes,
            Field::Cache => &mut self.cache,
            Field::Metric(_) | Field::DataPoint(_) => self
                .metric
                .as_mut()
                .ok_or_else(|| missing("metric"))?
                .map_mut(field)?,
            _ => return Err(missing("map field")),
        })
    }

    fn any_mut(&mut self, field: Field) -> Result<&mut AnyValue, EvalError> {
        match field {
            Field::Log(LogField::Body) => {
                Ok(self.log_mut()?.body.get_or_insert(AnyValue { value: None }))
            }
            _ => Err(missing("value field")),
        }
    }
}

fn write_span(s: &mut Span, f: SpanField, value: Value<'static>) -> Result<(), EvalError> {
    match f {
        SpanField::TraceId => s.trace_id = expect_trace_id(&value)?,
        SpanField::TraceIdString => s.trace_id = parse_hex_id(&expect_string(value)?, 16, "trace")?,
        SpanField::SpanId => s.span_id = expect_span_id(&value)?,
        SpanField::SpanIdString => s.span_id = parse_hex_id(&expect_string(value)?, 8, "span")?,
        SpanField::ParentSpanId => s.parent_span_id = expect_span_id(&value)?,
        SpanField::ParentSpanIdString => {
            s.parent_span_id = parse_hex_id(&expect_string(value)?, 8, "span")?
        }
        SpanField::TraceState | SpanField::TraceStateKey => s.trace_state = expect_string(value)?,
        SpanField::Name => s.name = expect_string(value)?,
        SpanField::Kind => s.kind = expect_int(&value)? as i32,
        SpanField::KindString => s.kind = kind_from_string(&expect_string(value)?)?,
        SpanField::KindDeprecatedString => s.kind = kind_from_deprecated(&expect_string(value)?)?,
        SpanField::StartTimeUnixNano => s.start_time_unix_nano = expect_int(&value)? as u64,
        SpanField::EndTimeUnixNano => s.end_time_unix_nano = expect_int(&value)? as u64,
        SpanField::DroppedAttributesCount => {
            s.dropped_attributes_count = expect_int(&value)? as u32
        }
        SpanField::DroppedEventsCount => s.dropped_events_count = expect_int(&value)? as u32,
        SpanField::DroppedLinksCount => s.dropped_links_count = expect_int(&value)? as u32,
        SpanField::StatusCode => {
            s.status.get_or_insert_with(Status::default).code = expect_int(&value)? as i32
        }
        SpanField::StatusMessage => {
            s.status.get_or_insert_with(Status::default).message = expect_string(value)?
        }
        SpanField::Flags => {
            let v = expect_int(&value)?;
            s.flags = u32::try_from(v)
                .map_err(|_| EvalError::new(format!("value {v} is out of range for uint32")))?;
        }
        SpanField::Attributes => return Err(not_settable("span.attributes through write")),
        SpanField::Events | SpanField::Links | SpanField::Status => {
            return Err(EvalError::new(format!(
                "setting span.{} is not supported; set its fields instead",
                match f {
                    SpanField::Events => "events",
                    SpanField::Links => "links",
                    _ => "status",
                }
            )))
        }
    }
    Ok(())
}

fn write_log(l: &mut LogRecord, f: LogField, value: Value<'static>) -> Result<(), EvalError> {
    match f {
        LogField::TimeUnixNano => l.time_unix_nano = expect_int(&value)? as u64,
        LogField::ObservedTimeUnixNano => l.observed_time_unix_nano = expect_int(&value)? as u64,
        LogField::SeverityNumber => l.severity_number = expect_int(&value)? as i32,
        LogField::SeverityText => l.severity_text = expect_string(value)?,
        LogField::BodyString => {
            let s = expect_string(value)?;
            crate::write::set_str(l.body.get_or_insert(AnyValue { value: None }), s);
        }
        LogField::DroppedAttributesCount => l.dropped_attributes_count = expect_int(&value)? as u32,
        LogField::Flags => l.flags = expect_int(&value)? as u32,
        LogField::TraceId => l.trace_id = expect_trace_id(&value)?,
        LogField::TraceIdString => l.trace_id = parse_hex_id(&expect_string(value)?, 16, "trace")?,
        LogField::SpanId => l.span_id = expect_span_id(&value)?,
        LogField::SpanIdString => l.span_id = parse_hex_id(&expect_string(value)?, 8, "span")?,
        LogField::EventName => l.event_name = expect_string(value)?,
        LogField::Body | LogField::Attributes => {
            return Err(not_settable("a log map or body through write"))
        }
    }
    Ok(())
}

/// A context for an item under a scope (scope, span, span event, log, metric, data point).
pub(crate) fn scoped<'x>(
    resource: &'x mut Option<Resource>,
    schema_url: &'x mut String,
    scope: &'x mut Option<InstrumentationScope>,
    scope_schema_url: &'x mut String,
) -> ProtoCtx<'x> {
    let mut ctx = ProtoCtx::new(ResourceParts {
        resource,
        schema_url,
    });
    ctx.scope = Some(ScopeParts {
        scope,
        schema_url: scope_schema_url,
    });
    ctx
}

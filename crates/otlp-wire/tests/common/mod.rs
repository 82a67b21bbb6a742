//! Shared test helpers: an owned mirror of the walker's output and the same
//! thing computed from prost's decoded structs, so the two can be compared.

#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use redline_otlp_wire::{
    AnyValueView, KeyValueView, ResourceView, ScopeView, SpanView, TraceVisitor,
};

/// An owned attribute value; doubles by bit pattern so NaN compares equal.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(u64),
    Bytes(Vec<u8>),
    Array(Vec<Owned>),
    Map(Vec<(String, Owned)>),
}

pub fn owned_from_view(v: &AnyValueView<'_>) -> Owned {
    match v {
        AnyValueView::Empty => Owned::Empty,
        AnyValueView::String(s) => Owned::Str((*s).to_owned()),
        AnyValueView::Bool(b) => Owned::Bool(*b),
        AnyValueView::Int(i) => Owned::Int(*i),
        AnyValueView::Double(f) => Owned::Double(f.to_bits()),
        AnyValueView::Bytes(b) => Owned::Bytes(b.to_vec()),
        AnyValueView::Array(a) => Owned::Array(a.iter().map(|e| owned_from_view(&e)).collect()),
        AnyValueView::KvList(m) => Owned::Map(
            m.iter()
                .map(|kv| (kv.key.to_owned(), owned_from_view(&kv.value)))
                .collect(),
        ),
    }
}

pub fn owned_from_prost(v: Option<&AnyValue>) -> Owned {
    match v.and_then(|v| v.value.as_ref()) {
        None | Some(any_value::Value::StringValueStrindex(_)) => Owned::Empty,
        Some(any_value::Value::StringValue(s)) => Owned::Str(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Owned::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Owned::Int(*i),
        Some(any_value::Value::DoubleValue(f)) => Owned::Double(f.to_bits()),
        Some(any_value::Value::BytesValue(b)) => Owned::Bytes(b.clone()),
        Some(any_value::Value::ArrayValue(a)) => {
            Owned::Array(a.values.iter().map(|e| owned_from_prost(Some(e))).collect())
        }
        Some(any_value::Value::KvlistValue(m)) => Owned::Map(
            m.values
                .iter()
                .map(|kv| (kv.key.clone(), owned_from_prost(kv.value.as_ref())))
                .collect(),
        ),
    }
}

/// Independent reference for pdata `AsString` over the owned tree: maps go
/// through a BTreeMap (Go map semantics: last duplicate wins, sorted keys).
pub fn reference_as_string(v: &Owned) -> String {
    match v {
        Owned::Empty => String::new(),
        Owned::Str(s) => s.clone(),
        Owned::Array(_) | Owned::Map(_) => {
            let mut out = String::new();
            if reference_json(v, &mut out) {
                out
            } else {
                String::new()
            }
        }
        other => to_view_scalar(other).to_as_string(),
    }
}

fn to_view_scalar(v: &Owned) -> AnyValueView<'_> {
    match v {
        Owned::Bool(b) => AnyValueView::Bool(*b),
        Owned::Int(i) => AnyValueView::Int(*i),
        Owned::Double(f) => AnyValueView::Double(f64::from_bits(*f)),
        Owned::Bytes(b) => AnyValueView::Bytes(b),
        Owned::Str(s) => AnyValueView::String(s),
        _ => AnyValueView::Empty,
    }
}

fn reference_json(v: &Owned, out: &mut String) -> bool {
    match v {
        Owned::Empty => out.push_str("null"),
        Owned::Bytes(b) if b.is_empty() => out.push_str("null"),
        Owned::Bytes(_) => {
            out.push('"');
            out.push_str(&to_view_scalar(v).to_as_string());
            out.push('"');
        }
        Owned::Double(f) => {
            if !f64::from_bits(*f).is_finite() {
                return false;
            }
            out.push_str(&to_view_scalar(v).to_as_string());
        }
        Owned::Str(s) => {
            out.push_str(&go_escape(s));
        }
        Owned::Bool(_) | Owned::Int(_) => out.push_str(&to_view_scalar(v).to_as_string()),
        Owned::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if !reference_json(item, out) {
                    return false;
                }
            }
            out.push(']');
        }
        Owned::Map(entries) => {
            let map: std::collections::BTreeMap<&str, &Owned> =
                entries.iter().map(|(k, v)| (k.as_str(), v)).collect();
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&go_escape(k));
                out.push(':');
                if !reference_json(v, out) {
                    return false;
                }
            }
            out.push('}');
        }
    }
    true
}

/// Go's json string encoding (HTML-safe), written independently of the crate.
pub fn go_escape(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub key: String,
    pub value: Owned,
    pub as_string: String,
}

pub fn attr_from_view(kv: KeyValueView<'_>) -> Attr {
    let mut s = String::new();
    kv.value.write_as_string(&mut s);
    Attr {
        key: kv.key.to_owned(),
        value: owned_from_view(&kv.value),
        as_string: s,
    }
}

pub fn attr_from_prost(kv: &KeyValue) -> Attr {
    let value = owned_from_prost(kv.value.as_ref());
    Attr {
        key: kv.key.clone(),
        as_string: reference_as_string(&value),
        value,
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventRec {
    pub time: u64,
    pub name: String,
    pub attrs: Vec<Attr>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkRec {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_state: String,
    pub attrs: Vec<Attr>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanRec {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Vec<u8>,
    pub trace_state: String,
    pub name: String,
    pub kind: i32,
    pub start: u64,
    pub end: u64,
    pub status_code: i32,
    pub status_message: String,
    pub flags: u32,
    pub dropped: (u32, u32, u32),
    pub attrs: Vec<Attr>,
    pub events: Vec<EventRec>,
    pub links: Vec<LinkRec>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScopeRec {
    pub name: String,
    pub version: String,
    pub attrs: Vec<Attr>,
    pub spans: Vec<SpanRec>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceRec {
    pub service_name: Option<String>,
    pub attrs: Vec<Attr>,
    pub dropped: u32,
    pub schema_url: String,
    pub scopes: Vec<ScopeRec>,
}

/// A visitor that records everything it is shown.
#[derive(Default)]
pub struct Recorder {
    pub resources: Vec<ResourceRec>,
    pub order: Vec<&'static str>,
}

impl<'a> TraceVisitor<'a> for Recorder {
    fn resource(&mut self, r: &ResourceView<'a>) {
        self.order.push("resource");
        self.resources.push(ResourceRec {
            service_name: r.service_name().map(str::to_owned),
            attrs: r.attributes().map(attr_from_view).collect(),
            dropped: r.dropped_attributes_count(),
            schema_url: r.schema_url().to_owned(),
            scopes: Vec::new(),
        });
    }
    fn scope(&mut self, s: &ScopeView<'a>) {
        self.order.push("scope");
        let rec = ScopeRec {
            name: s.name().to_owned(),
            version: s.version().to_owned(),
            attrs: s.attributes().map(attr_from_view).collect(),
            spans: Vec::new(),
        };
        if let Some(r) = self.resources.last_mut() {
            r.scopes.push(rec);
        }
    }
    fn span(&mut self, s: &SpanView<'a>) {
        self.order.push("span");
        let rec = SpanRec {
            trace_id: s.trace_id().to_vec(),
            span_id: s.span_id().to_vec(),
            parent_span_id: s.parent_span_id().to_vec(),
            trace_state: s.trace_state().to_owned(),
            name: s.name().to_owned(),
            kind: s.kind(),
            start: s.start_time_unix_nano(),
            end: s.end_time_unix_nano(),
            status_code: s.status_code(),
            status_message: s.status_message().to_owned(),
            flags: s.flags(),
            dropped: (
                s.dropped_attributes_count(),
                s.dropped_events_count(),
                s.dropped_links_count(),
            ),
            attrs: s.attributes().map(attr_from_view).collect(),
            events: s
                .events()
                .map(|e| EventRec {
                    time: e.time_unix_nano(),
                    name: e.name().to_owned(),
                    attrs: e.attributes().map(attr_from_view).collect(),
                })
                .collect(),
            links: s
                .links()
                .map(|l| LinkRec {
                    trace_id: l.trace_id().to_vec(),
                    span_id: l.span_id().to_vec(),
                    trace_state: l.trace_state().to_owned(),
                    attrs: l.attributes().map(attr_from_view).collect(),
                    flags: l.flags(),
                })
                .collect(),
        };
        if let Some(scope) = self.resources.last_mut().and_then(|r| r.scopes.last_mut()) {
            scope.spans.push(rec);
        }
    }
}

/// What the walker should report, computed from prost's decode.
pub fn expected(req: &ExportTraceServiceRequest) -> Vec<ResourceRec> {
    req.resource_spans
        .iter()
        .map(|rs| {
            let attrs: Vec<Attr> = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter().map(attr_from_prost))
                .collect();
            let service_name = rs.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .map(
                        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => s.clone(),
                            _ => String::new(),
                        },
                    )
            });
            ResourceRec {
                service_name,
                attrs,
                dropped: rs
                    .resource
                    .as_ref()
                    .map_or(0, |r| r.dropped_attributes_count),
                schema_url: rs.schema_url.clone(),
                scopes: rs
                    .scope_spans
                    .iter()
                    .map(|ss| ScopeRec {
                        name: ss.scope.as_ref().map_or(String::new(), |s| s.name.clone()),
                        version: ss
                            .scope
                            .as_ref()
                            .map_or(String::new(), |s| s.version.clone()),
                        attrs: ss
                            .scope
                            .iter()
                            .flat_map(|s| s.attributes.iter().map(attr_from_prost))
                            .collect(),
                        spans: ss
                            .spans
                            .iter()
                            .map(|s| SpanRec {
                                trace_id: s.trace_id.clone(),
                                span_id: s.span_id.clone(),
                                parent_span_id: s.parent_span_id.clone(),
                                trace_state: s.trace_state.clone(),
                                name: s.name.clone(),
                                kind: s.kind,
                                start: s.start_time_unix_nano,
                                end: s.end_time_unix_nano,
                                status_code: s.status.as_ref().map_or(0, |st| st.code),
                                status_message: s
                                    .status
                                    .as_ref()
                                    .map_or(String::new(), |st| st.message.clone()),
                                flags: s.flags,
                                dropped: (
                                    s.dropped_attributes_count,
                                    s.dropped_events_count,
                                    s.dropped_links_count,
                                ),
                                attrs: s.attributes.iter().map(attr_from_prost).collect(),
                                events: s
                                    .events
                                    .iter()
                                    .map(|e| EventRec {
                                        time: e.time_unix_nano,
                                        name: e.name.clone(),
                                        attrs: e.attributes.iter().map(attr_from_prost).collect(),
                                    })
                                    .collect(),
                                links: s
                                    .links
                                    .iter()
                                    .map(|l| LinkRec {
                                        trace_id: l.trace_id.clone(),
                                        span_id: l.span_id.clone(),
                                        trace_state: l.trace_state.clone(),
                                        attrs: l.attributes.iter().map(attr_from_prost).collect(),
                                        flags: l.flags,
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

//! Drift test: the walker hard-codes OTLP field numbers and wire types (see proto/README.md).
//! Each field the spanmetrics connector and the receiver depend on is set, alone, to a
//! sentinel in the generated `opentelemetry-proto` types, encoded by prost, and must read back
//! through the walker. A renumbered or retyped field upstream fails here by name, before the
//! broader property tests would show it as a mismatch somewhere in a random request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_otlp_wire::{walk, ResourceView, SpanView, TraceVisitor};

#[derive(Default)]
struct Seen {
    service: Option<String>,
    spans: Vec<SeenSpan>,
}

#[derive(Debug, Default, PartialEq)]
struct SeenSpan {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    status_code: i32,
    attribute: Option<String>,
    flags: u32,
}

impl<'a> TraceVisitor<'a> for Seen {
    fn resource(&mut self, r: &ResourceView<'a>) {
        self.service = r.service_name().map(str::to_owned);
    }
    fn span(&mut self, s: &SpanView<'a>) {
        self.spans.push(SeenSpan {
            trace_id: s.trace_id().to_vec(),
            span_id: s.span_id().to_vec(),
            parent_span_id: s.parent_span_id().to_vec(),
            name: s.name().to_owned(),
            kind: s.kind(),
            start: s.start_time_unix_nano(),
            end: s.end_time_unix_nano(),
            status_code: s.status_code(),
            attribute: s.attribute("k").map(|v| v.to_as_string()),
            flags: s.flags(),
        });
    }
}

fn request(resource: Option<Resource>, span: Span) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn read(bytes: &[u8]) -> Seen {
    let mut seen = Seen::default();
    walk(bytes, &mut seen).expect("prost's encoding must walk");
    seen
}

fn only(span: Span) -> SeenSpan {
    let mut seen = read(&request(None, span));
    assert_eq!(seen.spans.len(), 1);
    seen.spans.remove(0)
}

#[test]
fn every_span_field_the_pipeline_reads_is_where_the_walker_looks() {
    let base = SeenSpan::default();
    let cases: Vec<(&str, Span, SeenSpan)> = vec![
        (
            "trace_id",
            Span {
                trace_id: vec![7; 16],
                ..Default::default()
            },
            SeenSpan {
                trace_id: vec![7; 16],
                ..Default::default()
            },
        ),
        (
            "span_id",
            Span {
                span_id: vec![8; 8],
                ..Default::default()
            },
            SeenSpan {
                span_id: vec![8; 8],
                ..Default::default()
            },
        ),
        (
            "parent_span_id",
            Span {
                parent_span_id: vec![9; 8],
                ..Default::default()
            },
            SeenSpan {
                parent_span_id: vec![9; 8],
                ..Default::default()
            },
        ),
        (
            "name",
            Span {
                name: "http.server".into(),
                ..Default::default()
            },
            SeenSpan {
                name: "http.server".into(),
                ..Default::default()
            },
        ),
        (
            "kind",
            Span {
                kind: 2,
                ..Default::default()
            },
            SeenSpan {
                kind: 2,
                ..Default::default()
            },
        ),
        (
            "start_time_unix_nano",
            Span {
                start_time_unix_nano: 1_700_000_000_123_456_789,
                ..Default::default()
            },
            SeenSpan {
                start: 1_700_000_000_123_456_789,
                ..Default::default()
            },
        ),
        (
            "end_time_unix_nano",
            Span {
                end_time_unix_nano: 1_700_000_000_987_654_321,
                ..Default::default()
            },
            SeenSpan {
                end: 1_700_000_000_987_654_321,
                ..Default::default()
            },
        ),
        (
            "status.code",
            Span {
                status: Some(Status {
                    code: status::StatusCode::Error as i32,
                    message: "boom".into(),
                }),
                ..Default::default()
            },
            SeenSpan {
                status_code: 2,
                ..Default::default()
            },
        ),
        (
            "attributes",
            Span {
                attributes: vec![KeyValue {
                    key: "k".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::BoolValue(true)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            SeenSpan {
                attribute: Some("true".into()),
                ..Default::default()
            },
        ),
        (
            "flags",
            Span {
                flags: 0x301,
                ..Default::default()
            },
            SeenSpan {
                flags: 0x301,
                ..Default::default()
            },
        ),
    ];
    for (field, span, want) in cases {
        assert_ne!(want, base, "case {field} must set something");
        assert_eq!(only(span), want, "Span.{field} drifted");
    }
}

#[test]
fn resource_service_name_is_where_the_walker_looks() {
    let resource = Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("makiatto-edge".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let seen = read(&request(Some(resource), Span::default()));
    assert_eq!(seen.service.as_deref(), Some("makiatto-edge"));
}

//! The export requests the tests send.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A valid server span whose ids are all `i` (at least 1, so they are never zero).
pub fn span(i: u8) -> Span {
    Span {
        trace_id: vec![i.max(1); 16],
        span_id: vec![i.max(1); 8],
        name: format!("span-{i}"),
        kind: 2,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        ..Default::default()
    }
}

/// One resource (`service.name` = `svc`) and one scope holding `spans`.
pub fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("svc".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// [`request`] with spans 1 to `n`.
pub fn request_of(n: u8) -> ExportTraceServiceRequest {
    request((1..=n).map(span).collect())
}

/// One span carrying a string attribute of `bytes` bytes.
pub fn big_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut s = span(1);
    s.attributes.push(KeyValue {
        key: "blob".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(bytes))),
        }),
        ..Default::default()
    });
    request(vec![s])
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("in-memory write");
    enc.finish().expect("in-memory finish")
}

/// The example of the OTLP specification (examples/trace.json), with int64 as strings, an
/// int attribute as a number, upper-case hex ids and an unknown field receivers must ignore.
pub const SPEC_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "kind": 2,
        "status": {"code": 2, "message": "boom"},
        "attributes": [
          {"key": "my.span.attr", "value": {"stringValue": "some value"}},
          {"key": "my.int", "value": {"intValue": "42"}},
          {"key": "my.int2", "value": {"intValue": 7}}
        ],
        "someFutureField": true
      }]
    }]
  }]
}"#;

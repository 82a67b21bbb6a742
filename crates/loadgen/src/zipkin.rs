//! OTLP traces requests as Zipkin v2 JSON, for `--protocol zipkin`: the spans a Zipkin
//! exporter (OpenTelemetry's, Brave) would send for the same data, so one load measures the
//! collectors' Zipkin receivers.
//!
//! What the exporters do: ids in hex, microsecond times, the resource's `service.name` as the
//! local endpoint, every other resource and span attribute as a string tag, the scope as
//! `otel.scope.name`/`otel.scope.version`, the status as `otel.status_code` (`Ok`, `Error`)
//! with `error` carrying its description, events as annotations. Kind `INTERNAL` and
//! unspecified have no Zipkin kind and are left out.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{Map, Value};

/// The Zipkin v2 JSON body for one OTLP traces request.
pub fn to_json(otlp: &[u8]) -> Result<Vec<u8>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(otlp)?;
    let mut spans = Vec::new();
    for rs in &request.resource_spans {
        let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map(text);
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let mut tags = Map::new();
                for kv in resource.iter().filter(|kv| kv.key != "service.name") {
                    tags.insert(kv.key.clone(), Value::String(text(kv)));
                }
                if let Some(scope) = ss.scope.as_ref().filter(|s| !s.name.is_empty()) {
                    tags.insert("otel.scope.name".into(), scope.name.clone().into());
                    if !scope.version.is_empty() {
                        tags.insert("otel.scope.version".into(), scope.version.clone().into());
                    }
                }
                for kv in &span.attributes {
                    tags.insert(kv.key.clone(), Value::String(text(kv)));
                }
                match span.status.as_ref().map(|s| (s.code(), &s.message)) {
                    Some((StatusCode::Ok, _)) => {
                        tags.insert("otel.status_code".into(), "Ok".into());
                    }
                    Some((StatusCode::Error, message)) => {
                        tags.insert("otel.status_code".into(), "Error".into());
                        tags.insert("error".into(), message.clone().into());
                    }
                    _ => {}
                }
                let mut z = Map::new();
                z.insert("traceId".into(), hex(&span.trace_id).into());
                z.insert("id".into(), hex(&span.span_id).into());
                if !span.parent_span_id.is_empty() {
                    z.insert("parentId".into(), hex(&span.parent_span_id).into());
                }
                z.insert("name".into(), span.name.clone().into());
                let kind = match span.kind() {
                    SpanKind::Client => Some("CLIENT"),
                    SpanKind::Server => Some("SERVER"),
                    SpanKind::Producer => Some("PRODUCER"),
                    SpanKind::Consumer => Some("CONSUMER"),
                    SpanKind::Internal | SpanKind::Unspecified => None,
                };
                if let Some(kind) = kind {
                    z.insert("kind".into(), kind.into());
                }
                z.insert(
                    "timestamp".into(),
                    (span.start_time_unix_nano / 1_000).into(),
                );
                let duration = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                z.insert("duration".into(), (duration / 1_000).into());
                if let Some(service) = &service {
                    let mut endpoint = Map::new();
                    endpoint.insert("serviceName".into(), service.clone().into());
                    z.insert("localEndpoint".into(), endpoint.into());
                }
                if !span.events.is_empty() {
                    let annotations = span
                        .events
                        .iter()
                        .map(|e| {
                            let mut a = Map::new();
                            a.insert("timestamp".into(), (e.time_unix_nano / 1_000).into());
                            a.insert("value".into(), e.name.clone().into());
                            Value::Object(a)
                        })
                        .collect();
                    z.insert("annotations".into(), Value::Array(annotations));
                }
                if !tags.is_empty() {
                    z.insert("tags".into(), tags.into());
                }
                spans.push(Value::Object(z));
            }
        }
    }
    Ok(serde_json::to_vec(&spans).unwrap_or_default())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// An attribute's value as a Zipkin tag: Zipkin tags are strings.
fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn a_span_becomes_what_a_zipkin_exporter_sends() {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", any_value::Value::StringValue("web".into())),
                        kv("host.name", any_value::Value::StringValue("h".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "get".into(),
                        kind: SpanKind::Server as i32,
                        start_time_unix_nano: 5_000_123,
                        end_time_unix_nano: 7_000_999,
                        attributes: vec![kv("n", any_value::Value::IntValue(3))],
                        status: Some(Status {
                            code: StatusCode::Error as i32,
                            message: "boom".into(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let json = to_json(&request.encode_to_vec()).expect("encodes");
        let v: Value = serde_json::from_slice(&json).expect("JSON");
        let s = &v[0];
        assert_eq!(s["traceId"], "01010101010101010101010101010101");
        assert_eq!(s["id"], "0202020202020202");
        assert_eq!(s["kind"], "SERVER");
        assert_eq!(
            (s["timestamp"].as_u64(), s["duration"].as_u64()),
            (Some(5_000), Some(2_000))
        );
        assert_eq!(s["localEndpoint"]["serviceName"], "web");
        assert_eq!(s["tags"]["host.name"], "h");
        assert_eq!(s["tags"]["n"], "3");
        assert_eq!(s["tags"]["otel.status_code"], "Error");
        assert_eq!(s["tags"]["error"], "boom");
    }
}

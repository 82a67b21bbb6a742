//! OTLP traces requests as Jaeger Thrift batches, for `--protocol jaeger`: what a Jaeger
//! exporter (OpenTelemetry's Jaeger exporters, jaeger-client libraries) sends to a
//! collector's `/api/traces` for the same data, so one load measures the collectors'
//! `jaeger` receivers over Thrift HTTP.
//!
//! What the exporters do: one batch per resource, its `service.name` as the process's
//! service name and its other attributes as process tags; ids as signed 64-bit halves;
//! microsecond times; attributes as typed tags; the kind as `span.kind`, the status as
//! `otel.status_code` (and `error: true` with `otel.status_description` for an error); the
//! scope as `otel.library.name`/`otel.library.version`; events as logs with an `event` field;
//! the sampled flag.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;

/// The Thrift `Batch` bodies (binary protocol) for one OTLP traces request, one per resource,
/// each with its span count.
pub fn to_batches(otlp: &[u8]) -> Result<Vec<(Vec<u8>, usize)>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(otlp)?;
    let mut batches = Vec::with_capacity(request.resource_spans.len());
    for rs in &request.resource_spans {
        let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let mut w = Writer::default();
        // Batch.process
        w.field(STRUCT, 1);
        let service = resource
            .iter()
            .find(|kv| kv.key == "service.name")
            .map_or_else(String::new, |kv| match value(kv) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                _ => String::new(),
            });
        w.field(STRING, 1).string(service.as_bytes());
        let process_tags: Vec<Tag<'_>> = resource
            .iter()
            .filter(|kv| kv.key != "service.name")
            .filter_map(attribute)
            .collect();
        w.tags(2, &process_tags);
        w.stop();
        // Batch.spans
        let spans: usize = rs.scope_spans.iter().map(|ss| ss.spans.len()).sum();
        w.field(LIST, 2).list(STRUCT, spans);
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().filter(|s| !s.name.is_empty());
            for span in &ss.spans {
                let (trace_high, trace_low) = halves(&span.trace_id);
                w.field(I64, 1).i64(trace_low);
                w.field(I64, 2).i64(trace_high);
                w.field(I64, 3).i64(halves(&span.span_id).1);
                w.field(I64, 4).i64(halves(&span.parent_span_id).1);
                w.field(STRING, 5).string(span.name.as_bytes());
                w.field(I32, 7).i32(1);
                w.field(I64, 8)
                    .i64((span.start_time_unix_nano / 1_000) as i64);
                let duration = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                w.field(I64, 9).i64((duration / 1_000) as i64);
                let mut tags: Vec<Tag<'_>> = span.attributes.iter().filter_map(attribute).collect();
                let kind = match span.kind() {
                    SpanKind::Client => Some("client"),
                    SpanKind::Server => Some("server"),
                    SpanKind::Producer => Some("producer"),
                    SpanKind::Consumer => Some("consumer"),
                    SpanKind::Internal => Some("internal"),
                    SpanKind::Unspecified => None,
                };
                if let Some(kind) = kind {
                    tags.push(("span.kind", TagValue::Str(kind.as_bytes())));
                }
                match span.status.as_ref().map(|s| (s.code(), &s.message)) {
                    Some((StatusCode::Ok, _)) => {
                        tags.push(("otel.status_code", TagValue::Str(b"OK")));
                    }
                    Some((StatusCode::Error, message)) => {
                        tags.push(("otel.status_code", TagValue::Str(b"ERROR")));
                        tags.push(("error", TagValue::Bool(true)));
                        if !message.is_empty() {
                            tags.push((
                                "otel.status_description",
                                TagValue::Str(message.as_bytes()),
                            ));
                        }
                    }
                    _ => {}
                }
                if let Some(scope) = scope {
                    tags.push(("otel.library.name", TagValue::Str(scope.name.as_bytes())));
                    if !scope.version.is_empty() {
                        tags.push((
                            "otel.library.version",
                            TagValue::Str(scope.version.as_bytes()),
                        ));
                    }
                }
                w.tags(10, &tags);
                if !span.events.is_empty() {
                    w.field(LIST, 11).list(STRUCT, span.events.len());
                    for event in &span.events {
                        w.field(I64, 1).i64((event.time_unix_nano / 1_000) as i64);
                        let mut fields: Vec<Tag<'_>> =
                            vec![("event", TagValue::Str(event.name.as_bytes()))];
                        fields.extend(event.attributes.iter().filter_map(attribute));
                        w.field(LIST, 2).list(STRUCT, fields.len());
                        for tag in &fields {
                            w.tag(tag);
                        }
                        w.stop();
                    }
                }
                w.stop();
            }
        }
        w.stop();
        batches.push((w.0, spans));
    }
    Ok(batches)
}

const I32: u8 = 8;
const I64: u8 = 10;
const STRING: u8 = 11;
const STRUCT: u8 = 12;
const LIST: u8 = 15;

type Tag<'a> = (&'a str, TagValue<'a>);

enum TagValue<'a> {
    Str(&'a [u8]),
    Double(f64),
    Bool(bool),
    Long(i64),
}

fn value(kv: &KeyValue) -> Option<&any_value::Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

/// A scalar attribute as a tag (the load has no arrays, maps or bytes).
fn attribute(kv: &KeyValue) -> Option<Tag<'_>> {
    let v = match value(kv)? {
        any_value::Value::StringValue(s) => TagValue::Str(s.as_bytes()),
        any_value::Value::BoolValue(b) => TagValue::Bool(*b),
        any_value::Value::IntValue(i) => TagValue::Long(*i),
        any_value::Value::DoubleValue(d) => TagValue::Double(*d),
        _ => return None,
    };
    Some((kv.key.as_str(), v))
}

/// An OTLP id as Jaeger's signed halves (high, low); a span id is the low half.
fn halves(id: &[u8]) -> (i64, i64) {
    let word = |b: &[u8]| {
        let mut a = [0u8; 8];
        let n = b.len().min(8);
        a[8 - n..].copy_from_slice(&b[..n]);
        i64::from_be_bytes(a)
    };
    match id.len() {
        16 => (word(&id[..8]), word(&id[8..])),
        _ => (0, word(id)),
    }
}

/// Thrift's binary protocol, what a `Batch` needs of it.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn field(&mut self, ty: u8, id: i16) -> &mut Self {
        self.0.push(ty);
        self.0.extend_from_slice(&id.to_be_bytes());
        self
    }

    fn stop(&mut self) {
        self.0.push(0);
    }

    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn string(&mut self, v: &[u8]) {
        self.i32(v.len() as i32);
        self.0.extend_from_slice(v);
    }

    fn list(&mut self, elem: u8, len: usize) {
        self.0.push(elem);
        self.i32(len as i32);
    }

    fn tags(&mut self, field: i16, tags: &[Tag<'_>]) {
        if tags.is_empty() {
            return;
        }
        self.field(LIST, field).list(STRUCT, tags.len());
        for tag in tags {
            self.tag(tag);
        }
    }

    /// A `Tag` struct: key, type, and the value's field.
    fn tag(&mut self, (key, value): &Tag<'_>) {
        self.field(STRING, 1).string(key.as_bytes());
        match value {
            TagValue::Str(s) => {
                self.field(I32, 2).i32(0);
                self.field(STRING, 3).string(s);
            }
            TagValue::Double(d) => {
                self.field(I32, 2).i32(1);
                self.field(4, 4);
                self.0.extend_from_slice(&d.to_bits().to_be_bytes());
            }
            TagValue::Bool(b) => {
                self.field(I32, 2).i32(2);
                self.field(2, 5);
                self.0.push(u8::from(*b));
            }
            TagValue::Long(i) => {
                self.field(I32, 2).i32(3);
                self.field(I64, 6).i64(*i);
            }
        }
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_signed_halves() {
        let mut trace = [0u8; 16];
        trace[0] = 0x80;
        trace[15] = 1;
        assert_eq!(halves(&trace), (i64::MIN, 1));
        assert_eq!(halves(&[0, 0, 0, 0, 0, 0, 1, 0]), (0, 256));
        assert_eq!(halves(&[]), (0, 0));
    }
}

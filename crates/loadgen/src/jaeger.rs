//! OTLP traces requests as Jaeger Thrift batches, for `--protocol jaeger`: what a Jaeger
//! exporter (OpenTelemetry's Jaeger exporters, jaeger-client libraries) sends to a
//! collector's `/api/traces` for the same data, so one load measures the collectors'
//! `jaeger` receivers over Thrift HTTP; and as the gRPC API's `PostSpansRequest`s, for
//! `--protocol jaeger-grpc`, what jaeger-agent sends.
//!
//! What the exporters do: one batch per resource, its `service.name` as the process's
//! service name and its other attributes as process tags; ids as signed 64-bit halves;
//! microsecond times; attributes as typed tags; the kind as `span.kind`, the status as
//! `otel.status_code` (and `error: true` with `otel.status_description` for an error); the
//! scope as `otel.library.name`/`otel.library.version`; events as logs with an `event` field;
//! the sampled flag.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
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
        w.field(STRING, 1).string(service_name(resource).as_bytes());
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
                span_tags(span, scope, &mut tags);
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

/// The gRPC API's `PostSpansRequest` bodies (protobuf, jaeger-idl's model.proto) for one OTLP
/// traces request, one per resource as jaeger-agent sends one batch per process, each with
/// its span count. The same mapping as [`to_batches`]: nanosecond times, ids as bytes.
pub fn to_post_spans(otlp: &[u8]) -> Result<Vec<(Vec<u8>, usize)>, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(otlp)?;
    let mut out = Vec::with_capacity(request.resource_spans.len());
    for rs in &request.resource_spans {
        let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let mut batch = Vec::new();
        let mut spans = 0;
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().filter(|s| !s.name.is_empty());
            for span in &ss.spans {
                let mut m = Vec::new();
                pb_bytes(1, &span.trace_id, &mut m);
                pb_bytes(2, &span.span_id, &mut m);
                pb_bytes(3, span.name.as_bytes(), &mut m);
                if !span.parent_span_id.is_empty() {
                    let mut r = Vec::new();
                    pb_bytes(1, &span.trace_id, &mut r);
                    pb_bytes(2, &span.parent_span_id, &mut r);
                    pb_bytes(4, &r, &mut m);
                }
                pb_varint(5, 1, &mut m);
                pb_bytes(6, &pb_time(span.start_time_unix_nano), &mut m);
                let duration = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                pb_bytes(7, &pb_time(duration), &mut m);
                let mut tags: Vec<Tag<'_>> = span.attributes.iter().filter_map(attribute).collect();
                span_tags(span, scope, &mut tags);
                for tag in &tags {
                    pb_bytes(8, &pb_key_value(tag), &mut m);
                }
                for event in &span.events {
                    let mut log = Vec::new();
                    pb_bytes(1, &pb_time(event.time_unix_nano), &mut log);
                    pb_bytes(
                        2,
                        &pb_key_value(&("event", TagValue::Str(event.name.as_bytes()))),
                        &mut log,
                    );
                    for tag in event.attributes.iter().filter_map(attribute) {
                        pb_bytes(2, &pb_key_value(&tag), &mut log);
                    }
                    pb_bytes(9, &log, &mut m);
                }
                pb_bytes(1, &m, &mut batch);
                spans += 1;
            }
        }
        let mut process = Vec::new();
        pb_bytes(1, service_name(resource).as_bytes(), &mut process);
        for tag in resource
            .iter()
            .filter(|kv| kv.key != "service.name")
            .filter_map(attribute)
        {
            pb_bytes(2, &pb_key_value(&tag), &mut process);
        }
        pb_bytes(2, &process, &mut batch);
        let mut request = Vec::new();
        pb_bytes(1, &batch, &mut request);
        out.push((request, spans));
    }
    Ok(out)
}

fn pb_key(field: u32, wire: u8, out: &mut Vec<u8>) {
    pb_raw_varint(u64::from(field << 3 | u32::from(wire)), out);
}

fn pb_raw_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_bytes(field: u32, v: &[u8], out: &mut Vec<u8>) {
    pb_key(field, 2, out);
    pb_raw_varint(v.len() as u64, out);
    out.extend_from_slice(v);
}

fn pb_varint(field: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        pb_key(field, 0, out);
        pb_raw_varint(v, out);
    }
}

/// A `Timestamp` (or `Duration`) of `nanos` nanoseconds.
fn pb_time(nanos: u64) -> Vec<u8> {
    let mut t = Vec::new();
    pb_varint(1, nanos / 1_000_000_000, &mut t);
    pb_varint(2, nanos % 1_000_000_000, &mut t);
    t
}

/// A `KeyValue`, with the protobuf `ValueType` numbers.
fn pb_key_value((key, value): &Tag<'_>) -> Vec<u8> {
    let mut kv = Vec::new();
    pb_bytes(1, key.as_bytes(), &mut kv);
    match value {
        TagValue::Str(s) => pb_bytes(3, s, &mut kv),
        TagValue::Bool(b) => {
            pb_varint(2, 1, &mut kv);
            pb_varint(4, u64::from(*b), &mut kv);
        }
        TagValue::Long(i) => {
            pb_varint(2, 2, &mut kv);
            pb_varint(5, *i as u64, &mut kv);
        }
        TagValue::Double(d) => {
            pb_varint(2, 3, &mut kv);
            pb_key(6, 1, &mut kv);
            kv.extend_from_slice(&d.to_le_bytes());
        }
    }
    kv
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

/// The resource's `service.name`, the process's service name.
fn service_name(resource: &[KeyValue]) -> &str {
    resource
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match value(kv) {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// The tags a Jaeger exporter adds to a span's attributes: its kind, its status, its scope.
fn span_tags<'a>(span: &'a Span, scope: Option<&'a InstrumentationScope>, tags: &mut Vec<Tag<'a>>) {
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
                tags.push(("otel.status_description", TagValue::Str(message.as_bytes())));
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
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use redline_jaeger_receiver::{translate, ThriftFormat};

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        let resource = |service: &str| {
            Some(Resource {
                attributes: vec![
                    kv(
                        "service.name",
                        any_value::Value::StringValue(service.into()),
                    ),
                    kv("host.name", any_value::Value::StringValue("h".into())),
                ],
                ..Default::default()
            })
        };
        let span = |id: u8, kind: SpanKind| Span {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: if id > 1 { vec![1; 8] } else { Vec::new() },
            name: format!("op{id}"),
            kind: kind as i32,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            end_time_unix_nano: 1_700_000_000_125_456_999,
            attributes: vec![
                kv("s", any_value::Value::StringValue("v".into())),
                kv("i", any_value::Value::IntValue(-3)),
                kv("b", any_value::Value::BoolValue(true)),
                kv("d", any_value::Value::DoubleValue(0.5)),
            ],
            status: Some(Status {
                code: StatusCode::Error as i32,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource("web"),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(1, SpanKind::Server), span(2, SpanKind::Client)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                ResourceSpans {
                    resource: resource("db"),
                    scope_spans: vec![ScopeSpans {
                        spans: vec![span(3, SpanKind::Internal)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        }
    }

    /// Each part through the receiver's own translation: what the receiver forwards.
    fn round_trip(
        parts: Vec<(Vec<u8>, usize)>,
        format: ThriftFormat,
    ) -> Vec<ExportTraceServiceRequest> {
        parts
            .into_iter()
            .map(|(body, spans)| {
                let (otlp, translated) = translate(&body, format).expect("the receiver takes it");
                assert_eq!(translated, spans);
                ExportTraceServiceRequest::decode(otlp.as_slice()).expect("OTLP")
            })
            .collect()
    }

    #[test]
    fn both_encoders_come_back_through_the_receiver_as_the_spans_sent() {
        let sent = request();
        let raw = sent.encode_to_vec();
        for (format, parts, tick) in [
            (
                ThriftFormat::GrpcProtobuf,
                to_post_spans(&raw).expect("encodes"),
                1,
            ),
            (
                ThriftFormat::HttpBatch,
                to_batches(&raw).expect("encodes"),
                1_000,
            ),
        ] {
            let back = round_trip(parts, format);
            assert_eq!(back.len(), 2, "one part per resource");
            for (rs_sent, rs_back) in sent.resource_spans.iter().zip(&back) {
                let rs_back = &rs_back.resource_spans[0];
                assert_eq!(rs_back.resource, rs_sent.resource, "{format:?}");
                let spans_back = &rs_back.scope_spans[0].spans;
                for (a, b) in rs_sent.scope_spans[0].spans.iter().zip(spans_back) {
                    assert_eq!(
                        (&a.trace_id, &a.span_id, &a.parent_span_id, &a.name, a.kind),
                        (&b.trace_id, &b.span_id, &b.parent_span_id, &b.name, b.kind),
                        "{format:?}"
                    );
                    // Thrift carries microseconds, protobuf nanoseconds.
                    assert_eq!(b.start_time_unix_nano, a.start_time_unix_nano / tick * tick);
                    let duration = a.end_time_unix_nano - a.start_time_unix_nano;
                    assert_eq!(
                        b.end_time_unix_nano - b.start_time_unix_nano,
                        duration / tick * tick
                    );
                    assert_eq!(b.attributes, a.attributes, "{format:?}");
                    assert_eq!(b.status, a.status, "{format:?}");
                }
            }
        }
    }

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

use super::*;
use crate::model::{read_batch, Process};
use crate::thrift::Binary;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

fn tag<'a>(key: &'a str, value: AttrValue<'a>) -> Tag<'a> {
    let mut t = Tag {
        key: Cow::Borrowed(key),
        ..Tag::default()
    };
    match value {
        AttrValue::Str(s) => {
            t.v_type = TAG_STRING;
            t.v_str = Some(s);
        }
        AttrValue::Bool(b) => {
            t.v_type = TAG_BOOL;
            t.v_bool = Some(b);
        }
        AttrValue::Int(i) => {
            t.v_type = TAG_LONG;
            t.v_long = Some(i);
        }
        AttrValue::Double(d) => {
            t.v_type = TAG_DOUBLE;
            t.v_double = Some(d);
        }
        AttrValue::Bytes(b) => {
            t.v_type = TAG_BINARY;
            t.v_binary = Some(b);
        }
    }
    t
}

fn s(v: &str) -> AttrValue<'_> {
    AttrValue::Str(Cow::Borrowed(v))
}

fn span<'a>(id: i64, tags: Vec<Tag<'a>>) -> Span<'a> {
    Span {
        trace_id_low: 7,
        trace_id_high: 1,
        span_id: id,
        operation_name: Cow::Borrowed("op"),
        start_time: 1_700_000_000_000_000,
        duration: 1_500,
        tags: Some(tags),
        ..Span::default()
    }
}

fn translate(batch: &Batch<'_>) -> ExportTraceServiceRequest {
    let encoded = to_otlp(batch);
    ExportTraceServiceRequest::decode(&encoded.bytes[..]).expect("valid OTLP")
}

fn attrs(kvs: &[KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => format!("s:{s}"),
                Some(Any::BoolValue(b)) => format!("b:{b}"),
                Some(Any::IntValue(i)) => format!("i:{i}"),
                Some(Any::DoubleValue(d)) => format!("d:{d}"),
                Some(Any::BytesValue(b)) => format!("x:{b:?}"),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn process_tags_are_renamed_in_place_as_otelcol_maps_do() {
    let batch = Batch {
        process: Process {
            service_name: Cow::Borrowed("checkout"),
            tags: Some(vec![
                tag("hostname", s("h1")),
                tag("jaeger.version", s("Go-2.30.0")),
                tag("ip", s("10.0.0.1")),
                tag("service.name", s("override")),
            ]),
        },
        spans: vec![span(5, vec![])],
    };
    let req = translate(&batch);
    let resource = req.resource_spans[0].resource.as_ref().expect("resource");
    assert_eq!(
        attrs(&resource.attributes),
        pairs(&[
            ("service.name", "s:override"),
            ("host.name", "s:h1"),
            ("opencensus.exporterversion", "s:Jaeger-Go-2.30.0"),
            ("ip", "s:10.0.0.1"),
        ])
    );
    let scope = &req.resource_spans[0].scope_spans[0];
    // One scope without a name or version (written empty, as pdata writes it).
    assert_eq!(scope.scope.clone().unwrap_or_default(), Default::default());
    let out = &scope.spans[0];
    assert_eq!(
        out.trace_id,
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]
    );
    assert_eq!(out.span_id, 5i64.to_be_bytes());
    assert_eq!(out.start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(out.end_time_unix_nano, 1_700_000_000_001_500_000);
}

/// Tags, and the kind, status (code, message) and attributes they translate to.
type StatusCase<'a> = (
    Vec<Tag<'a>>,
    i32,
    Option<(i32, &'a str)>,
    Vec<(&'a str, &'a str)>,
);

#[test]
fn kind_status_and_the_attributes_they_consume() {
    let cases: Vec<StatusCase> = vec![
        // error=true wins over otel.status_code; the description is consumed, the removal
        // of `error` moving the last attribute into its place.
        (
            vec![
                tag("error", AttrValue::Bool(true)),
                tag("a", s("1")),
                tag("otel.status_code", s("OK")),
                tag("otel.status_description", s("boom")),
                tag("z", s("2")),
            ],
            0,
            Some((2, "boom")),
            vec![("z", "s:2"), ("a", "s:1")],
        ),
        // error=false stays an attribute; a lower-case status code is read.
        (
            vec![
                tag("error", AttrValue::Bool(false)),
                tag("otel.status_code", s("error")),
            ],
            0,
            Some((2, "")),
            vec![("error", "b:false")],
        ),
        // HTTP codes by kind: 404 on a server is unset (no status), on a client an error.
        (
            vec![
                tag("span.kind", s("server")),
                tag("http.status_code", AttrValue::Int(404)),
            ],
            2,
            None,
            vec![("http.status_code", "i:404")],
        ),
        (
            vec![
                tag("span.kind", s("client")),
                tag("http.response.status_code", s("404")),
                tag("http.status_message", s("Not Found")),
            ],
            3,
            Some((2, "Not Found")),
            vec![
                ("http.status_message", "s:Not Found"),
                ("http.status_code", "s:404"),
            ],
        ),
        // A code Go cannot parse sets nothing; an unknown kind is unspecified.
        (
            vec![
                tag("span.kind", s("gateway")),
                tag("http.status_code", s(" 500")),
            ],
            0,
            None,
            vec![("http.status_code", "s: 500")],
        ),
    ];
    for (i, (tags, kind, status, expected)) in cases.into_iter().enumerate() {
        let batch = Batch {
            process: Process::default(),
            spans: vec![span(9, tags)],
        };
        let req = translate(&batch);
        let out = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(out.kind, kind, "case {i}");
        assert_eq!(
            out.status.as_ref().map(|s| (s.code, s.message.as_str())),
            status,
            "case {i}"
        );
        assert_eq!(attrs(&out.attributes), pairs(&expected), "case {i}");
    }
}

#[test]
fn parents_links_events_and_flags() {
    let mut sp = span(3, vec![]);
    sp.flags = 3;
    sp.references = Some(vec![
        SpanRef {
            ref_type: crate::model::FOLLOWS_FROM,
            trace_id_low: 7,
            trace_id_high: 1,
            span_id: 11,
        },
        SpanRef {
            ref_type: CHILD_OF,
            trace_id_low: 7,
            trace_id_high: 1,
            span_id: 12,
        },
        SpanRef {
            ref_type: CHILD_OF,
            trace_id_low: 8,
            trace_id_high: 0,
            span_id: 13,
        },
    ]);
    sp.logs = Some(vec![
        Log {
            timestamp: 5,
            fields: vec![tag("event", s("retry")), tag("attempt", AttrValue::Int(2))],
            nanos: None,
        },
        Log {
            timestamp: 6,
            fields: vec![],
            nanos: None,
        },
    ]);
    let batch = Batch {
        process: Process::default(),
        spans: vec![sp, Span::default()],
    };
    let encoded = to_otlp(&batch);
    assert_eq!((encoded.spans, encoded.dropped), (1, 0));
    let req = translate(&batch);
    let out = &req.resource_spans[0].scope_spans[0].spans[0];
    // The CHILD_OF reference in the same trace is the parent and not a link.
    assert_eq!(out.parent_span_id, 12i64.to_be_bytes());
    let links: Vec<_> = out
        .links
        .iter()
        .map(|l| (l.span_id.clone(), attrs(&l.attributes)))
        .collect();
    assert_eq!(
        links,
        vec![
            (
                11i64.to_be_bytes().to_vec(),
                pairs(&[("opentracing.ref_type", "s:follows_from")])
            ),
            (
                13i64.to_be_bytes().to_vec(),
                pairs(&[("opentracing.ref_type", "s:child_of")])
            ),
        ]
    );
    assert_eq!(out.events.len(), 2);
    assert_eq!(out.events[0].name, "retry");
    assert_eq!(out.events[0].time_unix_nano, 5_000);
    assert_eq!(
        attrs(&out.events[0].attributes),
        pairs(&[("attempt", "i:2")])
    );
    assert_eq!(out.events[1].time_unix_nano, 6_000);
    assert_eq!(out.flags, 1);
}

#[test]
fn zero_ids_are_dropped_and_counted_and_blank_spans_skipped() {
    let mut zero_trace = span(4, vec![]);
    zero_trace.trace_id_high = 0;
    zero_trace.trace_id_low = 0;
    let batch = Batch {
        process: Process::default(),
        spans: vec![zero_trace, span(0, vec![]), Span::default()],
    };
    let encoded = to_otlp(&batch);
    assert_eq!((encoded.spans, encoded.dropped), (0, 2));
    assert!(encoded.bytes.is_empty());
}

/// A `Batch` in the binary protocol, written by hand: process "svc" with one tag, one span.
fn binary_batch(tag_type_byte: u8) -> Vec<u8> {
    let mut b = Vec::new();
    let field = |b: &mut Vec<u8>, ty: u8, id: i16| {
        b.push(ty);
        b.extend_from_slice(&id.to_be_bytes());
    };
    let string = |b: &mut Vec<u8>, v: &[u8]| {
        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
        b.extend_from_slice(v);
    };
    // process
    field(&mut b, 12, 1);
    field(&mut b, 11, 1);
    string(&mut b, b"svc");
    field(&mut b, 15, 2);
    b.push(12);
    b.extend_from_slice(&1i32.to_be_bytes());
    field(&mut b, 11, 1);
    string(&mut b, b"k");
    field(&mut b, tag_type_byte, 2);
    b.extend_from_slice(&0i32.to_be_bytes()[..if tag_type_byte == 8 { 4 } else { 0 }]);
    if tag_type_byte != 8 {
        // The wrong type for vType: a string, skipped, so vType is missing.
        string(&mut b, b"?");
    }
    field(&mut b, 11, 3);
    string(&mut b, b"v\xff");
    b.push(0);
    b.push(0);
    // spans
    field(&mut b, 15, 2);
    b.push(12);
    b.extend_from_slice(&1i32.to_be_bytes());
    for (id, value) in [(1i16, 7i64), (2, 1), (3, 2), (4, 0)] {
        field(&mut b, 10, id);
        b.extend_from_slice(&value.to_be_bytes());
    }
    field(&mut b, 11, 5);
    string(&mut b, b"GET");
    field(&mut b, 8, 7);
    b.extend_from_slice(&1i32.to_be_bytes());
    for (id, value) in [(8i16, 10i64), (9, 2)] {
        field(&mut b, 10, id);
        b.extend_from_slice(&value.to_be_bytes());
    }
    b.push(0);
    b.push(0);
    b
}

#[test]
fn a_binary_batch_end_to_end_with_invalid_utf8_replaced() {
    let body = binary_batch(8);
    let batch = read_batch(&mut Binary::new(&body)).expect("a valid batch");
    let req = translate(&batch);
    let rs = &req.resource_spans[0];
    assert_eq!(
        attrs(&rs.resource.as_ref().expect("resource").attributes),
        pairs(&[("service.name", "s:svc"), ("k", "s:v\u{fffd}")])
    );
    let out = &rs.scope_spans[0].spans[0];
    assert_eq!(out.name, "GET");
    assert_eq!(out.end_time_unix_nano, 12_000);
    assert_eq!(out.flags, 1);
}

#[test]
fn a_missing_required_field_refuses_the_batch_naming_it() {
    let body = binary_batch(11);
    let err = read_batch(&mut Binary::new(&body)).expect_err("vType is missing");
    assert_eq!(err.0, "Tag: required field vType is not set");
    for end in 0..body.len() {
        assert!(read_batch(&mut Binary::new(&body[..end])).is_err(), "{end}");
    }
}

#[test]
fn unknown_tag_types_read_as_go_prints_them() {
    let mut t = tag("k", s("v"));
    t.v_type = 9;
    assert_eq!(tag_value(&t), s("<Unknown Jaeger TagType \"<UNSET>\">"));
    assert_eq!(parse_int("+200"), Some(200));
    assert_eq!(parse_int("-"), None);
    assert_eq!(parse_int("99999999999999999999"), None);
}

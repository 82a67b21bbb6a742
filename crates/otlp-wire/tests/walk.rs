//! Hand-built requests covering every accessor, field-order permutations,
//! merge semantics, defaults, errors and `AsString` rendering.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used)]

mod common;

use common::{expected, Recorder};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_otlp_wire::{
    validate, walk, walk_lazy, walk_single_pass, AnyValueView, LazySpanView, WireErrorKind,
    RECURSION_LIMIT,
};

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.into())),
    }
}
fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(v),
        key_strindex: 0,
    }
}
fn av(v: any_value::Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn sample_span() -> Span {
    Span {
        trace_id: (1..=16).collect(),
        span_id: (1..=8).collect(),
        trace_state: "k=v".into(),
        parent_span_id: vec![9; 8],
        flags: 0x301,
        name: "GET /users".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 5_000_000,
        attributes: vec![
            kv("http.method", s("GET")),
            kv("http.status_code", av(any_value::Value::IntValue(200))),
            kv("cdn.cache.hit", av(any_value::Value::BoolValue(true))),
        ],
        dropped_attributes_count: 1,
        events: vec![span::Event {
            time_unix_nano: 2_000,
            name: "exception".into(),
            attributes: vec![kv("exception.type", s("E"))],
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 2,
        links: vec![span::Link {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            trace_state: "a=b".into(),
            attributes: vec![kv("l", s("x"))],
            dropped_attributes_count: 0,
            flags: 1,
        }],
        dropped_links_count: 3,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    }
}

fn sample_request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s("checkout")), kv("host.name", s("h1"))],
                dropped_attributes_count: 4,
                entity_refs: vec![],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    attributes: vec![kv("scope.attr", s("y"))],
                    dropped_attributes_count: 0,
                }),
                spans: vec![sample_span(), Span::default()],
                schema_url: "scope-schema".into(),
            }],
            schema_url: "res-schema".into(),
        }],
    }
}

fn record(bytes: &[u8]) -> Recorder {
    let mut rec = Recorder::default();
    walk(bytes, &mut rec).expect("valid request");
    rec
}

#[test]
fn every_accessor_matches_prost() {
    let req = sample_request();
    let bytes = req.encode_to_vec();
    let rec = record(&bytes);
    assert_eq!(rec.resources, expected(&req));
    let r = &rec.resources[0];
    assert_eq!(r.service_name.as_deref(), Some("checkout"));
    assert_eq!(r.dropped, 4);
    assert_eq!(r.schema_url, "res-schema");
    let sc = &r.scopes[0];
    assert_eq!((sc.name.as_str(), sc.version.as_str()), ("lib", "1.0"));
    let sp = &sc.spans[0];
    assert_eq!(sp.name, "GET /users");
    assert_eq!(sp.kind, 2);
    assert_eq!((sp.start, sp.end), (1_000, 5_000_000));
    assert_eq!((sp.status_code, sp.status_message.as_str()), (2, "boom"));
    assert_eq!(sp.flags, 0x301);
    assert_eq!(sp.dropped, (1, 2, 3));
    assert_eq!(sp.attrs[1].as_string, "200");
    assert_eq!(sp.attrs[2].as_string, "true");
    assert_eq!(sp.events[0].name, "exception");
    assert_eq!(sp.links[0].flags, 1);
    // Defaults per proto3 for the empty span.
    let empty = &sc.spans[1];
    assert_eq!(empty, &common::SpanRec::default());

    let stats = validate(&bytes).unwrap();
    assert_eq!(stats.resource_spans, 1);
    assert_eq!(stats.scope_spans, 1);
    assert_eq!(stats.spans, 2);
    assert_eq!(stats.spans_with_invalid_ids, 1);
    assert_eq!(rec.order, ["resource", "scope", "span", "span"]);
}

#[test]
fn span_view_accessors_direct() {
    struct V(Vec<(bool, usize)>);
    impl<'a> redline_otlp_wire::TraceVisitor<'a> for V {
        fn span(&mut self, s: &redline_otlp_wire::SpanView<'a>) {
            assert!(s.attribute("http.method").is_some());
            assert_eq!(
                s.attribute("http.method").and_then(|v| v.as_str()),
                Some("GET")
            );
            self.0.push((s.has_valid_ids(), s.index()));
            assert!(!s.raw().is_empty());
        }
    }
    let mut req = sample_request();
    req.resource_spans[0].scope_spans[0].spans.truncate(1);
    let bytes = req.encode_to_vec();
    let mut v = V(Vec::new());
    walk(&bytes, &mut v).unwrap();
    assert_eq!(v.0, vec![(true, 0)]);
}

/// Encodes one field key.
fn key(tag: u32, wt: u8, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wt)), out);
}
fn ld(tag: u32, payload: &[u8], out: &mut Vec<u8>) {
    key(tag, 2, out);
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}
/// A message holding only field `tag` = `payload`.
fn wrap(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ld(tag, payload, &mut out);
    out
}
/// A request with one span whose only attribute is the encoded `KeyValue` `kv`.
fn request_with_span_attribute(kv: &[u8]) -> Vec<u8> {
    let span = wrap(9, kv);
    let scope_spans = wrap(2, &span);
    let resource_spans = wrap(2, &scope_spans);
    wrap(1, &resource_spans)
}

#[test]
fn resource_after_scope_spans_is_reported_first() {
    let rs = sample_request().resource_spans.remove(0);
    // Hand-order: schema_url, scope_spans, resource (reverse of prost's order).
    let mut body = Vec::new();
    ld(3, rs.schema_url.as_bytes(), &mut body);
    for ss in &rs.scope_spans {
        ld(2, &ss.encode_to_vec(), &mut body);
    }
    ld(1, &rs.resource.as_ref().unwrap().encode_to_vec(), &mut body);
    let req = wrap(1, &body);

    let rec = record(&req);
    assert_eq!(rec.order, ["resource", "scope", "span", "span"]);
    let decoded = ExportTraceServiceRequest::decode(req.as_slice()).unwrap();
    assert_eq!(rec.resources, expected(&decoded));
    assert_eq!(rec.resources[0].service_name.as_deref(), Some("checkout"));

    // Scope after spans too.
    let ss = &rs.scope_spans[0];
    let mut body = Vec::new();
    for sp in &ss.spans {
        ld(2, &sp.encode_to_vec(), &mut body);
    }
    ld(1, &ss.scope.as_ref().unwrap().encode_to_vec(), &mut body);
    let req = wrap(1, &wrap(2, &body));
    let rec = record(&req);
    assert_eq!(rec.order, ["resource", "scope", "span", "span"]);
    assert_eq!(rec.resources[0].scopes[0].name, "lib");
    assert_eq!(rec.resources[0].service_name, None);
}

#[test]
fn repeated_singular_messages_merge_like_prost() {
    // Two resource occurrences: attributes concatenate, scalars last-wins.
    let r1 = Resource {
        attributes: vec![kv("a", s("1"))],
        dropped_attributes_count: 5,
        entity_refs: vec![],
    };
    let r2 = Resource {
        attributes: vec![kv("service.name", s("svc")), kv("a", s("2"))],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    };
    // Two status occurrences: message from the first, code from the second.
    let sp1 = Span {
        name: "first".into(),
        status: Some(Status {
            message: "m".into(),
            code: 0,
        }),
        ..Default::default()
    };
    let sp2 = Span {
        name: "second".into(),
        status: Some(Status {
            message: String::new(),
            code: 2,
        }),
        kind: 3,
        ..Default::default()
    };
    let mut span_bytes = sp1.encode_to_vec();
    span_bytes.extend(sp2.encode_to_vec());
    let ss = wrap(2, &span_bytes);
    let mut rs = Vec::new();
    ld(1, &r1.encode_to_vec(), &mut rs);
    ld(2, &ss, &mut rs);
    ld(1, &r2.encode_to_vec(), &mut rs);
    let req = wrap(1, &rs);

    let decoded = ExportTraceServiceRequest::decode(req.as_slice()).unwrap();
    let rec = record(&req);
    assert_eq!(rec.resources, expected(&decoded));
    let r = &rec.resources[0];
    assert_eq!(r.attrs.len(), 3);
    assert_eq!(r.service_name.as_deref(), Some("svc"));
    assert_eq!(r.dropped, 5);
    let sp = &r.scopes[0].spans[0];
    assert_eq!(sp.name, "second");
    assert_eq!((sp.status_code, sp.status_message.as_str()), (2, "m"));
    assert_eq!(sp.kind, 3);
}

#[test]
fn lazy_span_reads_the_last_occurrence_of_each_field() {
    // Repeated scalars (last wins), a split status, an unknown group before the name, a
    // 300-byte attribute (two-byte length) and `flags` behind its two-byte key.
    let sp1 = Span {
        name: "first".into(),
        kind: 2,
        flags: 7,
        status: Some(Status {
            message: "m".into(),
            code: 0,
        }),
        ..Default::default()
    };
    let sp2 = Span {
        trace_id: vec![1; 16],
        kind: 3,
        attributes: vec![kv("long", s(&"x".repeat(300))), kv("a", s("1"))],
        status: Some(Status {
            message: String::new(),
            code: 2,
        }),
        ..Default::default()
    };
    let mut span_bytes = sp1.encode_to_vec();
    // Unknown field 99 as a group holding a varint, then the last name.
    key(99, 3, &mut span_bytes);
    key(1, 0, &mut span_bytes);
    span_bytes.push(5);
    key(99, 4, &mut span_bytes);
    ld(5, b"second", &mut span_bytes);
    span_bytes.extend(sp2.encode_to_vec());
    let req = wrap(1, &wrap(2, &wrap(2, &span_bytes)));
    assert!(validate(&req).is_ok());

    struct Lines(Vec<String>);
    impl<'a> redline_otlp_wire::LazyTraceVisitor<'a> for Lines {
        fn span(&mut self, s: &LazySpanView<'a>) {
            let long = s.attribute("long").and_then(|v| v.as_str()).map(str::len);
            self.0.push(format!(
                "{} {} {} {} {:?} {:?} {} {}",
                s.index(),
                s.name(),
                s.kind(),
                s.flags(),
                (s.status_code(), s.status_message()),
                long,
                s.trace_id().len(),
                s.attributes_ref().iter().count(),
            ));
        }
    }
    let mut lines = Lines(Vec::new());
    walk_lazy(&req, &mut lines).unwrap();
    assert_eq!(lines.0, ["0 second 3 7 (2, \"m\") Some(300) 16 2"]);
}

#[test]
fn any_value_oneof_merge_like_prost() {
    // KeyValue with several `value` occurrences: arrays merge, a different
    // variant resets, a scalar after an array replaces it.
    let arr = |xs: &[i64]| {
        av(any_value::Value::ArrayValue(ArrayValue {
            values: xs
                .iter()
                .map(|x| av(any_value::Value::IntValue(*x)))
                .collect(),
        }))
    };
    let cases: Vec<Vec<AnyValue>> = vec![
        vec![arr(&[1]), arr(&[2, 3])],
        vec![arr(&[1]), s("x"), arr(&[2])],
        vec![arr(&[1]), AnyValue::default(), arr(&[4])],
        vec![arr(&[1]), s("x")],
        vec![
            av(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("b", s("1"))],
            })),
            av(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv("a", s("2")), kv("b", s("3"))],
            })),
        ],
        vec![av(any_value::Value::StringValueStrindex(3))],
        vec![s("x"), av(any_value::Value::StringValueStrindex(3))],
    ];
    for values in cases {
        let mut kvb = Vec::new();
        ld(1, b"k", &mut kvb);
        for v in &values {
            ld(2, &v.encode_to_vec(), &mut kvb);
        }
        let req = request_with_span_attribute(&kvb);
        let decoded = ExportTraceServiceRequest::decode(req.as_slice()).unwrap();
        let rec = record(&req);
        assert_eq!(rec.resources, expected(&decoded), "case {values:?}");
    }
}

#[test]
fn as_string_scalars() {
    let cases: &[(AnyValueView<'_>, &str)] = &[
        (AnyValueView::Empty, ""),
        (AnyValueView::String("héllo"), "héllo"),
        (AnyValueView::Bool(false), "false"),
        (AnyValueView::Int(-42), "-42"),
        (AnyValueView::Int(i64::MIN), "-9223372036854775808"),
        (AnyValueView::Double(1.0), "1"),
        (AnyValueView::Double(-0.0), "-0"),
        (AnyValueView::Double(0.1), "0.1"),
        (AnyValueView::Double(1.5), "1.5"),
        (AnyValueView::Double(123456789.125), "123456789.125"),
        (AnyValueView::Double(1e20), "100000000000000000000"),
        (AnyValueView::Double(1e21), "1e+21"),
        (AnyValueView::Double(1.2345e22), "1.2345e+22"),
        (AnyValueView::Double(0.000001), "0.000001"),
        (AnyValueView::Double(1e-7), "1e-7"),
        (AnyValueView::Double(-2.5e-10), "-2.5e-10"),
        (AnyValueView::Double(5e-324), "5e-324"),
        (AnyValueView::Double(f64::MAX), "1.7976931348623157e+308"),
        (
            AnyValueView::Double(f64::NAN),
            "json: unsupported value: NaN",
        ),
        (
            AnyValueView::Double(f64::INFINITY),
            "json: unsupported value: +Inf",
        ),
        (
            AnyValueView::Double(f64::NEG_INFINITY),
            "json: unsupported value: -Inf",
        ),
        (AnyValueView::Bytes(b""), ""),
        (AnyValueView::Bytes(b"\x00\xffab"), "AP9hYg=="),
    ];
    for (v, want) in cases {
        let mut out = String::from("prefix:");
        v.write_as_string(&mut out);
        assert_eq!(out, format!("prefix:{want}"), "{v:?}");
    }
}

/// Walks a request whose only span has one attribute `k` = `value` and
/// returns that attribute's `AsString`.
fn as_string_via_walk(value: AnyValue) -> String {
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    attributes: vec![kv("k", value)],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let rec = record(&req.encode_to_vec());
    rec.resources[0].scopes[0].spans[0].attrs[0]
        .as_string
        .clone()
}

#[test]
fn as_string_arrays_and_maps_are_go_json() {
    use any_value::Value::*;
    let array = |v: Vec<AnyValue>| {
        av(ArrayValue(
            opentelemetry_proto::tonic::common::v1::ArrayValue { values: v },
        ))
    };
    let map = |v: Vec<KeyValue>| av(KvlistValue(KeyValueList { values: v }));
    assert_eq!(as_string_via_walk(array(vec![])), "[]");
    assert_eq!(as_string_via_walk(map(vec![])), "{}");
    assert_eq!(
        as_string_via_walk(array(vec![
            s("a\"b\\c<>&\n\t\u{1}\u{8}\u{c}\u{2028}é"),
            av(IntValue(-3)),
            av(DoubleValue(2.5)),
            av(DoubleValue(1e-7)),
            av(BoolValue(true)),
            AnyValue::default(),
            av(BytesValue(vec![])),
            av(BytesValue(vec![1, 2, 3])),
            av(StringValueStrindex(1)),
        ])),
        r#"["a\"b\\c\u003c\u003e\u0026\n\t\u0001\b\f\u2028é",-3,2.5,1e-7,true,null,null,"AQID",null]"#
    );
    // Keys sorted bytewise, last duplicate wins, nesting preserved.
    assert_eq!(
        as_string_via_walk(map(vec![
            kv("z", s("1")),
            kv(
                "a",
                array(vec![map(vec![kv("y", av(IntValue(1))), kv("x", s(""))])])
            ),
            kv("Z", s("upper")),
            kv("z", s("2")),
            KeyValue {
                key: "m".into(),
                value: None,
                key_strindex: 0
            },
        ])),
        r#"{"Z":"upper","a":[{"x":"","y":1}],"m":null,"z":"2"}"#
    );
    // NaN anywhere inside makes Go's json.Marshal fail: AsString is "".
    assert_eq!(
        as_string_via_walk(array(vec![s("x"), av(DoubleValue(f64::NAN))])),
        ""
    );
    // ... unless a later duplicate key hides it.
    assert_eq!(
        as_string_via_walk(map(vec![
            kv("a", av(DoubleValue(f64::INFINITY))),
            kv("a", s("ok"))
        ])),
        r#"{"a":"ok"}"#
    );
}

#[test]
fn service_name_follows_go_semantics() {
    let with_attrs = |attrs: Vec<KeyValue>| {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let name = |b: Vec<u8>| record(&b).resources[0].service_name.clone();
    assert_eq!(name(with_attrs(vec![])), None);
    assert_eq!(
        name(with_attrs(vec![
            kv("service.name", s("a")),
            kv("service.name", s("b"))
        ]))
        .as_deref(),
        Some("a")
    );
    // Go: Get finds the first key; Str() of a non-string is "".
    assert_eq!(
        name(with_attrs(vec![
            kv("service.name", av(any_value::Value::IntValue(1))),
            kv("service.name", s("b"))
        ]))
        .as_deref(),
        Some("")
    );
}

#[test]
fn errors_say_what_and_where() {
    let mut req = sample_request();
    req.resource_spans.push(req.resource_spans[0].clone());
    let mut bytes = req.encode_to_vec();
    // Corrupt the name of span 0 in resource_spans 1 into invalid UTF-8.
    let needle = b"GET /users";
    let pos = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == needle)
        .map(|(i, _)| i)
        .nth(1)
        .unwrap();
    bytes[pos] = 0xff;
    assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_err());
    let err = validate(&bytes).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::InvalidUtf8);
    assert_eq!(
        err.path(),
        "field 5 (name) of span 0 of scope_spans 0 of resource_spans 1"
    );
    assert_eq!(err.offset(), pos);
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "field 5 (name) of span 0 of scope_spans 0 of resource_spans 1: invalid UTF-8"
        ),
        "{msg}"
    );

    // walk() never calls the visitor for an invalid request...
    let mut rec = Recorder::default();
    assert!(walk(&bytes, &mut rec).is_err());
    assert!(rec.order.is_empty());
    // ...walk_single_pass may have reported the valid prefix.
    let mut rec = Recorder::default();
    assert!(walk_single_pass(&bytes, &mut rec).is_err());
    assert!(!rec.order.is_empty());
}

#[test]
fn wire_level_errors() {
    let cases: &[(&[u8], WireErrorKind)] = &[
        (&[0x0a], WireErrorKind::Truncated),
        (&[0x0a, 0x05, 0x00], WireErrorKind::Truncated),
        (&[0x0f], WireErrorKind::InvalidWireType(7)),
        (&[0x00], WireErrorKind::InvalidTag),
        (
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
            WireErrorKind::VarintOverflow,
        ),
        (
            &[
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            WireErrorKind::VarintOverflow,
        ),
        (
            &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            WireErrorKind::InvalidKey(1 << 35),
        ),
        (&[0x14], WireErrorKind::UnexpectedEndGroup),
        (
            &[0x0b, 0x0c],
            WireErrorKind::UnexpectedWireType {
                expected: redline_otlp_wire::WireType::Len,
                actual: redline_otlp_wire::WireType::StartGroup,
            },
        ),
        (
            &[0x08, 0x01],
            WireErrorKind::UnexpectedWireType {
                expected: redline_otlp_wire::WireType::Len,
                actual: redline_otlp_wire::WireType::Varint,
            },
        ),
        (&[0x13, 0x1c], WireErrorKind::UnexpectedEndGroup),
    ];
    for (bytes, kind) in cases {
        assert!(
            ExportTraceServiceRequest::decode(*bytes).is_err(),
            "{bytes:?}"
        );
        let err = validate(bytes).unwrap_err();
        assert_eq!(err.kind(), kind, "{bytes:?}: {err}");
    }
    // Accepted by both: unknown fields of every wire type, incl. nested groups.
    let ok: &[&[u8]] = &[
        &[],
        &[0x10, 0x01],
        &[0x19, 1, 2, 3, 4, 5, 6, 7, 8],
        &[0x1d, 1, 2, 3, 4],
        &[0x22, 0x01, 0xff],
        &[0x13, 0x08, 0x01, 0x1b, 0x1c, 0x14],
        &[0x0a, 0x00],
        // A key in a non-minimal 10-byte encoding is still a valid key.
        &[
            0x90, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x05,
        ],
    ];
    for bytes in ok {
        assert!(
            ExportTraceServiceRequest::decode(*bytes).is_ok(),
            "{bytes:?}"
        );
        assert!(validate(bytes).is_ok(), "{bytes:?}");
    }
}

/// AnyValue nested `levels` arrays deep inside one span attribute. Built
/// inside-out as a list of headers so 100k levels stay linear in size and time.
fn nested_array_request(levels: usize) -> Vec<u8> {
    let core = AnyValue::default().encode_to_vec();
    let mut size = core.len();
    let mut headers: Vec<Vec<u8>> = Vec::with_capacity(levels * 2);
    for _ in 0..levels {
        for tag_byte in [
            0x0a_u8, /* ArrayValue.values */
            0x2a,    /* AnyValue.array_value */
        ] {
            let mut h = vec![tag_byte];
            prost::encoding::encode_varint(size as u64, &mut h);
            size += h.len();
            headers.push(h);
        }
    }
    let mut v: Vec<u8> = headers.into_iter().rev().flatten().collect();
    v.extend_from_slice(&core);
    request_with_span_attribute(&wrap(2, &v))
}

#[test]
fn recursion_limit_matches_prost_exactly() {
    let mut boundary = None;
    for levels in 0..60 {
        let req = nested_array_request(levels);
        let prost_ok = ExportTraceServiceRequest::decode(req.as_slice()).is_ok();
        let ours = validate(&req);
        assert_eq!(ours.is_ok(), prost_ok, "levels {levels}: {ours:?}");
        if !prost_ok && boundary.is_none() {
            boundary = Some(levels);
            assert_eq!(ours.unwrap_err().kind(), &WireErrorKind::TooDeep);
        }
        if prost_ok {
            // AsString over the deepest accepted nesting works too.
            let mut rec = Recorder::default();
            walk(&req, &mut rec).unwrap();
        }
    }
    assert!(boundary.is_some());
    assert_eq!(RECURSION_LIMIT, 100);
}

#[test]
fn very_deep_input_is_too_deep_not_a_stack_overflow() {
    // 100k levels of nested arrays and of nested groups.
    let req = nested_array_request(100_000);
    let err = validate(&req).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::TooDeep);
    assert!(ExportTraceServiceRequest::decode(req.as_slice()).is_err());

    // Start-group markers for field 2, then as many end-group markers.
    let mut groups = vec![0x13u8; 100_000];
    groups.extend(std::iter::repeat_n(0x14u8, 100_000));
    let err = validate(&groups).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::TooDeep);
    assert!(ExportTraceServiceRequest::decode(groups.as_slice()).is_err());
}

#[test]
fn group_depth_limit_matches_prost() {
    for depth in 95..105 {
        let mut b = vec![0x13u8; depth];
        b.extend(std::iter::repeat_n(0x14u8, depth));
        assert_eq!(
            validate(&b).is_ok(),
            ExportTraceServiceRequest::decode(b.as_slice()).is_ok(),
            "depth {depth}"
        );
    }
}

#[test]
fn concatenated_requests_merge() {
    let a = sample_request().encode_to_vec();
    let mut both = a.clone();
    both.extend_from_slice(&a);
    let stats = validate(&both).unwrap();
    assert_eq!(stats.resource_spans, 2);
    assert_eq!(stats.spans, 4);
}

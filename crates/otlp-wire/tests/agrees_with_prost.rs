//! Property tests: the walker agrees with a full prost decode.
//!
//! Case counts are modest so `cargo test` stays fast; raise them with
//! `PROPTEST_CASES=10000 cargo test -p redline-otlp-wire --release`.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used)]

mod common;

use common::{expected, owned_from_view, Recorder};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use redline_otlp_wire::{
    validate, walk, walk_lazy, walk_validated, AttributeIter, LazyAttribute, LazySpanView,
    LazyTraceVisitor, ResourceView, ScopeView, SpanKeys, SpanView, TraceVisitor,
};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,8}",
        // Characters Go's JSON encoder escapes, plus non-ASCII.
        "[\"\\\\<>&\n\t\u{1}\u{8}\u{c}\u{2028}é日a]{0,6}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // Small key space so duplicate keys (and service.name) show up often.
    prop_oneof![
        Just("service.name".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("B".to_owned()),
        text(),
    ]
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(1e21),
        Just(1e-7),
        (-1000i32..1000).prop_map(|x| f64::from(x) / 8.0),
    ]
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(V::StringValue(s))),
        any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(V::IntValue(i))),
        double().prop_map(|f| Some(V::DoubleValue(f))),
        vec(any::<u8>(), 0..6).prop_map(|b| Some(V::BytesValue(b))),
        any::<i32>().prop_map(|i| Some(V::StringValueStrindex(i))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values })),
            }),
            vec((key(), proptest::option::of(inner)), 0..4).prop_map(|kvs| AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, value)| KeyValue {
                            key,
                            value,
                            key_strindex: 0,
                        })
                        .collect(),
                })),
            }),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (
            key(),
            proptest::option::of(any_value()),
            prop_oneof![Just(0), any::<i32>()],
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(key, value, key_strindex)| KeyValue {
                key,
                value,
                key_strindex,
            })
            .collect()
    })
}

fn id(len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), len),
        Just(vec![0; len]),
        vec(any::<u8>(), 0..20),
    ]
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![0..6i32, any::<i32>()]
}

fn span_strategy() -> impl Strategy<Value = Span> {
    (
        (
            id(16),
            id(8),
            prop_oneof![Just(vec![]), id(8)],
            text(),
            text(),
        ),
        (enum_value(), any::<u64>(), any::<u64>(), any::<u32>()),
        attributes(),
        vec(
            (any::<u64>(), text(), attributes()).prop_map(|(t, name, attributes)| span::Event {
                time_unix_nano: t,
                name,
                attributes,
                dropped_attributes_count: 0,
            }),
            0..2,
        ),
        vec(
            (id(16), id(8), text(), attributes(), any::<u32>()).prop_map(
                |(trace_id, span_id, trace_state, attributes, flags)| span::Link {
                    trace_id,
                    span_id,
                    trace_state,
                    attributes,
                    dropped_attributes_count: 1,
                    flags,
                },
            ),
            0..2,
        ),
        proptest::option::of(
            (text(), enum_value()).prop_map(|(message, code)| Status { message, code }),
        ),
        (any::<u32>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |(
                (trace_id, span_id, parent_span_id, trace_state, name),
                (kind, start, end, flags),
                attributes,
                events,
                links,
                status,
                dropped,
            )| Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dropped.0,
                events,
                dropped_events_count: dropped.1,
                links,
                dropped_links_count: dropped.2,
                status,
            },
        )
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope = (
        proptest::option::of((text(), text(), attributes()).prop_map(
            |(name, version, attributes)| InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count: 2,
            },
        )),
        vec(span_strategy(), 0..4),
        text(),
    )
        .prop_map(|(scope, spans, schema_url)| ScopeSpans {
            scope,
            spans,
            schema_url,
        });
    let resource = (
        proptest::option::of((attributes(), any::<u32>(), vec(text(), 0..2)).prop_map(
            |(attributes, dropped, keys)| Resource {
                attributes,
                dropped_attributes_count: dropped,
                entity_refs: if keys.is_empty() {
                    vec![]
                } else {
                    vec![EntityRef {
                        schema_url: String::new(),
                        r#type: "service".into(),
                        id_keys: keys,
                        description_keys: vec![],
                    }]
                },
            },
        )),
        vec(scope, 0..3),
        text(),
    )
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        });
    vec(resource, 0..3).prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn check_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    let decoded = ExportTraceServiceRequest::decode(bytes);
    let mut rec = Recorder::default();
    let walked = walk(bytes, &mut rec);
    prop_assert_eq!(walked.is_ok(), decoded.is_ok(), "walk: {:?}", walked);
    if let (Ok(stats), Ok(decoded)) = (walked, decoded) {
        // The trusted walk used after validation reports exactly the same.
        let mut trusted = Recorder::default();
        prop_assert_eq!(walk_validated(bytes, &mut trusted), Ok(stats));
        prop_assert_eq!(&trusted.resources, &rec.resources);
        prop_assert_eq!(&trusted.order, &rec.order);
        let mut lazy = LazyAgrees(Ok(()));
        walk_validated(bytes, &mut lazy).unwrap();
        lazy.0?;
        // What the walks note for a visitor's keys is what a scan finds, checking or
        // trusting.
        let keys = SpanKeys::new(["a", "b", "service.name", "", "B", "é"]);
        let mut noted = NotedAgrees {
            keys: &keys,
            result: Ok(()),
        };
        walk(bytes, &mut noted).unwrap();
        walk_validated(bytes, &mut noted).unwrap();
        noted.result?;
        // The lazy walk reports the same resources, scopes and span fields.
        let mut eager = Fields::default();
        walk_validated(bytes, &mut eager).unwrap();
        let mut undecoded = Fields::default();
        walk_lazy(bytes, &mut undecoded).unwrap();
        prop_assert_eq!(&undecoded.0, &eager.0);
        prop_assert_eq!(
            eager.0.iter().filter(|f| f.starts_with("span")).count(),
            stats.spans
        );
        prop_assert_eq!(rec.resources, expected(&decoded));
        let spans: usize = decoded
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        prop_assert_eq!(stats.spans, spans);
        prop_assert_eq!(stats.resource_spans, decoded.resource_spans.len());
        let invalid = decoded
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .filter(|s| {
                s.trace_id.len() != 16
                    || s.span_id.len() != 8
                    || s.trace_id.iter().all(|&b| b == 0)
                    || s.span_id.iter().all(|&b| b == 0)
            })
            .count();
        prop_assert_eq!(stats.spans_with_invalid_ids, invalid);
    }
    Ok(())
}

/// Everything the walks report, one line per resource, scope and span, for comparing the
/// eager and the lazy walk.
#[derive(Default)]
struct Fields(Vec<String>);

/// A span's fields, through either view (same accessor names).
macro_rules! span_line {
    ($s:expr) => {{
        let s = $s;
        let attrs: Vec<_> = s.attributes().map(|kv| kv.key).collect();
        let first = s.attribute("a").map(|v| owned_from_view(&v));
        let via_ref = s.attributes_ref().iter().count();
        format!(
            "span {} {:?} {:?} {:?} {:?} {:?} {} {} {} {:?} {:?} {via_ref} {} {} {} {} {} {} {:?} {}",
            s.index(),
            s.trace_id(),
            s.span_id(),
            s.parent_span_id(),
            s.trace_state(),
            s.name(),
            s.kind(),
            s.start_time_unix_nano(),
            s.end_time_unix_nano(),
            attrs,
            first,
            s.dropped_attributes_count(),
            s.events().count(),
            s.dropped_events_count(),
            s.links().count(),
            s.dropped_links_count(),
            s.status_code(),
            s.status_message(),
            s.flags(),
        )
    }};
}

impl Fields {
    fn resource(&mut self, r: &ResourceView<'_>) {
        let keys: Vec<_> = r.attributes_ref().iter().map(|kv| kv.key).collect();
        self.0.push(format!("resource {} {keys:?}", r.index()));
    }
    fn scope(&mut self, s: &ScopeView<'_>) {
        let keys: Vec<_> = s.attributes_ref().iter().map(|kv| kv.key).collect();
        self.0
            .push(format!("scope {} {} {keys:?}", s.index(), s.name()));
    }
}

impl<'a> TraceVisitor<'a> for Fields {
    fn resource(&mut self, r: &ResourceView<'a>) {
        Fields::resource(self, r);
    }
    fn scope(&mut self, s: &ScopeView<'a>) {
        Fields::scope(self, s);
    }
    fn span(&mut self, s: &SpanView<'a>) {
        self.0.push(span_line!(s));
    }
}

impl<'a> LazyTraceVisitor<'a> for Fields {
    fn resource(&mut self, r: &ResourceView<'a>) {
        Fields::resource(self, r);
    }
    fn scope(&mut self, s: &ScopeView<'a>) {
        Fields::scope(self, s);
    }
    fn span(&mut self, s: &LazySpanView<'a>) {
        self.0.push(span_line!(s));
    }
}

/// Checks on every span that the lazy attribute iteration and `get` agree with the eager one.
struct LazyAgrees(Result<(), TestCaseError>);

fn lazy_agrees(attrs: AttributeIter<'_>) -> Result<(), TestCaseError> {
    let eager: Vec<_> = attrs.clone().collect();
    let lazy: Vec<_> = attrs.clone().lazy().collect();
    prop_assert_eq!(eager.len(), lazy.len());
    for (e, l) in eager.iter().zip(&lazy) {
        prop_assert_eq!(e.key.as_bytes(), l.key_bytes());
        prop_assert_eq!(e.key, l.key());
        // Owned values compare doubles by bits, so NaN equals itself.
        prop_assert_eq!(owned_from_view(&e.value), owned_from_view(&l.value()));
        let first = eager
            .iter()
            .find(|x| x.key == e.key)
            .map(|x| owned_from_view(&x.value));
        prop_assert_eq!(attrs.clone().get(e.key).map(|v| owned_from_view(&v)), first);
    }
    Ok(())
}

impl<'a> TraceVisitor<'a> for LazyAgrees {
    fn span(&mut self, s: &SpanView<'a>) {
        if self.0.is_ok() {
            self.0 = lazy_agrees(s.attributes());
        }
    }
}

/// Checks on every span that the attributes the walk noted for `keys` are the first of
/// their keys, as a scan finds them; keys outside `keys` are found by a scan.
struct NotedAgrees<'k> {
    keys: &'k SpanKeys,
    result: Result<(), TestCaseError>,
}

fn noted_agrees(s: &SpanView<'_>, keys: &SpanKeys) -> Result<(), TestCaseError> {
    let owned = |a: LazyAttribute<'_>| (a.key_bytes().to_vec(), owned_from_view(&a.value()));
    for key in keys.iter().chain([&b"not.noted"[..], b"", b"a"]) {
        let scanned = s.attributes().lazy().find(|a| a.key_bytes() == key);
        prop_assert_eq!(
            s.lazy_attribute(key).map(owned),
            scanned.map(owned),
            "key {:?}",
            String::from_utf8_lossy(key)
        );
    }
    Ok(())
}

impl<'a> TraceVisitor<'a> for NotedAgrees<'a> {
    fn span_keys(&self) -> &'a SpanKeys {
        self.keys
    }
    fn span(&mut self, s: &SpanView<'a>) {
        if self.result.is_ok() {
            self.result = noted_agrees(s, self.keys);
        }
    }
}

// ---------------------------------------------------------------------------
// A schema-aware scrambler: re-emits a valid encoding with fields shuffled,
// singular sub-messages split into several occurrences (which protobuf
// merges), and unknown fields (incl. groups) sprinkled in. prost's decode of
// the result is the ground truth the walker must match.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Msg {
    Req,
    ResourceSpans,
    Resource,
    Entity,
    ScopeSpans,
    Scope,
    Span,
    Event,
    Link,
    Status,
    Kv,
    Any,
    Array,
    KvList,
}

/// Child message type of a length-delimited field, and whether it is singular.
fn child(msg: Msg, tag: u32) -> Option<(Msg, bool)> {
    use Msg::*;
    Some(match (msg, tag) {
        (Req, 1) => (ResourceSpans, false),
        (ResourceSpans, 1) => (Resource, true),
        (ResourceSpans, 2) => (ScopeSpans, false),
        (Resource, 1) => (Kv, false),
        (Resource, 3) => (Entity, false),
        (ScopeSpans, 1) => (Scope, true),
        (ScopeSpans, 2) => (Span, false),
        (Scope, 3) => (Kv, false),
        (Span, 9) => (Kv, false),
        (Span, 11) => (Event, false),
        (Span, 13) => (Link, false),
        (Span, 15) => (Status, true),
        (Event, 3) => (Kv, false),
        (Link, 4) => (Kv, false),
        (Kv, 2) => (Any, true),
        (Any, 5) => (Array, true),
        (Any, 6) => (KvList, true),
        (Array, 1) => (Any, false),
        (KvList, 1) => (Kv, false),
        _ => return None,
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic per proptest seed, good enough for shuffling.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

struct Field {
    tag: u32,
    wt: u8,
    data: Vec<u8>, // payload for LEN, raw value bytes otherwise
}

fn parse(mut b: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = prost::encoding::decode_varint(&mut b).expect("valid input");
        let (tag, wt) = ((key >> 3) as u32, (key & 7) as u8);
        let data = match wt {
            0 => {
                let mut v = Vec::new();
                let x = prost::encoding::decode_varint(&mut b).expect("valid input");
                prost::encoding::encode_varint(x, &mut v);
                v
            }
            1 => {
                let (d, rest) = b.split_at(8);
                b = rest;
                d.to_vec()
            }
            5 => {
                let (d, rest) = b.split_at(4);
                b = rest;
                d.to_vec()
            }
            2 => {
                let n = prost::encoding::decode_varint(&mut b).expect("valid input") as usize;
                let (d, rest) = b.split_at(n);
                b = rest;
                d.to_vec()
            }
            _ => unreachable!("prost never emits groups"),
        };
        out.push(Field { tag, wt, data });
    }
    out
}

fn emit(f: &Field, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(u64::from(f.tag << 3 | u32::from(f.wt)), out);
    if f.wt == 2 {
        prost::encoding::encode_varint(f.data.len() as u64, out);
    }
    out.extend_from_slice(&f.data);
}

fn unknown_field(rng: &mut Rng) -> Field {
    let tag = 20 + rng.below(10) as u32;
    match rng.below(5) {
        0 => Field {
            tag,
            wt: 0,
            data: vec![0x96, 0x01],
        },
        1 => Field {
            tag,
            wt: 1,
            data: vec![1; 8],
        },
        2 => Field {
            tag,
            wt: 5,
            data: vec![2; 4],
        },
        3 => Field {
            tag,
            wt: 2,
            data: vec![0xff, 0xfe],
        }, // not UTF-8: fine, unknown
        _ => {
            // A group with a nested group and a scalar inside; the end-group
            // key is appended as raw bytes.
            let mut data = Vec::new();
            data.extend_from_slice(&[0x08, 0x01]); // field 1 varint
            data.extend_from_slice(&[0x13, 0x14]); // nested group 2
            prost::encoding::encode_varint(u64::from(tag << 3 | 4), &mut data);
            Field { tag, wt: 3, data }
        }
    }
}

fn scramble(msg: Msg, bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &scramble_fields(msg, bytes, rng) {
        emit(f, &mut out);
    }
    out
}

fn scramble_fields(msg: Msg, bytes: &[u8], rng: &mut Rng) -> Vec<Field> {
    let mut fields = Vec::new();
    for f in parse(bytes) {
        match (f.wt, child(msg, f.tag)) {
            (2, Some((kind, singular))) => {
                let inner_fields = scramble_fields(kind, &f.data, rng);
                if singular && rng.below(3) == 0 {
                    // Split into two occurrences; protobuf merges them back.
                    let cut = rng.below(inner_fields.len() + 1);
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    for (i, g) in inner_fields.iter().enumerate() {
                        emit(g, if i < cut { &mut a } else { &mut b });
                    }
                    fields.push(Field {
                        tag: f.tag,
                        wt: 2,
                        data: a,
                    });
                    fields.push(Field {
                        tag: f.tag,
                        wt: 2,
                        data: b,
                    });
                } else {
                    let mut data = Vec::new();
                    for g in &inner_fields {
                        emit(g, &mut data);
                    }
                    fields.push(Field {
                        tag: f.tag,
                        wt: 2,
                        data,
                    });
                }
            }
            _ => fields.push(f),
        }
    }
    if rng.below(4) == 0 {
        fields.push(unknown_field(rng));
    }
    // Fisher–Yates shuffle of the field order.
    for i in (1..fields.len()).rev() {
        let j = rng.below(i + 1);
        fields.swap(i, j);
    }
    fields
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn walker_matches_prost_struct(req in request()) {
        let bytes = req.encode_to_vec();
        let mut rec = Recorder::default();
        walk(&bytes, &mut rec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&rec.resources, &expected(&req));
        check_agrees(&bytes)?;
    }

    #[test]
    fn scrambled_encodings_agree(req in request(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let bytes = scramble(Msg::Req, &req.encode_to_vec(), &mut rng);
        prop_assert!(ExportTraceServiceRequest::decode(bytes.as_slice()).is_ok());
        check_agrees(&bytes)?;
    }

    #[test]
    fn mutated_encodings_accept_like_prost(
        req in request(),
        seed in any::<u64>(),
        ops in vec((0u8..5, any::<usize>(), vec(any::<u8>(), 1..6)), 1..4),
    ) {
        let mut rng = Rng(seed | 1);
        let mut bytes = if seed % 2 == 0 {
            req.encode_to_vec()
        } else {
            scramble(Msg::Req, &req.encode_to_vec(), &mut rng)
        };
        for (op, pos, junk) in ops {
            let at = if bytes.is_empty() { 0 } else { pos % (bytes.len() + 1) };
            match op {
                0 => bytes.truncate(at),
                1 => {
                    if let Some(b) = bytes.get_mut(at) {
                        *b ^= junk[0];
                    }
                }
                2 => {
                    let tail = bytes.split_off(at);
                    bytes.extend_from_slice(&junk);
                    bytes.extend_from_slice(&tail);
                }
                3 => {
                    let end = (at + junk.len()).min(bytes.len());
                    bytes.drain(at..end);
                }
                _ => {
                    if let Some(b) = bytes.get_mut(at) {
                        // Small bit flips keep varints/lengths plausible.
                        *b ^= 1 << (junk[0] % 8);
                    }
                }
            }
        }
        let ours = validate(&bytes);
        let theirs = ExportTraceServiceRequest::decode(bytes.as_slice());
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "ours {:?} theirs {:?}", ours, theirs.err());
        check_agrees(&bytes)?;
        // On bytes nobody validated, the lazy walk and every lazy read stay total.
        let _ = walk_lazy(&bytes, &mut Fields::default());
    }

    #[test]
    fn random_bytes_accept_like_prost(bytes in vec(any::<u8>(), 0..64)) {
        let _ = walk_lazy(&bytes, &mut Fields::default());
        let ours = validate(&bytes);
        let theirs = ExportTraceServiceRequest::decode(bytes.as_slice());
        prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "ours {:?} theirs {:?}", ours, theirs.err());
    }
}

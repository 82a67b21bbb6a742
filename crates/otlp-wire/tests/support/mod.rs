//! Shared by the metrics and logs tests: proptest strategies for the common OTLP messages, a
//! schema-aware scrambler of valid encodings, byte-level mutations, and a raw encoder.

#![allow(dead_code)]

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use proptest::collection::vec;
use proptest::prelude::*;

pub fn cases(default: u32) -> ProptestConfig {
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

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,8}",
        "[\"\\\\<>&\n\t\u{1}é日a]{0,6}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
    ]
}

pub fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        (-1000i32..1000).prop_map(|x| f64::from(x) / 8.0),
    ]
}

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Every `AnyValue` kind, with arrays and kvlists nested a few levels.
pub fn any_value() -> impl Strategy<Value = AnyValue> {
    use any_value::Value as V;
    let leaf = prop_oneof![
        Just(None),
        text().prop_map(|s| Some(V::StringValue(s))),
        any::<bool>().prop_map(|b| Some(V::BoolValue(b))),
        any::<i64>().prop_map(|i| Some(V::IntValue(i))),
        double().prop_map(|f| Some(V::DoubleValue(f))),
        bytes(6).prop_map(|b| Some(V::BytesValue(b))),
        any::<i32>().prop_map(|i| Some(V::StringValueStrindex(i))),
    ]
    .prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| AnyValue {
                value: Some(V::ArrayValue(ArrayValue { values })),
            }),
            vec((text(), proptest::option::of(inner)), 0..4).prop_map(|kvs| AnyValue {
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

pub fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (
            text(),
            proptest::option::of(any_value()),
            prop_oneof![Just(0), any::<i32>()],
        ),
        0..3,
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

pub fn resource() -> impl Strategy<Value = Option<Resource>> {
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
                    id_keys: keys.clone(),
                    description_keys: keys,
                }]
            },
        },
    ))
}

pub fn scope() -> impl Strategy<Value = Option<InstrumentationScope>> {
    proptest::option::of((text(), text(), attributes(), any::<u32>()).prop_map(
        |(name, version, attributes, dropped_attributes_count)| InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count,
        },
    ))
}

// ---------------------------------------------------------------------------
// Raw encoding
// ---------------------------------------------------------------------------

/// Encodes one field key.
pub fn key(tag: u32, wt: u8, out: &mut Vec<u8>) {
    prost::encoding::encode_varint(u64::from(tag << 3 | u32::from(wt)), out);
}

/// Appends a length-delimited field.
pub fn ld(tag: u32, payload: &[u8], out: &mut Vec<u8>) {
    key(tag, 2, out);
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A message holding only field `tag` = `payload`.
pub fn wrap(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ld(tag, payload, &mut out);
    out
}

/// `payload` wrapped in length-delimited fields, `path[0]` outermost.
pub fn wrap_path(path: &[u32], payload: &[u8]) -> Vec<u8> {
    path.iter()
        .rev()
        .fold(payload.to_vec(), |inner, &tag| wrap(tag, &inner))
}

// ---------------------------------------------------------------------------
// A schema-aware scrambler: re-emits a valid encoding with fields shuffled, singular
// sub-messages split into several occurrences (protobuf merges them), packed repeated
// scalars re-emitted unpacked or as several packed runs (protobuf concatenates them),
// and unknown fields (incl. groups) sprinkled in. prost's decode of the result is the
// ground truth.
// ---------------------------------------------------------------------------

/// What a field of a message type holds, as far as the scrambler cares.
#[derive(Clone, Copy)]
pub enum Kind<M> {
    /// A nested message of type `M`; `true` when singular (occurrences merge).
    Message(M, bool),
    /// A packed repeated scalar whose elements have this wire type (0 or 1).
    Packed(u8),
}

pub trait Schema: Copy {
    fn field(self, tag: u32) -> Option<Kind<Self>>;
}

/// The message types every signal shares.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Common {
    Resource,
    Entity,
    Scope,
    Kv,
    Any,
    Array,
    KvList,
}

impl Schema for Common {
    fn field(self, tag: u32) -> Option<Kind<Self>> {
        use Common::*;
        Some(match (self, tag) {
            (Resource, 1) => Kind::Message(Kv, false),
            (Resource, 3) => Kind::Message(Entity, false),
            (Scope, 3) => Kind::Message(Kv, false),
            (Kv, 2) => Kind::Message(Any, true),
            (Any, 5) => Kind::Message(Array, true),
            (Any, 6) => Kind::Message(KvList, true),
            (Array, 1) => Kind::Message(Any, false),
            (KvList, 1) => Kind::Message(Kv, false),
            _ => return None,
        })
    }
}

/// A `Common` field's kind, in a signal's schema type `M`.
pub fn common<M>(c: Common, tag: u32, lift: fn(Common) -> M) -> Option<Kind<M>> {
    Some(match c.field(tag)? {
        Kind::Message(m, singular) => Kind::Message(lift(m), singular),
        Kind::Packed(wt) => Kind::Packed(wt),
    })
}

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*: deterministic per proptest seed, good enough for shuffling.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

pub struct Field {
    tag: u32,
    wt: u8,
    data: Vec<u8>, // payload for LEN, raw value bytes otherwise
}

fn varint_len(b: &[u8]) -> usize {
    b.iter().position(|&x| x < 0x80).map_or(b.len(), |i| i + 1)
}

fn parse(mut b: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let k = prost::encoding::decode_varint(&mut b).expect("valid input");
        let (tag, wt) = ((k >> 3) as u32, (k & 7) as u8);
        let n = match wt {
            0 => varint_len(b),
            1 => 8,
            5 => 4,
            2 => prost::encoding::decode_varint(&mut b).expect("valid input") as usize,
            _ => unreachable!("prost never emits groups"),
        };
        let (d, rest) = b.split_at(n);
        b = rest;
        out.push(Field {
            tag,
            wt,
            data: d.to_vec(),
        });
    }
    out
}

fn emit(f: &Field, out: &mut Vec<u8>) {
    key(f.tag, f.wt, out);
    if f.wt == 2 {
        prost::encoding::encode_varint(f.data.len() as u64, out);
    }
    out.extend_from_slice(&f.data);
}

fn unknown_field(rng: &mut Rng) -> Field {
    // Field numbers no OTLP message here uses.
    let tag = 20 + rng.below(10) as u32;
    let (wt, data) = match rng.below(5) {
        0 => (0, vec![0x96, 0x01]),
        1 => (1, vec![1; 8]),
        2 => (5, vec![2; 4]),
        3 => (2, vec![0xff, 0xfe]), // not UTF-8: fine, unknown
        _ => {
            // A group with a scalar and a nested group inside; the end-group key is part
            // of the raw bytes.
            let mut data = vec![0x08, 0x01, 0x13, 0x14];
            key(tag, 4, &mut data);
            (3, data)
        }
    };
    Field { tag, wt, data }
}

/// Splits a packed run into its elements' raw bytes.
fn elements(wt: u8, mut run: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !run.is_empty() {
        let n = if wt == 1 { 8 } else { varint_len(run) };
        let (e, rest) = run.split_at(n);
        out.push(e.to_vec());
        run = rest;
    }
    out
}

pub fn scramble<M: Schema>(msg: M, bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &scramble_fields(msg, bytes, rng) {
        emit(f, &mut out);
    }
    out
}

fn scramble_fields<M: Schema>(msg: M, bytes: &[u8], rng: &mut Rng) -> Vec<Field> {
    let mut fields = Vec::new();
    for f in parse(bytes) {
        match (f.wt, msg.field(f.tag)) {
            (2, Some(Kind::Message(kind, singular))) => {
                let inner = scramble_fields(kind, &f.data, rng);
                // Split a singular message into two occurrences; protobuf merges them back.
                let cut = if singular && rng.below(3) == 0 {
                    rng.below(inner.len() + 1)
                } else {
                    inner.len()
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for (i, g) in inner.iter().enumerate() {
                    emit(g, if i < cut { &mut a } else { &mut b });
                }
                let tag = f.tag;
                fields.push(Field {
                    tag,
                    wt: 2,
                    data: a,
                });
                if cut < inner.len() {
                    fields.push(Field {
                        tag,
                        wt: 2,
                        data: b,
                    });
                }
            }
            (2, Some(Kind::Packed(wt))) => {
                let values = elements(wt, &f.data);
                let tag = f.tag;
                match rng.below(3) {
                    // Unpacked: one field per value.
                    0 => fields.extend(values.into_iter().map(|data| Field { tag, wt, data })),
                    // Two packed runs (either possibly empty); protobuf concatenates them.
                    1 => {
                        let cut = rng.below(values.len() + 1);
                        for run in [&values[..cut], &values[cut..]] {
                            fields.push(Field {
                                tag,
                                wt: 2,
                                data: run.concat(),
                            });
                        }
                    }
                    _ => fields.push(f),
                }
            }
            _ => fields.push(f),
        }
    }
    // Fuse two elements of a repeated message field into one: protobuf merges the second
    // into the first (scalars: last wins; repeated fields concatenate; oneofs: the last
    // variant wins, merging with an earlier occurrence of the same variant).
    if rng.below(4) == 0 {
        let repeated: Vec<usize> = (0..fields.len())
            .filter(|&i| {
                fields[i].wt == 2
                    && matches!(msg.field(fields[i].tag), Some(Kind::Message(_, false)))
            })
            .collect();
        if let (Some(&i), Some(&j)) = (
            repeated.get(rng.below(repeated.len())),
            repeated.get(rng.below(repeated.len())),
        ) {
            if i != j && fields[i].tag == fields[j].tag {
                let second = fields.remove(j);
                let first = if j < i { i - 1 } else { i };
                fields[first].data.extend_from_slice(&second.data);
            }
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

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

/// A byte-level mutation: (operation, position, junk bytes).
pub type Op = (u8, usize, Vec<u8>);

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec((0u8..5, any::<usize>(), vec(any::<u8>(), 1..6)), 1..4)
}

/// Truncates, xors, inserts, deletes or bit-flips `bytes` at the given positions.
pub fn mutate(bytes: &mut Vec<u8>, ops: Vec<Op>) {
    for (op, pos, junk) in ops {
        let at = if bytes.is_empty() {
            0
        } else {
            pos % (bytes.len() + 1)
        };
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
                    // Small bit flips keep varints and lengths plausible.
                    *b ^= 1 << (junk[0] % 8);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Every wire shape a single field can take
// ---------------------------------------------------------------------------

/// Encodings of one field `tag` with every wire type and payloads that tell the field
/// types apart: valid or invalid UTF-8, a valid or invalid nested message, a valid or
/// invalid packed run of varints or of 8-byte values, groups, invalid wire types.
pub fn field_shapes(tag: u32) -> Vec<Vec<u8>> {
    let mut shapes = Vec::new();
    let mut scalar = |wt: u8, value: &[u8]| {
        let mut out = Vec::new();
        key(tag, wt, &mut out);
        out.extend_from_slice(value);
        shapes.push(out);
    };
    scalar(0, &[0x01]);
    scalar(
        0,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
    scalar(1, &[0x11; 8]);
    scalar(5, &[0x22; 4]);
    // An empty group, a lone end-group marker, the two wire types that do not exist.
    let mut group = Vec::new();
    key(tag, 4, &mut group);
    scalar(3, &group);
    scalar(4, &[]);
    scalar(6, &[]);
    scalar(7, &[]);
    let payloads: &[&[u8]] = &[
        &[],
        // Valid UTF-8; a message with field 1 = varint 1; two packed varints.
        &[0x08, 0x01],
        // Valid UTF-8 (NULs); an invalid message (field number 0); one packed 8-byte value.
        &[0; 8],
        // Invalid UTF-8; an unterminated group; one packed varint.
        &[0xc3, 0x28],
        // Invalid UTF-8; a message whose key is cut; a cut packed varint.
        &[0x80, 0x80, 0x80],
        // Valid UTF-8; a message with field 1 = empty bytes/string/message.
        &[0x0a, 0x00],
        // Valid UTF-8; a message with field 2 = fixed64; 9 bytes: not whole 8-byte values.
        &[0x11, 1, 2, 3, 4, 5, 6, 7, 8],
        // A message whose field 1 is "é": fine for a string or bytes field 1, an error for
        // a message field 1 (0xc3 0xa9 starts an unterminated group) or a numeric one.
        &[0x0a, 0x02, 0xc3, 0xa9],
        // A message with field 1 holding invalid UTF-8.
        &[0x0a, 0x01, 0xff],
    ];
    for payload in payloads {
        let mut out = Vec::new();
        ld(tag, payload, &mut out);
        shapes.push(out);
    }
    shapes
}

//! Runtime values: what a path, a literal or a converter yields (pdata's `any`).
//!
//! Values borrow from the telemetry they were read from where they can (`&str` of a span name,
//! an attribute map of a prost message or of the encoded request), so a dry run on the wire
//! format does not allocate; they become owned only when written back or built by converters.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use redline_otlp_wire::{AnyValueView, ArrayView, AttributeIter, AttributesRef, KvListView};

/// A value as OTTL sees it (pdata's Go types behind `any`).
///
/// A word-sized tag puts every payload on a word boundary. With a byte tag, `Bool` and
/// `Opaque` put data at offset 1, so every move of a `Value` (out of a `Result`, into a
/// match) copied bytes from offset 1, across the aligned stores that wrote them: the CPU
/// cannot forward such a load and stalls, several times per evaluated statement.
#[derive(Debug, Clone)]
#[repr(u64)]
pub enum Value<'a> {
    /// Go's `nil` (also pdata's empty value).
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    Map(MapRef<'a>),
    Slice(SliceRef<'a>),
    /// `pcommon.TraceID`: a distinct type, so `trace_id == 0x01...` is false as in otelcol.
    TraceId([u8; 16]),
    /// `pcommon.SpanID`.
    SpanId([u8; 8]),
    /// A data point's bucket counts: Go's `[]uint64`, which no attribute can hold.
    Counts(Cow<'a, [u64]>),
    /// A histogram's explicit bounds: Go's `[]float64`.
    Bounds(Cow<'a, [f64]>),
    /// A pdata collection that is not a value (span events, links, data points) or a struct
    /// such as `status`: only `Len`, `IsList` and (never-true) equality see it.
    Opaque {
        kind: OpaqueKind,
        len: usize,
    },
}

/// What an [`Value::Opaque`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaqueKind {
    SpanEvents,
    SpanLinks,
    Status,
    NumberDataPoints,
    HistogramDataPoints,
    ExponentialHistogramDataPoints,
    SummaryDataPoints,
    Exemplars,
    QuantileValues,
    /// An exponential histogram point's `positive` buckets.
    PositiveBuckets,
    NegativeBuckets,
}

impl OpaqueKind {
    /// The pdata Go type, as otelcol's messages print it.
    pub fn type_name(self) -> &'static str {
        match self {
            OpaqueKind::SpanEvents => "ptrace.SpanEventSlice",
            OpaqueKind::SpanLinks => "ptrace.SpanLinkSlice",
            OpaqueKind::Status => "ptrace.Status",
            OpaqueKind::NumberDataPoints => "pmetric.NumberDataPointSlice",
            OpaqueKind::HistogramDataPoints => "pmetric.HistogramDataPointSlice",
            OpaqueKind::ExponentialHistogramDataPoints => {
                "pmetric.ExponentialHistogramDataPointSlice"
            }
            OpaqueKind::SummaryDataPoints => "pmetric.SummaryDataPointSlice",
            OpaqueKind::Exemplars => "pmetric.ExemplarSlice",
            OpaqueKind::QuantileValues => "pmetric.SummaryDataPointValueAtQuantileSlice",
            OpaqueKind::PositiveBuckets | OpaqueKind::NegativeBuckets => {
                "pmetric.ExponentialHistogramDataPointBuckets"
            }
        }
    }

    /// Slices (which `Len` measures and `IsList` accepts), as opposed to structs.
    pub fn is_list(self) -> bool {
        !matches!(
            self,
            OpaqueKind::Status | OpaqueKind::PositiveBuckets | OpaqueKind::NegativeBuckets
        )
    }
}

/// A map: borrowed from prost, borrowed from the wire, or owned. The wire variants are small
/// copyable handles (an iterator's scan state is several times their size), which keeps every
/// `Value` the dry run moves around small.
#[derive(Debug, Clone)]
pub enum MapRef<'a> {
    Proto(&'a [KeyValue]),
    /// The attributes of a resource, scope, span, event or link of the encoded request.
    Wire(AttributesRef<'a>),
    /// A `kvlist_value` of the encoded request.
    WireList(KvListView<'a>),
    Owned(Vec<KeyValue>),
}

/// A slice: borrowed from prost, borrowed from the wire, or owned.
#[derive(Debug, Clone)]
pub enum SliceRef<'a> {
    Proto(&'a [AnyValue]),
    Wire(ArrayView<'a>),
    Owned(Vec<AnyValue>),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn string(s: String) -> Value<'static> {
        Value::Str(Cow::Owned(s))
    }

    /// pdata's `GetValue`: the Go type behind an attribute value.
    pub fn from_any(v: Option<&'a AnyValue>) -> Self {
        match v.and_then(|v| v.value.as_ref()) {
            None | Some(any_value::Value::StringValueStrindex(_)) => Value::Nil,
            Some(any_value::Value::StringValue(s)) => Value::Str(Cow::Borrowed(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            Some(any_value::Value::IntValue(i)) => Value::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
            Some(any_value::Value::BytesValue(b)) => Value::Bytes(Cow::Borrowed(b)),
            Some(any_value::Value::ArrayValue(a)) => Value::Slice(SliceRef::Proto(&a.values)),
            Some(any_value::Value::KvlistValue(m)) => Value::Map(MapRef::Proto(&m.values)),
        }
    }

    /// Same as [`Value::from_any`] for an owned value.
    pub fn from_any_owned(v: Option<AnyValue>) -> Value<'static> {
        match v.and_then(|v| v.value) {
            None | Some(any_value::Value::StringValueStrindex(_)) => Value::Nil,
            Some(any_value::Value::StringValue(s)) => Value::Str(Cow::Owned(s)),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
            Some(any_value::Value::IntValue(i)) => Value::Int(i),
            Some(any_value::Value::DoubleValue(d)) => Value::Double(d),
            Some(any_value::Value::BytesValue(b)) => Value::Bytes(Cow::Owned(b)),
            Some(any_value::Value::ArrayValue(a)) => Value::Slice(SliceRef::Owned(a.values)),
            Some(any_value::Value::KvlistValue(m)) => Value::Map(MapRef::Owned(m.values)),
        }
    }

    /// The Go type behind a value read from the encoded request.
    pub fn from_view(v: AnyValueView<'a>) -> Self {
        match v {
            AnyValueView::Empty => Value::Nil,
            AnyValueView::String(s) => Value::Str(Cow::Borrowed(s)),
            AnyValueView::Bool(b) => Value::Bool(b),
            AnyValueView::Int(i) => Value::Int(i),
            AnyValueView::Double(d) => Value::Double(d),
            AnyValueView::Bytes(b) => Value::Bytes(Cow::Borrowed(b)),
            AnyValueView::Array(a) => Value::Slice(SliceRef::Wire(a)),
            AnyValueView::KvList(m) => Value::Map(MapRef::WireList(m)),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The Go type name used in otelcol's error messages (`%T`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Double(_) => "float64",
            Value::Str(_) => "string",
            Value::Bytes(_) => "[]uint8",
            Value::Map(_) => "pcommon.Map",
            Value::Slice(_) => "pcommon.Slice",
            Value::TraceId(_) => "pcommon.TraceID",
            Value::SpanId(_) => "pcommon.SpanID",
            Value::Counts(_) => "[]uint64",
            Value::Bounds(_) => "[]float64",
            Value::Opaque { kind, .. } => kind.type_name(),
        }
    }

    /// pdata's `ValueType` name (`Str`, `Int`, ...), used where otelcol prints `v.Type()`.
    pub fn pdata_type_name(&self) -> &'static str {
        match self {
            Value::Nil => "Empty",
            Value::Bool(_) => "Bool",
            Value::Int(_) => "Int",
            Value::Double(_) => "Double",
            Value::Str(_) => "Str",
            Value::Bytes(_) => "Bytes",
            Value::Map(_) => "Map",
            Value::Slice(_) => "Slice",
            _ => self.type_name(),
        }
    }

    /// Detaches the value from what it borrows.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Double(d) => Value::Double(d),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bytes(b) => Value::Bytes(Cow::Owned(b.into_owned())),
            Value::Map(m) => Value::Map(MapRef::Owned(m.into_vec())),
            Value::Slice(s) => Value::Slice(SliceRef::Owned(s.into_vec())),
            Value::TraceId(t) => Value::TraceId(t),
            Value::SpanId(s) => Value::SpanId(s),
            Value::Counts(c) => Value::Counts(Cow::Owned(c.into_owned())),
            Value::Bounds(b) => Value::Bounds(Cow::Owned(b.into_owned())),
            Value::Opaque { kind, len } => Value::Opaque { kind, len },
        }
    }

    /// The pdata value this becomes when stored in an attribute map (`ctxutil.SetValue`);
    /// `None` for types a `pcommon.Value` cannot hold.
    pub fn to_any(&self) -> Option<AnyValue> {
        let inner = match self {
            Value::Nil => None,
            Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
            Value::Int(i) => Some(any_value::Value::IntValue(*i)),
            Value::Double(d) => Some(any_value::Value::DoubleValue(*d)),
            Value::Str(s) => Some(any_value::Value::StringValue(s.to_string())),
            Value::Bytes(b) => Some(any_value::Value::BytesValue(b.to_vec())),
            Value::Map(m) => Some(any_value::Value::KvlistValue(KeyValueList {
                values: m.to_vec(),
            })),
            Value::Slice(s) => Some(any_value::Value::ArrayValue(ArrayValue {
                values: s.to_vec(),
            })),
            // `ctxutil.SetValue` turns a `[]float64` into a slice of doubles.
            Value::Bounds(b) => Some(any_value::Value::ArrayValue(ArrayValue {
                values: b
                    .iter()
                    .map(|d| AnyValue {
                        value: Some(any_value::Value::DoubleValue(*d)),
                    })
                    .collect(),
            })),
            Value::TraceId(_) | Value::SpanId(_) | Value::Counts(_) | Value::Opaque { .. } => {
                return None
            }
        };
        Some(AnyValue { value: inner })
    }
}

/// A map key and its value, borrowed from a [`MapRef`].
pub type Entry<'s> = (&'s str, Value<'s>);

impl<'a> MapRef<'a> {
    /// Entries in order (pdata keeps insertion order; duplicates are kept).
    pub fn entries(&self) -> MapEntries<'_> {
        match self {
            MapRef::Proto(kvs) => MapEntries::Proto(kvs.iter()),
            MapRef::Owned(kvs) => MapEntries::Proto(kvs.iter()),
            MapRef::Wire(m) => MapEntries::Wire(m.iter()),
            MapRef::WireList(m) => MapEntries::Wire(m.iter()),
        }
    }

    /// pdata's `Map.Get`: the first entry with this key.
    pub fn get(&self, key: &str) -> Option<Value<'_>> {
        match self {
            MapRef::Proto(kvs) => find_kv(kvs, key).map(|kv| Value::from_any(kv.value.as_ref())),
            MapRef::Owned(kvs) => find_kv(kvs, key).map(|kv| Value::from_any(kv.value.as_ref())),
            MapRef::Wire(m) => m.get(key).map(Value::from_view),
            MapRef::WireList(m) => m.get(key).map(Value::from_view),
        }
    }

    /// Like [`MapRef::get`] but keeps the map's own lifetime (moving out of an owned map).
    pub fn take(self, key: &str) -> Option<Value<'a>> {
        match self {
            MapRef::Proto(kvs) => find_kv(kvs, key).map(|kv| Value::from_any(kv.value.as_ref())),
            MapRef::Wire(m) => m.get(key).map(Value::from_view),
            MapRef::WireList(m) => m.get(key).map(Value::from_view),
            MapRef::Owned(kvs) => kvs
                .into_iter()
                .find(|kv| kv.key == key)
                .map(|kv| Value::from_any_owned(kv.value)),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        match self {
            MapRef::Proto(kvs) => find_kv(kvs, key).is_some(),
            MapRef::Owned(kvs) => find_kv(kvs, key).is_some(),
            MapRef::Wire(m) => has_key(m.iter(), key),
            MapRef::WireList(m) => has_key(m.iter(), key),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            MapRef::Proto(kvs) => kvs.len(),
            MapRef::Owned(kvs) => kvs.len(),
            MapRef::Wire(m) => m.iter().lazy().count(),
            MapRef::WireList(m) => m.iter().lazy().count(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<KeyValue> {
        match self {
            MapRef::Proto(kvs) => kvs.to_vec(),
            MapRef::Owned(kvs) => kvs.clone(),
            MapRef::Wire(_) | MapRef::WireList(_) => {
                self.entries().map(|(k, v)| kv(k, &v)).collect()
            }
        }
    }

    pub fn into_vec(self) -> Vec<KeyValue> {
        match self {
            MapRef::Owned(kvs) => kvs,
            other => other.to_vec(),
        }
    }
}

/// Whether a wire map has the key, without decoding any value.
fn has_key(entries: AttributeIter<'_>, key: &str) -> bool {
    entries.lazy().any(|a| a.key_bytes() == key.as_bytes())
}

pub(crate) fn find_kv<'k>(kvs: &'k [KeyValue], key: &str) -> Option<&'k KeyValue> {
    kvs.iter().find(|kv| kv.key == key)
}

/// A `KeyValue` holding `value` (Nil becomes an empty value).
pub fn kv(key: &str, value: &Value<'_>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: value.to_any().or(Some(AnyValue { value: None })),
        ..Default::default()
    }
}

/// Iterator over a map's entries.
pub enum MapEntries<'s> {
    Proto(std::slice::Iter<'s, KeyValue>),
    Wire(AttributeIter<'s>),
}

impl<'s> Iterator for MapEntries<'s> {
    type Item = Entry<'s>;
    fn next(&mut self) -> Option<Entry<'s>> {
        match self {
            MapEntries::Proto(it) => it
                .next()
                .map(|kv| (kv.key.as_str(), Value::from_any(kv.value.as_ref()))),
            MapEntries::Wire(it) => it.next().map(|kv| (kv.key, Value::from_view(kv.value))),
        }
    }
}

impl<'a> SliceRef<'a> {
    pub fn len(&self) -> usize {
        match self {
            SliceRef::Proto(v) => v.len(),
            SliceRef::Owned(v) => v.len(),
            SliceRef::Wire(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn elements(&self) -> SliceElements<'_> {
        match self {
            SliceRef::Proto(v) => SliceElements::Proto(v.iter()),
            SliceRef::Owned(v) => SliceElements::Proto(v.iter()),
            SliceRef::Wire(a) => SliceElements::Wire(a.iter()),
        }
    }

    /// The element at `index`, keeping the slice's own lifetime.
    pub fn take(self, index: usize) -> Option<Value<'a>> {
        match self {
            SliceRef::Proto(v) => v.get(index).map(|e| Value::from_any(Some(e))),
            SliceRef::Wire(a) => a.iter().nth(index).map(Value::from_view),
            SliceRef::Owned(v) => v
                .into_iter()
                .nth(index)
                .map(|e| Value::from_any_owned(Some(e))),
        }
    }

    pub fn to_vec(&self) -> Vec<AnyValue> {
        match self {
            SliceRef::Proto(v) => v.to_vec(),
            SliceRef::Owned(v) => v.clone(),
            SliceRef::Wire(_) => self
                .elements()
                .map(|e| e.to_any().unwrap_or(AnyValue { value: None }))
                .collect(),
        }
    }

    pub fn into_vec(self) -> Vec<AnyValue> {
        match self {
            SliceRef::Owned(v) => v,
            other => other.to_vec(),
        }
    }
}

/// Iterator over a slice's elements.
pub enum SliceElements<'s> {
    Proto(std::slice::Iter<'s, AnyValue>),
    Wire(redline_otlp_wire::ArrayIter<'s>),
}

impl<'s> Iterator for SliceElements<'s> {
    type Item = Value<'s>;
    fn next(&mut self) -> Option<Value<'s>> {
        match self {
            SliceElements::Proto(it) => it.next().map(|e| Value::from_any(Some(e))),
            SliceElements::Wire(it) => it.next().map(Value::from_view),
        }
    }
}

/// Lower-case hex, as Go's `hex.EncodeToString`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Go's `hex.DecodeString` (either case).
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }
    }

    #[test]
    fn map_get_returns_first_duplicate() {
        let kvs = vec![
            KeyValue {
                key: "a".into(),
                value: Some(s("1")),
                ..Default::default()
            },
            KeyValue {
                key: "a".into(),
                value: Some(s("2")),
                ..Default::default()
            },
        ];
        let m = MapRef::Proto(&kvs);
        assert_eq!(
            m.get("a").and_then(|v| v.as_str().map(str::to_owned)),
            Some("1".into())
        );
        assert!(m.contains_key("a"));
        assert!(!m.contains_key("b"));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn values_stay_small() {
        // The dry run moves values around for every span: keep them a few words.
        // (An attribute iterator held inline made them 248 bytes.)
        assert_eq!(std::mem::size_of::<Value<'_>>(), 48);
        assert_eq!(std::mem::size_of::<MapRef<'_>>(), 40);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex_lower(&[0x01, 0xab, 0xff]), "01abff");
        assert_eq!(hex_decode("01ABff"), Some(vec![0x01, 0xab, 0xff]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("012"), None);
    }

    #[test]
    fn nil_is_stored_as_empty_value() {
        let kv = kv("k", &Value::Nil);
        assert_eq!(kv.value, Some(AnyValue { value: None }));
    }
}

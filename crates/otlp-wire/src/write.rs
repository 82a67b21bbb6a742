//! The few protobuf writes an OTLP request needs, straight into a buffer, for receivers that
//! translate another format (Zipkin, Jaeger) into OTLP: their translation borrows strings from
//! the body it reads, so no OTLP message is built and nothing is allocated per attribute.
//! Fields are written as prost writes them (proto3: a scalar at its default value is left
//! out; a oneof value and a present message are not).

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// The `AnyValue` message's length.
    fn any_value_len(&self) -> usize {
        match self {
            Value::Str(s) => 1 + encoded_len_varint(s.len() as u64) + s.len(),
            Value::Bool(_) => 2,
            Value::Int(i) => 1 + encoded_len_varint(*i as u64),
            Value::Double(_) => 9,
            Value::Bytes(b) => 1 + encoded_len_varint(b.len() as u64) + b.len(),
        }
    }

    fn write_any_value(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => bytes(1, s.as_bytes(), out),
            Value::Bool(b) => {
                encode_key(2, WireType::Varint, out);
                out.push(u8::from(*b));
            }
            Value::Int(i) => {
                encode_key(3, WireType::Varint, out);
                encode_varint(*i as u64, out);
            }
            Value::Double(d) => {
                encode_key(4, WireType::SixtyFourBit, out);
                out.extend_from_slice(&d.to_le_bytes());
            }
            Value::Bytes(b) => bytes(7, b, out),
        }
    }
}

/// A length-delimited field, written even when empty.
pub fn bytes(field: u32, value: &[u8], out: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// A string field, left out when empty.
pub fn string(field: u32, value: &str, out: &mut Vec<u8>) {
    if !value.is_empty() {
        bytes(field, value.as_bytes(), out);
    }
}

/// A varint field, left out when 0.
pub fn varint(field: u32, value: u64, out: &mut Vec<u8>) {
    if value != 0 {
        encode_key(field, WireType::Varint, out);
        encode_varint(value, out);
    }
}

/// A fixed32 field, left out when 0.
pub fn fixed32(field: u32, value: u32, out: &mut Vec<u8>) {
    if value != 0 {
        encode_key(field, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A fixed64 field, left out when 0.
pub fn fixed64(field: u32, value: u64, out: &mut Vec<u8>) {
    if value != 0 {
        encode_key(field, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A `KeyValue` as field `field` of its message.
pub fn key_value(field: u32, key: &str, value: &Value<'_>, out: &mut Vec<u8>) {
    let key_len = if key.is_empty() {
        0
    } else {
        1 + encoded_len_varint(key.len() as u64) + key.len()
    };
    let any_len = value.any_value_len();
    let len = key_len + 1 + encoded_len_varint(any_len as u64) + any_len;
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    string(1, key, out);
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(any_len as u64, out);
    value.write_any_value(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use prost::Message;

    #[test]
    fn key_values_are_what_prost_writes() {
        for (key, value, theirs) in [
            (
                "k",
                Value::Str("v"),
                any_value::Value::StringValue("v".into()),
            ),
            (
                "",
                Value::Str(""),
                any_value::Value::StringValue(String::new()),
            ),
            ("b", Value::Bool(false), any_value::Value::BoolValue(false)),
            ("i", Value::Int(-3), any_value::Value::IntValue(-3)),
            ("d", Value::Double(0.5), any_value::Value::DoubleValue(0.5)),
            (
                "x",
                Value::Bytes(&[0, 255]),
                any_value::Value::BytesValue(vec![0, 255]),
            ),
            (
                "e",
                Value::Bytes(&[]),
                any_value::Value::BytesValue(Vec::new()),
            ),
        ] {
            let mut ours = Vec::new();
            key_value(9, key, &value, &mut ours);
            let kv = KeyValue {
                key: key.into(),
                value: Some(AnyValue {
                    value: Some(theirs),
                }),
                ..Default::default()
            };
            let mut expected = Vec::new();
            prost::encoding::message::encode(9, &kv, &mut expected);
            assert_eq!(ours, expected, "{key}");
            assert_eq!(kv.encoded_len() + 2, expected.len());
        }
    }
}

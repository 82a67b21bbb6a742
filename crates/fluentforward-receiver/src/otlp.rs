//! Log records written as OTLP protobuf, field by field as otelcol's pdata writes them: the
//! body, the resource and the scope are always present (empty when unset), a value's oneof
//! is written even at its zero value. Every message's length is measured before it is
//! written, so nothing is built twice or copied.

use std::borrow::Cow;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use redline_otlp_wire::write;

use crate::msgpack::{self, Entries, Value};

/// A log record's attributes, in pdata's order.
pub(crate) type Attributes<'a> = Entries<'a>;

/// A length-delimited field's size on the wire, around `len` bytes of content.
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn field_head(field: u32, len: usize, out: &mut Vec<u8>) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

/// A `LogRecord` as field 2 (`log_records`) of a `ScopeLogs`.
pub(crate) fn log_record(
    time: u64,
    body: &Value<'_>,
    attributes: &Attributes<'_>,
    out: &mut Vec<u8>,
) {
    let body_len = any_value_len(body);
    let len = if time == 0 { 0 } else { 9 } + field_len(body_len) + list_len(attributes);
    field_head(2, len, out);
    write::fixed64(1, time, out);
    field_head(5, body_len, out);
    any_value(body, out);
    for (key, value) in attributes.iter() {
        field_head(6, key_value_len(key, value), out);
        key_value(key, value, out);
    }
}

/// Room to leave at the front of a buffer of log records for [`request`]'s head: three keys,
/// two lengths of at most 10 bytes, two empty messages.
pub(crate) const REQUEST_HEAD: usize = 32;

/// An `ExportLogsServiceRequest` of one resource and one scope, both empty, holding the log
/// records written (by [`log_record`]) after the first [`REQUEST_HEAD`] bytes of `buf`; the
/// head goes in front of them, in place.
pub(crate) fn request(mut buf: Vec<u8>) -> bytes::Bytes {
    if buf.len() < REQUEST_HEAD {
        buf.resize(REQUEST_HEAD, 0);
    }
    let records = buf.len().saturating_sub(REQUEST_HEAD);
    // The empty resource and scope: a key and a zero length each.
    let scope_logs = 2 + records;
    let resource_logs = 2 + field_len(scope_logs);
    let mut head = Vec::with_capacity(REQUEST_HEAD);
    field_head(1, resource_logs, &mut head);
    write::bytes(1, &[], &mut head);
    field_head(2, scope_logs, &mut head);
    write::bytes(1, &[], &mut head);
    let start = REQUEST_HEAD - head.len();
    buf[start..REQUEST_HEAD].copy_from_slice(&head);
    bytes::Bytes::from(buf).slice(start..)
}

fn key_value_len(key: &str, value: &Value<'_>) -> usize {
    let key_len = if key.is_empty() {
        0
    } else {
        field_len(key.len())
    };
    key_len + field_len(any_value_len(value))
}

fn key_value(key: &str, value: &Value<'_>, out: &mut Vec<u8>) {
    write::string(1, key, out);
    field_head(2, any_value_len(value), out);
    any_value(value, out);
}

/// The text otelcol makes of a value it does not keep as its own type.
enum Text<'v> {
    Borrowed(&'v str),
    Owned(String),
}

impl Text<'_> {
    fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

/// A value written as a string: what, or `None` for the other types.
fn as_text<'v>(value: &'v Value<'_>) -> Option<Text<'v>> {
    Some(match value {
        Value::Str(s) => Text::Borrowed(s),
        Value::Bin(b) => match msgpack::text(b) {
            Cow::Borrowed(s) => Text::Borrowed(s),
            Cow::Owned(s) => Text::Owned(s),
        },
        // Over int64: its decimal digits.
        Value::Uint(u) if i64::try_from(*u).is_err() => Text::Owned(u.to_string()),
        // What Go's `%v` prints for the `*msgp.RawExtension` msgp reads it into.
        Value::Ext(ty, data) => {
            let bytes: Vec<String> = data.iter().map(u8::to_string).collect();
            Text::Owned(format!("&{{[{}] {ty}}}", bytes.join(" ")))
        }
        _ => return None,
    })
}

/// The length of an `AnyValue`'s content.
fn any_value_len(value: &Value<'_>) -> usize {
    if let Some(text) = as_text(value) {
        return field_len(text.as_str().len());
    }
    match value {
        Value::Nil => 0,
        Value::Bool(_) => 2,
        Value::Int(i) => 1 + encoded_len_varint(*i as u64),
        Value::Uint(u) => 1 + encoded_len_varint(*u),
        Value::F32(_) | Value::F64(_) => 9,
        Value::Array(items) => field_len(array_len(items)),
        Value::Map(entries) => field_len(list_len(entries)),
        Value::Str(_) | Value::Bin(_) | Value::Ext(..) => 0,
    }
}

fn array_len(items: &[Value<'_>]) -> usize {
    items.iter().map(|v| field_len(any_value_len(v))).sum()
}

fn list_len(entries: &Entries<'_>) -> usize {
    entries
        .iter()
        .map(|(k, v)| field_len(key_value_len(k, v)))
        .sum()
}

/// An `AnyValue`'s content, with the conversions otelcol makes from what msgp decodes.
fn any_value(value: &Value<'_>, out: &mut Vec<u8>) {
    if let Some(text) = as_text(value) {
        write::bytes(1, text.as_str().as_bytes(), out);
        return;
    }
    match value {
        Value::Nil | Value::Str(_) | Value::Bin(_) | Value::Ext(..) => {}
        Value::Bool(b) => {
            encode_key(2, WireType::Varint, out);
            encode_varint(u64::from(*b), out);
        }
        Value::Int(i) => int(*i, out),
        Value::Uint(u) => int(*u as i64, out),
        Value::F32(f) => double(f64::from(*f), out),
        Value::F64(f) => double(*f, out),
        Value::Array(items) => {
            field_head(5, array_len(items), out);
            for item in items {
                field_head(1, any_value_len(item), out);
                any_value(item, out);
            }
        }
        Value::Map(entries) => {
            field_head(6, list_len(entries), out);
            for (key, value) in entries.iter() {
                field_head(1, key_value_len(key, value), out);
                key_value(key, value, out);
            }
        }
    }
}

fn int(i: i64, out: &mut Vec<u8>) {
    encode_key(3, WireType::Varint, out);
    encode_varint(i as u64, out);
}

fn double(d: f64, out: &mut Vec<u8>) {
    encode_key(4, WireType::SixtyFourBit, out);
    out.extend_from_slice(&d.to_le_bytes());
}

/// A value's type, for error texts.
pub(crate) fn describe(value: &Value<'_>) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint",
        Value::F32(_) => "float32",
        Value::F64(_) => "float64",
        Value::Str(_) => "string",
        Value::Bin(_) => "bytes",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "extension",
    }
}

//! Log records written as OTLP protobuf, field by field as otelcol's pdata writes them: the
//! body, the resource and the scope are always present (empty when unset), a value's oneof
//! is written even at its zero value.

use std::borrow::Cow;

use prost::encoding::{encode_key, encode_varint, WireType};
use redline_otlp_wire::write;

use crate::msgpack::Value;

/// A log record's attributes in pdata's order: a key put again keeps its place and takes the
/// new value.
#[derive(Default)]
pub(crate) struct Attributes<'a> {
    entries: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Attributes<'a> {
    pub(crate) fn put(&mut self, key: &'a [u8], value: Value<'a>) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A `LogRecord` as field 2 (`log_records`) of a `ScopeLogs`.
pub(crate) fn log_record(
    time: u64,
    body: &Value<'_>,
    attributes: &Attributes<'_>,
    out: &mut Vec<u8>,
) {
    let mut record = Vec::new();
    write::fixed64(1, time, &mut record);
    message(5, &mut record, |m| any_value(body, m));
    for (key, value) in &attributes.entries {
        message(6, &mut record, |m| key_value(key, value, m));
    }
    write::bytes(2, &record, out);
}

/// An `ExportLogsServiceRequest` of one resource and one scope, both empty, holding
/// `log_records` (written by [`log_record`]).
pub(crate) fn request(log_records: &[u8]) -> Vec<u8> {
    let mut scope_logs = Vec::with_capacity(log_records.len() + 2);
    write::bytes(1, &[], &mut scope_logs);
    scope_logs.extend_from_slice(log_records);
    let mut resource_logs = Vec::with_capacity(scope_logs.len() + 8);
    write::bytes(1, &[], &mut resource_logs);
    write::bytes(2, &scope_logs, &mut resource_logs);
    let mut request = Vec::with_capacity(resource_logs.len() + 8);
    write::bytes(1, &resource_logs, &mut request);
    request
}

/// A length-delimited field whose content `fill` writes.
fn message(field: u32, out: &mut Vec<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    fill(&mut inner);
    write::bytes(field, &inner, out);
}

fn key_value(key: &[u8], value: &Value<'_>, out: &mut Vec<u8>) {
    write::string(1, &text(key), out);
    message(2, out, |m| any_value(value, m));
}

/// An `AnyValue`'s content, with the conversions otelcol makes from what msgp decodes.
fn any_value(value: &Value<'_>, out: &mut Vec<u8>) {
    match value {
        Value::Nil => {}
        Value::Str(s) | Value::Bin(s) => write::bytes(1, text(s).as_bytes(), out),
        Value::Bool(b) => {
            encode_key(2, WireType::Varint, out);
            encode_varint(u64::from(*b), out);
        }
        Value::Int(i) => int(*i, out),
        Value::Uint(u) => match i64::try_from(*u) {
            Ok(i) => int(i, out),
            // Over int64: its decimal digits.
            Err(_) => write::bytes(1, u.to_string().as_bytes(), out),
        },
        Value::F32(f) => double(f64::from(*f), out),
        Value::F64(f) => double(*f, out),
        Value::Array(items) => message(5, out, |array| {
            for item in items {
                message(1, array, |m| any_value(item, m));
            }
        }),
        Value::Map(entries) => {
            // A Go map in otelcol: one entry per key, the last value standing.
            let mut unique = Attributes::default();
            for (key, value) in entries {
                unique.put(key, value.clone());
            }
            message(6, out, |list| {
                for (key, value) in &unique.entries {
                    message(1, list, |m| key_value(key, value, m));
                }
            });
        }
        // What Go's `%v` prints for the `*msgp.RawExtension` msgp reads it into.
        Value::Ext(ty, data) => {
            let bytes: Vec<String> = data.iter().map(u8::to_string).collect();
            let text = format!("&{{[{}] {ty}}}", bytes.join(" "));
            write::bytes(1, text.as_bytes(), out);
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

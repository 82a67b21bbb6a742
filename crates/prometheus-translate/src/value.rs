//! Attribute values as strings, byte for byte as pdata's `Value.AsString()` renders them:
//! label values must match otelcol's or the same series gets two identities.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue};

/// `AsString()` of an attribute value; borrowed for strings, the common case.
pub(crate) fn as_string(value: Option<&AnyValue>) -> Cow<'_, str> {
    match value.and_then(|v| v.value.as_ref()) {
        // A string-table index only means something in profiles: no value here.
        None | Some(Value::StringValueStrindex(_)) => Cow::Borrowed(""),
        Some(Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::BoolValue(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(Value::DoubleValue(d)) => Cow::Owned(go_float(*d)),
        Some(Value::BytesValue(b)) => {
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let mut out = String::new();
            // A NaN or an infinity inside makes Go's JSON encoder fail, and pdata then
            // returns what was written: nothing.
            if write_json(&mut out, Some(v)).is_err() {
                out.clear();
            }
            Cow::Owned(out)
        }
    }
}

/// pdata's float rendering (ES6 number to string): shortest round-trip digits, exponent form
/// below 1e-6 and from 1e21, `e-7` rather than Go's `e-07`.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust writes `1.5e21` and `1e-7`; Go writes `1.5e+21` and (after pdata's clean-up)
        // `1e-7`.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mant, exp)) if !exp.starts_with('-') => format!("{mant}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

struct Unsupported;

/// Go's `encoding/json` of `AsRaw()` without HTML escaping: map keys sorted, the last of
/// duplicate keys kept, bytes as base64 strings, empty values as `null`.
fn write_json(out: &mut String, value: Option<&Value>) -> Result<(), Unsupported> {
    match value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_str(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => {
            if !d.is_finite() {
                return Err(Unsupported);
            }
            out.push_str(&go_float(*d));
        }
        Some(Value::BytesValue(b)) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, v) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, v.value.as_ref())?;
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kvs)) => {
            // Indices of the last occurrence of every key, sorted by key.
            let mut keys: Vec<usize> = Vec::with_capacity(kvs.values.len());
            for (i, kv) in kvs.values.iter().enumerate() {
                if let Some(pos) = keys.iter().position(|&j| kvs.values[j].key == kv.key) {
                    keys[pos] = i;
                } else {
                    keys.push(i);
                }
            }
            keys.sort_by(|&a, &b| kvs.values[a].key.cmp(&kvs.values[b].key));
            out.push('{');
            for (n, &i) in keys.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let kv = &kvs.values[i];
                write_json_str(out, &kv.key);
                out.push(':');
                write_json(out, kv.value.as_ref().and_then(|v| v.value.as_ref()))?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // JavaScript line terminators: Go escapes them even without HTML escaping.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

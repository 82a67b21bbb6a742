//! Attribute values as pdata prints them: `Value.Type().String()` (`Str`, `Int`, …) and
//! `Value.AsString()`, which writes maps and slices as JSON (Go's `encoding/json` rules:
//! sorted keys, a later duplicate key winning, no HTML escaping, `\u2028` escaped, bytes in
//! base64, and an empty string when a NaN or infinity makes the JSON invalid).

use std::collections::BTreeMap;
use std::fmt::Write;

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use std::borrow::Cow;

use crate::gofmt::{double_as_string, json_float};

/// The value, or `None` when it is empty. A string-table index (profiles only) means nothing
/// outside a profile: the spec says to treat it as empty there, as pdata does.
fn value(v: Option<&AnyValue>) -> Option<&Value> {
    v.and_then(|v| v.value.as_ref())
        .filter(|v| !matches!(v, Value::StringValueStrindex(_)))
}

/// The type name pdata gives a value.
pub fn type_name(v: Option<&AnyValue>) -> &'static str {
    match value(v) {
        None | Some(Value::StringValueStrindex(_)) => "Empty",
        Some(Value::StringValue(_)) => "Str",
        Some(Value::BoolValue(_)) => "Bool",
        Some(Value::IntValue(_)) => "Int",
        Some(Value::DoubleValue(_)) => "Double",
        Some(Value::ArrayValue(_)) => "Slice",
        Some(Value::KvlistValue(_)) => "Map",
        Some(Value::BytesValue(_)) => "Bytes",
    }
}

/// `Value.AsString()`; borrowed for strings, the common case.
pub fn as_string(v: Option<&AnyValue>) -> Cow<'_, str> {
    match value(v) {
        None | Some(Value::StringValueStrindex(_)) => Cow::Borrowed(""),
        Some(Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::BoolValue(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(Value::DoubleValue(d)) => Cow::Owned(double_as_string(*d)),
        Some(Value::BytesValue(b)) => {
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(value @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            let mut out = String::new();
            // Go's marshaller fails on NaN and infinities, and otelcol prints what it got:
            // nothing.
            match write_json(&mut out, Some(value)) {
                Ok(()) => Cow::Owned(out),
                Err(NotJson) => Cow::Borrowed(""),
            }
        }
    }
}

/// `Type(AsString)`, the detailed form.
pub fn typed(v: Option<&AnyValue>) -> String {
    format!("{}({})", type_name(v), as_string(v))
}

/// A value JSON cannot hold.
struct NotJson;

fn write_json(out: &mut String, v: Option<&Value>) -> Result<(), NotJson> {
    match v {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_string(out, s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => out.push_str(&json_float(*d).ok_or(NotJson)?),
        Some(Value::BytesValue(b)) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Some(Value::ArrayValue(a)) => {
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, value(Some(item)))?;
            }
            out.push(']');
        }
        Some(Value::KvlistValue(kv)) => write_json_map(out, &kv.values)?,
    }
    Ok(())
}

/// A map as Go marshals `map[string]any`: keys sorted (by bytes), the last of duplicate keys
/// kept (what `AsRaw` builds).
fn write_json_map(out: &mut String, entries: &[KeyValue]) -> Result<(), NotJson> {
    let sorted: BTreeMap<&str, Option<&Value>> = entries
        .iter()
        .map(|kv| (kv.key.as_str(), value(kv.value.as_ref())))
        .collect();
    out.push('{');
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json(out, v)?;
    }
    out.push('}');
    Ok(())
}

/// A JSON string as Go writes it without HTML escaping: `"` and `\`, the short escapes
/// `\b \f \n \r \t`, other control characters as `\u00XX`, and U+2028/U+2029 escaped (they
/// end lines in JavaScript).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    fn v(value: Value) -> AnyValue {
        AnyValue { value: Some(value) }
    }

    fn kv(key: &str, value: Option<Value>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.map(|value| AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn scalars_print_like_pdata() {
        assert_eq!(typed(Some(&v(Value::StringValue("x".into())))), "Str(x)");
        assert_eq!(typed(Some(&v(Value::IntValue(-3)))), "Int(-3)");
        assert_eq!(typed(Some(&v(Value::DoubleValue(3.0)))), "Double(3)");
        assert_eq!(typed(Some(&v(Value::DoubleValue(1e21)))), "Double(1e+21)");
        assert_eq!(typed(Some(&v(Value::DoubleValue(f64::NAN)))), "Double(NaN)");
        assert_eq!(typed(Some(&v(Value::BoolValue(false)))), "Bool(false)");
        assert_eq!(
            typed(Some(&v(Value::BytesValue(vec![1, 2, 3])))),
            "Bytes(AQID)"
        );
        assert_eq!(typed(Some(&AnyValue { value: None })), "Empty()");
        assert_eq!(typed(None), "Empty()");
    }

    #[test]
    fn maps_and_slices_are_gos_json() {
        let map = Value::KvlistValue(KeyValueList {
            values: vec![
                kv("z", Some(Value::DoubleValue(1e21))),
                kv("y", Some(Value::DoubleValue(1e-7))),
                kv(
                    "x",
                    Some(Value::StringValue("<a&b>\"q\"\\ \t é \u{2028}".into())),
                ),
                kv("w", Some(Value::BytesValue(vec![1, 2, 3]))),
                kv("v", None),
                kv("t", Some(Value::ArrayValue(ArrayValue::default()))),
                kv("s", Some(Value::KvlistValue(KeyValueList::default()))),
                kv("r", Some(Value::DoubleValue(100.0))),
                kv("r", Some(Value::IntValue(7))),
            ],
        });
        assert_eq!(
            typed(Some(&v(map))),
            r#"Map({"r":7,"s":{},"t":[],"v":null,"w":"AQID","x":"<a&b>\"q\"\\ \t é \u2028","y":1e-7,"z":1e+21})"#
        );
        let controls = Value::ArrayValue(ArrayValue {
            values: vec![v(Value::StringValue(
                "a\u{1}b\u{8}c\u{c}d\re\nf\u{1f}g\u{7f}h\u{2029}".into(),
            ))],
        });
        assert_eq!(
            as_string(Some(&v(controls))),
            "[\"a\\u0001b\\bc\\fd\\re\\nf\\u001fg\u{7f}h\\u2029\"]"
        );
        let nan = Value::ArrayValue(ArrayValue {
            values: vec![v(Value::DoubleValue(f64::NAN)), v(Value::DoubleValue(1.0))],
        });
        assert_eq!(
            typed(Some(&v(nan))),
            "Slice()",
            "Go's marshal fails: nothing"
        );
    }
}

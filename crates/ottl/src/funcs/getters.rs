//! otelcol's typed getters (`StringGetter`, `StringLikeGetter`, `IntLikeGetter`, ...): how a
//! function argument of a given kind turns a value into what the function needs.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValueList};

use crate::error::EvalError;
use crate::eval::{eval, Reader};
use crate::ir::Expr;
use crate::value::{hex_lower, MapRef, Value};

fn fetch<'a, R: Reader + ?Sized>(r: &'a R, e: &'a Expr) -> Result<Value<'a>, EvalError> {
    eval(r, e).map_err(|err| err.context("error getting value"))
}

/// Inlined for the literal: a replacement or a key is nearly always one, and the dry run
/// asks for it on every item (a call returns the `Result` through memory, and reading it
/// back stalls).
#[inline(always)]
pub(crate) fn string<'a, R: Reader + ?Sized>(
    r: &'a R,
    e: &'a Expr,
) -> Result<Cow<'a, str>, EvalError> {
    match e {
        Expr::Literal(Value::Str(s)) => Ok(Cow::Borrowed(s)),
        _ => evaluated_string(r, e),
    }
}

fn evaluated_string<'a, R: Reader + ?Sized>(
    r: &'a R,
    e: &'a Expr,
) -> Result<Cow<'a, str>, EvalError> {
    value_as_string(fetch(r, e)?)
}

pub(crate) fn value_as_string(v: Value<'_>) -> Result<Cow<'_, str>, EvalError> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Nil => Err(EvalError::type_error("expected string but got nil")),
        other => Err(EvalError::type_error(format!(
            "expected string but got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn int<R: Reader + ?Sized>(r: &R, e: &Expr) -> Result<i64, EvalError> {
    match fetch(r, e)? {
        Value::Int(i) => Ok(i),
        Value::Nil => Err(EvalError::type_error("expected int64 but got nil")),
        other => Err(EvalError::type_error(format!(
            "expected int64 but got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn map<'a, R: Reader + ?Sized>(r: &'a R, e: &'a Expr) -> Result<MapRef<'a>, EvalError> {
    value_as_map(fetch(r, e)?)
}

pub(crate) fn value_as_map(v: Value<'_>) -> Result<MapRef<'_>, EvalError> {
    match v {
        Value::Map(m) => Ok(m),
        Value::Nil => Err(EvalError::type_error("expected pcommon.Map but got nil")),
        other => Err(EvalError::type_error(format!(
            "expected pcommon.Map but got {}",
            other.type_name()
        ))),
    }
}

/// `StringLikeGetter`: nil stays `None`; other types are rendered as otelcol does.
pub(crate) fn string_like<'a, R: Reader + ?Sized>(
    r: &'a R,
    e: &'a Expr,
) -> Result<Option<Cow<'a, str>>, EvalError> {
    value_to_string_like(fetch(r, e)?)
}

pub(crate) fn value_to_string_like(v: Value<'_>) -> Result<Option<Cow<'_, str>>, EvalError> {
    Ok(Some(match v {
        Value::Nil => return Ok(None),
        Value::Str(s) => s,
        Value::Bytes(b) => Cow::Owned(hex_lower(&b)),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        Value::Double(d) => match redline_pdata_text::json_float(d) {
            Some(s) => Cow::Owned(s),
            None => return Err(EvalError::type_error("unsupported type: float64")),
        },
        Value::Map(m) => Cow::Owned(json_of(AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: m.into_vec(),
            })),
        })?),
        Value::Slice(s) => Cow::Owned(json_of(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: s.into_vec(),
            })),
        })?),
        Value::TraceId(id) => Cow::Owned(json_byte_array(&id)),
        Value::SpanId(id) => Cow::Owned(json_byte_array(&id)),
        Value::Counts(c) => {
            let parts: Vec<String> = c.iter().map(u64::to_string).collect();
            Cow::Owned(format!("[{}]", parts.join(",")))
        }
        Value::Bounds(ref b) => {
            // json.Marshal refuses NaN and infinities.
            let parts: Option<Vec<String>> = b
                .iter()
                .map(|d| redline_pdata_text::json_float(*d))
                .collect();
            match parts {
                Some(parts) => Cow::Owned(format!("[{}]", parts.join(","))),
                None => {
                    return Err(EvalError::type_error(format!(
                        "unsupported type: {}",
                        v.type_name()
                    )))
                }
            }
        }
        Value::Opaque { .. } => {
            return Err(EvalError::type_error(format!(
                "unsupported type: {}",
                v.type_name()
            )))
        }
    }))
}

// json.Marshal of a map or slice; NaN or infinities make it fail.
fn json_of(v: AnyValue) -> Result<String, EvalError> {
    let s = redline_pdata_text::as_string(Some(&v)).into_owned();
    if s.is_empty() {
        return Err(EvalError::new("json: unsupported value"));
    }
    Ok(s)
}

// json.Marshal of a Go byte array (not a slice): a list of numbers.
fn json_byte_array(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
pub(crate) fn parse_go_int(s: &str) -> Result<i64, EvalError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EvalError::new(format!(
            "strconv.ParseInt: parsing {s:?}: invalid syntax"
        )));
    }
    s.trim_start_matches('+').parse::<i64>().map_err(|_| {
        EvalError::new(format!(
            "strconv.ParseInt: parsing {s:?}: value out of range"
        ))
    })
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms OTLP data carries.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, EvalError> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let special = matches!(body, "inf" | "infinity" | "nan");
    let plain = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'));
    if !(special || plain) {
        return Err(EvalError::new(format!(
            "strconv.ParseFloat: parsing {s:?}: invalid syntax"
        )));
    }
    s.parse::<f64>()
        .map_err(|_| EvalError::new(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")))
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_go_bool(s: &str) -> Result<bool, EvalError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(EvalError::new(format!(
            "strconv.ParseBool: parsing {s:?}: invalid syntax"
        ))),
    }
}

fn unsupported(v: &Value<'_>) -> EvalError {
    EvalError::type_error(format!("unsupported type: {}", v.type_name()))
}

/// `IntLikeGetter`.
pub(crate) fn int_like<R: Reader + ?Sized>(r: &R, e: &Expr) -> Result<Option<i64>, EvalError> {
    let v = fetch(r, e)?;
    Ok(Some(match &v {
        Value::Nil => return Ok(None),
        Value::Int(i) => *i,
        Value::Str(s) => parse_go_int(s)?,
        // Go's float-to-int conversion truncates toward zero.
        Value::Double(d) => *d as i64,
        Value::Bool(b) => i64::from(*b),
        _ => return Err(unsupported(&v)),
    }))
}

/// `FloatLikeGetter`.
pub(crate) fn float_like<R: Reader + ?Sized>(r: &R, e: &Expr) -> Result<Option<f64>, EvalError> {
    let v = fetch(r, e)?;
    Ok(Some(match &v {
        Value::Nil => return Ok(None),
        Value::Double(d) => *d,
        Value::Int(i) => *i as f64,
        Value::Str(s) => parse_go_float(s)?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => return Err(unsupported(&v)),
    }))
}

/// `BoolLikeGetter`.
pub(crate) fn bool_like<R: Reader + ?Sized>(r: &R, e: &Expr) -> Result<Option<bool>, EvalError> {
    let v = fetch(r, e)?;
    Ok(Some(match &v {
        Value::Nil => return Ok(None),
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Double(d) => *d != 0.0,
        Value::Str(s) => parse_go_bool(s)?,
        _ => return Err(unsupported(&v)),
    }))
}

/// `ByteSliceLikeGetter`: numbers become their big-endian bytes, strings their UTF-8.
pub(crate) fn bytes_like<'a, R: Reader + ?Sized>(
    r: &'a R,
    e: &'a Expr,
) -> Result<Option<Cow<'a, [u8]>>, EvalError> {
    let v = fetch(r, e)?;
    Ok(Some(match v {
        Value::Nil => return Ok(None),
        Value::Bytes(b) => b,
        Value::Str(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Value::Str(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        Value::Int(i) => Cow::Owned(i.to_be_bytes().to_vec()),
        Value::Double(d) => Cow::Owned(d.to_bits().to_be_bytes().to_vec()),
        Value::Bool(b) => Cow::Owned(vec![u8::from(b)]),
        other => return Err(unsupported(&other)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_parsing() {
        assert_eq!(parse_go_int("+42").ok(), Some(42));
        assert_eq!(parse_go_int("-7").ok(), Some(-7));
        assert!(parse_go_int("1.5").is_err());
        assert!(parse_go_int(" 1").is_err());
        assert!(parse_go_int("99999999999999999999").is_err());
        assert_eq!(parse_go_float("1e3").ok(), Some(1000.0));
        assert!(parse_go_float("Inf").is_ok_and(f64::is_infinite));
        assert!(parse_go_float("abc").is_err());
        assert_eq!(parse_go_bool("T").ok(), Some(true));
        assert!(parse_go_bool("yes").is_err());
    }

    #[test]
    fn string_like_renders_as_otelcol() {
        let s = |v: Value<'static>| {
            value_to_string_like(v)
                .ok()
                .flatten()
                .map(|c| c.into_owned())
        };
        assert_eq!(s(Value::Int(5)), Some("5".into()));
        assert_eq!(s(Value::Double(1.5)), Some("1.5".into()));
        assert_eq!(s(Value::Bool(true)), Some("true".into()));
        assert_eq!(
            s(Value::Bytes(vec![0xab, 0x01].into())),
            Some("ab01".into())
        );
        assert_eq!(s(Value::Nil), None);
    }
}

//! Converter implementations (otelcol's `ottlfuncs` converters).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use regex::Regex;
use sha2::{Digest, Sha256};

use super::case::{to_camel, to_snake};
use super::getters::{self, value_to_string_like};
use super::patterns::compile_go_regex;
use super::{Case, Converter, Pattern, SliceArg, StringFn};
use crate::error::EvalError;
use crate::eval::{eval, Reader};
use crate::paths::{Field, SpanField};
use crate::value::{hex_lower, SliceRef, Value};

/// The regex of a pattern argument (compiled now if it is computed per item).
pub(crate) fn regex_of<'a, R: Reader + ?Sized>(
    r: &'a R,
    pattern: &'a Pattern,
    func: &str,
) -> Result<Cow<'a, Regex>, EvalError> {
    match pattern {
        Pattern::Static(re) => Ok(Cow::Borrowed(re)),
        Pattern::Dynamic(e) => {
            let p = getters::string(r, e).map_err(|err| {
                EvalError::new(format!(
                    "the regex pattern supplied to {func} is not a valid pattern: {err}"
                ))
            })?;
            compile_go_regex(&p).map(Cow::Owned).map_err(|err| {
                EvalError::new(format!(
                    "the regex pattern supplied to {func} {p:?} is not a valid pattern: {err}"
                ))
            })
        }
    }
}

pub(crate) fn apply_string_fn(f: StringFn, input: &str) -> String {
    match f {
        StringFn::Sha256 => hex_lower(&Sha256::digest(input.as_bytes())),
        StringFn::ToLowerCase => input.to_lowercase(),
        StringFn::ToUpperCase => input.to_uppercase(),
    }
}

fn strings_slice(parts: Vec<&str>) -> Value<'static> {
    Value::Slice(SliceRef::Owned(
        parts
            .into_iter()
            .map(|p| AnyValue {
                value: Some(any_value::Value::StringValue(p.to_string())),
            })
            .collect(),
    ))
}

/// A typed-getter check that turns otelcol's `TypeError` into `false` (`IsString` & co).
fn is_type(result: Result<(), EvalError>) -> Result<Value<'static>, EvalError> {
    match result {
        Ok(()) => Ok(Value::Bool(true)),
        Err(e) if e.is_type_error() => Ok(Value::Bool(false)),
        Err(e) => Err(e),
    }
}

pub(crate) fn eval_converter<'a, R: Reader + ?Sized>(
    r: &'a R,
    c: &'a Converter,
) -> Result<Value<'a>, EvalError> {
    Ok(match c {
        Converter::IsMatch { target, pattern } => {
            let re = regex_of(r, pattern, "IsMatch")?;
            match getters::string_like(r, target)? {
                Some(s) => Value::Bool(re.is_match(&s)),
                None => Value::Bool(false),
            }
        }
        Converter::Concat { vals, delimiter } => {
            let delimiter = getters::string(r, delimiter)?;
            let mut out = String::new();
            let mut push = |part: Option<Cow<'_, str>>, first: bool| {
                if !first {
                    out.push_str(&delimiter);
                }
                out.push_str(part.as_deref().unwrap_or("<nil>"));
            };
            match vals {
                SliceArg::Items(items) => {
                    for (i, item) in items.iter().enumerate() {
                        push(getters::string_like(r, item)?, i == 0);
                    }
                }
                SliceArg::Runtime(e) => match eval(r, e)? {
                    Value::Nil => {}
                    Value::Slice(s) => {
                        for (i, item) in s.elements().enumerate() {
                            push(value_to_string_like(item)?, i == 0);
                        }
                    }
                    other => {
                        return Err(EvalError::type_error(format!(
                            "expected pcommon.Slice but got {}",
                            other.type_name()
                        )))
                    }
                },
            }
            Value::string(out)
        }
        Converter::Split { target, delimiter } => {
            let s = getters::string(r, target)?;
            let d = getters::string(r, delimiter)?;
            if d.is_empty() {
                // Go's strings.Split with an empty separator splits into UTF-8 characters.
                let mut parts = Vec::new();
                let mut rest: &str = &s;
                while let Some(c) = rest.chars().next() {
                    let (head, tail) = rest.split_at(c.len_utf8());
                    parts.push(head);
                    rest = tail;
                }
                strings_slice(parts)
            } else {
                strings_slice(s.split(d.as_ref()).collect())
            }
        }
        Converter::Substring {
            target,
            start,
            length,
            utf8_safe,
        } => substring(r, target, start, length, *utf8_safe)?,
        Converter::ConvertCase { target, case } => {
            let s = getters::string(r, target)?;
            if s.is_empty() {
                return Ok(Value::Str(s));
            }
            Value::string(match case {
                Case::Lower => s.to_lowercase(),
                Case::Upper => s.to_uppercase(),
                Case::Snake => to_snake(&s),
                Case::Camel => to_camel(&s),
            })
        }
        Converter::Int(e) => getters::int_like(r, e)?.map_or(Value::Nil, Value::Int),
        Converter::Double(e) => getters::float_like(r, e)?.map_or(Value::Nil, Value::Double),
        Converter::Bool(e) => getters::bool_like(r, e)?.map_or(Value::Nil, Value::Bool),
        Converter::String(e) => getters::string_like(r, e)?.map_or(Value::Nil, Value::Str),
        Converter::Len(e) => {
            let v = eval(r, e).map_err(|err| err.context("error getting value"))?;
            let n = match &v {
                Value::Str(s) => s.len(),
                Value::Bytes(b) => b.len(),
                Value::Map(m) => m.len(),
                Value::Slice(s) => s.len(),
                Value::Counts(c) => c.len(),
                Value::Bounds(b) => b.len(),
                Value::Opaque { kind, len } if kind.is_list() => *len,
                other => {
                    return Err(EvalError::new(format!(
                        "Len: unsupported target type {}. Len requires a string, slice, map, or pdata collection",
                        other.type_name()
                    )))
                }
            };
            Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
        }
        Converter::Sha256(e) => {
            Value::string(apply_string_fn(StringFn::Sha256, &getters::string(r, e)?))
        }
        Converter::IsString(e) => is_type(getters::string(r, e).map(|_| ()))?,
        Converter::IsRootSpan => {
            let parent = r.read(Field::Span(SpanField::ParentSpanId))?;
            Value::Bool(matches!(parent, Value::SpanId(id) if id == [0; 8]))
        }
        Converter::IsMap(e) => is_type(getters::map(r, e).map(|_| ()))?,
        Converter::IsBool(e) => is_type(typed(r, e, "bool", |v| matches!(v, Value::Bool(_))))?,
        Converter::IsInt(e) => is_type(getters::int(r, e).map(|_| ()))?,
        Converter::IsDouble(e) => {
            is_type(typed(r, e, "float64", |v| matches!(v, Value::Double(_))))?
        }
        Converter::IsList(e) => {
            let v = eval(r, e).map_err(|err| err.context("error getting value"))?;
            let list = match v {
                Value::Slice(_) | Value::Bounds(_) => true,
                Value::Opaque { kind, .. } => kind.is_list(),
                // Go's `IsList` does not list `[]uint64`.
                _ => false,
            };
            Value::Bool(list)
        }
        Converter::HasPrefix { target, prefix } => {
            let s = getters::string(r, target)?;
            Value::Bool(s.starts_with(getters::string(r, prefix)?.as_ref()))
        }
        Converter::HasSuffix { target, suffix } => {
            let s = getters::string(r, target)?;
            Value::Bool(s.ends_with(getters::string(r, suffix)?.as_ref()))
        }
        Converter::ToLowerCase(e) => Value::string(apply_string_fn(
            StringFn::ToLowerCase,
            &getters::string(r, e)?,
        )),
        Converter::ToUpperCase(e) => Value::string(apply_string_fn(
            StringFn::ToUpperCase,
            &getters::string(r, e)?,
        )),
        Converter::Hex(e) => match getters::bytes_like(r, e)? {
            Some(b) => Value::string(hex_lower(&b)),
            None => Value::Nil,
        },
        Converter::Trim { target, cutset } => {
            let s = getters::string(r, target)?;
            Value::string(s.trim_matches(|c| cutset.contains(c)).to_string())
        }
        Converter::TrimPrefix { target, prefix } => {
            let s = getters::string(r, target)?;
            let p = getters::string(r, prefix)?;
            Value::string(s.strip_prefix(p.as_ref()).unwrap_or(&s).to_string())
        }
        Converter::TrimSuffix { target, suffix } => {
            let s = getters::string(r, target)?;
            let p = getters::string(r, suffix)?;
            Value::string(s.strip_suffix(p.as_ref()).unwrap_or(&s).to_string())
        }
    })
}

fn typed<R: Reader + ?Sized>(
    r: &R,
    e: &crate::ir::Expr,
    want: &str,
    ok: impl Fn(&Value<'_>) -> bool,
) -> Result<(), EvalError> {
    let v = eval(r, e).map_err(|err| err.context("error getting value"))?;
    if ok(&v) {
        Ok(())
    } else if v.is_nil() {
        Err(EvalError::type_error(format!(
            "expected {want} but got nil"
        )))
    } else {
        Err(EvalError::type_error(format!(
            "expected {want} but got {}",
            v.type_name()
        )))
    }
}

fn substring<'a, R: Reader + ?Sized>(
    r: &'a R,
    target: &'a crate::ir::Expr,
    start: &'a crate::ir::Expr,
    length: &'a crate::ir::Expr,
    utf8_safe: bool,
) -> Result<Value<'a>, EvalError> {
    let start = getters::int(r, start)?;
    if start < 0 {
        return Err(EvalError::new(format!(
            "invalid start for substring function, {start} cannot be negative"
        )));
    }
    let length = getters::int(r, length)?;
    if length <= 0 {
        return Err(EvalError::new(format!(
            "invalid length for substring function, {length} cannot be negative or zero"
        )));
    }
    let s = getters::string(r, target)?;
    let len = i64::try_from(s.len()).unwrap_or(i64::MAX);
    if start > len || length > len - start {
        return Err(EvalError::new(format!(
            "invalid range for substring function, start({start})+length({length}) cannot be greater than the length of target string({len})"
        )));
    }
    let (from, to) = {
        let bytes = s.as_bytes();
        let rune_start = |i: usize| bytes.get(i).is_some_and(|b| (b & 0xC0) != 0x80);
        // Both fit: checked against the string's length above.
        let mut from = usize::try_from(start).unwrap_or(0);
        let mut to = usize::try_from(start + length).unwrap_or(0);
        if utf8_safe {
            while from < bytes.len() && !rune_start(from) {
                from += 1;
            }
            while from < to && to < bytes.len() && !rune_start(to) {
                to -= 1;
            }
            to = to.max(from);
        }
        (from, to)
    };
    // Go slices bytes and may cut a character in half; the lossy conversion shows such a
    // cut as U+FFFD where Go would keep the raw bytes.
    let lossy = |b: &[u8]| Value::string(String::from_utf8_lossy(b).into_owned());
    Ok(match s {
        Cow::Borrowed(b) => match b.get(from..to) {
            Some(part) => Value::str(part),
            None => lossy(b.as_bytes().get(from..to).unwrap_or(&[])),
        },
        Cow::Owned(o) => lossy(o.as_bytes().get(from..to).unwrap_or(&[])),
    })
}

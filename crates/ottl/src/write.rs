//! Writing through paths on prost messages, with pdata's rules (`ctxutil.SetValue`,
//! `SetMapValue`, `SetIndexableValue`): missing map keys and empty values are created on the
//! way, a slice index must exist, a scalar cannot be indexed.

use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};

use crate::error::EvalError;
use crate::eval::{map_key, resolve_keys, slice_index, RKey, Reader};
use crate::ir::CPath;
use crate::paths::{Field, Indexing, LogField, SpanField};
use crate::tracestate;
use crate::value::Value;

/// Write access (prost contexts only).
pub(crate) trait Writer: Reader {
    /// Sets a field that takes no keys (including a whole map such as `attributes`).
    fn write(&mut self, field: Field, value: Value<'static>) -> Result<(), EvalError>;
    /// The map behind a map field (`attributes`, `metadata`, `cache`).
    fn map_mut(&mut self, field: Field) -> Result<&mut Vec<KeyValue>, EvalError>;
    /// The value behind an any-value field (`body`).
    fn any_mut(&mut self, field: Field) -> Result<&mut AnyValue, EvalError>;
}

pub(crate) fn owned_keys<R: Reader + ?Sized>(
    r: &R,
    path: &CPath,
) -> Result<Vec<RKey<'static>>, EvalError> {
    Ok(resolve_keys(r, &path.keys)?
        .into_iter()
        .map(RKey::into_owned)
        .collect())
}

fn is_any_field(field: Field) -> bool {
    field == Field::Log(LogField::Body)
}

/// `target.Set(value)` for a path argument.
pub(crate) fn set_path<W: Writer + ?Sized>(
    w: &mut W,
    path: &CPath,
    value: Value<'static>,
) -> Result<(), EvalError> {
    let keys = owned_keys(w, path)?;
    match path.field.indexing() {
        Indexing::None => w.write(path.field, value),
        Indexing::ExactlyOne => set_trace_state_key(w, &keys, value),
        Indexing::Nested if is_any_field(path.field) => {
            let mut cur = w.any_mut(path.field)?;
            cur = descend_creating(cur, &keys)?;
            set_value(cur, value)
        }
        Indexing::Nested => {
            let map = w.map_mut(path.field)?;
            let Some((first, rest)) = keys.split_first() else {
                return set_map(map, value);
            };
            let key = map_key(first).map_err(|e| e.context("cannot set map value"))?;
            let slot = map_slot(map, key);
            let cur = descend_creating(slot, rest)?;
            set_value(cur, value)
        }
    }
}

fn set_trace_state_key<W: Writer + ?Sized>(
    w: &mut W,
    keys: &[RKey<'static>],
    value: Value<'static>,
) -> Result<(), EvalError> {
    let new_value = expect_string(value)?;
    let raw = w
        .read(Field::Span(SpanField::TraceState))?
        .as_str()
        .unwrap_or("")
        .to_string();
    let Some(RKey::Str(key)) = keys.first() else {
        return Err(EvalError::new("trace_state indexing type must be a string"));
    };
    if let Some(updated) = tracestate::insert(&raw, key, &new_value) {
        w.write(Field::Span(SpanField::TraceState), Value::string(updated))?;
    }
    Ok(())
}

/// `ctxutil.ExpectType[string]`.
pub(crate) fn expect_string(v: Value<'static>) -> Result<String, EvalError> {
    match v {
        Value::Str(s) => Ok(s.into_owned()),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects string but got {}",
            other.type_name()
        ))),
    }
}

/// `ctxutil.ExpectType[int64]`.
pub(crate) fn expect_int(v: &Value<'_>) -> Result<i64, EvalError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects int64 but got {}",
            other.type_name()
        ))),
    }
}

/// `ctxutil.ExpectType[float64]`.
pub(crate) fn expect_float(v: &Value<'_>) -> Result<f64, EvalError> {
    match v {
        Value::Double(d) => Ok(*d),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects float64 but got {}",
            other.type_name()
        ))),
    }
}

/// `ctxutil.ExpectType[bool]`.
pub(crate) fn expect_bool(v: &Value<'_>) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects bool but got {}",
            other.type_name()
        ))),
    }
}

/// `ctxutil.SetMap`: a whole map replaced (nil empties it).
pub(crate) fn set_map(map: &mut Vec<KeyValue>, value: Value<'static>) -> Result<(), EvalError> {
    match value {
        Value::Nil => map.clear(),
        Value::Map(m) => *map = m.into_vec(),
        other => {
            return Err(EvalError::new(format!(
                "unsupported type provided for setting a pcommon.Map: {}",
                other.type_name()
            )))
        }
    }
    Ok(())
}

/// pdata's `PutEmpty` lookup: the first entry with the key, or a new empty one at the end.
pub(crate) fn map_slot<'m>(map: &'m mut Vec<KeyValue>, key: &str) -> &'m mut AnyValue {
    let index = match map.iter().position(|kv| kv.key == key) {
        Some(i) => i,
        None => {
            map.push(KeyValue {
                key: key.to_string(),
                value: Some(AnyValue { value: None }),
                ..Default::default()
            });
            map.len() - 1
        }
    };
    let kv = &mut map[index];
    kv.value.get_or_insert(AnyValue { value: None })
}

/// Follows keys for a write, creating maps and slices in empty values.
fn descend_creating<'v>(
    mut cur: &'v mut AnyValue,
    keys: &[RKey<'_>],
) -> Result<&'v mut AnyValue, EvalError> {
    for key in keys {
        let empty = matches!(
            cur.value,
            None | Some(any_value::Value::StringValueStrindex(_))
        );
        if empty {
            cur.value = Some(match key {
                RKey::Str(_) => any_value::Value::KvlistValue(KeyValueList { values: Vec::new() }),
                RKey::Int(i) => {
                    // Go appends `i` empty values, then the one written (none for i < 0).
                    let pad = usize::try_from(*i).unwrap_or(0);
                    let mut values = Vec::new();
                    values.resize(pad + 1, AnyValue { value: None });
                    any_value::Value::ArrayValue(ArrayValue { values })
                }
                RKey::Other(_) => {
                    return Err(EvalError::new(
                        "neither a string nor an int index was given, this is an error in the OTTL",
                    ))
                }
            });
        }
        cur = match &mut cur.value {
            Some(any_value::Value::KvlistValue(m)) => map_slot(&mut m.values, map_key(key)?),
            Some(any_value::Value::ArrayValue(a)) => {
                let len = a.values.len();
                let i = if empty {
                    len.saturating_sub(1)
                } else {
                    slice_index(key, len)?
                };
                match a.values.get_mut(i) {
                    Some(v) => v,
                    None => return Err(EvalError::new(format!("index {i} out of bounds"))),
                }
            }
            other => {
                let name = Value::from_any_owned(Some(AnyValue {
                    value: other.clone(),
                }))
                .pdata_type_name();
                return Err(EvalError::new(format!(
                    "type {name} does not support string indexing"
                )));
            }
        };
    }
    Ok(cur)
}

/// `ctxutil.SetValue`: stores a value into a pdata value.
pub(crate) fn set_value(target: &mut AnyValue, value: Value<'static>) -> Result<(), EvalError> {
    if let Value::TraceId(_) | Value::SpanId(_) | Value::Counts(_) | Value::Opaque { .. } = value {
        let current = Value::from_any(Some(target)).pdata_type_name();
        return Err(EvalError::new(format!(
            "unsupported type {} for set operation; current value type is {current}",
            value.type_name()
        )));
    }
    target.value = match value {
        Value::Nil => None,
        Value::Str(s) => Some(any_value::Value::StringValue(s.into_owned())),
        Value::Bytes(b) => Some(any_value::Value::BytesValue(b.into_owned())),
        Value::Map(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: m.into_vec(),
        })),
        Value::Slice(s) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: s.into_vec(),
        })),
        other => other.to_any().and_then(|a| a.value),
    };
    Ok(())
}

/// The map a `PMapGetSetter` argument points at, for editing in place.
pub(crate) fn map_target<'w, W: Writer + ?Sized>(
    w: &'w mut W,
    path: &CPath,
) -> Result<&'w mut Vec<KeyValue>, EvalError> {
    let keys = owned_keys(w, path)?;
    if path.field.indexing() != Indexing::Nested {
        let v = w.read(path.field)?;
        return Err(not_a_map(&v));
    }
    let mut cur: &mut AnyValue = if is_any_field(path.field) {
        w.any_mut(path.field)?
    } else {
        let map = w.map_mut(path.field)?;
        let Some((first, _)) = keys.split_first() else {
            return Ok(map);
        };
        let key = map_key(first)?;
        match map.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value.get_or_insert(AnyValue { value: None }),
            None => return Err(not_a_map(&Value::Nil)),
        }
    };
    let rest = if is_any_field(path.field) {
        &keys[..]
    } else {
        keys.get(1..).unwrap_or(&[])
    };
    for key in rest {
        cur = match &mut cur.value {
            Some(any_value::Value::KvlistValue(m)) => {
                let k = map_key(key)?;
                match m.values.iter_mut().find(|kv| kv.key == k) {
                    Some(kv) => kv.value.get_or_insert(AnyValue { value: None }),
                    None => return Err(not_a_map(&Value::Nil)),
                }
            }
            Some(any_value::Value::ArrayValue(a)) => {
                let i = slice_index(key, a.values.len())?;
                match a.values.get_mut(i) {
                    Some(v) => v,
                    None => return Err(EvalError::new(format!("index {i} out of bounds"))),
                }
            }
            other => {
                let name = Value::from_any(Some(&AnyValue {
                    value: other.clone(),
                }))
                .pdata_type_name();
                return Err(EvalError::new(format!(
                    "type {name} does not support string indexing"
                )));
            }
        };
    }
    match &mut cur.value {
        Some(any_value::Value::KvlistValue(m)) => Ok(&mut m.values),
        other => {
            let v = Value::from_any_owned(Some(AnyValue {
                value: other.clone(),
            }));
            Err(not_a_map(&v))
        }
    }
}

pub(crate) fn not_a_map(v: &Value<'_>) -> EvalError {
    if v.is_nil() {
        EvalError::type_error("expected pcommon.Map but got nil")
    } else {
        EvalError::type_error(format!("expected pcommon.Map but got {}", v.type_name()))
    }
}

/// The string held by a value, if it is one (`pcommon.Value.Str()` on a string).
pub(crate) fn any_str(v: &AnyValue) -> Option<&str> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Replaces a value's string (`Value.SetStr`).
pub(crate) fn set_str(v: &mut AnyValue, s: String) {
    v.value = Some(any_value::Value::StringValue(s));
}

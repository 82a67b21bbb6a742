//! The evaluator, generic over a [`Reader`]: the same code runs on prost messages (apply) and
//! on borrowed views of the encoded request (dry run).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use crate::compare::{arithmetic, compare, negate};
use crate::error::EvalError;
use crate::funcs::eval_converter;
use crate::ir::{CKey, CPath, Cond, ConverterCall, Expr};
use crate::paths::{Field, Indexing, SpanField};
use crate::value::{kv, MapRef, SliceRef, Value};

/// Read access to the item a statement runs on and the items above it.
pub(crate) trait Reader {
    /// The field's value without keys applied.
    fn read(&self, field: Field) -> Result<Value<'_>, EvalError>;
    /// The item's `cache` map.
    fn cache(&self) -> &[KeyValue];
}

/// A key resolved at run time.
#[derive(Debug, Clone)]
pub(crate) enum RKey<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    /// An expression key of another type (its Go type name).
    Other(&'static str),
}

impl RKey<'_> {
    pub(crate) fn into_owned(self) -> RKey<'static> {
        match self {
            RKey::Str(s) => RKey::Str(Cow::Owned(s.into_owned())),
            RKey::Int(i) => RKey::Int(i),
            RKey::Other(t) => RKey::Other(t),
        }
    }
}

pub(crate) fn resolve_key<'a, R: Reader + ?Sized>(
    r: &'a R,
    key: &'a CKey,
) -> Result<RKey<'a>, EvalError> {
    Ok(match key {
        CKey::Str(s) => RKey::Str(Cow::Borrowed(s)),
        CKey::Int(i) => RKey::Int(*i),
        CKey::Expr(e) => match eval(r, e)? {
            Value::Str(s) => RKey::Str(s),
            Value::Int(i) => RKey::Int(i),
            other => RKey::Other(other.type_name()),
        },
    })
}

pub(crate) fn resolve_keys<'a, R: Reader + ?Sized>(
    r: &'a R,
    keys: &'a [CKey],
) -> Result<Vec<RKey<'a>>, EvalError> {
    keys.iter().map(|k| resolve_key(r, k)).collect()
}

pub(crate) fn map_key<'k>(key: &'k RKey<'_>) -> Result<&'k str, EvalError> {
    match key {
        RKey::Str(s) => Ok(s),
        RKey::Int(_) => Err(EvalError::new(
            "unable to resolve a string index in map: invalid key type",
        )),
        RKey::Other(t) => Err(EvalError::new(format!(
            "unable to resolve a string index in map: could not resolve key for map/slice, expecting 'string' but got '{t}'"
        ))),
    }
}

pub(crate) fn slice_index(key: &RKey<'_>, len: usize) -> Result<usize, EvalError> {
    let i = match key {
        RKey::Int(i) => *i,
        RKey::Str(_) => {
            return Err(EvalError::new(
                "unable to resolve an integer index in slice: invalid key type",
            ))
        }
        RKey::Other(t) => {
            return Err(EvalError::new(format!(
                "unable to resolve an integer index in slice: could not resolve key for map/slice, expecting 'int64' but got '{t}'"
            )))
        }
    };
    usize::try_from(i)
        .ok()
        .filter(|i| *i < len)
        .ok_or_else(|| EvalError::new(format!("index {i} out of bounds")))
}

/// Applies keys to a value as `ctxutil.getIndexableValue`: a missing map key is nil, a
/// slice index out of range or indexing a scalar is an error.
pub(crate) fn index_value<'a>(mut v: Value<'a>, keys: &[RKey<'_>]) -> Result<Value<'a>, EvalError> {
    for key in keys {
        v = match v {
            Value::Map(m) => match m.take(map_key(key)?) {
                Some(inner) => inner,
                None => return Ok(Value::Nil),
            },
            Value::Slice(s) => {
                let i = slice_index(key, s.len())?;
                s.take(i).unwrap_or(Value::Nil)
            }
            other => {
                return Err(EvalError::new(format!(
                    "type {} does not support string indexing",
                    other.pdata_type_name()
                )))
            }
        };
    }
    Ok(v)
}

pub(crate) fn eval<'a, R: Reader + ?Sized>(r: &'a R, e: &'a Expr) -> Result<Value<'a>, EvalError> {
    match e {
        Expr::Literal(v) => Ok(reborrow(v)),
        Expr::Path(p) => read_path(r, p),
        Expr::Call(c) => eval_call(r, c),
        Expr::List(items) => {
            let mut values: Vec<AnyValue> = Vec::with_capacity(items.len());
            for item in items {
                let v = eval(r, item)?;
                values.push(v.to_any().unwrap_or(AnyValue { value: None }));
            }
            Ok(Value::Slice(SliceRef::Owned(values)))
        }
        Expr::Map(entries) => {
            let mut kvs: Vec<KeyValue> = Vec::with_capacity(entries.len());
            for (k, item) in entries {
                let v = eval(r, item)?;
                kvs.push(kv(k, &v));
            }
            Ok(Value::Map(MapRef::Owned(kvs)))
        }
        Expr::Arith(a, op, b) => {
            let x = eval(r, a)?;
            let y = eval(r, b)?;
            arithmetic(&x, *op, &y)
        }
        Expr::Neg(x) => negate(&eval(r, x)?),
    }
}

pub(crate) fn eval_call<'a, R: Reader + ?Sized>(
    r: &'a R,
    c: &'a ConverterCall,
) -> Result<Value<'a>, EvalError> {
    let v = eval_converter(r, &c.func)?;
    if c.keys.is_empty() {
        return Ok(v);
    }
    let keys = resolve_keys(r, &c.keys)?;
    index_value(v, &keys)
}

/// A borrowed copy of a literal.
pub(crate) fn reborrow<'a>(v: &'a Value<'_>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s)),
        Value::Bytes(b) => Value::Bytes(Cow::Borrowed(b)),
        Value::Map(MapRef::Owned(m)) => Value::Map(MapRef::Proto(m)),
        Value::Map(MapRef::Proto(m)) => Value::Map(MapRef::Proto(m)),
        Value::Map(MapRef::Wire(m)) => Value::Map(MapRef::Wire(*m)),
        Value::Map(MapRef::WireList(m)) => Value::Map(MapRef::WireList(*m)),
        Value::Slice(SliceRef::Owned(s)) => Value::Slice(SliceRef::Proto(s)),
        Value::Slice(SliceRef::Proto(s)) => Value::Slice(SliceRef::Proto(s)),
        Value::Slice(SliceRef::Wire(s)) => Value::Slice(SliceRef::Wire(*s)),
        Value::Nil => Value::Nil,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(i) => Value::Int(*i),
        Value::Double(d) => Value::Double(*d),
        Value::TraceId(t) => Value::TraceId(*t),
        Value::SpanId(s) => Value::SpanId(*s),
        Value::Counts(c) => Value::Counts(Cow::Borrowed(c)),
        Value::Bounds(b) => Value::Bounds(Cow::Borrowed(b)),
        Value::Opaque { kind, len } => Value::Opaque {
            kind: *kind,
            len: *len,
        },
    }
}

/// Inlined for plain fields (a span's name), the dry run's common read.
#[inline(always)]
pub(crate) fn read_path<'a, R: Reader + ?Sized>(
    r: &'a R,
    p: &'a CPath,
) -> Result<Value<'a>, EvalError> {
    match p.field.indexing() {
        Indexing::None => r.read(p.field),
        _ => read_indexed_path(r, p),
    }
}

fn read_indexed_path<'a, R: Reader + ?Sized>(
    r: &'a R,
    p: &'a CPath,
) -> Result<Value<'a>, EvalError> {
    match p.field.indexing() {
        Indexing::None => r.read(p.field),
        Indexing::ExactlyOne => {
            let raw = r.read(Field::Span(SpanField::TraceState))?;
            let key = match p.keys.first() {
                Some(k) => resolve_key(r, k)?,
                None => {
                    return Err(EvalError::new(
                        "must provide exactly 1 key when accessing trace_state",
                    ))
                }
            };
            let RKey::Str(key) = key else {
                return Err(EvalError::new("trace_state indexing type must be a string"));
            };
            let raw = raw.as_str().unwrap_or("");
            Ok(match crate::tracestate::parse(raw) {
                Some(entries) => entries
                    .into_iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| Value::Str(Cow::Owned(v.to_string())))
                    .unwrap_or(Value::str("")),
                None => Value::Nil,
            })
        }
        Indexing::Nested => {
            let base = if p.field == Field::Cache {
                Value::Map(MapRef::Proto(r.cache()))
            } else {
                r.read(p.field)?
            };
            if p.keys.is_empty() {
                return Ok(base);
            }
            let keys = resolve_keys(r, &p.keys)?;
            index_value(base, &keys)
        }
    }
}

pub(crate) fn eval_cond<R: Reader + ?Sized>(r: &R, c: &Cond) -> Result<bool, EvalError> {
    match c {
        Cond::Lit(b) => Ok(*b),
        Cond::Not(inner) => Ok(!eval_cond(r, inner)?),
        Cond::Or(terms) => {
            for t in terms {
                if eval_cond(r, t)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Cond::And(terms) => {
            for t in terms {
                if !eval_cond(r, t)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Cond::Cmp(a, op, b) => {
            let x = eval(r, a)?;
            let y = eval(r, b)?;
            Ok(compare(&x, &y, *op))
        }
        Cond::Call(call) => match eval_call(r, call)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::new(format!(
                "value returned from Converter in constant expression must be bool but got {}",
                other.type_name()
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::kv;

    #[test]
    fn indexing_rules() {
        let inner = vec![kv("b", &Value::str("x"))];
        let list = vec![AnyValue {
            value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(7)),
        }];
        let outer = vec![
            kv("a", &Value::Map(MapRef::Owned(inner))),
            kv("l", &Value::Slice(SliceRef::Owned(list))),
            kv("s", &Value::str("str")),
        ];
        let base = || Value::Map(MapRef::Proto(&outer));
        let k = |s: &'static str| RKey::Str(Cow::Borrowed(s));
        let got = index_value(base(), &[k("a"), k("b")]).expect("nested get");
        assert_eq!(got.as_str(), Some("x"));
        assert!(index_value(base(), &[k("zz"), k("b")])
            .expect("missing")
            .is_nil());
        let got = index_value(base(), &[k("l"), RKey::Int(0)]).expect("slice get");
        assert!(matches!(got, Value::Int(7)));
        assert_eq!(
            index_value(base(), &[k("l"), RKey::Int(1)])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("index 1 out of bounds".into())
        );
        assert_eq!(
            index_value(base(), &[k("s"), k("x")])
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err("type Str does not support string indexing".into())
        );
    }
}

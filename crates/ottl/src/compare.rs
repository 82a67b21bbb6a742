//! Comparisons and arithmetic with otelcol's rules (pkg/ottl `compare.go`, `math.go`).
//!
//! Comparing values of different types is never an error: it is false for every operator
//! but `!=`. Integers and floats compare across types; strings and bytes order bytewise;
//! maps and slices only support `==` / `!=`; `nil` equals only `nil`.

use std::cmp::Ordering;

use crate::ast::{CompareOp, MathOp};
use crate::error::EvalError;
use crate::value::{MapRef, SliceRef, Value};

/// `a op b` as otelcol evaluates it.
pub fn compare(a: &Value<'_>, b: &Value<'_>, op: CompareOp) -> bool {
    let mismatch = op == CompareOp::Ne;
    match (a, b) {
        (Value::Nil, Value::Nil) => matches!(op, CompareOp::Eq | CompareOp::Le | CompareOp::Ge),
        (Value::Nil, _) | (_, Value::Nil) => mismatch,
        (Value::Bool(x), Value::Bool(y)) => ordered(x.cmp(y), op),
        (Value::Int(x), Value::Int(y)) => ordered(x.cmp(y), op),
        (Value::Int(x), Value::Double(y)) => float_op(*x as f64, *y, op),
        (Value::Double(x), Value::Int(y)) => float_op(*x, *y as f64, op),
        (Value::Double(x), Value::Double(y)) => float_op(*x, *y, op),
        (Value::Str(x), Value::Str(y)) => ordered(x.as_bytes().cmp(y.as_bytes()), op),
        (Value::Bytes(x), Value::Bytes(y)) => ordered(x.as_ref().cmp(y.as_ref()), op),
        (Value::Map(x), Value::Map(y)) => equality(maps_equal(x, y), op),
        (Value::Slice(x), Value::Slice(y)) => equality(slices_equal(x, y), op),
        (Value::TraceId(x), Value::TraceId(y)) => equality(x == y, op),
        (Value::SpanId(x), Value::SpanId(y)) => equality(x == y, op),
        _ => mismatch,
    }
}

fn ordered(ord: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    }
}

// Go's float operators: every comparison with NaN is false except `!=`.
fn float_op(x: f64, y: f64, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => x == y,
        CompareOp::Ne => x != y,
        CompareOp::Lt => x < y,
        CompareOp::Le => x <= y,
        CompareOp::Gt => x > y,
        CompareOp::Ge => x >= y,
    }
}

fn equality(equal: bool, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => equal,
        CompareOp::Ne => !equal,
        _ => false,
    }
}

/// pdata's `Value.Equal`: same type and same content (maps ignore order).
pub fn values_equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bytes(x), Value::Bytes(y)) => x == y,
        (Value::Map(x), Value::Map(y)) => maps_equal(x, y),
        (Value::Slice(x), Value::Slice(y)) => slices_equal(x, y),
        (Value::TraceId(x), Value::TraceId(y)) => x == y,
        (Value::SpanId(x), Value::SpanId(y)) => x == y,
        _ => false,
    }
}

pub fn maps_equal(a: &MapRef<'_>, b: &MapRef<'_>) -> bool {
    a.len() == b.len()
        && a.entries().all(|(k, v)| match b.get(k) {
            Some(other) => values_equal(&v, &other),
            None => false,
        })
}

pub fn slices_equal(a: &SliceRef<'_>, b: &SliceRef<'_>) -> bool {
    a.len() == b.len()
        && a.elements()
            .zip(b.elements())
            .all(|(x, y)| values_equal(&x, &y))
}

/// `a op b` for `+ - * /`: int with int stays int (wrapping like Go), anything with a float
/// is a float, dividing by zero is an error.
pub fn arithmetic(a: &Value<'_>, op: MathOp, b: &Value<'_>) -> Result<Value<'static>, EvalError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_op(*x, op, *y).map(Value::Int),
        (Value::Int(x), Value::Double(y)) => float_arith(*x as f64, op, *y).map(Value::Double),
        (Value::Double(x), Value::Int(y)) => float_arith(*x, op, *y as f64).map(Value::Double),
        (Value::Double(x), Value::Double(y)) => float_arith(*x, op, *y).map(Value::Double),
        (Value::Int(_) | Value::Double(_), other) => Err(EvalError::new(format!(
            "{} must be int64 or float64",
            go_debug(other)
        ))),
        (other, _) => Err(EvalError::new(format!(
            "{} must be int64, float64, time.Time or time.Duration",
            go_debug(other)
        ))),
    }
}

fn int_op(x: i64, op: MathOp, y: i64) -> Result<i64, EvalError> {
    Ok(match op {
        MathOp::Add => x.wrapping_add(y),
        MathOp::Sub => x.wrapping_sub(y),
        MathOp::Mul => x.wrapping_mul(y),
        MathOp::Div => {
            if y == 0 {
                return Err(EvalError::new("attempted to divide by 0"));
            }
            x.wrapping_div(y)
        }
    })
}

fn float_arith(x: f64, op: MathOp, y: f64) -> Result<f64, EvalError> {
    Ok(match op {
        MathOp::Add => x + y,
        MathOp::Sub => x - y,
        MathOp::Mul => x * y,
        MathOp::Div => {
            if y == 0.0 {
                return Err(EvalError::new("attempted to divide by 0"));
            }
            x / y
        }
    })
}

/// Unary minus on a non-literal.
pub fn negate(v: &Value<'_>) -> Result<Value<'static>, EvalError> {
    match v {
        Value::Int(i) => Ok(Value::Int(i.wrapping_neg())),
        Value::Double(d) => Ok(Value::Double(-d)),
        other => Err(EvalError::new(format!(
            "unsupported unary minus operation on type {}",
            other.type_name()
        ))),
    }
}

/// Roughly Go's `%v` of a value, for error messages.
pub fn go_debug(v: &Value<'_>) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => redline_pdata_text::go_v(*d),
        Value::Str(s) => s.to_string(),
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use CompareOp::*;

    fn s(x: &str) -> Value<'_> {
        Value::str(x)
    }

    // Cases from otelcol's compare_test.go.
    #[test]
    fn compare_table() {
        let cases: Vec<(Value, Value, [bool; 6])> = vec![
            // a, b, [== != < <= > >=]
            (s("a"), s("a"), [true, false, false, true, false, true]),
            (s("a"), s("b"), [false, true, true, true, false, false]),
            (s("b"), s("a"), [false, true, false, false, true, true]),
            (
                Value::Int(1),
                Value::Int(1),
                [true, false, false, true, false, true],
            ),
            (
                Value::Int(1),
                Value::Double(1.0),
                [true, false, false, true, false, true],
            ),
            (
                Value::Int(1),
                Value::Double(1.5),
                [false, true, true, true, false, false],
            ),
            (
                Value::Double(2.0),
                Value::Int(1),
                [false, true, false, false, true, true],
            ),
            (
                Value::Int(1),
                s("1"),
                [false, true, false, false, false, false],
            ),
            (
                Value::Nil,
                Value::Nil,
                [true, false, false, true, false, true],
            ),
            (
                Value::Nil,
                s("a"),
                [false, true, false, false, false, false],
            ),
            (
                s("a"),
                Value::Nil,
                [false, true, false, false, false, false],
            ),
            (
                Value::Bool(false),
                Value::Bool(true),
                [false, true, true, true, false, false],
            ),
            (
                Value::Bool(true),
                Value::Bool(false),
                [false, true, false, false, true, true],
            ),
            (
                Value::Double(f64::NAN),
                Value::Double(f64::NAN),
                [false, true, false, false, false, false],
            ),
            (
                Value::Bytes(vec![1, 2].into()),
                Value::Bytes(vec![1, 3].into()),
                [false, true, true, true, false, false],
            ),
            (
                Value::TraceId([1; 16]),
                Value::Bytes(vec![1; 16].into()),
                [false, true, false, false, false, false],
            ),
        ];
        for (a, b, want) in cases {
            for (op, expected) in [Eq, Ne, Lt, Le, Gt, Ge].into_iter().zip(want) {
                assert_eq!(compare(&a, &b, op), expected, "{a:?} {op:?} {b:?}");
            }
        }
    }

    #[test]
    fn maps_compare_by_content_only_with_equality() {
        let one = vec![
            crate::value::kv("a", &Value::Int(1)),
            crate::value::kv("b", &s("x")),
        ];
        let two: Vec<KeyValue> = one.iter().rev().cloned().collect();
        let a = Value::Map(MapRef::Proto(&one));
        let b = Value::Map(MapRef::Owned(two));
        assert!(compare(&a, &b, Eq));
        assert!(!compare(&a, &b, Ne));
        assert!(!compare(&a, &b, Lt));
        assert!(!compare(&a, &b, Ge));
    }

    #[test]
    fn arithmetic_rules() {
        let r = |a, op, b| arithmetic(&a, op, &b).map(|v| format!("{v:?}"));
        assert_eq!(
            r(Value::Int(7), MathOp::Div, Value::Int(2)).ok(),
            Some("Int(3)".into())
        );
        assert_eq!(
            r(Value::Int(1), MathOp::Add, Value::Double(0.5)).ok(),
            Some("Double(1.5)".into())
        );
        assert_eq!(
            r(Value::Int(1), MathOp::Div, Value::Int(0)).map_err(|e| e.to_string()),
            Err("attempted to divide by 0".into())
        );
        assert_eq!(
            r(Value::Double(1.0), MathOp::Div, Value::Double(0.0)).map_err(|e| e.to_string()),
            Err("attempted to divide by 0".into())
        );
        assert_eq!(
            r(s("a"), MathOp::Add, s("b")).map_err(|e| e.to_string()),
            Err("a must be int64, float64, time.Time or time.Duration".into())
        );
        assert_eq!(
            r(Value::Int(i64::MAX), MathOp::Add, Value::Int(1)).ok(),
            Some(format!("Int({})", i64::MIN))
        );
    }
}

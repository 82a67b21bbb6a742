//! The items statements run on: prost messages edited in place ([`proto`]) and borrowed views
//! of an encoded traces request for the dry run ([`wire`]).

pub(crate) mod proto;
pub(crate) mod proto_metrics;
mod proto_points;
pub(crate) mod wire;

use crate::error::EvalError;
use crate::value::{hex_decode, hex_lower, Value};

/// pdata's fixed-size ids read from protobuf bytes (other lengths are cut or zero-padded;
/// pdata refuses them when decoding).
pub(crate) fn fixed_id<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut id = [0u8; N];
    for (slot, b) in id.iter_mut().zip(bytes) {
        *slot = *b;
    }
    id
}

/// How pdata encodes an id: the all-zero id is left out.
pub(crate) fn id_bytes(id: &[u8]) -> Vec<u8> {
    if id.iter().all(|b| *b == 0) {
        Vec::new()
    } else {
        id.to_vec()
    }
}

pub(crate) fn trace_id(bytes: &[u8]) -> Value<'static> {
    Value::TraceId(fixed_id(bytes))
}

pub(crate) fn span_id(bytes: &[u8]) -> Value<'static> {
    Value::SpanId(fixed_id(bytes))
}

pub(crate) fn trace_id_string(bytes: &[u8]) -> Value<'static> {
    Value::string(hex_lower(&fixed_id::<16>(bytes)))
}

pub(crate) fn span_id_string(bytes: &[u8]) -> Value<'static> {
    Value::string(hex_lower(&fixed_id::<8>(bytes)))
}

/// `ctxcommon.ParseTraceID` / `ParseSpanID`.
pub(crate) fn parse_hex_id(s: &str, len: usize, what: &str) -> Result<Vec<u8>, EvalError> {
    if s.len() / 2 != len {
        return Err(EvalError::new(format!(
            "{what} ids must be {} hex characters",
            len * 2
        )));
    }
    let id = hex_decode(s)
        .ok_or_else(|| EvalError::new(format!("encoding/hex: invalid hex id {s:?}")))?;
    Ok(id_bytes(&id))
}

/// An id value to store (`pcommon.TraceID` / `pcommon.SpanID` only).
pub(crate) fn expect_trace_id(v: &Value<'_>) -> Result<Vec<u8>, EvalError> {
    match v {
        Value::TraceId(id) => Ok(id_bytes(id)),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects pcommon.TraceID but got {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn expect_span_id(v: &Value<'_>) -> Result<Vec<u8>, EvalError> {
    match v {
        Value::SpanId(id) => Ok(id_bytes(id)),
        Value::Nil => Err(EvalError::new("setting a value to nil is not supported")),
        other => Err(EvalError::new(format!(
            "expects pcommon.SpanID but got {}",
            other.type_name()
        ))),
    }
}

const KIND_NAMES: [&str; 6] = [
    "Unspecified",
    "Internal",
    "Server",
    "Client",
    "Producer",
    "Consumer",
];

/// Go's `ptrace.SpanKind.String()` (empty for unknown values).
pub(crate) fn kind_string(kind: i32) -> &'static str {
    usize::try_from(kind)
        .ok()
        .and_then(|i| KIND_NAMES.get(i))
        .copied()
        .unwrap_or("")
}

/// `traceutil.SpanKindStr` (`SPAN_KIND_SERVER`, ...).
pub(crate) fn kind_deprecated_string(kind: i32) -> &'static str {
    usize::try_from(kind)
        .ok()
        .and_then(|k| redline_otlp_wire::enums::SPAN_KIND_NAMES.get(k))
        .copied()
        .unwrap_or("")
}

pub(crate) fn kind_from_string(s: &str) -> Result<i32, EvalError> {
    KIND_NAMES
        .iter()
        .position(|n| *n == s)
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| EvalError::new(format!("unknown span kind string, {s}")))
}

pub(crate) fn kind_from_deprecated(s: &str) -> Result<i32, EvalError> {
    (0..6)
        .find(|k| kind_deprecated_string(*k) == s)
        .ok_or_else(|| EvalError::new(format!("unknown span kind deprecated string, {s}")))
}

/// Unsigned protobuf fields read as Go's `int64(...)`.
pub(crate) fn int_of(v: u64) -> Value<'static> {
    Value::Int(v as i64)
}

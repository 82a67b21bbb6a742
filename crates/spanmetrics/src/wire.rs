//! A minimal protobuf walker over an encoded `ExportTraceServiceRequest`, reading only what
//! spanmetrics needs.
//!
//! Why it is here: the shared zero-allocation walker (`redline-otlp-wire`) was being written
//! in parallel and had no API yet when this connector was built. This module has the same
//! shape as its proposed API (a visitor told about each resource before its spans), so
//! switching over is local to `aggregate.rs`. It never allocates and never panics: every
//! length is checked against the buffer.

use std::fmt::Write as _;

/// Why an encoded request could not be walked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated message: {0}")]
    Truncated(&'static str),
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("invalid field number 0")]
    FieldZero,
    #[error("unsupported wire type {0}")]
    WireType(u8),
    #[error("field {field} of {message} has wire type {got}, expected {expected}")]
    WrongType {
        message: &'static str,
        field: u32,
        got: u8,
        expected: u8,
    },
    #[error("attribute values nested deeper than {0} levels")]
    TooDeep(usize),
}

/// Nesting bound for attribute values (arrays and maps inside values): a hostile request
/// cannot exhaust the stack.
pub const MAX_VALUE_DEPTH: usize = 32;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl Field<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Field::Varint(_) => VARINT,
            Field::Fixed64(_) => FIXED64,
            Field::Bytes(_) => LEN,
            Field::Fixed32(_) => FIXED32,
        }
    }
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let byte = *buf.get(*pos).ok_or(WireError::Truncated("varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(WireError::VarintTooLong)
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    let end = pos.checked_add(n).ok_or(WireError::Truncated(what))?;
    let out = buf.get(*pos..end).ok_or(WireError::Truncated(what))?;
    *pos = end;
    Ok(out)
}

/// Iterates the top-level fields of one message.
#[derive(Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Field<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let r = (|| {
            let tag = read_varint(self.buf, &mut self.pos)?;
            let field = u32::try_from(tag >> 3).map_err(|_| WireError::FieldZero)?;
            if field == 0 {
                return Err(WireError::FieldZero);
            }
            let value = match (tag & 7) as u8 {
                VARINT => Field::Varint(read_varint(self.buf, &mut self.pos)?),
                FIXED64 => {
                    let b = take(self.buf, &mut self.pos, 8, "fixed64")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    Field::Fixed64(u64::from_le_bytes(a))
                }
                LEN => {
                    let n = read_varint(self.buf, &mut self.pos)?;
                    let n = usize::try_from(n).map_err(|_| WireError::Truncated("length"))?;
                    Field::Bytes(take(self.buf, &mut self.pos, n, "length-delimited field")?)
                }
                FIXED32 => {
                    let b = take(self.buf, &mut self.pos, 4, "fixed32")?;
                    let mut a = [0u8; 4];
                    a.copy_from_slice(b);
                    Field::Fixed32(u32::from_le_bytes(a))
                }
                other => return Err(WireError::WireType(other)),
            };
            Ok((field, value))
        })();
        if r.is_err() {
            // Stop after the first error: the rest of the buffer cannot be framed.
            self.pos = self.buf.len();
        }
        Some(r)
    }
}

fn expect<'a>(
    message: &'static str,
    field: u32,
    value: Field<'a>,
    expected: u8,
) -> Result<Field<'a>, WireError> {
    if value.wire_type() == expected {
        Ok(value)
    } else {
        Err(WireError::WrongType {
            message,
            field,
            got: value.wire_type(),
            expected,
        })
    }
}

fn bytes<'a>(message: &'static str, field: u32, value: Field<'a>) -> Result<&'a [u8], WireError> {
    match expect(message, field, value, LEN)? {
        Field::Bytes(b) => Ok(b),
        _ => Ok(&[]),
    }
}

fn varint(message: &'static str, field: u32, value: Field<'_>) -> Result<u64, WireError> {
    match expect(message, field, value, VARINT)? {
        Field::Varint(v) => Ok(v),
        _ => Ok(0),
    }
}

fn fixed64(message: &'static str, field: u32, value: Field<'_>) -> Result<u64, WireError> {
    match expect(message, field, value, FIXED64)? {
        Field::Fixed64(v) => Ok(v),
        _ => Ok(0),
    }
}

/// One `KeyValue` attribute.
#[derive(Clone, Copy, Debug)]
pub struct KeyValueView<'a> {
    pub key: &'a [u8],
    pub value: AnyValueView<'a>,
}

/// An encoded `AnyValue`, decoded on demand.
#[derive(Clone, Copy, Debug)]
pub struct AnyValueView<'a> {
    raw: &'a [u8],
}

/// The decoded top level of an `AnyValue` (the oneof; the last one set wins, as in protobuf).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Empty,
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(&'a [u8]),
    KvList(&'a [u8]),
}

impl<'a> AnyValueView<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    pub fn scalar(&self) -> Result<Scalar<'a>, WireError> {
        const M: &str = "AnyValue";
        let mut out = Scalar::Empty;
        for f in Fields::new(self.raw) {
            let (no, v) = f?;
            out = match no {
                1 => Scalar::Str(bytes(M, no, v)?),
                2 => Scalar::Bool(varint(M, no, v)? != 0),
                3 => Scalar::Int(varint(M, no, v)? as i64),
                4 => Scalar::Double(f64::from_bits(fixed64(M, no, v)?)),
                5 => Scalar::Array(bytes(M, no, v)?),
                6 => Scalar::KvList(bytes(M, no, v)?),
                7 => Scalar::Bytes(bytes(M, no, v)?),
                _ => out,
            };
        }
        Ok(out)
    }

    /// The value as a string when it is a string attribute, without copying. Invalid UTF-8
    /// is not borrowed (the caller converts it lossily).
    pub fn as_str(&self) -> Option<&'a str> {
        match self.scalar() {
            Ok(Scalar::Str(b)) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Appends the value the way pdata's `Value.AsString` renders it, so label values match
    /// the Go collector's: strings as is, bools `true`/`false`, ints in decimal, doubles as
    /// JSON numbers, bytes as base64, arrays and maps as JSON (map keys sorted).
    pub fn write_as_string(&self, out: &mut String) {
        match self.scalar() {
            Ok(Scalar::Empty) | Err(_) => {}
            Ok(Scalar::Str(b)) => out.push_str(&String::from_utf8_lossy(b)),
            Ok(Scalar::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
            Ok(Scalar::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            Ok(Scalar::Double(d)) => {
                if d.is_finite() {
                    write_js_number(d, out)
                } else {
                    // pdata returns the json.Marshal error text for these; keep it identical.
                    out.push_str("json: unsupported value: ");
                    out.push_str(if d.is_nan() {
                        "NaN"
                    } else if d > 0.0 {
                        "+Inf"
                    } else {
                        "-Inf"
                    });
                }
            }
            Ok(Scalar::Bytes(b)) => base64(b, out),
            Ok(Scalar::Array(_)) | Ok(Scalar::KvList(_)) => write_json(*self, out, 0),
        }
    }

    /// Checks the structure of this value and everything nested in it.
    pub fn validate(&self, depth: usize) -> Result<(), WireError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(WireError::TooDeep(MAX_VALUE_DEPTH));
        }
        // `scalar` checks every field's wire type; then descend into what is nested.
        let _ = self.scalar()?;
        for f in Fields::new(self.raw) {
            let (no, v) = f?;
            match no {
                5 => {
                    for f in Fields::new(bytes("ArrayValue", no, v)?) {
                        let (no, v) = f?;
                        if no == 1 {
                            AnyValueView::new(bytes("ArrayValue", no, v)?).validate(depth + 1)?;
                        }
                    }
                }
                6 => {
                    for kv in attributes(bytes("KeyValueList", no, v)?, 1) {
                        kv?.value.validate(depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Formats a finite double as Go's encoding/json does (ES6 number formatting): shortest
/// round-trip digits, exponent form below 1e-6 and from 1e21.
fn write_js_number(d: f64, out: &mut String) {
    let abs = d.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{d:e}");
        // Rust writes `1e21` / `1.5e-7`; Go writes `1e+21` / `1.5e-7`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                let _ = write!(out, "{m}e+{e}");
            }
            _ => out.push_str(&s),
        }
    } else {
        let _ = write!(out, "{d}");
    }
}

fn base64(input: &[u8], out: &mut String) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let idx = |shift: u32| char::from(T[((n >> shift) & 63) as usize]);
        out.push(idx(18));
        out.push(idx(12));
        out.push(if chunk.len() > 1 { idx(6) } else { '=' });
        out.push(if chunk.len() > 2 { idx(0) } else { '=' });
    }
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go's encoding/json escapes HTML-significant characters by default.
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JSON rendering of a value nested in an array or map (pdata `AsRaw` + `json.Marshal`).
fn write_json(v: AnyValueView<'_>, out: &mut String, depth: usize) {
    if depth > MAX_VALUE_DEPTH {
        out.push_str("null");
        return;
    }
    match v.scalar() {
        Ok(Scalar::Empty) | Err(_) => out.push_str("null"),
        Ok(Scalar::Str(b)) => write_json_str(&String::from_utf8_lossy(b), out),
        Ok(Scalar::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
        Ok(Scalar::Int(i)) => {
            let _ = write!(out, "{i}");
        }
        Ok(Scalar::Double(d)) if d.is_finite() => write_js_number(d, out),
        Ok(Scalar::Double(_)) => out.push_str("null"),
        Ok(Scalar::Bytes(b)) => {
            out.push('"');
            base64(b, out);
            out.push('"');
        }
        Ok(Scalar::Array(a)) => {
            out.push('[');
            let mut first = true;
            for f in Fields::new(a) {
                let Ok((1, Field::Bytes(item))) = f else { continue };
                if !first {
                    out.push(',');
                }
                first = false;
                write_json(AnyValueView::new(item), out, depth + 1);
            }
            out.push(']');
        }
        Ok(Scalar::KvList(l)) => {
            // Go marshals maps with sorted keys; the last duplicate key wins in a Go map.
            let mut entries: Vec<(String, AnyValueView<'_>)> = Vec::new();
            for kv in attributes(l, 1).flatten() {
                let key = String::from_utf8_lossy(kv.key).into_owned();
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 = kv.value,
                    None => entries.push((key, kv.value)),
                }
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(k, out);
                out.push(':');
                write_json(*v, out, depth + 1);
            }
            out.push('}');
        }
    }
}

/// Iterates the `KeyValue` entries stored in field `field_no` of `message`.
pub fn attributes(message: &[u8], field_no: u32) -> impl Iterator<Item = Result<KeyValueView<'_>, WireError>> {
    Fields::new(message).filter_map(move |f| match f {
        Err(e) => Some(Err(e)),
        Ok((no, v)) if no == field_no => Some(key_value(v)),
        Ok(_) => None,
    })
}

fn key_value(v: Field<'_>) -> Result<KeyValueView<'_>, WireError> {
    const M: &str = "KeyValue";
    let kv = bytes(M, 0, v)?;
    let mut key: &[u8] = &[];
    let mut value: &[u8] = &[];
    for f in Fields::new(kv) {
        let (no, v) = f?;
        match no {
            1 => key = bytes(M, no, v)?,
            2 => value = bytes(M, no, v)?,
            _ => {}
        }
    }
    Ok(KeyValueView {
        key,
        value: AnyValueView::new(value),
    })
}

/// The `Resource` of one `ResourceSpans`; a message field repeated on the wire merges, so the
/// attributes of every occurrence are visited in order.
#[derive(Clone, Copy, Debug)]
pub struct ResourceView<'a> {
    resource_spans: &'a [u8],
}

impl<'a> ResourceView<'a> {
    pub fn attributes(&self) -> ResourceAttributes<'a> {
        ResourceAttributes {
            outer: Fields::new(self.resource_spans),
            inner: None,
        }
    }
}

/// Attributes of every `resource` occurrence in a `ResourceSpans`, without allocating.
pub struct ResourceAttributes<'a> {
    outer: Fields<'a>,
    inner: Option<Fields<'a>>,
}

impl<'a> Iterator for ResourceAttributes<'a> {
    type Item = Result<KeyValueView<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(inner) = &mut self.inner {
                for f in inner.by_ref() {
                    match f {
                        Err(e) => return Some(Err(e)),
                        Ok((1, v)) => return Some(key_value(v)),
                        Ok(_) => {}
                    }
                }
                self.inner = None;
            }
            match self.outer.next()? {
                Err(e) => return Some(Err(e)),
                Ok((1, v)) => match bytes("ResourceSpans", 1, v) {
                    Ok(res) => self.inner = Some(Fields::new(res)),
                    Err(e) => return Some(Err(e)),
                },
                Ok(_) => {}
            }
        }
    }
}

/// The fields of one span that spanmetrics reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanView<'a> {
    raw: &'a [u8],
    pub name: &'a [u8],
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub status_code: i32,
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
}

impl<'a> SpanView<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, WireError> {
        const M: &str = "Span";
        let mut s = SpanView {
            raw,
            ..Default::default()
        };
        // Scalars: the last occurrence wins; `status` is a message, so occurrences merge.
        for f in Fields::new(raw) {
            let (no, v) = f?;
            match no {
                1 => s.trace_id = bytes(M, no, v)?,
                2 => s.span_id = bytes(M, no, v)?,
                5 => s.name = bytes(M, no, v)?,
                6 => s.kind = varint(M, no, v)? as i32,
                7 => s.start_time_unix_nano = fixed64(M, no, v)?,
                8 => s.end_time_unix_nano = fixed64(M, no, v)?,
                15 => {
                    for f in Fields::new(bytes(M, no, v)?) {
                        let (sno, sv) = f?;
                        if sno == 3 {
                            s.status_code = varint("Status", sno, sv)? as i32;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }

    pub fn attributes(&self) -> impl Iterator<Item = Result<KeyValueView<'a>, WireError>> + 'a {
        attributes(self.raw, 9)
    }
}

/// Told about each resource, then about each span under it.
pub trait TraceVisitor<'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) -> Result<(), WireError>;
    fn span(&mut self, span: &SpanView<'a>) -> Result<(), WireError>;
}

/// Walks `ExportTraceServiceRequest.resource_spans[].scope_spans[].spans[]`.
pub fn walk<'a>(raw: &'a [u8], visitor: &mut impl TraceVisitor<'a>) -> Result<(), WireError> {
    for f in Fields::new(raw) {
        let (no, v) = f?;
        if no != 1 {
            continue;
        }
        let rs = bytes("ExportTraceServiceRequest", no, v)?;
        // The resource may be encoded after the spans: visit it first all the same.
        visitor.resource(&ResourceView { resource_spans: rs })?;
        for f in Fields::new(rs) {
            let (no, v) = f?;
            if no != 2 {
                continue;
            }
            let ss = bytes("ResourceSpans", no, v)?;
            for f in Fields::new(ss) {
                let (no, v) = f?;
                if no != 2 {
                    continue;
                }
                let span = SpanView::parse(bytes("ScopeSpans", no, v)?)?;
                visitor.span(&span)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_string(v: &[u8]) -> String {
        let mut s = String::new();
        AnyValueView::new(v).write_as_string(&mut s);
        s
    }

    #[test]
    fn js_numbers_match_go() {
        let f = |d: f64| {
            let mut s = String::new();
            write_js_number(d, &mut s);
            s
        };
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(100.0), "100");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(0.000001), "0.000001");
        assert_eq!(f(-0.0), "-0");
    }

    #[test]
    fn base64_matches_std_encoding() {
        let f = |b: &[u8]| {
            let mut s = String::new();
            base64(b, &mut s);
            s
        };
        assert_eq!(f(b""), "");
        assert_eq!(f(b"f"), "Zg==");
        assert_eq!(f(b"fo"), "Zm8=");
        assert_eq!(f(b"foo"), "Zm9v");
        assert_eq!(f(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn garbage_never_panics() {
        for input in [&b"\xff\xff\xff"[..], b"\x0a\x05ab", b"\x0a", b"\x08", b"\x00", b"\x0b"] {
            struct V;
            impl<'a> TraceVisitor<'a> for V {
                fn resource(&mut self, r: &ResourceView<'a>) -> Result<(), WireError> {
                    for kv in r.attributes() {
                        kv?;
                    }
                    Ok(())
                }
                fn span(&mut self, _: &SpanView<'a>) -> Result<(), WireError> {
                    Ok(())
                }
            }
            assert!(walk(input, &mut V).is_err(), "{input:?}");
            let _ = as_string(input);
        }
    }
}

//! Jaeger's Thrift model (`jaeger.thrift`), read from either protocol with the rules of Go's
//! generated code: fields in any order, unknown fields and fields of an unexpected type
//! skipped, a missing required field refusing the whole batch. Strings and binary values
//! borrow from the body.

use std::borrow::Cow;

use crate::thrift::{Protocol, TType, ThriftError};

/// `jaeger.Batch`.
#[derive(Debug, Default)]
pub(crate) struct Batch<'a> {
    pub process: Process<'a>,
    pub spans: Vec<Span<'a>>,
}

/// `jaeger.Process`.
#[derive(Debug, Default)]
pub(crate) struct Process<'a> {
    pub service_name: Cow<'a, str>,
    pub tags: Option<Vec<Tag<'a>>>,
}

/// `jaeger.Tag`: a key, a type and the value of that type (the others unset).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tag<'a> {
    pub key: Cow<'a, str>,
    pub v_type: i32,
    pub v_str: Option<Cow<'a, str>>,
    pub v_double: Option<f64>,
    pub v_bool: Option<bool>,
    pub v_long: Option<i64>,
    pub v_binary: Option<&'a [u8]>,
    /// `v_type` is a protobuf `ValueType` (the gRPC API numbers the types differently).
    pub protobuf: bool,
}

/// `jaeger.TagType`.
pub(crate) const TAG_STRING: i32 = 0;
pub(crate) const TAG_DOUBLE: i32 = 1;
pub(crate) const TAG_BOOL: i32 = 2;
pub(crate) const TAG_LONG: i32 = 3;
pub(crate) const TAG_BINARY: i32 = 4;

/// `jaeger.Log`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Log<'a> {
    /// Microseconds (Thrift).
    pub timestamp: i64,
    pub fields: Vec<Tag<'a>>,
    /// The time in nanoseconds, for a protobuf log (which has no microseconds).
    pub nanos: Option<u64>,
}

/// `jaeger.SpanRefType`.
pub(crate) const CHILD_OF: i32 = 0;
pub(crate) const FOLLOWS_FROM: i32 = 1;

/// `jaeger.SpanRef`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SpanRef {
    pub ref_type: i32,
    pub trace_id_low: i64,
    pub trace_id_high: i64,
    pub span_id: i64,
}

/// `jaeger.Span`. Optional lists are `None` when absent, which is not the same as empty:
/// otelcol skips a span equal to an all-default one, absent lists included.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Span<'a> {
    pub trace_id_low: i64,
    pub trace_id_high: i64,
    pub span_id: i64,
    pub parent_span_id: i64,
    pub operation_name: Cow<'a, str>,
    pub references: Option<Vec<SpanRef>>,
    pub flags: i32,
    pub start_time: i64,
    pub duration: i64,
    pub tags: Option<Vec<Tag<'a>>>,
    pub logs: Option<Vec<Log<'a>>>,
    /// A protobuf span's start and end in nanoseconds, its trace state read from the
    /// `w3c.tracestate` tag as only the gRPC path does; `None` for Thrift.
    pub protobuf: Option<ProtobufTimes>,
}

/// What a protobuf span has that a Thrift one has not.
#[derive(Debug, Default, PartialEq, Clone, Copy)]
pub(crate) struct ProtobufTimes {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span<'_> {
    /// A span all of whose fields hold their defaults, which otelcol drops unseen.
    pub(crate) fn is_blank(&self) -> bool {
        *self == Span::default()
    }
}

/// Reads a `Batch` struct (the body of Jaeger's Thrift over HTTP).
pub(crate) fn read_batch<'a>(p: &mut impl Protocol<'a>) -> Result<Batch<'a>, ThriftError> {
    let mut batch = Batch::default();
    let (mut has_process, mut has_spans) = (false, false);
    read_struct(p, |p, ty, id| {
        Ok(match (id, ty) {
            (1, TType::Struct) => {
                batch.process = read_process(p)?;
                has_process = true;
                true
            }
            (2, TType::List) => {
                batch.spans = read_list(p, read_span)?;
                has_spans = true;
                true
            }
            (4, TType::Struct) => {
                read_client_stats(p)?;
                true
            }
            _ => false,
        })
    })?;
    required("Batch", &[("process", has_process), ("spans", has_spans)])?;
    Ok(batch)
}

/// Reads the agent's `emitBatch` call (a UDP packet): `None` when it holds no batch.
pub(crate) fn read_emit_batch<'a>(
    p: &mut impl Protocol<'a>,
) -> Result<Option<Batch<'a>>, ThriftError> {
    let message = p.message_begin()?;
    if message.name != b"emitBatch" {
        return Err(ThriftError::new(format!(
            "unknown method {:?}: the agent's port takes emitBatch",
            String::from_utf8_lossy(message.name)
        )));
    }
    let mut batch = None;
    read_struct(p, |p, ty, id| {
        Ok(match (id, ty) {
            (1, TType::Struct) => {
                batch = Some(read_batch(p)?);
                true
            }
            _ => false,
        })
    })?;
    Ok(batch)
}

/// Walks a struct's fields: `field` reads the ones it knows (returning true); the rest are
/// skipped.
fn read_struct<'a, P: Protocol<'a>>(
    p: &mut P,
    mut field: impl FnMut(&mut P, TType, i16) -> Result<bool, ThriftError>,
) -> Result<(), ThriftError> {
    p.struct_begin();
    while let Some((ty, id)) = p.field_begin()? {
        if !field(p, ty, id)? {
            p.skip(ty)?;
        }
    }
    p.struct_end();
    Ok(())
}

/// A list of structs. Go's generated code reads every element as the declared struct,
/// whatever element type the header names; so does this.
fn read_list<'a, P: Protocol<'a>, T>(
    p: &mut P,
    mut element: impl FnMut(&mut P) -> Result<T, ThriftError>,
) -> Result<Vec<T>, ThriftError> {
    let (_, len) = p.list_begin()?;
    let mut out = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        out.push(element(p)?);
    }
    Ok(out)
}

fn required(what: &str, fields: &[(&str, bool)]) -> Result<(), ThriftError> {
    match fields.iter().find(|(_, set)| !set) {
        Some((name, _)) => Err(ThriftError::new(format!(
            "{what}: required field {name} is not set"
        ))),
        None => Ok(()),
    }
}

/// Thrift strings are bytes; OTLP strings are UTF-8, so invalid sequences become U+FFFD.
fn text<'a>(p: &mut impl Protocol<'a>) -> Result<Cow<'a, str>, ThriftError> {
    let bytes = p.read_binary()?;
    // The common case checked with the standard library's fast validation.
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    })
}

fn read_process<'a>(p: &mut impl Protocol<'a>) -> Result<Process<'a>, ThriftError> {
    let mut process = Process::default();
    let mut has_name = false;
    read_struct(p, |p, ty, id| {
        Ok(match (id, ty) {
            (1, TType::String) => {
                process.service_name = text(p)?;
                has_name = true;
                true
            }
            (2, TType::List) => {
                process.tags = Some(read_list(p, read_tag)?);
                true
            }
            _ => false,
        })
    })?;
    required("Process", &[("serviceName", has_name)])?;
    Ok(process)
}

fn read_tag<'a>(p: &mut impl Protocol<'a>) -> Result<Tag<'a>, ThriftError> {
    let mut tag = Tag::default();
    let (mut has_key, mut has_type) = (false, false);
    read_struct(p, |p, ty, id| {
        match (id, ty) {
            (1, TType::String) => {
                tag.key = text(p)?;
                has_key = true;
            }
            (2, TType::I32) => {
                tag.v_type = p.read_i32()?;
                has_type = true;
            }
            (3, TType::String) => tag.v_str = Some(text(p)?),
            (4, TType::Double) => tag.v_double = Some(p.read_double()?),
            (5, TType::Bool) => tag.v_bool = Some(p.read_bool()?),
            (6, TType::I64) => tag.v_long = Some(p.read_i64()?),
            (7, TType::String) => tag.v_binary = Some(p.read_binary()?),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    required("Tag", &[("key", has_key), ("vType", has_type)])?;
    Ok(tag)
}

fn read_log<'a>(p: &mut impl Protocol<'a>) -> Result<Log<'a>, ThriftError> {
    let mut log = Log::default();
    let (mut has_timestamp, mut has_fields) = (false, false);
    read_struct(p, |p, ty, id| {
        Ok(match (id, ty) {
            (1, TType::I64) => {
                log.timestamp = p.read_i64()?;
                has_timestamp = true;
                true
            }
            (2, TType::List) => {
                log.fields = read_list(p, read_tag)?;
                has_fields = true;
                true
            }
            _ => false,
        })
    })?;
    required(
        "Log",
        &[("timestamp", has_timestamp), ("fields", has_fields)],
    )?;
    Ok(log)
}

fn read_span_ref<'a>(p: &mut impl Protocol<'a>) -> Result<SpanRef, ThriftError> {
    let mut r = SpanRef::default();
    let mut set = [false; 4];
    read_struct(p, |p, ty, id| {
        match (id, ty) {
            (1, TType::I32) => r.ref_type = p.read_i32()?,
            (2, TType::I64) => r.trace_id_low = p.read_i64()?,
            (3, TType::I64) => r.trace_id_high = p.read_i64()?,
            (4, TType::I64) => r.span_id = p.read_i64()?,
            _ => return Ok(false),
        }
        set[id as usize - 1] = true;
        Ok(true)
    })?;
    required(
        "SpanRef",
        &[
            ("refType", set[0]),
            ("traceIdLow", set[1]),
            ("traceIdHigh", set[2]),
            ("spanId", set[3]),
        ],
    )?;
    Ok(r)
}

fn read_span<'a>(p: &mut impl Protocol<'a>) -> Result<Span<'a>, ThriftError> {
    let mut s = Span::default();
    // Fields 1 to 9; 6 (references) is optional.
    let mut set = [false; 9];
    read_struct(p, |p, ty, id| {
        match (id, ty) {
            (1, TType::I64) => s.trace_id_low = p.read_i64()?,
            (2, TType::I64) => s.trace_id_high = p.read_i64()?,
            (3, TType::I64) => s.span_id = p.read_i64()?,
            (4, TType::I64) => s.parent_span_id = p.read_i64()?,
            (5, TType::String) => s.operation_name = text(p)?,
            (6, TType::List) => s.references = Some(read_list(p, read_span_ref)?),
            (7, TType::I32) => s.flags = p.read_i32()?,
            (8, TType::I64) => s.start_time = p.read_i64()?,
            (9, TType::I64) => s.duration = p.read_i64()?,
            (10, TType::List) => {
                s.tags = Some(read_list(p, read_tag)?);
                return Ok(true);
            }
            (11, TType::List) => {
                s.logs = Some(read_list(p, read_log)?);
                return Ok(true);
            }
            _ => return Ok(false),
        }
        set[id as usize - 1] = true;
        Ok(true)
    })?;
    required(
        "Span",
        &[
            ("traceIdLow", set[0]),
            ("traceIdHigh", set[1]),
            ("spanId", set[2]),
            ("parentSpanId", set[3]),
            ("operationName", set[4]),
            ("flags", set[6]),
            ("startTime", set[7]),
            ("duration", set[8]),
        ],
    )?;
    Ok(s)
}

/// `jaeger.ClientStats`, which clients report in their batches: read to check it as otelcol
/// does, not kept.
fn read_client_stats<'a>(p: &mut impl Protocol<'a>) -> Result<(), ThriftError> {
    let mut set = [false; 3];
    read_struct(p, |p, ty, id| {
        Ok(match (id, ty) {
            (1..=3, TType::I64) => {
                p.read_i64()?;
                set[id as usize - 1] = true;
                true
            }
            _ => false,
        })
    })?;
    required(
        "ClientStats",
        &[
            ("fullQueueDroppedSpans", set[0]),
            ("tooLargeDroppedSpans", set[1]),
            ("failedToEmitSpans", set[2]),
        ],
    )
}

//! Jaeger's protobuf model (`jaeger.api_v2`, what jaeger-agent sends over gRPC), read with
//! the rules of its Go code (gogo protobuf with custom id types and standard times) and
//! regrouped as otelcol's `ProtoToTraces` groups it: by process, then by scope.
//!
//! Strings are read as bytes, as gogo reads them (no UTF-8 check), and made UTF-8 here.

use std::borrow::Cow;

use bytes::Bytes;
use prost::Message;

use crate::model::{Log, Process, ProtobufTimes, Span, SpanRef, Tag, CHILD_OF, FOLLOWS_FROM};
use crate::translate::{ResourceGroup, ScopeGroup};

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PostSpansRequest {
    #[prost(message, optional, tag = "1")]
    pub batch: Option<PbBatch>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbBatch {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<PbSpan>,
    #[prost(message, optional, tag = "2")]
    pub process: Option<PbProcess>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbProcess {
    #[prost(bytes = "bytes", tag = "1")]
    pub service_name: Bytes,
    #[prost(message, repeated, tag = "2")]
    pub tags: Vec<PbKeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbKeyValue {
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    #[prost(int32, tag = "2")]
    pub v_type: i32,
    #[prost(bytes = "bytes", tag = "3")]
    pub v_str: Bytes,
    #[prost(bool, tag = "4")]
    pub v_bool: bool,
    #[prost(int64, tag = "5")]
    pub v_int64: i64,
    #[prost(double, tag = "6")]
    pub v_float64: f64,
    #[prost(bytes = "bytes", tag = "7")]
    pub v_binary: Bytes,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbSpanRef {
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub trace_id: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub span_id: Option<Bytes>,
    #[prost(int32, tag = "3")]
    pub ref_type: i32,
}

#[derive(Clone, Copy, PartialEq, Message)]
pub(crate) struct PbTimestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbLog {
    /// Kept whole, as a span's times.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub timestamp: Option<Bytes>,
    #[prost(message, repeated, tag = "2")]
    pub fields: Vec<PbKeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbSpan {
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub trace_id: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub span_id: Option<Bytes>,
    #[prost(bytes = "bytes", tag = "3")]
    pub operation_name: Bytes,
    #[prost(message, repeated, tag = "4")]
    pub references: Vec<PbSpanRef>,
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    /// A `Timestamp`/`Duration` message, kept whole: gogo reads a repeated one as the last,
    /// where prost would merge them.
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub start_time: Option<Bytes>,
    /// A `Timestamp`/`Duration` message, kept whole: gogo reads a repeated one as the last,
    /// where prost would merge them.
    #[prost(bytes = "bytes", optional, tag = "7")]
    pub duration: Option<Bytes>,
    #[prost(message, repeated, tag = "8")]
    pub tags: Vec<PbKeyValue>,
    #[prost(message, repeated, tag = "9")]
    pub logs: Vec<PbLog>,
    #[prost(message, optional, tag = "10")]
    pub process: Option<PbProcess>,
    #[prost(bytes = "bytes", tag = "11")]
    pub process_id: Bytes,
    #[prost(bytes = "bytes", repeated, tag = "12")]
    pub warnings: Vec<Bytes>,
}

/// The service name jaeger's OTLP exporter writes for a resource without one: otelcol gives
/// such a process no attributes.
const NO_SERVICE_NAME: &[u8] = b"OTLPResourceNoServiceName";

/// Go's `time.Time{}`, which a Timestamp of this many seconds also decodes to.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;
/// The range of `google.protobuf.Timestamp` (0001-01-01 to 9999-12-31), as gogo checks it.
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_800;
/// The range of `google.protobuf.Duration`, as gogo checks it.
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// A decoded request, owning what the spans borrow.
pub(crate) struct Decoded {
    pub batch: PbBatch,
}

/// Decodes a `PostSpansRequest` (for the fuzz target and benches; the server's codec
/// decodes its own).
pub(crate) fn decode(message: Bytes) -> Result<Decoded, String> {
    let request = PostSpansRequest::decode(message).map_err(|e| e.to_string())?;
    Ok(Decoded {
        batch: request.batch.unwrap_or_default(),
    })
}

/// A span, its own process (an index into [`Converted::processes`]; `None`: the batch's),
/// and its scope's name and version.
pub(crate) struct ConvertedSpan<'a> {
    pub span: Span<'a>,
    pub process: Option<usize>,
    pub scope_name: Cow<'a, str>,
    pub scope_version: Cow<'a, str>,
}

/// The model's spans and processes of a decoded request: what `regroup` groups.
pub(crate) struct Converted<'a> {
    pub batch_process: Option<Process<'a>>,
    pub spans: Vec<ConvertedSpan<'a>>,
    pub processes: Vec<Process<'a>>,
    /// Whether any span, blank ones included, belongs to the batch's process.
    pub batch_has_spans: bool,
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn tag(kv: &PbKeyValue) -> Tag<'_> {
    Tag {
        key: text(&kv.key),
        v_type: kv.v_type,
        v_str: Some(text(&kv.v_str)),
        v_double: Some(kv.v_float64),
        v_bool: Some(kv.v_bool),
        v_long: Some(kv.v_int64),
        v_binary: Some(&kv.v_binary),
        protobuf: true,
    }
}

/// A process as the model has it; the one named "no service" is a resource without
/// attributes, whatever its tags.
fn process(p: &PbProcess) -> Process<'_> {
    if p.service_name == NO_SERVICE_NAME {
        return Process::default();
    }
    Process {
        service_name: text(&p.service_name),
        tags: Some(p.tags.iter().map(tag).collect()),
    }
}

/// A trace id: 16 bytes (high, low) or 8 (low), as jaeger's `TraceIDFromBytes` reads it.
fn trace_id(bytes: Option<&[u8]>, what: &str) -> Result<(i64, i64), String> {
    match bytes {
        None => Ok((0, 0)),
        Some(b) if b.len() == 16 => Ok((word(&b[..8]), word(&b[8..]))),
        Some(b) if b.len() == 8 => Ok((0, word(b))),
        Some(b) => Err(format!(
            "{what}: invalid length for TraceID ({} bytes; 8 or 16)",
            b.len()
        )),
    }
}

fn span_id(bytes: Option<&[u8]>, what: &str) -> Result<i64, String> {
    match bytes {
        None => Ok(0),
        Some(b) if b.len() == 8 => Ok(word(b)),
        Some(b) => Err(format!(
            "{what}: invalid length for SpanID ({} bytes; 8)",
            b.len()
        )),
    }
}

fn word(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    i64::from_be_bytes(a)
}

/// A `Timestamp` or `Duration` message's fields.
fn seconds_nanos(raw: &[u8], what: &str) -> Result<PbTimestamp, String> {
    PbTimestamp::decode(raw).map_err(|e| format!("{what}: {e}"))
}

/// A Timestamp as Go's `time.Time.UnixNano()` reads it (wrapping outside 1678–2262), after
/// gogo's range check; an absent one is Go's zero time.
fn timestamp_ns(raw: Option<&[u8]>, what: &str) -> Result<u64, String> {
    let Some(raw) = raw else {
        return Ok((ZERO_TIME_SECONDS as u64).wrapping_mul(1_000_000_000));
    };
    let ts = seconds_nanos(raw, what)?;
    if !(ZERO_TIME_SECONDS..MAX_TIMESTAMP_SECONDS).contains(&ts.seconds)
        || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return Err(format!(
            "{what}: timestamp {}s {}ns is out of range",
            ts.seconds, ts.nanos
        ));
    }
    Ok(ts
        .seconds
        .wrapping_mul(1_000_000_000)
        .wrapping_add(i64::from(ts.nanos)) as u64)
}

/// A Duration in nanoseconds, after gogo's checks (range, matching signs, fits an int64).
fn duration_ns(raw: Option<&[u8]>, what: &str) -> Result<i64, String> {
    let Some(raw) = raw else {
        return Ok(0);
    };
    let d = &seconds_nanos(raw, what)?;
    let signs_agree = (d.seconds >= 0 && d.nanos >= 0) || (d.seconds <= 0 && d.nanos <= 0);
    if !(-MAX_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&d.seconds)
        || d.nanos <= -1_000_000_000
        || d.nanos >= 1_000_000_000
        || !signs_agree
    {
        return Err(format!(
            "{what}: duration {}s {}ns is out of range",
            d.seconds, d.nanos
        ));
    }
    d.seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(d.nanos)))
        .ok_or_else(|| format!("{what}: duration {}s is out of range", d.seconds))
}

/// A span equal to gogo's empty `model.Span`, which otelcol skips: no field set (a start
/// time decoding to Go's zero time counts as none).
fn is_blank(s: &PbSpan) -> bool {
    s.trace_id.is_none()
        && s.span_id.is_none()
        && s.operation_name.is_empty()
        && s.references.is_empty()
        && s.flags == 0
        && timestamp_ns(s.start_time.as_deref(), "").ok() == timestamp_ns(None, "").ok()
        && duration_ns(s.duration.as_deref(), "") == Ok(0)
        && s.tags.is_empty()
        && s.logs.is_empty()
        && s.process.is_none()
        && s.process_id.is_empty()
        && s.warnings.is_empty()
}

/// Removes the first tag named `key` (keeping the others' order) and returns its `v_str`,
/// whatever its type, as otelcol's `getAndDeleteTag`.
fn take_tag<'a>(tags: &mut Vec<Tag<'a>>, key: &str) -> Option<Cow<'a, str>> {
    let i = tags.iter().position(|t| t.key == key)?;
    Some(tags.remove(i).v_str.unwrap_or_default())
}

/// Whether a span's own process falls in the batch's group: otelcol groups processes by a
/// hash of their content, in which no process (the batch's left out) and an empty one agree.
fn same_group(own: &PbProcess, batch: Option<&PbProcess>) -> bool {
    match batch {
        Some(b) => own == b,
        None => own.service_name.is_empty() && own.tags.is_empty(),
    }
}

/// Converts a decoded request to the model, checking what gogo checks while decoding.
pub(crate) fn convert(decoded: &Decoded) -> Result<Converted<'_>, String> {
    let batch = &decoded.batch;
    let mut out = Converted {
        batch_process: batch.process.as_ref().map(process),
        spans: Vec::with_capacity(batch.spans.len()),
        processes: Vec::new(),
        batch_has_spans: false,
    };
    let mut own_processes: Vec<&PbProcess> = Vec::new();
    for (i, s) in batch.spans.iter().enumerate() {
        let what = format!("span {i}");
        let (trace_id_high, trace_id_low) = trace_id(s.trace_id.as_deref(), &what)?;
        let id = span_id(s.span_id.as_deref(), &what)?;
        let start_ns = timestamp_ns(s.start_time.as_deref(), &what)?;
        let duration = duration_ns(s.duration.as_deref(), &what)?;
        let mut references = Vec::with_capacity(s.references.len());
        for r in &s.references {
            let (high, low) = trace_id(r.trace_id.as_deref(), &what)?;
            references.push(SpanRef {
                ref_type: match r.ref_type {
                    0 => CHILD_OF,
                    1 => FOLLOWS_FROM,
                    other => other,
                },
                trace_id_low: low,
                trace_id_high: high,
                span_id: span_id(r.span_id.as_deref(), &what)?,
            });
        }
        let mut logs = Vec::with_capacity(s.logs.len());
        for l in &s.logs {
            let nanos = timestamp_ns(l.timestamp.as_deref(), &what)?;
            logs.push(Log {
                timestamp: 0,
                fields: l.fields.iter().map(tag).collect(),
                nanos: Some(nanos),
            });
        }
        if is_blank(s) {
            // Still a span of the batch's group, which otelcol then keeps as a resource.
            out.batch_has_spans = true;
            continue;
        }
        let mut tags: Vec<Tag<'_>> = s.tags.iter().map(tag).collect();
        let (scope_name, scope_version) = match take_tag(&mut tags, "otel.scope.name") {
            Some(name) => (
                name,
                take_tag(&mut tags, "otel.scope.version").unwrap_or_default(),
            ),
            None => (Cow::Borrowed(""), Cow::Borrowed("")),
        };
        // A span's own process in the batch's group (`same_group`) is no group of its own.
        let own = s
            .process
            .as_ref()
            .filter(|p| !same_group(p, batch.process.as_ref()))
            .map(|p| {
                own_processes
                    .iter()
                    .position(|q| *q == p)
                    .unwrap_or_else(|| {
                        own_processes.push(p);
                        own_processes.len() - 1
                    })
            });
        let span = Span {
            trace_id_low,
            trace_id_high,
            span_id: id,
            // The parent comes from the references, as jaeger's `ParentSpanID()` reads it.
            parent_span_id: 0,
            operation_name: text(&s.operation_name),
            references: Some(references),
            flags: s.flags as i32,
            start_time: 0,
            duration: 0,
            tags: Some(tags),
            logs: Some(logs),
            protobuf: Some(ProtobufTimes {
                start_ns,
                end_ns: start_ns.wrapping_add(duration as u64),
            }),
        };
        out.batch_has_spans |= own.is_none();
        out.spans.push(ConvertedSpan {
            span,
            process: own,
            scope_name,
            scope_version,
        });
    }
    out.processes = own_processes.into_iter().map(process).collect();
    Ok(out)
}

/// The resources of a converted request, as otelcol's `regroup` makes them: the batch's
/// process first, then each distinct process of a span in the order first seen (otelcol's
/// order comes from a Go map: any); in each, the scopes in the order first seen.
pub(crate) fn regroup<'b, 'a>(c: &'b Converted<'a>) -> Vec<ResourceGroup<'b, 'a>> {
    let mut groups: Vec<ResourceGroup<'b, 'a>> = Vec::with_capacity(1 + c.processes.len());
    groups.push(ResourceGroup {
        process: c.batch_process.as_ref(),
        scopes: Vec::new(),
    });
    groups.extend(c.processes.iter().map(|p| ResourceGroup {
        process: Some(p),
        scopes: Vec::new(),
    }));
    for s in &c.spans {
        let group = &mut groups[s.process.map_or(0, |i| i + 1)];
        match group
            .scopes
            .iter_mut()
            .find(|g| g.name == s.scope_name && g.version == s.scope_version)
        {
            Some(scope) => scope.spans.push(&s.span),
            None => group.scopes.push(ScopeGroup {
                name: s.scope_name.clone(),
                version: s.scope_version.clone(),
                spans: vec![&s.span],
            }),
        }
    }
    // Without a process of its own and without spans, the batch is no resource.
    if c.batch_process.is_none() && !c.batch_has_spans {
        groups.remove(0);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::write_groups;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    fn kv(key: &str, value: &str) -> PbKeyValue {
        PbKeyValue {
            key: Bytes::copy_from_slice(key.as_bytes()),
            v_str: Bytes::copy_from_slice(value.as_bytes()),
            ..PbKeyValue::default()
        }
    }

    fn span(id: u8, tags: Vec<PbKeyValue>) -> PbSpan {
        PbSpan {
            trace_id: Some([[0u8; 15].as_slice(), &[1]].concat().into()),
            span_id: Some(vec![0, 0, 0, 0, 0, 0, 0, id].into()),
            operation_name: Bytes::from_static(b"op"),
            start_time: Some(ts(1_700_000_000, 5)),
            duration: Some(ts(0, 1_500)),
            tags,
            ..PbSpan::default()
        }
    }

    fn ts(seconds: i64, nanos: i32) -> Bytes {
        PbTimestamp { seconds, nanos }.encode_to_vec().into()
    }

    fn translate(batch: PbBatch) -> Result<ExportTraceServiceRequest, String> {
        let decoded = Decoded { batch };
        let converted = convert(&decoded)?;
        let encoded = write_groups(&regroup(&converted));
        Ok(ExportTraceServiceRequest::decode(&encoded.bytes[..]).expect("valid OTLP"))
    }

    #[test]
    fn scopes_trace_state_times_and_processes() {
        let process = |name: &str| PbProcess {
            service_name: Bytes::copy_from_slice(name.as_bytes()),
            tags: vec![],
        };
        let mut own = span(3, vec![]);
        own.process = Some(process("other"));
        let mut same = span(4, vec![]);
        same.process = Some(process("svc"));
        let batch = PbBatch {
            process: Some(process("svc")),
            spans: vec![
                span(
                    1,
                    vec![
                        kv("a", "1"),
                        kv("otel.scope.name", "lib"),
                        kv("b", "2"),
                        kv("otel.scope.version", "1.0"),
                        kv("w3c.tracestate", "k=v"),
                    ],
                ),
                span(2, vec![kv("otel.scope.version", "2.0")]),
                own,
                same,
                PbSpan::default(),
            ],
        };
        let req = translate(batch).expect("translates");
        let names: Vec<Vec<(String, String, Vec<u8>)>> = req
            .resource_spans
            .iter()
            .map(|rs| {
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| {
                        let scope = ss.scope.clone().unwrap_or_default();
                        ss.spans.iter().map(move |s| {
                            (scope.name.clone(), scope.version.clone(), s.span_id.clone())
                        })
                    })
                    .collect()
            })
            .collect();
        let id = |n: u8| vec![0, 0, 0, 0, 0, 0, 0, n];
        // The span with the batch's process as its own stays in the batch's resource; the
        // version tag without a name is an attribute.
        assert_eq!(
            names,
            vec![
                vec![
                    ("lib".into(), "1.0".into(), id(1)),
                    (String::new(), String::new(), id(2)),
                    (String::new(), String::new(), id(4)),
                ],
                vec![(String::new(), String::new(), id(3))],
            ]
        );
        let first = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(first.trace_state, "k=v");
        let keys: Vec<&str> = first.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(first.start_time_unix_nano, 1_700_000_000_000_000_005);
        assert_eq!(first.end_time_unix_nano, 1_700_000_000_000_001_505);
        let second = &req.resource_spans[0].scope_spans[1].spans[0];
        assert_eq!(second.attributes[0].key, "otel.scope.version");
    }

    #[test]
    fn what_gogo_refuses_is_refused() {
        for (change, reason) in [
            (
                (|s: &mut PbSpan| s.trace_id = Some(vec![1; 9].into())) as fn(&mut PbSpan),
                "invalid length for TraceID",
            ),
            (
                |s| s.span_id = Some(vec![1; 4].into()),
                "invalid length for SpanID",
            ),
            (|s| s.start_time = Some(ts(0, -1)), "out of range"),
            (|s| s.duration = Some(ts(1, -1)), "out of range"),
            (
                |s| s.duration = Some(ts(300_000_000_000, 0)),
                "out of range",
            ),
        ] {
            let mut s = span(1, vec![]);
            change(&mut s);
            let err = translate(PbBatch {
                spans: vec![s],
                process: None,
            })
            .expect_err(reason);
            assert!(err.contains(reason), "{err}");
        }
        // An 8-byte trace id is the low half.
        let mut s = span(1, vec![]);
        s.trace_id = Some(vec![0, 0, 0, 0, 0, 0, 0, 9].into());
        let req = translate(PbBatch {
            spans: vec![s],
            process: None,
        })
        .expect("an 8-byte trace id");
        let out = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(out.trace_id[15], 9);
    }

    #[test]
    fn unknown_value_types_read_as_gogo_prints_them() {
        let mut t = kv("k", "v");
        t.v_type = 7;
        let req = translate(PbBatch {
            spans: vec![span(1, vec![t])],
            process: None,
        })
        .expect("translates");
        let attr = &req.resource_spans[0].scope_spans[0].spans[0].attributes[0];
        assert_eq!(
            attr.value.as_ref().and_then(|v| v.value.clone()),
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "<Unknown Jaeger TagType \"7\">".into()
                )
            )
        );
    }
}

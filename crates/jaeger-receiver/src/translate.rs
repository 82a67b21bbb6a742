//! Jaeger Thrift batches to an encoded OTLP traces request, with the rules of otelcol's
//! `pkg/translator/jaeger` (`ThriftToTraces`) at its default feature gates.
//!
//! Attribute lists behave as otelcol's maps do, because their order reaches the wire: a put
//! on an existing key replaces its value where it stands, and a removal moves the last
//! attribute into the removed one's place.

use std::borrow::Cow;

use redline_otlp_wire::write::{self as encode, Value};

use crate::model::{
    Batch, Log, Process, Span, SpanRef, Tag, CHILD_OF, TAG_BINARY, TAG_BOOL, TAG_DOUBLE, TAG_LONG,
    TAG_STRING,
};

/// An attribute value, owning what the translation makes up.
#[derive(Clone, Debug, PartialEq)]
enum AttrValue<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
}

impl AttrValue<'_> {
    /// pdata's `Value.Str()`: the string, or "" for any other type.
    fn str(&self) -> &str {
        match self {
            AttrValue::Str(s) => s,
            _ => "",
        }
    }

    fn wire(&self) -> Value<'_> {
        match self {
            AttrValue::Str(s) => Value::Str(s),
            AttrValue::Bool(b) => Value::Bool(*b),
            AttrValue::Int(i) => Value::Int(*i),
            AttrValue::Double(d) => Value::Double(*d),
            AttrValue::Bytes(b) => Value::Bytes(b),
        }
    }
}

/// An attribute list with pdata's `Map` semantics.
#[derive(Debug, Default)]
struct Attrs<'a>(Vec<(Cow<'a, str>, AttrValue<'a>)>);

impl<'a> Attrs<'a> {
    fn get(&self, key: &str) -> Option<&AttrValue<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn put(&mut self, key: Cow<'a, str>, value: AttrValue<'a>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key, value)),
        }
    }

    fn remove(&mut self, key: &str) -> Option<AttrValue<'a>> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(i).1)
    }

    fn write(&self, field: u32, out: &mut Vec<u8>) {
        for (key, value) in &self.0 {
            encode::key_value(field, key, &value.wire(), out);
        }
    }

    /// Tags as otelcol puts them (`jThriftTagsToInternalAttributes`).
    fn put_tags(&mut self, tags: &[Tag<'a>]) {
        for tag in tags {
            // semconv 1.25's key, as the translator's feature gates have it by default.
            let key = match &*tag.key {
                HTTP_STATUS_CODE | HTTP_RESPONSE_STATUS_CODE => Cow::Borrowed(HTTP_STATUS_CODE),
                _ => tag.key.clone(),
            };
            self.put(key, tag_value(tag));
        }
    }
}

const HTTP_STATUS_CODE: &str = "http.status_code";
const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
const HTTP_STATUS_MESSAGE: &str = "http.status_message";
const OTEL_STATUS_CODE: &str = "otel.status_code";
const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";

fn tag_value<'a>(tag: &Tag<'a>) -> AttrValue<'a> {
    // The protobuf ValueType's numbers, Thrift's TagType's.
    let kind = match (tag.protobuf, tag.v_type) {
        (true, 0) | (false, TAG_STRING) => TAG_STRING,
        (true, 1) | (false, TAG_BOOL) => TAG_BOOL,
        (true, 2) | (false, TAG_LONG) => TAG_LONG,
        (true, 3) | (false, TAG_DOUBLE) => TAG_DOUBLE,
        (true, 4) | (false, TAG_BINARY) => TAG_BINARY,
        // Go prints the unknown enum value's String(), quoted: Thrift's "<UNSET>", gogo
        // protobuf's the number.
        (false, _) => return AttrValue::Str(Cow::Borrowed("<Unknown Jaeger TagType \"<UNSET>\">")),
        (true, n) => {
            return AttrValue::Str(Cow::Owned(format!("<Unknown Jaeger TagType \"{n}\">")))
        }
    };
    match kind {
        TAG_STRING => AttrValue::Str(tag.v_str.clone().unwrap_or_default()),
        TAG_DOUBLE => AttrValue::Double(tag.v_double.unwrap_or_default()),
        TAG_BOOL => AttrValue::Bool(tag.v_bool.unwrap_or_default()),
        TAG_LONG => AttrValue::Int(tag.v_long.unwrap_or_default()),
        _ => AttrValue::Bytes(tag.v_binary.unwrap_or_default()),
    }
}

/// An encoded `ExportTraceServiceRequest` and what it holds.
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    /// Spans written.
    pub spans: usize,
    /// Spans left out because their trace or span id is all zero.
    pub dropped: usize,
}

/// Spans of one resource, by scope, as the translation writes them.
pub(crate) struct ResourceGroup<'b, 'a> {
    /// `None`: a resource without attributes.
    pub process: Option<&'b Process<'a>>,
    pub scopes: Vec<ScopeGroup<'b, 'a>>,
}

/// Spans of one scope (name and version; empty for Thrift, which has no scopes).
pub(crate) struct ScopeGroup<'b, 'a> {
    pub name: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub spans: Vec<&'b Span<'a>>,
}

/// Translates one Thrift batch: one resource (the process), one scope without a name, its
/// spans.
pub(crate) fn to_otlp(batch: &Batch<'_>) -> Encoded {
    let group = ResourceGroup {
        process: Some(&batch.process),
        scopes: vec![ScopeGroup {
            name: Cow::Borrowed(""),
            version: Cow::Borrowed(""),
            spans: batch.spans.iter().collect(),
        }],
    };
    write_groups(&[group])
}

/// Writes the request: each group a resource; a scope without spans left out, a resource
/// without spans kept as otelcol keeps it, unless the request has no span at all.
pub(crate) fn write_groups(groups: &[ResourceGroup<'_, '_>]) -> Encoded {
    let mut out = Encoded {
        bytes: Vec::new(),
        spans: 0,
        dropped: 0,
    };
    let mut resource_spans = Vec::new();
    let mut scope_spans = Vec::new();
    let mut span_buf = Vec::new();
    let mut part = Vec::new();
    for group in groups {
        resource_spans.clear();
        part.clear();
        resource(group.process).write(1, &mut part);
        encode::bytes(1, &part, &mut resource_spans);
        for scope in &group.scopes {
            scope_spans.clear();
            part.clear();
            encode::string(1, &scope.name, &mut part);
            encode::string(2, &scope.version, &mut part);
            encode::bytes(1, &part, &mut scope_spans);
            let mut written = 0;
            for span in &scope.spans {
                if span.is_blank() {
                    continue;
                }
                if (span.trace_id_high == 0 && span.trace_id_low == 0) || span.span_id == 0 {
                    out.dropped += 1;
                    continue;
                }
                span_buf.clear();
                write_span(span, &mut span_buf, &mut part);
                encode::bytes(2, &span_buf, &mut scope_spans);
                written += 1;
            }
            if written > 0 {
                encode::bytes(2, &scope_spans, &mut resource_spans);
                out.spans += written;
            }
        }
        encode::bytes(1, &resource_spans, &mut out.bytes);
    }
    if out.spans == 0 {
        out.bytes.clear();
    }
    out
}

/// The process as the resource (`jThriftProcessToInternalResource`).
fn resource<'a>(process: Option<&Process<'a>>) -> Attrs<'a> {
    let mut attrs = Attrs::default();
    let Some(process) = process else {
        return attrs;
    };
    if !process.service_name.is_empty() {
        attrs.put(
            Cow::Borrowed("service.name"),
            AttrValue::Str(process.service_name.clone()),
        );
    }
    attrs.put_tags(process.tags.as_deref().unwrap_or_default());
    // A copy under the new key, then the old key removed (which moves the copy, last, into
    // the old key's place).
    if attrs.get("host.name").is_none() {
        if let Some(hostname) = attrs.get("hostname").cloned() {
            attrs.put(Cow::Borrowed("host.name"), hostname);
            attrs.remove("hostname");
        }
    }
    if attrs.get("opencensus.exporterversion").is_none() {
        if let Some(version) = attrs.get("jaeger.version") {
            let value = format!("Jaeger-{}", version.str());
            attrs.put(
                Cow::Borrowed("opencensus.exporterversion"),
                AttrValue::Str(Cow::Owned(value)),
            );
            attrs.remove("jaeger.version");
        }
    }
    attrs
}

/// A Jaeger id half as OTLP writes ids: big-endian bytes.
fn id_bytes(high: i64, low: i64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// Microseconds since the epoch as nanoseconds, wrapping as Go's unsigned multiply does.
fn micros_to_nanos(micros: i64) -> u64 {
    (micros as u64).wrapping_mul(1000)
}

/// The parent: `parentSpanId`, else the first CHILD_OF reference in the same trace, else the
/// first FOLLOWS_FROM one (`jThriftSpanParentID`).
fn parent_id(span: &Span<'_>) -> i64 {
    if span.parent_span_id != 0 {
        return span.parent_span_id;
    }
    let same_trace =
        |r: &&SpanRef| r.trace_id_high == span.trace_id_high && r.trace_id_low == span.trace_id_low;
    let refs = span.references.as_deref().unwrap_or_default();
    refs.iter()
        .filter(same_trace)
        .find(|r| r.ref_type == CHILD_OF)
        .or_else(|| {
            refs.iter()
                .filter(same_trace)
                .find(|r| r.ref_type == crate::model::FOLLOWS_FROM)
        })
        .map_or(0, |r| r.span_id)
}

/// OTLP span kinds by `span.kind` tag value.
fn kind(value: &str) -> u64 {
    match value {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => 0,
    }
}

const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_UNSET: u64 = 0;
const STATUS_OK: u64 = 1;
const STATUS_ERROR: u64 = 2;

fn write_span(span: &Span<'_>, out: &mut Vec<u8>, part: &mut Vec<u8>) {
    encode::bytes(1, &id_bytes(span.trace_id_high, span.trace_id_low), out);
    encode::bytes(2, &span.span_id.to_be_bytes(), out);
    let parent = parent_id(span);
    if parent != 0 {
        encode::bytes(4, &parent.to_be_bytes(), out);
    }
    encode::string(5, &span.operation_name, out);

    let mut attrs = Attrs::default();
    attrs.put_tags(span.tags.as_deref().unwrap_or_default());
    let kind = attrs.remove("span.kind").map_or(0, |k| kind(k.str()));
    encode::varint(6, kind, out);
    let (start, end) = match span.protobuf {
        Some(times) => (times.start_ns, times.end_ns),
        None => (
            micros_to_nanos(span.start_time),
            micros_to_nanos(span.start_time.wrapping_add(span.duration)),
        ),
    };
    encode::fixed64(7, start, out);
    encode::fixed64(8, end, out);
    let status = status(&mut attrs, kind);
    // Only the protobuf translation reads the trace state from its tag, after the status.
    if span.protobuf.is_some() {
        if let Some(state) = take_str(&mut attrs, "w3c.tracestate") {
            encode::string(3, &state, out);
        }
    }
    attrs.write(9, out);
    for log in span.logs.as_deref().unwrap_or_default() {
        part.clear();
        write_event(log, part);
        encode::bytes(11, part, out);
    }
    for r in span.references.as_deref().unwrap_or_default() {
        if r.span_id == parent && r.ref_type == CHILD_OF {
            continue;
        }
        part.clear();
        // pdata leaves an all-zero id off the wire.
        if r.trace_id_high != 0 || r.trace_id_low != 0 {
            encode::bytes(1, &id_bytes(r.trace_id_high, r.trace_id_low), part);
        }
        if r.span_id != 0 {
            encode::bytes(2, &r.span_id.to_be_bytes(), part);
        }
        let ref_type = if r.ref_type == CHILD_OF {
            "child_of"
        } else {
            "follows_from"
        };
        encode::key_value(4, "opentracing.ref_type", &Value::Str(ref_type), part);
        encode::bytes(13, part, out);
    }
    if let Some((code, message)) = status {
        part.clear();
        encode::string(2, &message, part);
        encode::varint(3, code, part);
        encode::bytes(15, part, out);
    }
    // Jaeger's flags: bit 0 is "sampled", W3C's sampled trace flag.
    if span.flags & 1 == 1 {
        encode::fixed32(16, 1, out);
    }
}

fn write_event(log: &Log<'_>, out: &mut Vec<u8>) {
    let time = log.nanos.unwrap_or_else(|| micros_to_nanos(log.timestamp));
    encode::fixed64(1, time, out);
    let mut attrs = Attrs::default();
    attrs.put_tags(&log.fields);
    if let Some(name) = attrs.remove("event") {
        encode::string(2, name.str(), out);
    }
    attrs.write(3, out);
}

/// The status from the `error`, `otel.status_code` and HTTP status tags, which it consumes
/// as otelcol does (`setInternalSpanStatus`); `None` when the span has none.
fn status<'a>(attrs: &mut Attrs<'a>, kind: u64) -> Option<(u64, Cow<'a, str>)> {
    let mut code = STATUS_UNSET;
    let mut message = Cow::Borrowed("");
    let mut exists = false;
    if attrs.get("error") == Some(&AttrValue::Bool(true)) {
        code = STATUS_ERROR;
        attrs.remove("error");
        exists = true;
        if let Some(description) = take_str(attrs, OTEL_STATUS_DESCRIPTION) {
            message = description;
        } else if let Some(m) = attrs.get(HTTP_STATUS_MESSAGE) {
            message = Cow::Owned(m.str().to_owned());
        }
    }
    if let Some(otel_code) = attrs.get(OTEL_STATUS_CODE) {
        if !exists {
            exists = true;
            code = match otel_code.str().to_uppercase().as_str() {
                "OK" => STATUS_OK,
                "ERROR" => STATUS_ERROR,
                _ => STATUS_UNSET,
            };
            if let Some(description) = take_str(attrs, OTEL_STATUS_DESCRIPTION) {
                message = description;
            }
        }
        attrs.remove(OTEL_STATUS_CODE);
    } else if !exists {
        let http = attrs
            .get(HTTP_STATUS_CODE)
            .or_else(|| attrs.get(HTTP_RESPONSE_STATUS_CODE));
        if let Some(http_code) = http.and_then(http_code) {
            let from_http = match http_code {
                400..=499 if kind == KIND_CLIENT => STATUS_ERROR,
                400..=499 if kind == KIND_SERVER => STATUS_UNSET,
                100..=398 => STATUS_UNSET,
                _ => STATUS_ERROR,
            };
            if from_http != STATUS_UNSET {
                exists = true;
                code = from_http;
            }
            if let Some(m) = attrs.get(HTTP_STATUS_MESSAGE) {
                message = Cow::Owned(m.str().to_owned());
            }
        }
    }
    exists.then_some((code, message))
}

/// Removes `key` and returns its value as pdata's `Str()` reads it.
fn take_str<'a>(attrs: &mut Attrs<'a>, key: &str) -> Option<Cow<'a, str>> {
    attrs.remove(key).map(|v| match v {
        AttrValue::Str(s) => s,
        _ => Cow::Borrowed(""),
    })
}

/// An HTTP status code attribute as a number: an int, or a string Go's `ParseInt` reads.
fn http_code(value: &AttrValue<'_>) -> Option<i64> {
    match value {
        AttrValue::Int(i) => Some(*i),
        AttrValue::Str(s) => parse_int(s),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign, ASCII digits, nothing else.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests;

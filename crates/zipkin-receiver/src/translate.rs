//! Zipkin spans to an OTLP export request, with the rules of otelcol's Zipkin v2 translator
//! (`pkg/translator/zipkin/zipkinv2`, v0.161.0, its feature gates at their defaults):
//!
//! - spans are grouped by local service name (a resource with `service.name`, or with no
//!   attribute when there is none), then by scope (`otel.scope.name`, else
//!   `otel.library.name`), groups ordered by those names;
//! - the tags otelcol keeps for resources (`host.name`, `k8s.pod.name`, …) are taken from the
//!   first span of each service and dropped from every span;
//! - `otel.status_code`, `otel.status_description` and `error` make the status; `span.kind`
//!   the kind of a span without one; `w3c.tracestate` the trace state; `otlp.link.<n>` the
//!   links; annotations the events (`name|{attributes}|dropped` as OTLP exporters write them);
//! - endpoints become `network.local.address`, `net.host.port`, `service.peer.name`,
//!   `network.peer.address` and `net.peer.port`;
//! - a JSON span without a timestamp starts at 0 and is marked
//!   `otel.zipkin.absentField.startTime`.
//!
//! Spans of one scope keep the order they came in (otelcol's unstable sort may reorder
//! them).

use std::borrow::Cow;

use crate::model::{DecodeError, Tags, ZipkinSpan};
use redline_otlp_wire::write::{self as encode, Value};

/// otelcol's stand-in for a span without a local service name: its resource gets no
/// attributes.
const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAME_SOURCE: &str = "otlp.service.name.source";
const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";
const SCOPE_NAME: &str = "otel.scope.name";
const SCOPE_VERSION: &str = "otel.scope.version";
const LIBRARY_NAME: &str = "otel.library.name";
const LIBRARY_VERSION: &str = "otel.library.version";
/// The most `otlp.link.<n>` tags read, as otelcol.
const MAX_LINKS: usize = 128;

/// Tags otelcol moves to the resource (its list of resource semantic conventions, plus
/// OpenCensus' own): never span attributes.
const RESOURCE_TAGS: &[&str] = &[
    "cloud.provider",
    "cloud.account.id",
    "cloud.region",
    "cloud.availability_zone",
    "cloud.platform",
    "aws.ecs.container.arn",
    "aws.ecs.cluster.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.names",
    "aws.log.group.arns",
    "aws.log.stream.names",
    "aws.log.stream.arns",
    "container.name",
    "container.id",
    "container.runtime",
    "container.image.name",
    "container.image.tag",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "device.manufacturer",
    "faas.name",
    "faas.id",
    "cloud.resource_id",
    "faas.version",
    "faas.instance",
    "faas.max_memory",
    "host.id",
    "host.name",
    "host.type",
    "host.arch",
    "host.image.name",
    "host.image.id",
    "host.image.version",
    "k8s.cluster.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.namespace.name",
    "k8s.pod.uid",
    "k8s.pod.name",
    "k8s.container.name",
    "k8s.container.restart_count",
    "k8s.replicaset.uid",
    "k8s.replicaset.name",
    "k8s.deployment.uid",
    "k8s.deployment.name",
    "k8s.statefulset.uid",
    "k8s.statefulset.name",
    "k8s.daemonset.uid",
    "k8s.daemonset.name",
    "k8s.job.uid",
    "k8s.job.name",
    "k8s.cronjob.uid",
    "k8s.cronjob.name",
    "os.type",
    "os.description",
    "os.name",
    "os.version",
    "process.pid",
    "process.executable.name",
    "process.executable.path",
    "process.command",
    "process.command_line",
    "process.command_args",
    "process.owner",
    "process.runtime.name",
    "process.runtime.version",
    "process.runtime.description",
    "service.name",
    "service.namespace",
    "service.instance.id",
    "service.version",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
    "telemetry.auto.version",
    "webengine.name",
    "webengine.version",
    "webengine.description",
    "opencensus.starttime",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
];

/// Tags that are never span attributes: the resource's, and those of the scope. A `match`
/// rather than a scan of [`RESOURCE_TAGS`]: it runs for every tag of every span.
fn never_a_span_attribute(key: &str) -> bool {
    matches!(
        key,
        SERVICE_NAME_SOURCE
            | SCOPE_NAME
            | SCOPE_VERSION
            | LIBRARY_NAME
            | LIBRARY_VERSION
            | "cloud.provider"
            | "cloud.account.id"
            | "cloud.region"
            | "cloud.availability_zone"
            | "cloud.platform"
            | "aws.ecs.container.arn"
            | "aws.ecs.cluster.arn"
            | "aws.ecs.launchtype"
            | "aws.ecs.task.arn"
            | "aws.ecs.task.family"
            | "aws.ecs.task.revision"
            | "aws.eks.cluster.arn"
            | "aws.log.group.names"
            | "aws.log.group.arns"
            | "aws.log.stream.names"
            | "aws.log.stream.arns"
            | "container.name"
            | "container.id"
            | "container.runtime"
            | "container.image.name"
            | "container.image.tag"
            | "deployment.environment"
            | "device.id"
            | "device.model.identifier"
            | "device.model.name"
            | "device.manufacturer"
            | "faas.name"
            | "faas.id"
            | "cloud.resource_id"
            | "faas.version"
            | "faas.instance"
            | "faas.max_memory"
            | "host.id"
            | "host.name"
            | "host.type"
            | "host.arch"
            | "host.image.name"
            | "host.image.id"
            | "host.image.version"
            | "k8s.cluster.name"
            | "k8s.node.name"
            | "k8s.node.uid"
            | "k8s.namespace.name"
            | "k8s.pod.uid"
            | "k8s.pod.name"
            | "k8s.container.name"
            | "k8s.container.restart_count"
            | "k8s.replicaset.uid"
            | "k8s.replicaset.name"
            | "k8s.deployment.uid"
            | "k8s.deployment.name"
            | "k8s.statefulset.uid"
            | "k8s.statefulset.name"
            | "k8s.daemonset.uid"
            | "k8s.daemonset.name"
            | "k8s.job.uid"
            | "k8s.job.name"
            | "k8s.cronjob.uid"
            | "k8s.cronjob.name"
            | "os.type"
            | "os.description"
            | "os.name"
            | "os.version"
            | "process.pid"
            | "process.executable.name"
            | "process.executable.path"
            | "process.command"
            | "process.command_line"
            | "process.command_args"
            | "process.owner"
            | "process.runtime.name"
            | "process.runtime.version"
            | "process.runtime.description"
            | "service.name"
            | "service.namespace"
            | "service.instance.id"
            | "service.version"
            | "telemetry.sdk.name"
            | "telemetry.sdk.language"
            | "telemetry.sdk.version"
            | "telemetry.auto.version"
            | "webengine.name"
            | "webengine.version"
            | "webengine.description"
            | "opencensus.starttime"
            | "opencensus.exporterversion"
            | "opencensus.resourcetype"
    )
}

/// A span's attributes before they are written: pdata's `Put` semantics (a key already there
/// keeps its place and takes the new value).
struct Attributes<'a>(Vec<(&'a str, Value<'a>)>);

impl<'a> Attributes<'a> {
    fn put(&mut self, key: &'a str, value: Value<'a>) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    fn write(&self, field: u32, out: &mut Vec<u8>) {
        for (key, value) in &self.0 {
            encode::key_value(field, key, value, out);
        }
    }
}

fn local_service<'s>(span: &'s ZipkinSpan<'_>) -> &'s str {
    span.local_endpoint
        .as_ref()
        .map(|e| e.service_name.as_ref())
        .filter(|s| !s.is_empty())
        .unwrap_or(NO_SERVICE_NAME)
}

fn scope_name<'s>(span: &'s ZipkinSpan<'_>) -> &'s str {
    span.tags
        .get(SCOPE_NAME)
        .or_else(|| span.tags.get(LIBRARY_NAME))
        .unwrap_or("")
}

/// An encoded `ExportTraceServiceRequest`.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub spans: usize,
    /// Spans left out for an all-zero trace or span id: no backend can store them (the
    /// `otlp` receiver drops them too).
    pub dropped: usize,
}

/// Buffers of the messages being written, innermost last: each is written into the one
/// above it, length-prefixed, once complete.
#[derive(Default)]
struct Writer {
    request: Vec<u8>,
    resource_spans: Vec<u8>,
    scope_spans: Vec<u8>,
    span: Vec<u8>,
    /// An event or a link being written inside `span`.
    part: Vec<u8>,
}

impl Writer {
    fn end_scope(&mut self) {
        if !self.scope_spans.is_empty() {
            encode::bytes(2, &self.scope_spans, &mut self.resource_spans);
            self.scope_spans.clear();
        }
    }

    fn end_resource(&mut self) {
        self.end_scope();
        if !self.resource_spans.is_empty() {
            encode::bytes(1, &self.resource_spans, &mut self.request);
            self.resource_spans.clear();
        }
    }
}

/// The OTLP request for `spans`.
pub(crate) fn to_otlp(
    mut spans: Vec<ZipkinSpan<'_>>,
    parse_string_tags: bool,
) -> Result<Encoded, DecodeError> {
    let before = spans.len();
    spans.retain(|s| s.trace_id != [0; 16] && s.id != 0);
    let dropped = before - spans.len();
    spans.sort_by(|a, b| {
        local_service(a)
            .cmp(local_service(b))
            .then_with(|| scope_name(a).cmp(scope_name(b)))
    });
    let mut w = Writer::default();
    // The group of the previous span: names copied only when a new group starts.
    let mut service: Option<String> = None;
    let mut scope = String::new();
    for zspan in spans.iter_mut() {
        let new_resource = service.as_deref() != Some(local_service(zspan));
        let new_scope = new_resource || scope != scope_name(zspan);
        if new_resource {
            w.end_resource();
            service = Some(local_service(zspan).to_owned());
        } else if new_scope {
            w.end_scope();
        }
        if new_scope {
            scope = scope_name(zspan).to_owned();
        }
        let mut tags = std::mem::take(&mut zspan.tags);
        if new_resource {
            let resource = resource(&mut tags, service.as_deref().unwrap_or_default());
            w.part.clear();
            for (key, value) in resource.iter() {
                encode::key_value(1, key, &Value::Str(value), &mut w.part);
            }
            encode::bytes(1, &w.part, &mut w.resource_spans);
        }
        if new_scope {
            let (name, version) = instrumentation_scope(&mut tags, &scope);
            w.part.clear();
            encode::string(1, &name, &mut w.part);
            encode::string(2, &version, &mut w.part);
            encode::bytes(1, &w.part, &mut w.scope_spans);
        }
        w.span.clear();
        span(zspan, tags, parse_string_tags, &mut w)?;
        encode::bytes(2, &w.span, &mut w.scope_spans);
    }
    w.end_resource();
    Ok(Encoded {
        bytes: w.request,
        spans: spans.len(),
        dropped,
    })
}

/// The resource of a service, from the first span of its group.
fn resource<'t>(tags: &mut Tags<'t>, service: &'t str) -> Tags<'t> {
    // Its own tag map: `insert` has pdata's `Put` semantics, as the resource's attributes need.
    let mut attributes = Tags::default();
    if service != NO_SERVICE_NAME {
        let key = tags
            .remove(SERVICE_NAME_SOURCE)
            .filter(|source| !source.is_empty())
            .unwrap_or(Cow::Borrowed(SERVICE_NAME));
        attributes.insert(key, Cow::Borrowed(service));
        for key in RESOURCE_TAGS {
            if let Some(value) = tags.remove(key) {
                attributes.insert(Cow::Borrowed(key), value);
            }
        }
    }
    attributes
}

/// The scope's name and version, from the first span of its group.
fn instrumentation_scope<'t>(tags: &mut Tags<'t>, name: &str) -> (Cow<'t, str>, Cow<'t, str>) {
    let (mut scope_name, mut version) = (Cow::Borrowed(""), Cow::Borrowed(""));
    if name.is_empty() {
        return (scope_name, version);
    }
    // The newer key wins, as in otelcol: it is read second.
    for key in [LIBRARY_NAME, SCOPE_NAME] {
        if let Some(value) = tags.remove(key) {
            scope_name = value;
        }
    }
    for key in [LIBRARY_VERSION, SCOPE_VERSION] {
        if let Some(value) = tags.remove(key) {
            version = value;
        }
    }
    (scope_name, version)
}

/// Writes one span into `w.span`.
fn span(
    zspan: &ZipkinSpan<'_>,
    mut tags: Tags<'_>,
    parse_string_tags: bool,
    w: &mut Writer,
) -> Result<(), DecodeError> {
    let trace_state = tags.remove("w3c.tracestate");
    let kind = kind(&zspan.kind, &mut tags);
    let (code, message) = status(&mut tags);
    let links = take_links(&mut tags);

    let out = &mut w.span;
    encode::bytes(1, &zspan.trace_id, out);
    encode::bytes(2, &zspan.id.to_be_bytes(), out);
    encode::string(3, trace_state.as_deref().unwrap_or(""), out);
    if let Some(parent) = zspan.parent_id.filter(|p| *p != zspan.id && *p != 0) {
        encode::bytes(4, &parent.to_be_bytes(), out);
    }
    encode::string(5, &zspan.name, out);
    encode::varint(6, kind, out);
    let (start, end) = match zspan.timestamp {
        Some(start) => (start, start.wrapping_add(zspan.duration)),
        None => (0, zspan.duration),
    };
    encode::fixed64(7, start, out);
    encode::fixed64(8, end, out);

    let mut attributes = Attributes(Vec::with_capacity(tags.len() + 4));
    for (key, value) in tags.iter() {
        if !never_a_span_attribute(key) {
            // Tag keys are unique: no lookup needed.
            attributes
                .0
                .push((key, tag_value(value, parse_string_tags)));
        }
    }
    if let Some(local) = &zspan.local_endpoint {
        for ip in [&local.ipv4, &local.ipv6].into_iter().flatten() {
            attributes.put("network.local.address", Value::Str(ip));
        }
        if local.port > 0 {
            attributes.put("net.host.port", Value::Int(local.port.into()));
        }
    }
    if let Some(remote) = &zspan.remote_endpoint {
        if !remote.service_name.is_empty() {
            attributes.put("service.peer.name", Value::Str(&remote.service_name));
        }
        for ip in [&remote.ipv4, &remote.ipv6].into_iter().flatten() {
            attributes.put("network.peer.address", Value::Str(ip));
        }
        if remote.port > 0 {
            attributes.put("net.peer.port", Value::Int(remote.port.into()));
        }
    }
    if zspan.timestamp.is_none() {
        attributes.put(START_TIME_ABSENT, Value::Bool(true));
    }
    attributes.write(9, out);

    for (time, value) in &zspan.annotations {
        w.part.clear();
        event(*time, value, &mut w.part)?;
        encode::bytes(11, &w.part, &mut w.span);
    }
    for (i, link) in links.iter().enumerate() {
        w.part.clear();
        if write_link(i, link, &mut w.part)? {
            encode::bytes(13, &w.part, &mut w.span);
        }
    }
    if code != 0 || !message.is_empty() {
        w.part.clear();
        encode::string(2, &message, &mut w.part);
        encode::varint(3, code, &mut w.part);
        encode::bytes(15, &w.part, &mut w.span);
    }
    Ok(())
}

fn kind(kind: &str, tags: &mut Tags<'_>) -> u64 {
    match kind {
        "CLIENT" => SPAN_KIND_CLIENT,
        "SERVER" => SPAN_KIND_SERVER,
        "PRODUCER" => SPAN_KIND_PRODUCER,
        "CONSUMER" => SPAN_KIND_CONSUMER,
        _ => match tags.remove("span.kind").as_deref() {
            Some("internal") => SPAN_KIND_INTERNAL,
            _ => 0,
        },
    }
}

// OTLP's SpanKind and StatusCode values.
const SPAN_KIND_INTERNAL: u64 = 1;
const SPAN_KIND_SERVER: u64 = 2;
const SPAN_KIND_CLIENT: u64 = 3;
const SPAN_KIND_PRODUCER: u64 = 4;
const SPAN_KIND_CONSUMER: u64 = 5;
const STATUS_OK: u64 = 1;
const STATUS_ERROR: u64 = 2;

/// The status code and message the tags make.
fn status<'t>(tags: &mut Tags<'t>) -> (u64, Cow<'t, str>) {
    let (mut code, mut message) = (0, Cow::Borrowed(""));
    if let Some(value) = tags.remove("otel.status_code") {
        code = match value.as_ref() {
            "STATUS_CODE_OK" | "Ok" => STATUS_OK,
            "STATUS_CODE_ERROR" | "Error" => STATUS_ERROR,
            _ => 0,
        };
        if let Some(m) = tags.remove("otel.status_description") {
            message = m;
        }
    }
    // Any `error` tag marks an error; only `true` is then dropped (otelcol's rule: another
    // value is the error's description, kept as an attribute).
    if let Some(value) = tags.get("error") {
        code = STATUS_ERROR;
        if value == "true" {
            tags.remove("error");
        }
    }
    (code, message)
}

/// A tag's value: a string, or with `parse_string_tags` an int, double or bool when it reads
/// as one (otelcol's patterns; an int too large for 64 bits is clamped, as Go's `ParseInt`
/// returns it).
fn tag_value(value: &str, parse_string_tags: bool) -> Value<'_> {
    if parse_string_tags {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let unsigned = value.strip_prefix('-').unwrap_or(value);
        if digits(unsigned) {
            let clamped = if value.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            };
            return Value::Int(value.parse().unwrap_or(clamped));
        }
        if let Some((whole, fraction)) = unsigned.split_once('.') {
            if digits(whole) && digits(fraction) {
                if let Ok(v) = value.parse() {
                    return Value::Double(v);
                }
            }
        }
        match value {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
    }
    Value::Str(value)
}

/// The `otlp.link.<n>` tags, 0, 1, … until one is missing, taken out of the tags.
fn take_links<'t>(tags: &mut Tags<'t>) -> Vec<Cow<'t, str>> {
    let mut links = Vec::new();
    for i in 0..MAX_LINKS {
        match tags.remove(&format!("otlp.link.{i}")) {
            Some(value) => links.push(value),
            None => break,
        }
    }
    links
}

/// A link tag, `trace|span|state|{json}|dropped`; false for one of fewer parts, which is no
/// link.
fn write_link(i: usize, value: &str, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
    let parts: Vec<&str> = value.split('|').collect();
    let n = parts.len();
    if n < 5 {
        return Ok(false);
    }
    let bad = |e: String| DecodeError(format!("tag otlp.link.{i}: {e}"));
    let trace_id = hex_id::<16>(parts[0]).map_err(|e| bad(format!("trace id: {e}")))?;
    let span_id = hex_id::<8>(parts[1]).map_err(|e| bad(format!("span id: {e}")))?;
    let (attributes, dropped) = json_attributes(&parts[3..n - 1], parts[n - 1]).map_err(bad)?;
    encode::bytes(1, &trace_id, out);
    encode::bytes(2, &span_id, out);
    encode::string(3, parts[2], out);
    write_json_attributes(4, &attributes, out);
    encode::varint(5, dropped.into(), out);
    Ok(true)
}

/// An annotation: its value is the event's name, or `name|{json}|dropped`.
fn event(time_unix_nano: u64, value: &str, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let parts: Vec<&str> = value.split('|').collect();
    let n = parts.len();
    encode::fixed64(1, time_unix_nano, out);
    encode::string(2, parts[0], out);
    if n >= 3 {
        let (attributes, dropped) = json_attributes(&parts[1..n - 1], parts[n - 1])
            .map_err(|e| DecodeError(format!("annotation `{}`: {e}", parts[0])))?;
        write_json_attributes(3, &attributes, out);
        encode::varint(4, dropped.into(), out);
    }
    Ok(())
}

/// Attributes read from the JSON of a link or an annotation.
type JsonAttributes = Vec<(String, JsonValue)>;

enum JsonValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

fn write_json_attributes(field: u32, attributes: &JsonAttributes, out: &mut Vec<u8>) {
    for (key, value) in attributes {
        let value = match value {
            JsonValue::Str(s) => Value::Str(s),
            JsonValue::Bool(b) => Value::Bool(*b),
            JsonValue::Int(i) => Value::Int(*i),
            JsonValue::Double(d) => Value::Double(*d),
        };
        encode::key_value(field, key, &value, out);
    }
}

/// The JSON object (its text may have been split at `|`) and the dropped count that end a
/// link or an annotation.
fn json_attributes(json: &[&str], dropped: &str) -> Result<(JsonAttributes, u32), String> {
    let text = json.join("|");
    // `null` is no attributes, as Go reads it into a map.
    let object: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text)
        .map_err(|e| format!("attributes `{text}` are not a JSON object: {e}"))?;
    let mut attributes = JsonAttributes::new();
    for (key, value) in object.into_iter().flatten() {
        let value = match value {
            serde_json::Value::String(s) => JsonValue::Str(s),
            serde_json::Value::Bool(b) => JsonValue::Bool(b),
            serde_json::Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Go reads every JSON number as a float64 and keeps a whole one as an int.
                if f.fract() == 0.0 {
                    JsonValue::Int(f as i64)
                } else {
                    JsonValue::Double(f)
                }
            }
            _ => continue,
        };
        attributes.push((key, value));
    }
    let dropped = dropped
        .parse::<u32>()
        .map_err(|_| format!("dropped attributes count `{dropped}` is not a number"))?;
    Ok((attributes, dropped))
}

/// A hex id of `N` bytes, quotes allowed around it; empty is all zeros.
fn hex_id<const N: usize>(text: &str) -> Result<Vec<u8>, String> {
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if text.is_empty() {
        return Ok(vec![0; N]);
    }
    if text.len() != 2 * N {
        return Err(format!("`{text}` is not {N} bytes of hex"));
    }
    (0..N)
        .map(|i| {
            text.get(2 * i..2 * i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`{text}` is not hex"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::from_json;
    use crate::model::trace_id;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use prost::Message;

    fn translate(body: &str, parse: bool) -> ExportTraceServiceRequest {
        let encoded =
            to_otlp(from_json(body.as_bytes()).expect("decodes"), parse).expect("translates");
        ExportTraceServiceRequest::decode(encoded.bytes.as_slice()).expect("valid OTLP")
    }

    fn attrs(kvs: &[KeyValue]) -> std::collections::BTreeMap<String, String> {
        kvs.iter()
            .map(|kv| {
                let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
                let text = v.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"));
                (kv.key.clone(), text)
            })
            .collect()
    }

    #[test]
    fn groups_by_service_then_scope_and_moves_resource_tags() {
        let req = translate(
            r#"[
            {"traceId": "1", "id": "1", "localEndpoint": {"serviceName": "b"},
             "tags": {"otel.scope.name": "s2", "otel.library.name": "old", "otel.scope.version": "1"}},
            {"traceId": "1", "id": "2", "localEndpoint": {"serviceName": "a"},
             "tags": {"host.name": "h1", "x": "1"}},
            {"traceId": "1", "id": "3", "localEndpoint": {"serviceName": "a"},
             "tags": {"host.name": "h2"}},
            {"traceId": "1", "id": "4"},
            {"traceId": "1", "id": "5", "localEndpoint": {"serviceName": "b"}}
        ]"#,
            false,
        );
        let services: Vec<_> = req
            .resource_spans
            .iter()
            .map(|rs| attrs(&rs.resource.as_ref().expect("resource").attributes))
            .collect();
        assert_eq!(services.len(), 3);
        assert_eq!(services[0].len(), 0, "no local service: no attributes");
        assert_eq!(
            services[1].get("host.name").map(String::as_str),
            Some(r#"StringValue("h1")"#)
        );
        let b = &req.resource_spans[2];
        assert_eq!(b.scope_spans.len(), 2, "scope \"\" sorts before s2");
        let s2 = b.scope_spans[1].scope.as_ref().expect("scope");
        assert_eq!((s2.name.as_str(), s2.version.as_str()), ("s2", "1"));
        let a = &req.resource_spans[1].scope_spans[0].spans;
        assert_eq!(a.len(), 2);
        let second = attrs(&a[1].attributes);
        assert!(!second.contains_key("host.name"), "{second:?}");
        assert!(second.contains_key(START_TIME_ABSENT));
    }

    #[test]
    fn status_kind_links_events_and_endpoints() {
        let req = translate(
            r#"[{"traceId": "0000000000000002000000000000000a", "id": "b", "parentId": "b",
             "timestamp": 10, "duration": 5,
             "localEndpoint": {"serviceName": "s", "ipv4": "1.2.3.4", "ipv6": "::1", "port": 80},
             "remoteEndpoint": {"serviceName": "db", "ipv4": "5.6.7.8", "port": 5432},
             "annotations": [{"timestamp": 11, "value": "plain|x"}, {"timestamp": 11, "value": "nothing|null|0"},
                             {"timestamp": 12, "value": "exc|{\"n\":2,\"f\":1.5,\"s\":\"a|b\",\"z\":null}|3"}],
             "tags": {"otel.status_code": "Error", "otel.status_description": "boom",
                      "error": "false", "span.kind": "internal", "w3c.tracestate": "k=v",
                      "otlp.link.0": "0102030405060708090a0b0c0d0e0f10|0102030405060708|st|{\"a\":true}|1",
                      "otlp.link.1": "too|few", "otlp.link.3": "after|a|gap|{}|0", "n": "12", "d": "-1.5", "big": "99999999999999999999"}}]"#,
            true,
        );
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, trace_id(2, 10).to_vec());
        assert!(
            span.parent_span_id.is_empty(),
            "a parent equal to the span is none"
        );
        assert_eq!(span.kind, SpanKind::Internal as i32);
        let status = span.status.as_ref().expect("status");
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error as i32, "boom")
        );
        assert_eq!(span.trace_state, "k=v");
        assert_eq!(
            (span.start_time_unix_nano, span.end_time_unix_nano),
            (10_000, 15_000)
        );
        assert_eq!(span.links.len(), 1);
        assert_eq!(span.links[0].dropped_attributes_count, 1);
        assert_eq!(span.events[0].name, "plain");
        assert!(span.events[0].attributes.is_empty());
        assert_eq!(span.events[1].name, "nothing");
        assert!(span.events[1].attributes.is_empty());
        let e = attrs(&span.events[2].attributes);
        assert_eq!(e.get("n").map(String::as_str), Some("IntValue(2)"));
        assert_eq!(e.get("f").map(String::as_str), Some("DoubleValue(1.5)"));
        assert_eq!(
            e.get("s").map(String::as_str),
            Some(r#"StringValue("a|b")"#)
        );
        assert!(!e.contains_key("z"));
        let a = attrs(&span.attributes);
        assert_eq!(a.get("error").map(String::as_str), Some("BoolValue(false)"));
        assert_eq!(a.get("n").map(String::as_str), Some("IntValue(12)"));
        assert_eq!(a.get("d").map(String::as_str), Some("DoubleValue(-1.5)"));
        assert_eq!(
            a.get("big").map(String::as_str),
            Some("IntValue(9223372036854775807)")
        );
        assert_eq!(
            a.get("network.local.address").map(String::as_str),
            Some(r#"StringValue("::1")"#)
        );
        assert_eq!(
            a.get("net.host.port").map(String::as_str),
            Some("IntValue(80)")
        );
        assert_eq!(
            a.get("service.peer.name").map(String::as_str),
            Some(r#"StringValue("db")"#)
        );
        assert_eq!(
            a.get("net.peer.port").map(String::as_str),
            Some("IntValue(5432)")
        );
        assert!(!a.contains_key("span.kind") && !a.contains_key("w3c.tracestate"));
    }

    #[test]
    fn the_resource_tag_match_is_the_resource_tag_list() {
        for key in RESOURCE_TAGS {
            assert!(never_a_span_attribute(key), "{key}");
        }
        assert!(!never_a_span_attribute("http.method"));
        assert!(never_a_span_attribute(SCOPE_NAME));
    }

    #[test]
    fn a_bad_link_or_annotation_refuses_the_request() {
        for body in [
            r#"[{"traceId": "1", "id": "1", "tags": {"otlp.link.0": "01|02|s|{}|0"}}]"#,
            r#"[{"traceId": "1", "id": "1", "tags": {"otlp.link.0": "|||{|0"}}]"#,
            r#"[{"traceId": "1", "id": "1", "annotations": [{"timestamp": 1, "value": "e|{}|x"}]}]"#,
        ] {
            let spans = from_json(body.as_bytes()).expect("decodes");
            assert!(to_otlp(spans, false).is_err(), "{body}");
        }
    }
}

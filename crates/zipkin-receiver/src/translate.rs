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

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::model::{DecodeError, Tags, ZipkinSpan};

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

/// Attributes with pdata's `Put` semantics: a key already there keeps its place and takes
/// the new value.
#[derive(Default)]
struct Attributes(Vec<KeyValue>);

impl Attributes {
    /// Adds a key known not to be there yet.
    fn push(&mut self, key: &str, value: any_value::Value) {
        self.0.push(KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        });
    }

    fn put(&mut self, key: &str, value: any_value::Value) {
        let value = Some(AnyValue { value: Some(value) });
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.0.push(KeyValue {
                key: key.to_owned(),
                value,
                ..Default::default()
            }),
        }
    }

    fn put_str(&mut self, key: &str, value: &str) {
        self.put(key, any_value::Value::StringValue(value.to_owned()));
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

/// The OTLP request for `spans`.
pub(crate) fn to_otlp(
    mut spans: Vec<ZipkinSpan<'_>>,
    parse_string_tags: bool,
) -> Result<ExportTraceServiceRequest, DecodeError> {
    spans.sort_by(|a, b| {
        local_service(a)
            .cmp(local_service(b))
            .then_with(|| scope_name(a).cmp(scope_name(b)))
    });
    let mut request = ExportTraceServiceRequest::default();
    // The group of the previous span: names copied only when a new group starts.
    let mut service: Option<String> = None;
    let mut scope = String::new();
    for mut zspan in spans {
        let new_resource = service.as_deref() != Some(local_service(&zspan));
        let new_scope = new_resource || scope != scope_name(&zspan);
        if new_resource {
            service = Some(local_service(&zspan).to_owned());
        }
        if new_scope {
            scope = scope_name(&zspan).to_owned();
        }
        let mut tags = std::mem::take(&mut zspan.tags);
        if new_resource {
            request.resource_spans.push(ResourceSpans {
                resource: Some(resource(&mut tags, service.as_deref().unwrap_or_default())),
                ..Default::default()
            });
        }
        let Some(resource_spans) = request.resource_spans.last_mut() else {
            continue;
        };
        if new_scope {
            resource_spans.scope_spans.push(ScopeSpans {
                scope: Some(instrumentation_scope(&mut tags, &scope)),
                ..Default::default()
            });
        }
        let span = span(&zspan, tags, parse_string_tags)?;
        if let Some(scope_spans) = resource_spans.scope_spans.last_mut() {
            scope_spans.spans.push(span);
        }
    }
    Ok(request)
}

fn resource(tags: &mut Tags<'_>, service: &str) -> Resource {
    let mut attributes = Attributes::default();
    if service != NO_SERVICE_NAME {
        let key = tags
            .remove(SERVICE_NAME_SOURCE)
            .filter(|source| !source.is_empty())
            .unwrap_or(std::borrow::Cow::Borrowed(SERVICE_NAME));
        attributes.put_str(&key, service);
        for key in RESOURCE_TAGS {
            if let Some(value) = tags.remove(key) {
                attributes.put_str(key, &value);
            }
        }
    }
    Resource {
        attributes: attributes.0,
        ..Default::default()
    }
}

fn instrumentation_scope(tags: &mut Tags<'_>, name: &str) -> InstrumentationScope {
    let mut scope = InstrumentationScope::default();
    if name.is_empty() {
        return scope;
    }
    // The newer key wins, as in otelcol: it is read second.
    for key in [LIBRARY_NAME, SCOPE_NAME] {
        if let Some(value) = tags.remove(key) {
            scope.name = value.into_owned();
        }
    }
    for key in [LIBRARY_VERSION, SCOPE_VERSION] {
        if let Some(value) = tags.remove(key) {
            scope.version = value.into_owned();
        }
    }
    scope
}

fn span(
    zspan: &ZipkinSpan<'_>,
    mut tags: Tags<'_>,
    parse_string_tags: bool,
) -> Result<Span, DecodeError> {
    let mut span = Span {
        trace_id: zspan.trace_id.to_vec(),
        span_id: zspan.id.to_be_bytes().to_vec(),
        name: zspan.name.to_string(),
        ..Default::default()
    };
    if let Some(state) = tags.remove("w3c.tracestate") {
        span.trace_state = state.into_owned();
    }
    if let Some(parent) = zspan.parent_id.filter(|p| *p != zspan.id && *p != 0) {
        span.parent_span_id = parent.to_be_bytes().to_vec();
    }
    span.kind = kind(&zspan.kind, &mut tags) as i32;
    span.status = status(&mut tags);
    span.links = links(&mut tags)?;

    let mut attributes = Attributes(Vec::with_capacity(tags.len() + 4));
    for (key, value) in tags.iter() {
        if !never_a_span_attribute(key) {
            // Tag keys are unique: no lookup needed.
            attributes.push(key, tag_value(value, parse_string_tags));
        }
    }
    if let Some(local) = &zspan.local_endpoint {
        for ip in [&local.ipv4, &local.ipv6].into_iter().flatten() {
            attributes.put_str("network.local.address", ip);
        }
        if local.port > 0 {
            attributes.put(
                "net.host.port",
                any_value::Value::IntValue(local.port.into()),
            );
        }
    }
    if let Some(remote) = &zspan.remote_endpoint {
        if !remote.service_name.is_empty() {
            attributes.put_str("service.peer.name", &remote.service_name);
        }
        for ip in [&remote.ipv4, &remote.ipv6].into_iter().flatten() {
            attributes.put_str("network.peer.address", ip);
        }
        if remote.port > 0 {
            attributes.put(
                "net.peer.port",
                any_value::Value::IntValue(remote.port.into()),
            );
        }
    }
    match zspan.timestamp {
        Some(start) => {
            span.start_time_unix_nano = start;
            span.end_time_unix_nano = start.wrapping_add(zspan.duration);
        }
        None => {
            span.start_time_unix_nano = 0;
            span.end_time_unix_nano = zspan.duration;
            attributes.put(START_TIME_ABSENT, any_value::Value::BoolValue(true));
        }
    }
    span.attributes = attributes.0;
    span.events = zspan
        .annotations
        .iter()
        .map(|(time, value)| event(*time, value))
        .collect::<Result<_, _>>()?;
    Ok(span)
}

fn kind(kind: &str, tags: &mut Tags<'_>) -> SpanKind {
    match kind {
        "CLIENT" => SpanKind::Client,
        "SERVER" => SpanKind::Server,
        "PRODUCER" => SpanKind::Producer,
        "CONSUMER" => SpanKind::Consumer,
        _ => match tags.remove("span.kind").as_deref() {
            Some("internal") => SpanKind::Internal,
            _ => SpanKind::Unspecified,
        },
    }
}

fn status(tags: &mut Tags<'_>) -> Option<Status> {
    let mut status = Status::default();
    if let Some(code) = tags.remove("otel.status_code") {
        status.code = match code.as_ref() {
            "STATUS_CODE_OK" | "Ok" => StatusCode::Ok,
            "STATUS_CODE_ERROR" | "Error" => StatusCode::Error,
            _ => StatusCode::Unset,
        } as i32;
        if let Some(message) = tags.remove("otel.status_description") {
            status.message = message.into_owned();
        }
    }
    // Any `error` tag marks an error; only `true` is then dropped (otelcol's rule: another
    // value is the error's description, kept as an attribute).
    if let Some(value) = tags.get("error") {
        status.code = StatusCode::Error as i32;
        if value == "true" {
            tags.remove("error");
        }
    }
    (status != Status::default()).then_some(status)
}

/// A tag's value: a string, or with `parse_string_tags` an int, double or bool when it reads
/// as one (otelcol's patterns; an int too large for 64 bits is clamped, as Go's `ParseInt`
/// returns it).
fn tag_value(value: &str, parse_string_tags: bool) -> any_value::Value {
    if parse_string_tags {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let unsigned = value.strip_prefix('-').unwrap_or(value);
        if digits(unsigned) {
            let clamped = if value.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            };
            return any_value::Value::IntValue(value.parse().unwrap_or(clamped));
        }
        if let Some((whole, fraction)) = unsigned.split_once('.') {
            if digits(whole) && digits(fraction) {
                if let Ok(v) = value.parse() {
                    return any_value::Value::DoubleValue(v);
                }
            }
        }
        match value {
            "true" => return any_value::Value::BoolValue(true),
            "false" => return any_value::Value::BoolValue(false),
            _ => {}
        }
    }
    any_value::Value::StringValue(value.to_owned())
}

/// `otlp.link.0`, `otlp.link.1`, … until one is missing: `trace|span|state|{json}|dropped`.
fn links(tags: &mut Tags<'_>) -> Result<Vec<Link>, DecodeError> {
    let mut links = Vec::new();
    for i in 0..MAX_LINKS {
        let Some(value) = tags.remove(&format!("otlp.link.{i}")) else {
            break;
        };
        let parts: Vec<&str> = value.split('|').collect();
        let n = parts.len();
        if n < 5 {
            continue;
        }
        let (attributes, dropped) = json_attributes(&parts[3..n - 1], parts[n - 1])
            .map_err(|e| DecodeError(format!("tag otlp.link.{i}: {e}")))?;
        links.push(Link {
            trace_id: hex_id::<16>(parts[0])
                .map_err(|e| DecodeError(format!("tag otlp.link.{i}: trace id: {e}")))?,
            span_id: hex_id::<8>(parts[1])
                .map_err(|e| DecodeError(format!("tag otlp.link.{i}: span id: {e}")))?,
            trace_state: parts[2].to_owned(),
            attributes,
            dropped_attributes_count: dropped,
            ..Default::default()
        });
    }
    Ok(links)
}

/// An annotation: its value is the event's name, or `name|{json}|dropped`.
fn event(time_unix_nano: u64, value: &str) -> Result<Event, DecodeError> {
    let parts: Vec<&str> = value.split('|').collect();
    let mut event = Event {
        time_unix_nano,
        name: parts[0].to_owned(),
        ..Default::default()
    };
    let n = parts.len();
    if n >= 3 {
        let (attributes, dropped) = json_attributes(&parts[1..n - 1], parts[n - 1])
            .map_err(|e| DecodeError(format!("annotation `{}`: {e}", parts[0])))?;
        event.attributes = attributes;
        event.dropped_attributes_count = dropped;
    }
    Ok(event)
}

/// The JSON object (its text may have been split at `|`) and the dropped count that end a
/// link or an annotation.
fn json_attributes(json: &[&str], dropped: &str) -> Result<(Vec<KeyValue>, u32), String> {
    let text = json.join("|");
    // `null` is no attributes, as Go reads it into a map.
    let object: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(&text)
        .map_err(|e| format!("attributes `{text}` are not a JSON object: {e}"))?;
    let mut attributes = Attributes::default();
    for (key, value) in object.into_iter().flatten() {
        let value = match value {
            serde_json::Value::String(s) => any_value::Value::StringValue(s),
            serde_json::Value::Bool(b) => any_value::Value::BoolValue(b),
            serde_json::Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Go reads every JSON number as a float64 and keeps a whole one as an int.
                if f.fract() == 0.0 {
                    any_value::Value::IntValue(f as i64)
                } else {
                    any_value::Value::DoubleValue(f)
                }
            }
            _ => continue,
        };
        attributes.put(&key, value);
    }
    let dropped = dropped
        .parse::<u32>()
        .map_err(|_| format!("dropped attributes count `{dropped}` is not a number"))?;
    Ok((attributes.0, dropped))
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

    fn translate(body: &str, parse: bool) -> ExportTraceServiceRequest {
        to_otlp(from_json(body.as_bytes()).expect("decodes"), parse).expect("translates")
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
                      "otlp.link.2": "skipped|x|y|{}|0", "n": "12", "d": "-1.5", "big": "99999999999999999999"}}]"#,
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

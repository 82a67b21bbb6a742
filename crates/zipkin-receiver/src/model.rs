//! Zipkin v2 spans as zipkin-go's model reads them, from JSON or from `zipkin.proto3`.
//!
//! The rules are zipkin-go's (v0.4.3), which otelcol's receiver decodes with, so that a body
//! otelcol takes is taken here with the same values: hex ids of up to 16 (span) or 32
//! (trace) digits; microsecond times; JSON keys matched exactly first, then ignoring ASCII
//! case (Go's `encoding/json`); endpoint addresses kept as Go prints them. Where the two
//! formats differ in zipkin-go, they differ here too: a JSON span without `timestamp` has no
//! start time, a protobuf span's is 0; a JSON span id must not be 0, a protobuf one only
//! present.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value};

/// Nanoseconds per microsecond, Zipkin's time unit.
const NANOS_PER_MICRO: u64 = 1_000;

/// One Zipkin span, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ZipkinSpan {
    /// Big-endian: the high 64 bits (0 for a 64-bit trace id), then the low.
    pub trace_id: [u8; 16],
    pub id: u64,
    pub parent_id: Option<u64>,
    pub name: String,
    /// `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`, or anything else (no kind).
    pub kind: String,
    /// Unix nanoseconds; `None` for a JSON span without a timestamp.
    pub timestamp: Option<u64>,
    pub duration: u64,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    /// Unix nanoseconds and value.
    pub annotations: Vec<(u64, String)>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Endpoint {
    pub service_name: String,
    /// The address as Go's `net.IP` prints it.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub port: u16,
}

impl Endpoint {
    /// zipkin-go drops an endpoint without any field from JSON spans.
    fn is_empty(&self) -> bool {
        self.service_name.is_empty() && self.port == 0 && self.ipv4.is_none() && self.ipv6.is_none()
    }
}

/// Why a body is not a list of Zipkin spans; the client gets it with a 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub(crate) struct DecodeError(pub String);

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError(message.into())
}

/// A JSON body: an array of span objects (`null` items are skipped, a `null` body is no
/// span, as in Go).
pub(crate) fn from_json(body: &[u8]) -> Result<Vec<ZipkinSpan>, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| err(format!("the body is not valid JSON: {e}")))?;
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(err(format!(
                "expected a JSON array of Zipkin v2 spans, got {}",
                json_type(&other)
            )))
        }
    };
    let mut spans = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::Null => {}
            Value::Object(fields) => {
                spans.push(json_span(&fields).map_err(|e| err(format!("span {i}: {}", e.0)))?)
            }
            other => {
                return Err(err(format!(
                    "span {i}: expected an object, got {}",
                    json_type(&other)
                )))
            }
        }
    }
    Ok(spans)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field by its exact name, else by a name equal ignoring ASCII case (Go's rule).
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A present, non-null field.
fn set<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    field(fields, name).filter(|v| !v.is_null())
}

fn string(fields: &Map<String, Value>, name: &str) -> Result<String, DecodeError> {
    match set(fields, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(err(format!(
            "{name}: expected a string, got {}",
            json_type(other)
        ))),
    }
}

fn unsigned(fields: &Map<String, Value>, name: &str) -> Result<u64, DecodeError> {
    match set(fields, name) {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            err(format!(
                "{name}: expected a non-negative integer (microseconds), got {n}"
            ))
        }),
        Some(other) => Err(err(format!(
            "{name}: expected a non-negative integer (microseconds), got {}",
            json_type(other)
        ))),
    }
}

fn boolean(fields: &Map<String, Value>, name: &str) -> Result<(), DecodeError> {
    match set(fields, name) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(err(format!(
            "{name}: expected a boolean, got {}",
            json_type(other)
        ))),
    }
}

/// The hex digits of an id given as a JSON string. zipkin-go strips the quotes and parses
/// what is left, so an empty string is "no id".
fn id_text<'a>(value: &'a Value, name: &str) -> Result<&'a str, DecodeError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(err(format!(
            "{name}: expected a hex string, got {}",
            json_type(other)
        ))),
    }
}

/// Go's `strconv.ParseUint(text, 16, 64)`: 1 to 16 hex digits, nothing else.
fn parse_hex(name: &str, text: &str) -> Result<u64, DecodeError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(format!("{name}: `{text}` is not a hex number")));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| err(format!("{name}: `{text}` has more than 16 hex digits")))
}

fn json_trace_id(value: &Value) -> Result<[u8; 16], DecodeError> {
    let text = id_text(value, "traceId")?;
    if text.is_empty() {
        return Err(err("traceId: a valid trace id is required"));
    }
    let (high, low) = if text.len() > 16 {
        let (h, l) = text.split_at(text.len() - 16);
        (parse_hex("traceId", h)?, parse_hex("traceId", l)?)
    } else {
        (0, parse_hex("traceId", text)?)
    };
    Ok(trace_id(high, low))
}

pub(crate) fn trace_id(high: u64, low: u64) -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// A span id: `""` is 0 (zipkin-go reads a value shorter than three bytes, quotes included,
/// as no id).
fn json_span_id(value: &Value, name: &str) -> Result<u64, DecodeError> {
    let text = id_text(value, name)?;
    if text.is_empty() {
        return Ok(0);
    }
    parse_hex(name, text)
}

fn json_span(fields: &Map<String, Value>) -> Result<ZipkinSpan, DecodeError> {
    let trace_id = match set(fields, "traceId") {
        Some(v) => json_trace_id(v)?,
        None => [0; 16],
    };
    let id = match set(fields, "id") {
        Some(v) => json_span_id(v, "id")?,
        None => 0,
    };
    let parent_id = set(fields, "parentId")
        .map(|v| json_span_id(v, "parentId"))
        .transpose()?;
    boolean(fields, "debug")?;
    boolean(fields, "shared")?;
    let name = string(fields, "name")?;
    let kind = string(fields, "kind")?;
    let timestamp = unsigned(fields, "timestamp")?;
    let duration = unsigned(fields, "duration")?;
    let local_endpoint = json_endpoint(fields, "localEndpoint")?;
    let remote_endpoint = json_endpoint(fields, "remoteEndpoint")?;
    let annotations = json_annotations(fields)?;
    let tags = json_tags(fields)?;
    if id == 0 {
        return Err(err("id: a valid span id is required"));
    }
    Ok(ZipkinSpan {
        trace_id,
        id,
        parent_id,
        name,
        kind,
        timestamp: (timestamp > 0).then(|| timestamp.wrapping_mul(NANOS_PER_MICRO)),
        duration: duration.wrapping_mul(NANOS_PER_MICRO),
        local_endpoint,
        remote_endpoint,
        annotations,
        tags,
    })
}

fn json_endpoint(fields: &Map<String, Value>, name: &str) -> Result<Option<Endpoint>, DecodeError> {
    let ep = match set(fields, name) {
        None => return Ok(None),
        Some(Value::Object(ep)) => ep,
        Some(other) => {
            return Err(err(format!(
                "{name}: expected an object, got {}",
                json_type(other)
            )))
        }
    };
    let ip = |key: &str| -> Result<Option<String>, DecodeError> {
        match string(ep, key)?.as_str() {
            "" => Ok(None),
            text => text
                .parse::<IpAddr>()
                .map(|ip| Some(go_ip_text(ip)))
                .map_err(|_| err(format!("{name}.{key}: `{text}` is not an IP address"))),
        }
    };
    let port = match set(ep, "port") {
        None => 0,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| err(format!("{name}.port: {n} is not a port (0 to 65535)")))?,
        Some(other) => {
            return Err(err(format!(
                "{name}.port: expected a number, got {}",
                json_type(other)
            )))
        }
    };
    let endpoint = Endpoint {
        service_name: string(ep, "serviceName")?,
        ipv4: ip("ipv4")?,
        ipv6: ip("ipv6")?,
        port,
    };
    Ok((!endpoint.is_empty()).then_some(endpoint))
}

fn json_annotations(fields: &Map<String, Value>) -> Result<Vec<(u64, String)>, DecodeError> {
    let items = match set(fields, "annotations") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(err(format!(
                "annotations: expected an array, got {}",
                json_type(other)
            )))
        }
    };
    let mut annotations = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let empty = Map::new();
        let a = match item {
            Value::Object(a) => a,
            Value::Null => &empty,
            other => {
                return Err(err(format!(
                    "annotations[{i}]: expected an object, got {}",
                    json_type(other)
                )))
            }
        };
        let timestamp =
            unsigned(a, "timestamp").map_err(|e| err(format!("annotations[{i}].{}", e.0)))?;
        if timestamp == 0 {
            return Err(err(format!(
                "annotations[{i}].timestamp: a timestamp is required"
            )));
        }
        let value = string(a, "value").map_err(|e| err(format!("annotations[{i}].{}", e.0)))?;
        annotations.push((timestamp.wrapping_mul(NANOS_PER_MICRO), value));
    }
    Ok(annotations)
}

fn json_tags(fields: &Map<String, Value>) -> Result<BTreeMap<String, String>, DecodeError> {
    let tags = match set(fields, "tags") {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(tags)) => tags,
        Some(other) => {
            return Err(err(format!(
                "tags: expected an object, got {}",
                json_type(other)
            )))
        }
    };
    tags.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Null => Ok((k.clone(), String::new())),
            other => Err(err(format!(
                "tags.{k}: Zipkin tag values are strings, got {}",
                json_type(other)
            ))),
        })
        .collect()
}

/// An address as Go's `net.IP.String` prints it: an IPv4-mapped IPv6 address as IPv4.
fn go_ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
    }
}

/// Address bytes of a protobuf endpoint as Go's `net.IP.String` prints them, odd lengths
/// included.
fn go_ip_bytes(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return go_ip_text(IpAddr::V6(Ipv6Addr::from(v6)));
    }
    if bytes.is_empty() {
        return "<nil>".to_owned();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("?{hex}")
}

/// `zipkin.proto3`, the messages of a protobuf body.
mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListOfSpans {
        #[prost(message, repeated, tag = "1")]
        pub spans: Vec<Span>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub parent_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub id: Vec<u8>,
        #[prost(int32, tag = "4")]
        pub kind: i32,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(fixed64, tag = "6")]
        pub timestamp: u64,
        #[prost(uint64, tag = "7")]
        pub duration: u64,
        #[prost(message, optional, tag = "8")]
        pub local_endpoint: Option<Endpoint>,
        #[prost(message, optional, tag = "9")]
        pub remote_endpoint: Option<Endpoint>,
        #[prost(message, repeated, tag = "10")]
        pub annotations: Vec<Annotation>,
        #[prost(btree_map = "string, string", tag = "11")]
        pub tags: std::collections::BTreeMap<String, String>,
        #[prost(bool, tag = "12")]
        pub debug: bool,
        #[prost(bool, tag = "13")]
        pub shared: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Endpoint {
        #[prost(string, tag = "1")]
        pub service_name: String,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub ipv4: Option<Vec<u8>>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub ipv6: Option<Vec<u8>>,
        #[prost(int32, tag = "4")]
        pub port: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Annotation {
        #[prost(fixed64, tag = "1")]
        pub timestamp: u64,
        #[prost(string, tag = "2")]
        pub value: String,
    }
}

/// A protobuf body (`application/x-protobuf`): a `zipkin.proto3.ListOfSpans`.
pub(crate) fn from_protobuf(body: &[u8]) -> Result<Vec<ZipkinSpan>, DecodeError> {
    use prost::Message;
    let list = pb::ListOfSpans::decode(body)
        .map_err(|e| err(format!("the body is not a zipkin.proto3.ListOfSpans: {e}")))?;
    list.spans
        .into_iter()
        .enumerate()
        .map(|(i, s)| proto_span(s).map_err(|e| err(format!("span {i}: {}", e.0))))
        .collect()
}

fn proto_span_id(bytes: &[u8], name: &str) -> Result<Option<u64>, DecodeError> {
    match bytes.len() {
        0 => Ok(None),
        8 => {
            let mut id = [0; 8];
            id.copy_from_slice(bytes);
            Ok(Some(u64::from_be_bytes(id)))
        }
        n => Err(err(format!("{name}: has length {n} yet wanted length 8"))),
    }
}

fn proto_span(s: pb::Span) -> Result<ZipkinSpan, DecodeError> {
    let trace_id = <[u8; 16]>::try_from(s.trace_id.as_slice()).map_err(|_| {
        err(format!(
            "trace_id: has length {} yet wanted length 16",
            s.trace_id.len()
        ))
    })?;
    let parent_id = proto_span_id(&s.parent_id, "parent_id")?;
    let id = proto_span_id(&s.id, "id")?.ok_or_else(|| err("id: a span id is required"))?;
    let kind = match s.kind {
        0 => "SPAN_KIND_UNSPECIFIED".to_owned(),
        1 => "CLIENT".to_owned(),
        2 => "SERVER".to_owned(),
        3 => "PRODUCER".to_owned(),
        4 => "CONSUMER".to_owned(),
        other => other.to_string(),
    };
    let endpoint = |e: Option<pb::Endpoint>| {
        e.map(|e| Endpoint {
            service_name: e.service_name,
            ipv4: e.ipv4.as_deref().map(go_ip_bytes),
            ipv6: e.ipv6.as_deref().map(go_ip_bytes),
            // zipkin-go converts with uint16(): the low 16 bits.
            port: e.port as u16,
        })
    };
    Ok(ZipkinSpan {
        trace_id,
        id,
        parent_id,
        name: s.name,
        kind,
        timestamp: Some(s.timestamp.wrapping_mul(NANOS_PER_MICRO)),
        duration: s.duration.wrapping_mul(NANOS_PER_MICRO),
        local_endpoint: endpoint(s.local_endpoint),
        remote_endpoint: endpoint(s.remote_endpoint),
        annotations: s
            .annotations
            .into_iter()
            .map(|a| (a.timestamp.wrapping_mul(NANOS_PER_MICRO), a.value))
            .collect(),
        tags: s.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spans_read_as_zipkin_go_reads_them() {
        let body = br#"[null, {
            "traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "48485a3953bb6124",
            "parentId": "", "NAME": "get /api", "kind": "SERVER",
            "timestamp": 1700000000000001, "duration": 25,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
            "remoteEndpoint": {"ipv6": "::ffff:10.0.0.2"},
            "annotations": [{"timestamp": 1700000000000002, "value": "ws"}],
            "tags": {"http.method": "GET", "empty": null}, "debug": true
        }, {"traceId": "a", "id": "1", "localEndpoint": {}}]"#;
        let spans = from_json(body).expect("valid");
        assert_eq!(spans.len(), 2);
        let s = &spans[0];
        assert_eq!(s.trace_id, trace_id(0x463ac35c9f6413ad, 0x48485a3953bb6124));
        assert_eq!((s.id, s.parent_id), (0x48485a3953bb6124, Some(0)));
        assert_eq!((s.name.as_str(), s.kind.as_str()), ("get /api", "SERVER"));
        assert_eq!(s.timestamp, Some(1_700_000_000_000_001_000));
        assert_eq!(s.duration, 25_000);
        let local = s.local_endpoint.as_ref().expect("local");
        assert_eq!(local.ipv4.as_deref(), Some("10.0.0.1"));
        assert_eq!(local.port, 8080);
        let remote = s.remote_endpoint.as_ref().expect("remote");
        assert_eq!(remote.ipv6.as_deref(), Some("10.0.0.2"));
        assert_eq!(
            s.annotations,
            vec![(1_700_000_000_000_002_000, "ws".into())]
        );
        assert_eq!(s.tags.get("empty").map(String::as_str), Some(""));
        let short = &spans[1];
        assert_eq!(short.trace_id, trace_id(0, 10));
        assert_eq!(short.timestamp, None);
        assert_eq!(short.local_endpoint, None, "an empty endpoint is none");
    }

    #[test]
    fn bad_json_spans_name_the_span_and_the_field() {
        for (body, needle) in [
            (&br#"{"id": "1"}"#[..], "expected a JSON array"),
            (br#"[{"traceId": "1"}]"#, "span 0: id: a valid span id"),
            (
                br#"[{"traceId": "1", "id": "0"}]"#,
                "span 0: id: a valid span id",
            ),
            (
                br#"[{"traceId": "", "id": "1"}]"#,
                "traceId: a valid trace id",
            ),
            (
                br#"[{"traceId": "123456789012345678901234567890123", "id": "1"}]"#,
                "more than 16 hex digits",
            ),
            (br#"[{"traceId": "xyz", "id": "1"}]"#, "not a hex number"),
            (
                br#"[{"traceId": "1", "id": "1", "timestamp": -1}]"#,
                "timestamp",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "tags": {"a": 1}}]"#,
                "tags.a",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "localEndpoint": {"ipv4": "1.2.3"}}]"#,
                "localEndpoint.ipv4",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "annotations": [{"value": "x"}]}]"#,
                "annotations[0].timestamp",
            ),
            (b"[{", "not valid JSON"),
        ] {
            let e = from_json(body).expect_err("refused");
            assert!(e.0.contains(needle), "{e} should contain {needle}");
        }
        assert_eq!(from_json(b"null"), Ok(Vec::new()));
    }

    #[test]
    fn protobuf_spans_keep_zipkin_go_rules() {
        use prost::Message;
        let span = pb::Span {
            trace_id: vec![1; 16],
            id: vec![0, 0, 0, 0, 0, 0, 0, 2],
            kind: 3,
            timestamp: 0,
            duration: 7,
            local_endpoint: Some(pb::Endpoint {
                service_name: "svc".into(),
                ipv4: Some(vec![10, 0, 0, 1]),
                ipv6: Some(vec![]),
                port: 65537,
            }),
            ..Default::default()
        };
        let body = pb::ListOfSpans { spans: vec![span] }.encode_to_vec();
        let spans = from_protobuf(&body).expect("valid");
        let s = &spans[0];
        assert_eq!((s.id, s.parent_id), (2, None));
        assert_eq!(s.kind, "PRODUCER");
        assert_eq!(s.timestamp, Some(0), "a protobuf span always has a start");
        let local = s.local_endpoint.as_ref().expect("local");
        assert_eq!(local.ipv4.as_deref(), Some("10.0.0.1"));
        assert_eq!(local.ipv6.as_deref(), Some("<nil>"));
        assert_eq!(local.port, 1);

        let short = pb::ListOfSpans {
            spans: vec![pb::Span {
                trace_id: vec![1; 15],
                id: vec![1; 8],
                ..Default::default()
            }],
        };
        let e = from_protobuf(&short.encode_to_vec()).expect_err("short trace id");
        assert!(e.0.contains("has length 15"), "{e}");
        assert!(from_protobuf(&[0x0a, 0x05, 0x0a]).is_err(), "truncated");
    }
}

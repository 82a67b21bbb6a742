//! Zipkin v2 spans as zipkin-go's model reads them, and the protobuf format
//! (`zipkin.proto3`); JSON is read in `json`.
//!
//! The rules are zipkin-go's (v0.4.3), which otelcol's receiver decodes with, so that a body
//! otelcol takes is taken here with the same values: hex ids of up to 16 (span) or 32
//! (trace) digits; microsecond times; endpoint addresses kept as Go prints them. Where the
//! two formats differ in zipkin-go, they differ here too: a JSON span without `timestamp` has
//! no start time, a protobuf span's is 0; a JSON span id must not be 0, a protobuf one only
//! present.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Nanoseconds per microsecond, Zipkin's time unit.
const NANOS_PER_MICRO: u64 = 1_000;

/// One Zipkin span, decoded; its strings borrowed from the body where they can be.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ZipkinSpan<'a> {
    /// Big-endian: the high 64 bits (0 for a 64-bit trace id), then the low.
    pub trace_id: [u8; 16],
    pub id: u64,
    pub parent_id: Option<u64>,
    pub name: Cow<'a, str>,
    /// `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`, or anything else (no kind).
    pub kind: Cow<'a, str>,
    /// Unix nanoseconds; `None` for a JSON span without a timestamp.
    pub timestamp: Option<u64>,
    pub duration: u64,
    pub local_endpoint: Option<Endpoint<'a>>,
    pub remote_endpoint: Option<Endpoint<'a>>,
    /// Unix nanoseconds and value.
    pub annotations: Vec<(u64, Cow<'a, str>)>,
    pub tags: Tags<'a>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Endpoint<'a> {
    pub service_name: Cow<'a, str>,
    /// The address as Go's `net.IP` prints it.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub port: u16,
}

impl Endpoint<'_> {
    /// zipkin-go drops an endpoint without any field from JSON spans.
    pub(crate) fn is_empty(&self) -> bool {
        self.service_name.is_empty() && self.port == 0 && self.ipv4.is_none() && self.ipv6.is_none()
    }
}

/// A span's tags: a Go map (one value per key, the last one written), kept in the order the
/// keys came. Spans carry a few dozen at most, so lookups scan; each key keeps a fingerprint
/// (length and three of its bytes) so that a scan compares whole keys only when those match.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Tags<'a>(Vec<(u32, Cow<'a, str>, Cow<'a, str>)>);

fn fingerprint(key: &str) -> u32 {
    let b = key.as_bytes();
    match b.len() {
        0 => 0,
        n => {
            let len = (n.min(255) as u32) << 24;
            len | u32::from(b[0]) << 16 | u32::from(b[n / 2]) << 8 | u32::from(b[n - 1])
        }
    }
}

impl<'a> Tags<'a> {
    pub(crate) fn insert(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        let fp = fingerprint(&key);
        match self.0.iter_mut().find(|(f, k, _)| *f == fp && *k == key) {
            Some(entry) => entry.2 = value,
            None => self.0.push((fp, key, value)),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        let fp = fingerprint(key);
        self.0.iter().position(|(f, k, _)| *f == fp && k == key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.0[i].2.as_ref())
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Cow<'a, str>> {
        let i = self.position(key)?;
        Some(self.0.remove(i).2)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(_, k, v)| (k.as_ref(), v.as_ref()))
    }
}

/// Why a body is not a list of Zipkin spans; the client gets it with a 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub(crate) struct DecodeError(pub String);

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError(message.into())
}

pub(crate) fn trace_id(high: u64, low: u64) -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// An address as Go's `net.IP.String` prints it: an IPv4-mapped IPv6 address as IPv4.
pub(crate) fn go_ip_text(ip: IpAddr) -> String {
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
pub(crate) fn from_protobuf(body: &[u8]) -> Result<Vec<ZipkinSpan<'static>>, DecodeError> {
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

fn proto_span(s: pb::Span) -> Result<ZipkinSpan<'static>, DecodeError> {
    let trace_id = <[u8; 16]>::try_from(s.trace_id.as_slice()).map_err(|_| {
        err(format!(
            "trace_id: has length {} yet wanted length 16",
            s.trace_id.len()
        ))
    })?;
    let parent_id = proto_span_id(&s.parent_id, "parent_id")?;
    let id = proto_span_id(&s.id, "id")?.ok_or_else(|| err("id: a span id is required"))?;
    let kind = Cow::Borrowed(match s.kind {
        1 => "CLIENT",
        2 => "SERVER",
        3 => "PRODUCER",
        4 => "CONSUMER",
        // Unspecified, or a value zipkin-go prints as a number: no kind either way.
        _ => "",
    });
    let endpoint = |e: Option<pb::Endpoint>| {
        e.map(|e| Endpoint {
            service_name: Cow::Owned(e.service_name),
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
        name: Cow::Owned(s.name),
        kind,
        timestamp: Some(s.timestamp.wrapping_mul(NANOS_PER_MICRO)),
        duration: s.duration.wrapping_mul(NANOS_PER_MICRO),
        local_endpoint: endpoint(s.local_endpoint),
        remote_endpoint: endpoint(s.remote_endpoint),
        annotations: s
            .annotations
            .into_iter()
            .map(|a| {
                (
                    a.timestamp.wrapping_mul(NANOS_PER_MICRO),
                    Cow::Owned(a.value),
                )
            })
            .collect(),
        tags: {
            let mut tags = Tags::default();
            for (k, v) in s.tags {
                tags.insert(Cow::Owned(k), Cow::Owned(v));
            }
            tags
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

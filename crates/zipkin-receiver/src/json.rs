//! Zipkin v2 JSON, read straight into [`ZipkinSpan`]s: strings without escapes are borrowed
//! from the body, nothing else is built on the way (no JSON tree), so a span costs the
//! allocations of its vectors only.
//!
//! zipkin-go's rules: keys match exactly or ignoring ASCII case (Go's `encoding/json`), the
//! last of a repeated key wins, unknown keys are skipped, `null` is "not set" (and an empty
//! string for a tag's value); ids are hex strings (`""` is no id); times are microseconds.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{go_ip_text, trace_id, DecodeError, Endpoint, Tags, ZipkinSpan};

/// Nanoseconds per microsecond, Zipkin's time unit.
const NANOS_PER_MICRO: u64 = 1_000;

/// A JSON body: an array of span objects (`null` items are skipped, a `null` body is no
/// span, as in Go).
pub(crate) fn from_json(body: &[u8]) -> Result<Vec<ZipkinSpan<'_>>, DecodeError> {
    // A body that is not an array at all is named for what it is, rather than by where
    // serde stopped reading it.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let other = match first {
        Some(b'{') => Some("an object"),
        Some(b'"') => Some("a string"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        None => Some("an empty body"),
        _ => None,
    };
    if let Some(other) = other {
        return Err(DecodeError(format!(
            "the body must be a JSON array of Zipkin v2 spans, not {other}"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let spans = Option::<Spans>::deserialize(&mut de)
        .and_then(|spans| de.end().map(|()| spans))
        .map_err(|e| DecodeError(format!("not Zipkin v2 JSON spans: {e}")))?;
    Ok(spans.map_or_else(Vec::new, |s| s.0))
}

/// A string, borrowed from the body when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn text(t: Option<Text<'_>>) -> Cow<'_, str> {
    t.map_or(Cow::Borrowed(""), |t| t.0)
}

/// Go's `strconv.ParseUint(text, 16, 64)`: 1 to 16 hex digits, nothing else.
fn parse_hex<E: de::Error>(name: &str, text: &str) -> Result<u64, E> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(E::custom(format!("{name}: `{text}` is not a hex number")));
    }
    u64::from_str_radix(text, 16)
        .map_err(|_| E::custom(format!("{name}: `{text}` has more than 16 hex digits")))
}

fn trace_id_of<E: de::Error>(text: &str) -> Result<[u8; 16], E> {
    if text.is_empty() {
        return Err(E::custom("traceId: a valid trace id is required"));
    }
    if text.len() > 16 {
        let (high, low) = text.split_at(text.len() - 16);
        Ok(trace_id(
            parse_hex("traceId", high)?,
            parse_hex("traceId", low)?,
        ))
    } else {
        Ok(trace_id(0, parse_hex("traceId", text)?))
    }
}

/// A span id: `""` is 0 (zipkin-go reads a value shorter than three bytes, quotes included,
/// as no id).
fn span_id_of<E: de::Error>(name: &str, text: &str) -> Result<u64, E> {
    if text.is_empty() {
        Ok(0)
    } else {
        parse_hex(name, text)
    }
}

struct Spans<'de>(Vec<ZipkinSpan<'de>>);

impl<'de> Deserialize<'de> for Spans<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Spans<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array of Zipkin v2 spans")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut spans = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(span) = seq.next_element_seed(SpanSeed(spans.len()))? {
                    spans.extend(span);
                }
                Ok(Spans(spans))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One item of the array, `null` or a span; its index names it in errors.
struct SpanSeed(usize);

impl<'de> DeserializeSeed<'de> for SpanSeed {
    type Value = Option<ZipkinSpan<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Option::<SpanFields>::deserialize(d)?
            .map(|f| f.into_span())
            .transpose()
            .map_err(|e: D::Error| de::Error::custom(format!("span {}: {e}", self.0)))
    }
}

/// The keys of a span object, as read.
#[derive(Default)]
struct SpanFields<'de> {
    trace_id: Option<Text<'de>>,
    id: Option<Text<'de>>,
    parent_id: Option<Text<'de>>,
    name: Option<Text<'de>>,
    kind: Option<Text<'de>>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    local_endpoint: Option<EndpointFields<'de>>,
    remote_endpoint: Option<EndpointFields<'de>>,
    annotations: Option<Vec<Option<AnnotationFields<'de>>>>,
    tags: Option<TagFields<'de>>,
    /// Not translated, but typed, as Go decodes them.
    debug: Option<bool>,
    shared: Option<bool>,
}

impl<'de> SpanFields<'de> {
    fn into_span<E: de::Error>(self) -> Result<ZipkinSpan<'de>, E> {
        let _ = (self.debug, self.shared);
        let trace_id = match &self.trace_id {
            Some(t) => trace_id_of(&t.0)?,
            None => [0; 16],
        };
        let id = match &self.id {
            Some(t) => span_id_of("id", &t.0)?,
            None => 0,
        };
        if id == 0 {
            return Err(E::custom("id: a valid span id is required"));
        }
        let parent_id = self
            .parent_id
            .as_ref()
            .map(|t| span_id_of("parentId", &t.0))
            .transpose()?;
        let mut annotations = Vec::new();
        for (i, a) in self.annotations.into_iter().flatten().enumerate() {
            let a = a.unwrap_or_default();
            let timestamp = a.timestamp.unwrap_or(0);
            if timestamp == 0 {
                return Err(E::custom(format!(
                    "annotations[{i}].timestamp: a timestamp is required"
                )));
            }
            annotations.push((timestamp.wrapping_mul(NANOS_PER_MICRO), text(a.value)));
        }
        let timestamp = self.timestamp.unwrap_or(0);
        Ok(ZipkinSpan {
            trace_id,
            id,
            parent_id,
            name: text(self.name),
            kind: text(self.kind),
            timestamp: (timestamp > 0).then(|| timestamp.wrapping_mul(NANOS_PER_MICRO)),
            duration: self.duration.unwrap_or(0).wrapping_mul(NANOS_PER_MICRO),
            local_endpoint: self
                .local_endpoint
                .map(|e| e.endpoint("localEndpoint"))
                .transpose()?
                .flatten(),
            remote_endpoint: self
                .remote_endpoint
                .map(|e| e.endpoint("remoteEndpoint"))
                .transpose()?
                .flatten(),
            annotations,
            tags: self.tags.map_or_else(Tags::default, |t| t.0),
        })
    }
}

/// A key matched as Go matches struct fields: exactly, or ignoring ASCII case.
fn is(key: &str, name: &str) -> bool {
    key.eq_ignore_ascii_case(name)
}

/// Reads a map into the named fields (each key matched as [`is`] matches it), skipping the
/// keys it does not know; an error names the key.
macro_rules! read_fields {
    ($map:ident, $fields:ident, { $($name:literal => $slot:ident),* $(,)? }) => {
        while let Some(key) = $map.next_key::<Text<'de>>()? {
            let key = key.0;
            $(
                if is(&key, $name) {
                    $fields.$slot = $map.next_value()
                        .map_err(|e: A::Error| de::Error::custom(format!("{}: {e}", $name)))?;
                    continue;
                }
            )*
            $map.next_value::<IgnoredAny>()?;
        }
    };
}

impl<'de> Deserialize<'de> for SpanFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpanFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Zipkin span object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = SpanFields::default();
                read_fields!(map, fields, {
                    "traceId" => trace_id,
                    "id" => id,
                    "parentId" => parent_id,
                    "name" => name,
                    "kind" => kind,
                    "timestamp" => timestamp,
                    "duration" => duration,
                    "localEndpoint" => local_endpoint,
                    "remoteEndpoint" => remote_endpoint,
                    "annotations" => annotations,
                    "tags" => tags,
                    "debug" => debug,
                    "shared" => shared,
                });
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct EndpointFields<'de> {
    service_name: Option<Text<'de>>,
    ipv4: Option<Text<'de>>,
    ipv6: Option<Text<'de>>,
    port: Option<u16>,
}

impl<'de> EndpointFields<'de> {
    /// The endpoint, or none when it has no field (zipkin-go drops it).
    fn endpoint<E: de::Error>(self, name: &str) -> Result<Option<Endpoint<'de>>, E> {
        let ip = |key: &str, t: Option<Text<'_>>| -> Result<Option<String>, E> {
            match t.as_ref().map(|t| t.0.as_ref()) {
                None | Some("") => Ok(None),
                Some(text) => text
                    .parse()
                    .map(|ip| Some(go_ip_text(ip)))
                    .map_err(|_| E::custom(format!("{name}.{key}: `{text}` is not an IP address"))),
            }
        };
        let endpoint = Endpoint {
            ipv4: ip("ipv4", self.ipv4)?,
            ipv6: ip("ipv6", self.ipv6)?,
            service_name: text(self.service_name),
            port: self.port.unwrap_or(0),
        };
        Ok((!endpoint.is_empty()).then_some(endpoint))
    }
}

impl<'de> Deserialize<'de> for EndpointFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an endpoint object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = EndpointFields::default();
                read_fields!(map, fields, {
                    "serviceName" => service_name,
                    "ipv4" => ipv4,
                    "ipv6" => ipv6,
                    "port" => port,
                });
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct AnnotationFields<'de> {
    timestamp: Option<u64>,
    value: Option<Text<'de>>,
}

impl<'de> Deserialize<'de> for AnnotationFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnnotationFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an annotation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = AnnotationFields::default();
                read_fields!(map, fields, {
                    "timestamp" => timestamp,
                    "value" => value,
                });
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}

/// `tags`: string values, `null` read as `""`.
struct TagFields<'de>(Tags<'de>);

impl<'de> Deserialize<'de> for TagFields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TagFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut tags = Tags::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let value: Option<Text<'de>> = map.next_value().map_err(|e: A::Error| {
                        de::Error::custom(format!("{}: Zipkin tag values are strings ({e})", key.0))
                    })?;
                    tags.insert(key.0, text(value));
                }
                Ok(TagFields(tags))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_spans_read_as_zipkin_go_reads_them() {
        let body = br#"[null, {
            "traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "48485a3953bb6124",
            "parentId": "", "NAME": "get /api", "kind": "SERVER",
            "timestamp": 1700000000000001, "duration": 25, "unknown": [1, {"a": 2}],
            "localEndpoint": {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080},
            "remoteEndpoint": {"ipv6": "::ffff:10.0.0.2"},
            "annotations": [{"timestamp": 1700000000000002, "value": "ws"}],
            "tags": {"http.method": "GET", "empty": null, "esc\u0041ped": "v"}, "debug": true
        }, {"traceId": "a", "id": "1", "localEndpoint": {}}]"#;
        let spans = from_json(body).expect("valid");
        assert_eq!(spans.len(), 2);
        let s = &spans[0];
        assert_eq!(s.trace_id, trace_id(0x463ac35c9f6413ad, 0x48485a3953bb6124));
        assert_eq!((s.id, s.parent_id), (0x48485a3953bb6124, Some(0)));
        assert_eq!((s.name.as_ref(), s.kind.as_ref()), ("get /api", "SERVER"));
        assert!(matches!(s.name, Cow::Borrowed(_)), "borrowed from the body");
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
        assert_eq!(s.tags.get("empty"), Some(""));
        assert_eq!(s.tags.get("escAped"), Some("v"));
        let short = &spans[1];
        assert_eq!(short.trace_id, trace_id(0, 10));
        assert_eq!(short.timestamp, None);
        assert_eq!(short.local_endpoint, None, "an empty endpoint is none");
    }

    #[test]
    fn bad_json_spans_name_the_span_and_the_field() {
        for (body, needle) in [
            (
                &br#"{"id": "1"}"#[..],
                "must be a JSON array of Zipkin v2 spans, not an object",
            ),
            (b"", "not an empty body"),
            (b"  42", "not a number"),
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
            (br#"[{"traceId": 5, "id": "1"}]"#, "traceId"),
            (
                br#"[{"traceId": "1", "id": "1", "timestamp": -1}]"#,
                "timestamp",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "tags": {"a": 1}}]"#,
                "tags: a:",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "localEndpoint": {"ipv4": "1.2.3"}}]"#,
                "localEndpoint.ipv4",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "localEndpoint": {"port": 70000}}]"#,
                "port",
            ),
            (
                br#"[{"traceId": "1", "id": "1", "annotations": [{"value": "x"}]}]"#,
                "annotations[0].timestamp",
            ),
            (br#"[{"traceId": "1", "id": "1", "debug": "yes"}]"#, "debug"),
            (b"[{", "not Zipkin v2 JSON"),
            (b"[] x", "trailing"),
        ] {
            let e = from_json(body).expect_err("refused");
            assert!(e.0.contains(needle), "{e} should contain {needle}");
        }
        assert_eq!(from_json(b"null"), Ok(Vec::new()));
        assert_eq!(from_json(b" [] "), Ok(Vec::new()));
    }
}

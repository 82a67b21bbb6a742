//! `headers`: gRPC metadata or HTTP headers sent with every request. Values are secrets (tenant
//! ids, tokens): they are read as [`Secret`]s and no message ever quotes them.

use std::collections::BTreeMap;
use std::fmt;

use redline_pipeline::config::Secret;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use tonic::metadata::{Ascii, MetadataKey, MetadataValue};

use super::Invalid;

/// Header names Redline (or gRPC) sets itself: overriding them breaks the protocol.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "te",
    "user-agent",
    "content-length",
    "connection",
    "host",
];

/// otelcol's `headers` is a map, or (newer releases) a list of `{name, value}`: take both.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Secret>, D::Error> {
    struct HeadersVisitor;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        name: String,
        value: Secret,
    }

    impl<'de> Visitor<'de> for HeadersVisitor {
        type Value = BTreeMap<String, Secret>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of header names to values, or a list of {name, value}")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Secret>()? {
                if out.insert(k.clone(), v).is_some() {
                    return Err(de::Error::custom(format!("header `{k}` is given twice")));
                }
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Pair { name, value }) = seq.next_element::<Pair>()? {
                if out.insert(name.clone(), value).is_some() {
                    return Err(de::Error::custom(format!("header `{name}` is given twice")));
                }
            }
            Ok(out)
        }
    }

    d.deserialize_any(HeadersVisitor)
}

/// Each header must be valid gRPC metadata that Redline and gRPC do not set themselves.
pub(super) fn check(headers: &BTreeMap<String, Secret>) -> Result<(), Invalid> {
    for (name, value) in headers {
        let key = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if MetadataKey::<Ascii>::from_bytes(lower.as_bytes()).is_err() {
            return Err(Invalid::new(key, "is not a valid header name"));
        }
        if lower.ends_with("-bin") {
            return Err(Invalid::new(
                key,
                "binary (`-bin`) headers are not supported",
            ));
        }
        if lower.starts_with(':')
            || lower.starts_with("grpc-")
            || RESERVED_HEADERS.contains(&lower.as_str())
        {
            return Err(Invalid::new(
                key,
                "is set by gRPC itself and cannot be overridden",
            ));
        }
        // The value is a secret: say what is wrong with it, never what it is.
        if MetadataValue::<Ascii>::try_from(value.expose()).is_err() {
            return Err(Invalid::new(
                key,
                "value must be visible ASCII (no control characters or non-ASCII text)",
            ));
        }
    }
    Ok(())
}

/// Header names the HTTP exporter sets itself, from the body it sends: overriding them would
/// make the request unreadable. (`Host` and `User-Agent` may be overridden, as in otelcol.)
const RESERVED_HTTP_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
];

/// Each header must be a valid HTTP header that Redline does not set itself.
pub(super) fn check_http(headers: &BTreeMap<String, Secret>) -> Result<(), Invalid> {
    for (name, value) in headers {
        let key = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
            return Err(Invalid::new(key, "is not a valid header name"));
        }
        if RESERVED_HTTP_HEADERS.contains(&lower.as_str()) {
            return Err(Invalid::new(
                key,
                "is set by Redline from the request it sends and cannot be overridden",
            ));
        }
        // The value is a secret: say what is wrong with it, never what it is.
        if http::HeaderValue::try_from(value.expose()).is_err() {
            return Err(Invalid::new(
                key,
                "value must be visible ASCII (no control characters or line breaks)",
            ));
        }
    }
    Ok(())
}

//! Reading an OTLP/HTTP request body: its media type and content encoding from the headers,
//! decompression under the size limit, and the one conversion of OTLP/JSON to protobuf.

use std::io::Read;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::config::ContentEncoding;

pub(super) const PROTOBUF: &str = "application/x-protobuf";
pub(super) const JSON: &str = "application/json";

/// The encoding of a request body, which is also the encoding of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Protobuf,
    Json,
}

impl Kind {
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Kind::Protobuf => PROTOBUF,
            Kind::Json => JSON,
        }
    }
}

/// Converts an OTLP/JSON `ExportTraceServiceRequest` body to protobuf, as the HTTP server
/// does with every JSON request. Public (hidden) for the fuzz target; never panics.
#[doc(hidden)]
pub fn json_to_protobuf(body: &[u8]) -> Result<Bytes, serde_json::Error> {
    let req = serde_json::from_slice::<ExportTraceServiceRequest>(body)?;
    Ok(Bytes::from(req.encode_to_vec()))
}

pub(super) fn content_kind(headers: &HeaderMap) -> Option<Kind> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Kind::Protobuf),
        "application/json" => Some(Kind::Json),
        _ => None,
    }
}

pub(super) fn content_encoding(
    headers: &HeaderMap,
    allowed: &[ContentEncoding],
) -> Result<ContentEncoding, String> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return if allowed.contains(&ContentEncoding::Identity) {
            Ok(ContentEncoding::Identity)
        } else {
            Err("uncompressed bodies are not accepted (compression_algorithms)".to_owned())
        };
    };
    let name = value
        .to_str()
        .map_err(|_| "Content-Encoding is not ASCII".to_owned())?;
    match ContentEncoding::parse(name) {
        Some(e) if allowed.contains(&e) => Ok(e),
        _ => Err(format!("unsupported Content-Encoding `{name}`")),
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub(super) enum DecompressError {
    #[error("decompressed body is over the size limit")]
    TooLarge,
    #[error("{0}")]
    Corrupt(std::io::Error),
}

/// Decompresses with a cap on the output: reading stops one byte past `limit`, so a
/// decompression bomb costs at most `limit` bytes of memory.
pub(super) fn decompress(
    body: Bytes,
    encoding: ContentEncoding,
    limit: usize,
) -> Result<Bytes, DecompressError> {
    let reader: Box<dyn Read + '_> = match encoding {
        ContentEncoding::Identity => return Ok(body),
        // Multi-member gzip, as Go's gzip.Reader reads it.
        ContentEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        ContentEncoding::Zlib => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
    };
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(DecompressError::Corrupt)?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("in-memory write");
        Bytes::from(enc.finish().expect("in-memory finish"))
    }

    #[test]
    fn decompress_caps_output() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decompress(bomb.clone(), ContentEncoding::Gzip, 1000),
            Err(DecompressError::TooLarge)
        ));
        let ok = decompress(bomb, ContentEncoding::Gzip, 1 << 20).expect("fits exactly");
        assert_eq!(ok.len(), 1 << 20);
    }

    /// OTLP/JSON with an attribute nested `levels` arrays deep.
    fn deep_json(levels: usize) -> String {
        let value = format!(
            r#"{}{{"intValue":"1"}}{}"#,
            r#"{"arrayValue":{"values":["#.repeat(levels),
            "]}}".repeat(levels)
        );
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"name":"d","attributes":[{{"key":"k","value":{value}}}]}}]}}]}}]}}"#
        )
    }

    #[test]
    fn json_nesting_is_bounded_on_a_worker_sized_stack() {
        // Tokio's worker threads have 2 MiB stacks: the deepest JSON serde_json accepts (39
        // array levels here) converts there, and anything deeper is refused, not a crash.
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let ok = json_to_protobuf(deep_json(39).as_bytes());
                let too_deep = json_to_protobuf(deep_json(40).as_bytes());
                let far_too_deep = json_to_protobuf(deep_json(100_000).as_bytes());
                (ok.is_ok(), too_deep.is_err(), far_too_deep.is_err())
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
        assert_eq!(run, (true, true, true));
    }

    #[test]
    fn decompress_reports_corruption() {
        assert!(matches!(
            decompress(Bytes::from_static(b"not gzip"), ContentEncoding::Gzip, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn parses_content_types() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_kind(&h), Some(Kind::Json));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-Protobuf"),
        );
        assert_eq!(content_kind(&h), Some(Kind::Protobuf));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(content_kind(&h), None);
    }
}

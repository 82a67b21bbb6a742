//! Reading an OTLP/HTTP request body: its media type and content encoding from the headers,
//! decompression under the size limit, and the one conversion of OTLP/JSON to protobuf.

use std::io::Read;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::HeaderMap;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_pipeline::Signal;

use crate::config::ContentEncoding;
use redline_http_server::gzip::{gunzip, GunzipError};

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
    let req = match serde_json::from_slice::<ExportTraceServiceRequest>(body) {
        Ok(req) => req,
        // What the protobuf JSON mapping allows and the generated types do not read (enum
        // names, empty arrays and maps written as `{}`) takes the slower road through a
        // `Value`; a body that fails there too gets the first error.
        Err(e) => normalized(body).map_err(|_| e)?,
    };
    Ok(Bytes::from(req.encode_to_vec()))
}

/// Converts an OTLP/JSON export request of `signal` to protobuf.
pub(crate) fn signal_json_to_protobuf(
    signal: Signal,
    body: &[u8],
) -> Result<Bytes, serde_json::Error> {
    match signal {
        Signal::Traces => json_to_protobuf(body),
        Signal::Metrics => metrics_json(body),
        Signal::Logs => logs_json(body),
    }
}

/// Metrics are read through a `Value`: the generated `Metric` keeps its data in a flattened
/// optional `oneof`, where serde drops a `sum` (or gauge, histogram...) it cannot read instead
/// of failing, which would answer 200 and lose the points. Every metric that has a data key
/// in the JSON must have data after reading, or the request is refused naming it.
fn metrics_json(body: &[u8]) -> Result<Bytes, serde_json::Error> {
    use serde::de::Error as _;
    let mut doc: serde_json::Value = serde_json::from_slice(body)?;
    enum_names_to_numbers(&mut doc).map_err(serde_json::Error::custom)?;
    oneof_numbers(&mut doc).map_err(serde_json::Error::custom)?;
    empty_lists(&mut doc);
    const DATA_KEYS: [&str; 5] = [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ];
    let mut with_data = Vec::new();
    for rm in json_items(&doc, "resourceMetrics") {
        for sm in json_items(rm, "scopeMetrics") {
            for m in json_items(sm, "metrics") {
                with_data.push(DATA_KEYS.iter().find(|k| m.get(**k).is_some()).copied());
            }
        }
    }
    let req: ExportMetricsServiceRequest = serde_json::from_value(doc)?;
    let metrics = req
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics);
    for (i, (metric, key)) in metrics.zip(&with_data).enumerate() {
        if let (None, Some(key)) = (&metric.data, key) {
            return Err(serde_json::Error::custom(format!(
                "metric {i} (`{}`): its `{key}` is not a valid OTLP/JSON {key}",
                metric.name
            )));
        }
    }
    Ok(Bytes::from(req.encode_to_vec()))
}

/// The `value` oneof of number data points and exemplars (`asInt`, `asDouble`) is flattened
/// in the generated types too, so a value serde cannot read would vanish with a 200. Checked
/// here, wherever those keys stand: an `asDouble` written as a string of a finite number is
/// made a number; anything else unreadable is refused naming it (serde_json has no NaN or
/// infinity, so protojson's `"NaN"` and `"Infinity"` are refused rather than lost).
fn oneof_numbers(v: &mut serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                match (key.as_str(), &*inner) {
                    ("asInt", Value::Number(n)) if n.is_i64() => {}
                    ("asInt", Value::String(t)) if t.parse::<i64>().is_ok() => {}
                    ("asInt", other) => {
                        return Err(format!("`asInt` {other} is not a 64-bit integer"))
                    }
                    ("asDouble", Value::Number(_)) => {}
                    ("asDouble", Value::String(t)) => match t.parse::<f64>() {
                        Ok(x) if x.is_finite() => {
                            if let Some(n) = serde_json::Number::from_f64(x) {
                                *inner = Value::Number(n);
                            }
                        }
                        _ => {
                            return Err(format!(
                                "`asDouble` \"{t}\" is not a finite number Redline can read"
                            ))
                        }
                    },
                    ("asDouble", other) => {
                        return Err(format!("`asDouble` {other} is not a number"))
                    }
                    _ => oneof_numbers(inner)?,
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(oneof_numbers),
        _ => Ok(()),
    }
}

fn json_items<'a>(
    v: &'a serde_json::Value,
    key: &str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    v.get(key)
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
}

/// Logs: the generated types first; on failure, the slow road through a `Value` with enum
/// names (`severityNumber`) made numbers and empty lists given their `values`.
fn logs_json(body: &[u8]) -> Result<Bytes, serde_json::Error> {
    let req = match serde_json::from_slice::<ExportLogsServiceRequest>(body) {
        Ok(req) => req,
        Err(e) => {
            let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(body) else {
                return Err(e);
            };
            if enum_names_to_numbers(&mut doc).is_err() {
                return Err(e);
            }
            empty_lists(&mut doc);
            serde_json::from_value::<ExportLogsServiceRequest>(doc).map_err(|_| e)?
        }
    };
    Ok(Bytes::from(req.encode_to_vec()))
}

/// Enum names of the metrics and logs data model, by JSON key.
fn enum_names_to_numbers(v: &mut serde_json::Value) -> Result<(), String> {
    use redline_otlp_wire::enums::{AGGREGATION_TEMPORALITY_NAMES, SEVERITY_NUMBER_NAMES};
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                let names: &[&str] = match key.as_str() {
                    "aggregationTemporality" => &AGGREGATION_TEMPORALITY_NAMES,
                    "severityNumber" => &SEVERITY_NUMBER_NAMES,
                    _ => {
                        enum_names_to_numbers(inner)?;
                        continue;
                    }
                };
                if let Value::String(name) = inner {
                    let n = names
                        .iter()
                        .position(|k| k == name)
                        .ok_or_else(|| format!("unknown enum value `{name}`"))?;
                    *inner = Value::from(n);
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(enum_names_to_numbers),
        _ => Ok(()),
    }
}

/// The request with `Span.kind` and `Status.code` names replaced by their numbers, and
/// `arrayValue`/`kvlistValue` objects without `values` given an empty list, as otelcol reads
/// them.
fn normalized(body: &[u8]) -> Result<ExportTraceServiceRequest, serde_json::Error> {
    use redline_otlp_wire::enums::{SPAN_KIND_NAMES as KINDS, STATUS_CODE_NAMES as CODES};
    use serde_json::Value;
    fn number(v: &mut Value, names: &[&str]) -> Result<(), serde_json::Error> {
        if let Value::String(name) = v {
            let Some(n) = names.iter().position(|k| k == name) else {
                return Err(<serde_json::Error as serde::de::Error>::custom(format!(
                    "unknown enum value `{name}`"
                )));
            };
            *v = Value::from(n);
        }
        Ok(())
    }
    fn items<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
        v.get_mut(key)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
    }
    let mut doc: Value = serde_json::from_slice(body)?;
    empty_lists(&mut doc);
    for rs in items(&mut doc, "resourceSpans") {
        for ss in items(rs, "scopeSpans") {
            for span in items(ss, "spans") {
                if let Some(kind) = span.get_mut("kind") {
                    number(kind, &KINDS)?;
                }
                if let Some(code) = span.get_mut("status").and_then(|s| s.get_mut("code")) {
                    number(code, &CODES)?;
                }
            }
        }
    }
    serde_json::from_value(doc)
}

/// `arrayValue`/`kvlistValue` objects without `values` get an empty list, as otelcol reads
/// them. serde_json refuses nesting past 128 levels, which bounds this recursion.
fn empty_lists(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if let (true, serde_json::Value::Object(list)) =
                    (key == "arrayValue" || key == "kvlistValue", &mut *inner)
                {
                    list.entry("values")
                        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
                }
                empty_lists(inner);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(empty_lists),
        _ => {}
    }
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
        _ => Err(format!("unsupported Content-Encoding: {name}")),
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
/// decompression bomb costs at most `limit` bytes of memory. With the decompressed body, a
/// gzip body's own bytes when it is one whole gzip member (see `gzip::Inflated::member`).
pub(super) fn decompress(
    body: Bytes,
    encoding: ContentEncoding,
    limit: usize,
) -> Result<(Bytes, Option<Bytes>), DecompressError> {
    let reader: Box<dyn Read + '_> = match encoding {
        ContentEncoding::Identity => return Ok((body, None)),
        ContentEncoding::Snappy if !is_snappy_framed(&body) => {
            return snappy_block(&body, limit).map(|b| (Bytes::from(b), None))
        }
        // Chunks of at most 64 KiB each: the cap below bounds what a bomb costs.
        ContentEncoding::Snappy | ContentEncoding::SnappyFramed => {
            Box::new(snap::read::FrameDecoder::new(&body[..]))
        }
        // Multi-member gzip, as Go's gzip.Reader reads it.
        ContentEncoding::Gzip => {
            return match gunzip(&body, limit, Vec::new()) {
                Ok(inflated) => Ok((Bytes::from(inflated.out), inflated.member)),
                Err(GunzipError::TooLarge) => Err(DecompressError::TooLarge),
                Err(GunzipError::Corrupt(e)) => Err(DecompressError::Corrupt(e)),
            }
        }
        ContentEncoding::Zlib => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        ContentEncoding::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(&body[..])
                .map_err(DecompressError::Corrupt)?,
        ),
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
    Ok((Bytes::from(out), None))
}

/// The first bytes of every snappy framed stream: its stream identifier chunk.
pub(crate) const SNAPPY_FRAMED_MAGIC: [u8; 10] =
    [0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59];

/// otelcol's rule for `Content-Encoding: snappy`: a body that starts with the framed
/// stream identifier is framed (what older collectors sent), anything else is a block.
fn is_snappy_framed(body: &[u8]) -> bool {
    body.starts_with(&SNAPPY_FRAMED_MAGIC)
}

/// A snappy block: the decoded length it declares is checked against `limit` before
/// anything is allocated (as otelcol checks `snappy.DecodedLen`), so a tiny block claiming
/// gigabytes costs nothing.
fn snappy_block(body: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let corrupt = |e: snap::Error| {
        DecompressError::Corrupt(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    let len = snap::raw::decompress_len(body).map_err(corrupt)?;
    if len > limit {
        return Err(DecompressError::TooLarge);
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::io::Write;

    fn decompressed(
        body: Bytes,
        encoding: ContentEncoding,
        limit: usize,
    ) -> Result<Bytes, DecompressError> {
        decompress(body, encoding, limit).map(|(body, _)| body)
    }

    #[test]
    fn only_a_gzip_body_of_one_member_comes_back_with_its_bytes() {
        let data = vec![7u8; 10_000];
        let one = gzip(&data);
        let (body, member) = decompress(one.clone(), ContentEncoding::Gzip, 1 << 20).expect("gzip");
        assert_eq!((body.to_vec(), member), (data.clone(), Some(one.clone())));
        let two = Bytes::from([one.to_vec(), one.to_vec()].concat());
        let (body, member) = decompress(two, ContentEncoding::Gzip, 1 << 20).expect("gzip");
        assert_eq!((body.len(), member), (20_000, None));
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).expect("in-memory write");
        let zlib = Bytes::from(z.finish().expect("in-memory finish"));
        let (body, member) = decompress(zlib, ContentEncoding::Zlib, 1 << 20).expect("zlib");
        assert_eq!((body.to_vec(), member), (data, None));
    }

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
            decompressed(bomb.clone(), ContentEncoding::Gzip, 1000),
            Err(DecompressError::TooLarge)
        ));
        let ok = decompressed(bomb, ContentEncoding::Gzip, 1 << 20).expect("fits exactly");
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
    fn enum_names_are_read_as_their_numbers() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"name":"a","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR"}},
            {"name":"b","kind":2,"status":{"code":1}}]}]}]}"#;
        let req = ExportTraceServiceRequest::decode(json_to_protobuf(body).expect("valid"))
            .expect("protobuf");
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        let got: Vec<_> = spans
            .iter()
            .map(|s| (s.kind, s.status.as_ref().map(|st| st.code)))
            .collect();
        assert_eq!(got, [(3, Some(2)), (2, Some(1))]);
        let unknown =
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_NOPE"}]}]}]}"#;
        assert!(json_to_protobuf(unknown).is_err());
    }

    #[test]
    fn empty_arrays_and_maps_may_omit_their_values() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"a","attributes":[
            {"key":"l","value":{"arrayValue":{}}},
            {"key":"m","value":{"kvlistValue":{}}},
            {"key":"n","value":{"arrayValue":{"values":[{"kvlistValue":{}}]}}}]}]}]}]}"#;
        let req = ExportTraceServiceRequest::decode(json_to_protobuf(body).expect("valid"))
            .expect("protobuf");
        assert_eq!(
            req.resource_spans[0].scope_spans[0].spans[0]
                .attributes
                .len(),
            3
        );
    }

    #[test]
    fn deep_json_with_enum_names_is_refused_not_a_crash() {
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let deep = deep_json(1000).replace(r#""name":"d""#, r#""kind":"SPAN_KIND_SERVER""#);
                json_to_protobuf(deep.as_bytes()).is_err()
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
        assert!(run);
    }

    #[test]
    fn zstd_bodies_decompress_under_the_cap() {
        let data = vec![7u8; 1 << 20];
        let packed = Bytes::from(zstd::bulk::compress(&data, 3).expect("in-memory compress"));
        let out = decompressed(packed.clone(), ContentEncoding::Zstd, 1 << 20).expect("fits");
        assert_eq!(out, data);
        assert!(matches!(
            decompressed(packed, ContentEncoding::Zstd, 1000),
            Err(DecompressError::TooLarge)
        ));
        assert!(matches!(
            decompressed(Bytes::from_static(b"not zstd"), ContentEncoding::Zstd, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    fn framed(data: &[u8]) -> Bytes {
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).expect("in-memory write");
        Bytes::from(w.into_inner().expect("in-memory flush"))
    }

    fn block(data: &[u8]) -> Bytes {
        Bytes::from(
            snap::raw::Encoder::new()
                .compress_vec(data)
                .expect("compress"),
        )
    }

    /// A request-like body: compressible, but not one repeated byte.
    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn snappy_takes_a_block_or_a_framed_stream_by_its_first_bytes() {
        let data = sample(200_000);
        let f = framed(&data);
        assert_eq!(f[..10], SNAPPY_FRAMED_MAGIC);
        let b = block(&data);
        assert_ne!(b[..10], SNAPPY_FRAMED_MAGIC);
        // `snappy`: framed when the stream identifier leads, else a block.
        assert_eq!(
            decompressed(f.clone(), ContentEncoding::Snappy, 1 << 20).expect("framed"),
            data
        );
        assert_eq!(
            decompressed(b.clone(), ContentEncoding::Snappy, 1 << 20).expect("block"),
            data
        );
        // `x-snappy-framed`: framed only.
        assert_eq!(
            decompressed(f.clone(), ContentEncoding::SnappyFramed, 1 << 20).expect("framed"),
            data
        );
        assert!(matches!(
            decompressed(b, ContentEncoding::SnappyFramed, 1 << 20),
            Err(DecompressError::Corrupt(_))
        ));
        // Zero bytes are no block (a block starts with its length), as in otelcol.
        assert!(matches!(
            decompressed(Bytes::new(), ContentEncoding::Snappy, 100),
            Err(DecompressError::Corrupt(_))
        ));
        assert_eq!(
            decompressed(block(b""), ContentEncoding::Snappy, 100).expect("empty block"),
            Bytes::new()
        );
    }

    #[test]
    fn snappy_bodies_decompress_under_the_cap() {
        let data = sample(100_000);
        for (packed, encoding) in [
            (block(&data), ContentEncoding::Snappy),
            (framed(&data), ContentEncoding::Snappy),
            (framed(&data), ContentEncoding::SnappyFramed),
        ] {
            let out = decompressed(packed.clone(), encoding, 100_000).expect("fits exactly");
            assert_eq!(out.len(), 100_000);
            assert!(matches!(
                decompressed(packed, encoding, 99_999),
                Err(DecompressError::TooLarge)
            ));
        }
        assert!(matches!(
            decompressed(
                Bytes::from_static(b"\xff\x06\x00\x00sNaPpY\x00"),
                ContentEncoding::Snappy,
                100
            ),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn a_snappy_block_claiming_a_huge_length_is_refused_before_decoding() {
        // Five bytes: a varint declaring 4 GiB - 1 decoded bytes, then a one-byte literal.
        let bomb = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x']);
        assert_eq!(
            snap::raw::decompress_len(&bomb).expect("a length"),
            u32::MAX as usize
        );
        assert!(matches!(
            decompressed(bomb, ContentEncoding::Snappy, 20 << 20),
            Err(DecompressError::TooLarge)
        ));
        // A real block of 1 MiB of zeros (about 48 KiB compressed) under a 1000-byte limit:
        // refused from its header alone, as for gzip and zstd past the cap.
        let zeros = block(&vec![0u8; 1 << 20]);
        assert!(zeros.len() < 50_000);
        assert!(matches!(
            decompressed(zeros, ContentEncoding::Snappy, 1000),
            Err(DecompressError::TooLarge)
        ));
    }

    #[test]
    fn decompress_reports_corruption() {
        assert!(matches!(
            decompressed(Bytes::from_static(b"not gzip"), ContentEncoding::Gzip, 100),
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

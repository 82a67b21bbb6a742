//! The body of one OTLP/HTTP request: the queued requests concatenated (protobuf) or
//! converted (JSON), then compressed as configured.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::write::ZlibEncoder;
use redline_pipeline::Signal;

use super::json;
use crate::config::{Encoding, HttpCompression};

/// Below this average size, batches are copied into one buffer: each chunk of a body is a
/// separate write for hyper.
const CONCAT_BELOW: usize = 16 * 1024;

/// How a body is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyFormat {
    pub signal: Signal,
    pub encoding: Encoding,
    pub compression: HttpCompression,
    /// The level for `compression` (see `HttpConfig::compression_level`).
    pub level: Option<i32>,
}

impl BodyFormat {
    pub fn content_type(&self) -> &'static str {
        match self.encoding {
            Encoding::Proto => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An encoded body, kept for the retries of a request.
#[derive(Clone, Debug)]
pub(crate) struct EncodedBody {
    /// Sent in order.
    pub chunks: Vec<Bytes>,
}

impl EncodedBody {
    /// The body of a request that is one batch a client sent gzipped, in protobuf: the
    /// client's gzip member, which decompresses to exactly that batch.
    pub fn client_gzip(frame: &Bytes) -> Self {
        Self {
            chunks: vec![frame.clone()],
        }
    }
}

/// Encodes `parts` (each an encoded export request of `format.signal`) as one body.
pub(crate) fn encode(parts: Vec<Bytes>, format: &BodyFormat) -> Result<EncodedBody, String> {
    let payload = match format.encoding {
        // Two encoded requests back to back are one request: the bytes go as they came.
        Encoding::Proto => parts,
        Encoding::Json => {
            let raw = concat(&parts);
            vec![Bytes::from(json::to_json(format.signal, &raw)?)]
        }
    };
    let level = format.level.unwrap_or(0);
    let compressed = match format.compression {
        HttpCompression::None => {
            return Ok(EncodedBody {
                chunks: plain(payload),
            })
        }
        HttpCompression::Gzip => {
            let level = u32::try_from(level).unwrap_or(6).clamp(1, 9);
            crate::compress::gzip::compress(&whole_parts(&payload), level, 0)
                .map_err(std::io::Error::other)
        }
        // otelcol sends zlib streams for both names.
        HttpCompression::Zlib | HttpCompression::Deflate => {
            let mut e = ZlibEncoder::new(Vec::new(), flate_level(level));
            write_all(&mut e, &payload)?;
            e.finish()
        }
        HttpCompression::Zstd => crate::compress::zstd::compress(&whole_parts(&payload), level, 0),
        // As otelcol's confighttp: `snappy` is one block of the whole body...
        HttpCompression::Snappy => snap::raw::Encoder::new()
            .compress_vec(&concat(&payload))
            .map_err(std::io::Error::other),
        // ...and `x-snappy-framed` the framed stream format.
        HttpCompression::SnappyFramed => {
            let mut e = snap::write::FrameEncoder::new(Vec::new());
            write_all(&mut e, &payload)?;
            e.into_inner().map_err(|e| e.into_error())
        }
    }
    .map_err(|e| format!("{:?} compression failed: {e}", format.compression))?;
    Ok(EncodedBody {
        chunks: vec![Bytes::from(compressed)],
    })
}

/// The batches as the whole-message compressors take them.
fn whole_parts(payload: &[Bytes]) -> Vec<&Bytes> {
    payload.iter().collect()
}

fn flate_level(level: i32) -> flate2::Compression {
    flate2::Compression::new(u32::try_from(level).unwrap_or(6).min(9))
}

fn write_all(w: &mut impl Write, parts: &[Bytes]) -> Result<(), String> {
    parts
        .iter()
        .try_for_each(|p| w.write_all(p))
        .map_err(|e| format!("compression failed: {e}"))
}

fn concat(parts: &[Bytes]) -> Bytes {
    match parts {
        [one] => one.clone(),
        _ => {
            let len = parts.iter().map(Bytes::len).sum();
            let mut buf = BytesMut::with_capacity(len);
            parts.iter().for_each(|p| buf.put_slice(p));
            buf.freeze()
        }
    }
}

/// Uncompressed: many small batches are joined, large ones go as they are (uncopied).
fn plain(parts: Vec<Bytes>) -> Vec<Bytes> {
    let len: usize = parts.iter().map(Bytes::len).sum();
    if parts.len() > 1 && len / parts.len() < CONCAT_BELOW {
        vec![concat(&parts)]
    } else {
        parts
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn format(compression: HttpCompression, level: Option<i32>) -> BodyFormat {
        BodyFormat {
            signal: Signal::Traces,
            encoding: Encoding::Proto,
            compression,
            level,
        }
    }

    fn joined(b: &EncodedBody) -> Vec<u8> {
        b.chunks.iter().flat_map(|c| c.to_vec()).collect()
    }

    #[test]
    fn every_compression_decodes_to_the_concatenated_requests() {
        let parts = vec![
            Bytes::from(
                (0..20_000u32)
                    .flat_map(|i| (i % 7).to_le_bytes())
                    .collect::<Vec<_>>(),
            ),
            Bytes::from_static(b"second"),
        ];
        let expected = concat(&parts).to_vec();
        let plain = encode(parts.clone(), &format(HttpCompression::None, None)).expect("plain");
        assert_eq!(joined(&plain), expected);

        let mut out = Vec::new();
        let gz = encode(parts.clone(), &format(HttpCompression::Gzip, Some(6))).expect("gzip");
        flate2::read::GzDecoder::new(joined(&gz).as_slice())
            .read_to_end(&mut out)
            .expect("gzip");
        assert_eq!(out, expected);

        for c in [HttpCompression::Zlib, HttpCompression::Deflate] {
            let z = encode(parts.clone(), &format(c, Some(1))).expect("zlib");
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(joined(&z).as_slice())
                .read_to_end(&mut out)
                .expect("zlib");
            assert_eq!(out, expected, "{c:?}");
        }

        let z = encode(parts.clone(), &format(HttpCompression::Zstd, Some(3))).expect("zstd");
        assert_eq!(
            zstd::stream::decode_all(joined(&z).as_slice()).expect("zstd"),
            expected
        );

        // `snappy`: one raw block (otelcol's rawSnappyWriter)...
        let block = joined(
            &encode(parts.clone(), &format(HttpCompression::Snappy, Some(0))).expect("snappy"),
        );
        assert_eq!(
            snap::raw::decompress_len(&block).expect("a block header"),
            expected.len()
        );
        assert_eq!(
            snap::raw::Decoder::new()
                .decompress_vec(&block)
                .expect("a block"),
            expected
        );
        // ...`x-snappy-framed`: the framed stream (snappy.NewBufferedWriter).
        let framed = joined(
            &encode(parts, &format(HttpCompression::SnappyFramed, Some(0))).expect("framed"),
        );
        assert_eq!(framed[..10], *b"\xff\x06\x00\x00sNaPpY");
        let mut out = Vec::new();
        snap::read::FrameDecoder::new(framed.as_slice())
            .read_to_end(&mut out)
            .expect("framed");
        assert_eq!(out, expected);
    }

    #[test]
    fn large_plain_batches_are_sent_uncopied() {
        let big = Bytes::from(vec![1u8; CONCAT_BELOW * 2]);
        let b = encode(
            vec![big.clone(), big.clone()],
            &format(HttpCompression::None, None),
        )
        .expect("plain");
        assert_eq!(b.chunks.len(), 2);
        assert_eq!(b.chunks[0].as_ptr(), big.as_ptr());
    }
}

//! The gRPC message Redline sends: queued export request bytes, concatenated (two encoded
//! requests back to back are one request whose top-level lists merge) and framed as gRPC's
//! length-prefixed message. The forward path never decodes or re-encodes spans
//! (docs/architecture.md §1); it compresses the bytes itself (gzip or zstd at the configured
//! level, or snappy), because tonic's client compresses only at a fixed level and would compress again on
//! every retry. A request that is one batch the client sent gzipped goes out in the client's
//! own gzip member (`client_gzip`): those bytes decompress to exactly the request.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::config::MessageEncoding;

/// The gRPC message prefix: a compressed flag, then the payload length (big-endian u32).
const PREFIX_LEN: usize = 5;

/// Below this many bytes, concatenating batches costs less than sending each as its own
/// HTTP/2 DATA chunk (each chunk is a frame header and a write-buffer entry).
const CONCAT_BELOW: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the request is {len} bytes, more than a gRPC message can hold")]
    TooLarge { len: usize },
    #[error("compression failed: {0}")]
    Compress(#[from] std::io::Error),
    #[error("gzip failed: {0}")]
    Gzip(#[from] crate::compress::gzip::GzipError),
}

/// One framed gRPC message, kept for the retries of a request: compressing once per request,
/// not once per attempt, is what makes retrying a slow Tempo cheap.
#[derive(Clone, Debug)]
pub struct Message {
    /// Sent in order: the prefix first, then the payload.
    chunks: Vec<Bytes>,
    /// The payload's `grpc-encoding` (`gzip`, `zstd`, `snappy`), `None` when it is not compressed (the
    /// prefix's flag says the same).
    pub encoding: Option<&'static str>,
}

impl Message {
    /// Frames `parts` (each an encoded request) as one message, compressed as `encoding` says.
    pub fn encode(
        parts: &[&Bytes],
        encoding: Option<MessageEncoding>,
    ) -> Result<Self, EncodeError> {
        match encoding {
            Some(MessageEncoding::Gzip(level)) => Self::gzip(parts, level),
            Some(MessageEncoding::Zstd(level)) => Self::zstd(parts, level),
            Some(MessageEncoding::Snappy) => Self::snappy(parts),
            None => Self::plain(parts),
        }
    }

    fn plain(parts: &[&Bytes]) -> Result<Self, EncodeError> {
        Self::framed(parts, false).map(|chunks| Self {
            chunks,
            encoding: None,
        })
    }

    /// A message whose payload is `frame`, the gzip member a client sent for the one batch
    /// this request is: sent as it came, not compressed again.
    pub fn client_gzip(frame: &Bytes) -> Result<Self, EncodeError> {
        Self::framed(&[frame], true).map(|chunks| Self {
            chunks,
            encoding: Some("gzip"),
        })
    }

    /// The prefix and `parts` as the chunks of one message whose payload is `parts`.
    fn framed(parts: &[&Bytes], compressed: bool) -> Result<Vec<Bytes>, EncodeError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let prefix = prefix(compressed, len)?;
        let mut chunks = Vec::with_capacity(parts.len() + 1);
        if len / parts.len().max(1) < CONCAT_BELOW {
            let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
            buf.put_slice(&prefix);
            for p in parts {
                buf.put_slice(p);
            }
            chunks.push(buf.freeze());
        } else {
            // Large batches go out as they are: h2 writes them from these buffers, uncopied.
            chunks.push(Bytes::copy_from_slice(&prefix));
            chunks.extend(parts.iter().map(|p| (*p).clone()));
        }
        Ok(chunks)
    }

    fn gzip(parts: &[&Bytes], level: u32) -> Result<Self, EncodeError> {
        // The prefix is patched in place once the compressed length is known, so the payload
        // is written once, straight into the buffer that is sent.
        let out = crate::compress::gzip::compress(parts, level.clamp(1, 9), PREFIX_LEN)?;
        Self::compressed(out, "gzip")
    }

    fn zstd(parts: &[&Bytes], level: i32) -> Result<Self, EncodeError> {
        let out = crate::compress::zstd::compress(parts, level, PREFIX_LEN)?;
        Self::compressed(out, "zstd")
    }

    /// grpc-encoding `snappy` is the snappy framed format (otelcol's configgrpc compressor).
    fn snappy(parts: &[&Bytes]) -> Result<Self, EncodeError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = Vec::with_capacity(PREFIX_LEN + len / 2 + 64);
        out.extend_from_slice(&[0; PREFIX_LEN]);
        let mut encoder = snap::write::FrameEncoder::new(out);
        for p in parts {
            encoder.write_all(p)?;
        }
        let out = encoder.into_inner().map_err(|e| e.into_error())?;
        Self::compressed(out, "snappy")
    }

    /// `out`: a zeroed prefix, then the compressed payload; the prefix is patched in place.
    fn compressed(mut out: Vec<u8>, encoding: &'static str) -> Result<Self, EncodeError> {
        let prefix = prefix(true, out.len() - PREFIX_LEN)?;
        out[..PREFIX_LEN].copy_from_slice(&prefix);
        Ok(Self {
            chunks: vec![Bytes::from(out)],
            encoding: Some(encoding),
        })
    }

    /// A request body that sends this message (cheap: the chunks are shared, not copied).
    pub fn body(&self) -> MessageBody {
        MessageBody {
            chunks: self.chunks.iter().cloned().collect(),
        }
    }
}

fn prefix(compressed: bool, len: usize) -> Result<[u8; PREFIX_LEN], EncodeError> {
    let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLarge { len })?;
    let [a, b, c, d] = len32.to_be_bytes();
    Ok([u8::from(compressed), a, b, c, d])
}

/// The request body of one attempt: the message's chunks, in order, then the end of the
/// stream.
#[derive(Debug)]
pub struct MessageBody {
    chunks: VecDeque<Bytes>,
}

impl MessageBody {
    /// A body sending `chunks` in order (the OTLP/HTTP exporter's bodies).
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
        }
    }
}

impl http_body::Body for MessageBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use http_body_util::BodyExt;

    use super::*;
    use crate::compress::gzip::gunzip;

    async fn wire(m: &Message) -> Vec<u8> {
        let collected = m.body().collect().await.expect("infallible");
        collected.to_bytes().to_vec()
    }

    fn split(wire: &[u8]) -> (u8, Vec<u8>) {
        let len = u32::from_be_bytes([wire[1], wire[2], wire[3], wire[4]]) as usize;
        assert_eq!(
            wire.len(),
            PREFIX_LEN + len,
            "length prefix covers the rest"
        );
        (wire[0], wire[PREFIX_LEN..].to_vec())
    }

    #[tokio::test]
    async fn plain_messages_are_the_concatenated_bytes() {
        let big = Bytes::from(vec![7u8; CONCAT_BELOW * 2]);
        let small = [Bytes::from_static(b"abc"), Bytes::from_static(b"defg")];
        for parts in [
            vec![&small[0]],
            vec![&small[0], &small[1]],
            vec![&big],
            vec![&big, &big],
        ] {
            let m = Message::encode(&parts, None).expect("encodes");
            assert_eq!(m.encoding, None);
            let (flag, payload) = split(&wire(&m).await);
            assert_eq!(flag, 0);
            assert_eq!(
                payload,
                parts.iter().flat_map(|p| p.to_vec()).collect::<Vec<_>>()
            );
            let on_wire: usize = m.chunks.iter().map(Bytes::len).sum();
            assert_eq!(on_wire, PREFIX_LEN + payload.len());
        }
    }

    #[tokio::test]
    async fn large_plain_batches_are_sent_uncopied() {
        let big = Bytes::from(vec![1u8; CONCAT_BELOW * 2]);
        let m = Message::encode(&[&big], None).expect("encodes");
        assert_eq!(m.chunks.len(), 2);
        assert_eq!(
            m.chunks[1].as_ptr(),
            big.as_ptr(),
            "the batch itself is sent"
        );
    }

    #[tokio::test]
    async fn gzip_messages_decompress_to_the_concatenated_bytes_at_every_level() {
        let a = Bytes::from(
            (0..50_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let b = Bytes::from_static(b"second request");
        let mut sizes = Vec::new();
        for level in 1..=9 {
            let m =
                Message::encode(&[&a, &b], Some(MessageEncoding::Gzip(level))).expect("encodes");
            assert_eq!(m.encoding, Some("gzip"));
            let (flag, payload) = split(&wire(&m).await);
            assert_eq!(flag, 1);
            let mut expected = a.to_vec();
            expected.extend_from_slice(&b);
            assert_eq!(gunzip(&payload), expected, "level {level}");
            sizes.push(payload.len());
        }
        assert!(
            sizes[8] <= sizes[0],
            "level 9 is no larger than level 1: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_clients_gzip_member_is_sent_as_it_came() {
        let request = Bytes::from(vec![9u8; 3 * CONCAT_BELOW]);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
        e.write_all(&request).expect("in memory");
        let small = Bytes::from(e.finish().expect("in memory"));
        let large = Bytes::from(vec![3u8; 2 * CONCAT_BELOW]);
        for frame in [small, large] {
            let m = Message::client_gzip(&frame).expect("frames");
            assert_eq!(m.encoding, Some("gzip"));
            let (flag, payload) = split(&wire(&m).await);
            assert_eq!(flag, 1, "compressed");
            assert_eq!(payload, frame.to_vec(), "byte for byte");
        }
        let large = Bytes::from(vec![3u8; 2 * CONCAT_BELOW]);
        let m = Message::client_gzip(&large).expect("frames");
        assert_eq!(
            m.chunks[1].as_ptr(),
            large.as_ptr(),
            "a large frame is not copied"
        );
    }

    #[tokio::test]
    async fn snappy_messages_are_the_framed_format_of_the_concatenated_bytes() {
        let a = Bytes::from(
            (0..50_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect::<Vec<_>>(),
        );
        let b = Bytes::from_static(b"second request");
        let m = Message::encode(&[&a, &b], Some(MessageEncoding::Snappy)).expect("encodes");
        assert_eq!(m.encoding, Some("snappy"));
        let (flag, payload) = split(&wire(&m).await);
        assert_eq!(flag, 1);
        // grpc-go's snappy compressor (otelcol's configgrpc) writes the framed format.
        assert_eq!(payload[..10], *b"\xff\x06\x00\x00sNaPpY");
        let mut inflated = Vec::new();
        snap::read::FrameDecoder::new(&payload[..])
            .read_to_end(&mut inflated)
            .expect("a valid framed stream");
        let mut expected = a.to_vec();
        expected.extend_from_slice(&b);
        assert_eq!(inflated, expected);
        assert!(payload.len() < expected.len() / 2, "it was compressed");
    }

    #[tokio::test]
    async fn empty_requests_frame_as_empty_messages() {
        let m = Message::encode(&[], None).expect("encodes");
        assert_eq!(wire(&m).await, vec![0, 0, 0, 0, 0]);
        let m = Message::encode(&[], Some(MessageEncoding::Gzip(6))).expect("encodes");
        let (flag, payload) = split(&wire(&m).await);
        assert_eq!((flag, gunzip(&payload)), (1, Vec::new()));
    }
}

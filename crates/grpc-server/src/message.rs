//! A call's message before tonic reads it: its length taken from the receiver's body budget
//! from the frame header (a call the budget cannot cover is refused before its message is
//! read), and `grpc-encoding: snappy` and `gzip` messages inflated here, as grpc-go reads them
//! (tonic has no snappy, and its gzip reads only the first member and keeps nothing of what
//! the client sent). zstd is left to tonic.

use std::collections::VecDeque;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderValue, Request};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use redline_http_server::gzip::{self, GunzipError};
use redline_pipeline::body_budget::{BodyBudget, BodyPermit, OVER_BUDGET_RETRY_AFTER};
use redline_pipeline::rpc_status::encode_status;
use tonic::{Code, Status};

const GRPC_ENCODING: &str = "grpc-encoding";

/// The receive buffer of a server codec's decoder: tonic's 8 KiB start grows by reallocating
/// (and copying) several times for a typical request of tens of KiB (a 100-span OTLP request
/// of ~430 B spans is ~43 KiB); starting at 64 KiB holds most in one allocation, and larger
/// ones still grow. The yield threshold is tonic's default (not exported), unused by a unary
/// server's decoding.
pub fn request_buffer_settings() -> tonic::codec::BufferSettings {
    tonic::codec::BufferSettings::new(64 * 1024, 32 * 1024)
}

/// google.rpc.Code UNAVAILABLE, for the status details.
const CODE_UNAVAILABLE: i32 = 14;

/// Takes the call's message length from `budget` and inflates a snappy or gzip message (each
/// as sent and as inflated at most `limit` bytes, `max_recv_msg_size`). The request that
/// comes back is for tonic: its handler finds the [`MessageCharge`] (and the [`ClientGzip`]
/// member, when there is one) in its extensions. `Err` is the call's answer.
pub async fn receive(
    req: Request<Incoming>,
    budget: &BodyBudget,
    limit: usize,
) -> Result<Request<ChargedBody>, Status> {
    let (mut parts, body) = req.into_parts();
    let mut body = ChargedBody::read_head(body, budget).await?;
    let inflate = match parts.headers.get(GRPC_ENCODING).map(HeaderValue::as_bytes) {
        Some(b"snappy") => Some(Inflate::Snappy),
        Some(b"gzip") => Some(Inflate::Gzip),
        _ => None,
    };
    let mut client_gzip = None;
    if let Some(inflate) = inflate {
        parts.headers.remove(GRPC_ENCODING);
        (body, client_gzip) = body.inflate(inflate, limit).await?;
    }
    let charge = MessageCharge(body.charge.clone());
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(charge);
    if let Some(member) = client_gzip {
        req.extensions_mut().insert(ClientGzip(member));
    }
    Ok(req)
}

/// The budget a call took for its message, carried to the handler in the request's
/// extensions.
#[derive(Clone)]
pub struct MessageCharge(Arc<BodyCharge>);

impl MessageCharge {
    /// Takes the `inflated`-byte message tonic handed the handler from the budget too, when
    /// it came compressed: it is held beside the frame that was read. `Err` is the call's
    /// answer.
    pub fn cover<T>(
        request: &tonic::Request<T>,
        inflated: usize,
        budget: &BodyBudget,
    ) -> Result<(), Status> {
        let Some(Self(charge)) = request.extensions().get::<Self>() else {
            return Ok(());
        };
        if charge.compressed && !charge.permit.lock().grow(inflated as u64) {
            return Err(over_budget(budget));
        }
        Ok(())
    }
}

/// The gzip member a client sent as its message, when it decompressed to exactly the message
/// the handler gets (see `gzip::Inflated::member`).
#[derive(Clone)]
pub struct ClientGzip(pub Bytes);

/// The compressions inflated here rather than by tonic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inflate {
    /// The snappy framed format, as grpc-go's snappy compressor in otelcol writes it.
    Snappy,
    Gzip,
}

/// The budget taken for one call's body; the handler grows it by the inflated message.
struct BodyCharge {
    permit: parking_lot::Mutex<BodyPermit>,
    /// Whether the message arrived compressed (the frame's flag byte).
    compressed: bool,
}

/// A call's body with its first bytes already read, to learn the message length from the
/// gRPC frame header and take that from the budget before the message itself is read.
pub struct ChargedBody {
    head: VecDeque<Frame<Bytes>>,
    /// `None` once it has been read to its end.
    rest: Option<Incoming>,
    charge: Arc<BodyCharge>,
}

impl ChargedBody {
    /// Reads until the 5-byte frame header is in, then takes the length it declares; a call
    /// the budget cannot cover gets its status without the message being read.
    async fn read_head(mut rest: Incoming, budget: &BodyBudget) -> Result<Self, Status> {
        let mut head = VecDeque::new();
        let mut prefix = [0u8; 5];
        let mut have = 0;
        while have < prefix.len() {
            let Some(frame) = rest.frame().await else {
                break;
            };
            // A broken stream is tonic's to report; hand over what there is.
            let Ok(frame) = frame else {
                break;
            };
            if let Some(data) = frame.data_ref() {
                let n = data.len().min(prefix.len() - have);
                prefix[have..have + n].copy_from_slice(&data[..n]);
                have += n;
            }
            head.push_back(frame);
        }
        let declared = if have == prefix.len() {
            u64::from(u32::from_be_bytes([
                prefix[1], prefix[2], prefix[3], prefix[4],
            ]))
        } else {
            0
        };
        let permit = budget.take(declared).ok_or_else(|| over_budget(budget))?;
        Ok(Self {
            head,
            rest: Some(rest),
            charge: Arc::new(BodyCharge {
                permit: parking_lot::Mutex::new(permit),
                compressed: have > 0 && prefix[0] != 0,
            }),
        })
    }
}

impl ChargedBody {
    async fn next_frame(&mut self) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        if let Some(frame) = self.head.pop_front() {
            return Some(Ok(frame));
        }
        let frame = self.rest.as_mut()?.frame().await;
        if frame.is_none() {
            self.rest = None;
        }
        frame
    }

    /// A `grpc-encoding: snappy` or `gzip` message, inflated and put back as an uncompressed
    /// message, under the same limits and with the same statuses as tonic's zstd: the
    /// message as sent and as inflated must each fit `limit` (`max_recv_msg_size`), and
    /// inflating stops one byte past it, so a bomb costs at most `limit`. gzip is read as
    /// grpc-go reads it (every member, not only the first as tonic does); with it comes the
    /// client's gzip member when it was exactly one (`gzip::Inflated::member`).
    async fn inflate(
        mut self,
        inflate: Inflate,
        limit: usize,
    ) -> Result<(Self, Option<Bytes>), Status> {
        let mut buf = BytesMut::new();
        let mut after = VecDeque::new();
        let mut want = 5;
        while buf.len() < want {
            match self.next_frame().await {
                // No message at all: tonic answers that as for any encoding.
                None if buf.is_empty() => {
                    self.head.extend(after);
                    return Ok((self, None));
                }
                None => return Err(Status::internal("Unexpected EOF decoding stream.")),
                Some(Err(e)) => return Err(Status::internal(format!("reading the request: {e}"))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => buf.put(data),
                    Err(frame) => after.push_back(frame),
                },
            }
            if want == 5 && buf.len() >= 5 {
                let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                if len > limit {
                    return Err(Status::resource_exhausted(format!(
                        "Error, decoded message length too large: found {len} bytes, the limit is: {limit} bytes"
                    )));
                }
                want = 5 + len;
            }
        }
        // Bytes past this message are the client's next one: tonic answers for them.
        let rest = buf.split_off(want);
        let message = buf.freeze();
        let (message, member) = match message[0] {
            0 => (message, None),
            // Inflated behind a prefix made for it, so the message is not copied again.
            _ => {
                let (mut out, member) = match inflate {
                    Inflate::Snappy => {
                        let mut out = vec![0u8; 5];
                        inflate_snappy_framed_into(&message[5..], limit, &mut out)?;
                        (out, None)
                    }
                    Inflate::Gzip => match gzip::gunzip(&message[5..], limit, vec![0u8; 5]) {
                        Ok(inflated) => (inflated.out, inflated.member),
                        Err(GunzipError::TooLarge) => return Err(too_large(limit)),
                        Err(GunzipError::Corrupt(e)) => return Err(corrupt(e)),
                    },
                };
                let len = u32::try_from(out.len() - 5).map_err(|_| too_large(limit))?;
                out[1..5].copy_from_slice(&len.to_be_bytes());
                (Bytes::from(out), member)
            }
        };
        let mut head = VecDeque::from([Frame::data(message)]);
        if !rest.is_empty() {
            head.push_back(Frame::data(rest.freeze()));
        }
        head.extend(after);
        head.extend(self.head.drain(..));
        self.head = head;
        Ok((self, member))
    }
}

fn too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "Error decompressing: size limit, of {limit} bytes, exceeded while decompressing message"
    ))
}

/// What tonic answers for a message that does not decompress.
fn corrupt(e: std::io::Error) -> Status {
    Status::internal(format!("Error decompressing: {e}, while sending request"))
}

/// A snappy framed stream, inflated to at most `limit` bytes.
#[cfg(test)]
fn inflate_snappy_framed(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    inflate_snappy_framed_into(compressed, limit, &mut out)?;
    Ok(out)
}

/// A snappy framed stream, inflated to at most `limit` bytes appended to `out`.
fn inflate_snappy_framed_into(
    compressed: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), Status> {
    let start = out.len();
    out.reserve(compressed.len().saturating_mul(4).min(limit));
    snap::read::FrameDecoder::new(compressed)
        .take((limit as u64).saturating_add(1))
        .read_to_end(out)
        .map_err(corrupt)?;
    if out.len() - start > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

impl hyper::body::Body for ChargedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.head.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match &mut this.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_empty() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }
}

/// A call refused for the budget: UNAVAILABLE with RetryInfo, as OTLP asks for retryable
/// refusals.
fn over_budget(budget: &BodyBudget) -> Status {
    let message = budget.refusal("gRPC");
    let details = encode_status(CODE_UNAVAILABLE, &message, Some(OVER_BUDGET_RETRY_AFTER));
    Status::with_details(Code::Unavailable, message, Bytes::from(details))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).expect("in-memory write");
        w.into_inner().expect("in-memory flush")
    }

    #[test]
    fn snappy_messages_inflate_under_the_limit() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
        let packed = framed(&data);
        assert_eq!(inflate_snappy_framed(&packed, 300_000).expect("fits"), data);
        let over = inflate_snappy_framed(&packed, 299_999).expect_err("one byte over");
        assert_eq!(over.code(), Code::ResourceExhausted);
        assert_eq!(
            over.message(),
            "Error decompressing: size limit, of 299999 bytes, exceeded while decompressing message"
        );
        // A snappy block is not a framed stream.
        let block = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("compress");
        let corrupt = inflate_snappy_framed(&block, 1 << 20).expect_err("not framed");
        assert_eq!(corrupt.code(), Code::Internal);
    }
}

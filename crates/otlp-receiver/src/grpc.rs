//! OTLP/gRPC: the `Export` methods of the trace, metrics and logs services, served without
//! decoding the request.
//!
//! A custom codec hands the message to the handler as the `Bytes` it arrived in (after zstd
//! decompression by tonic, or gzip or snappy decompression here, when the client compressed
//! it), so the fast path never builds prost types: the walker validates the bytes and the
//! same buffer goes down the pipeline, with the client's gzip member when an exporter could
//! send it on as it came.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::body::Incoming;
use prost::Message;
use redline_pipeline::body_budget::{BodyBudget, BodyPermit};
use redline_pipeline::extension::{AuthCheck, ServerAuthenticator};
use redline_pipeline::rpc_status::{ExportResponse, PartialSuccess};
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::Signal;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder,
};
use tonic::{Code, Status};

use crate::gzip::{self, GunzipError};
use crate::ingest::{Ingest, IngestError, INVALID_IDS_MESSAGE};
use crate::rpc;
use redline_grpc_server::{metadata_over_limit, refusal, size_limit_as_resource_exhausted};

/// Decodes a message into its raw bytes; encodes the prost response.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // DecodeBuf is backed by a BytesMut: this splits the frame off without copying.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        // tonic's 8 KiB start grows by reallocating (and copying) several times for a typical
        // export request of tens of KiB; starting at 64 KiB holds most requests in one
        // allocation. Larger ones still grow, as before.
        BufferSettings::new(REQUEST_BUFFER_START, TONIC_YIELD_THRESHOLD)
    }
}

/// Where a request's receive buffer starts (a 100-span request of ~430 B spans is ~43 KiB).
const REQUEST_BUFFER_START: usize = 64 * 1024;
/// tonic's default (not exported): how much encoding happens before yielding; unused by a
/// unary server's decoding, kept as tonic has it.
const TONIC_YIELD_THRESHOLD: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

/// One signal a receiver's gRPC server takes.
pub(crate) struct GrpcRoute {
    pub ingest: Arc<Ingest>,
    pub counters: Arc<ReceiverCounters>,
}

/// The state one receiver's gRPC server shares across connections.
pub(crate) struct GrpcState {
    /// The signals some pipeline takes from this receiver.
    pub routes: Vec<GrpcRoute>,
    /// Signals asked for that no pipeline takes, logged once each.
    pub unrouted_logged: crate::Once3,
    pub max_recv_msg_size: usize,
    /// Request metadata allowed per call (`max_header_list_size_kib`), in bytes.
    pub max_header_list_size: usize,
    /// Bytes of bodies in flight, shared with the receiver's HTTP server.
    pub budget: BodyBudget,
    /// `auth.authenticator`: checked before anything else, on every request.
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
}

/// Routes by path: the Export method of each signal a pipeline takes is served; every other
/// method, and the services of signals no pipeline takes, are UNIMPLEMENTED, as a grpc-go
/// server answers for services it does not register.
#[derive(Clone)]
pub(crate) struct GrpcService {
    state: Arc<GrpcState>,
}

impl GrpcService {
    pub(crate) fn new(state: Arc<GrpcState>) -> Self {
        Self { state }
    }
}

impl hyper::service::Service<Request<Incoming>> for GrpcService {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(status) = metadata_over_limit(&req, self.state.max_header_list_size) {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        // As otelcol's auth interceptor: nothing is decoded or counted for a request that is
        // not authenticated.
        match self
            .state
            .auth
            .as_ref()
            .map(|a| a.authenticate(req.headers()))
        {
            None | Some(AuthCheck::Ready(Ok(()))) => self.serve(req),
            Some(AuthCheck::Ready(Err(e))) => Box::pin(async move { Ok(refusal(e)) }),
            Some(AuthCheck::Pending(check)) => {
                let service = self.clone();
                Box::pin(async move {
                    match check.await {
                        Ok(()) => service.serve(req).await,
                        Err(e) => Ok(refusal(e)),
                    }
                })
            }
        }
    }
}

impl GrpcService {
    fn serve(
        &self,
        req: Request<Incoming>,
    ) -> BoxFuture<'static, Result<Response<tonic::body::Body>, Infallible>> {
        let path = req.uri().path();
        let Some(route) = self
            .state
            .routes
            .iter()
            .position(|r| r.ingest.signal().grpc_export_path() == path)
        else {
            let status = unimplemented(&self.state, path);
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let state = self.state.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let mut body = match ChargedBody::read_head(body, &state.budget).await {
                Ok(body) => body,
                Err(status) => return Ok(status.into_http()),
            };
            // tonic has no snappy, and its gzip keeps nothing of what the client sent: those
            // messages are inflated here and handed on uncompressed.
            let inflate = match parts.headers.get(GRPC_ENCODING).map(HeaderValue::as_bytes) {
                Some(b"snappy") => Some(Inflate::Snappy),
                Some(b"gzip") => Some(Inflate::Gzip),
                _ => None,
            };
            let mut client_gzip = None;
            if let Some(inflate) = inflate {
                parts.headers.remove(GRPC_ENCODING);
                (body, client_gzip) = match body.inflate(inflate, state.max_recv_msg_size).await {
                    Ok(inflated) => inflated,
                    Err(status) => return Ok(status.into_http()),
                };
            }
            let charge = body.charge.clone();
            let mut req = Request::from_parts(parts, body);
            // Where the handler finds it, to grow it by the inflated message.
            req.extensions_mut().insert(charge);
            if let Some(member) = client_gzip {
                req.extensions_mut().insert(ClientGzip(member));
            }
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                // Only used when the client's grpc-accept-encoding lists gzip.
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(state.max_recv_msg_size);
            let handler = ExportHandler {
                state: state.clone(),
                route,
            };
            let mut resp = grpc.unary(handler, req).await;
            size_limit_as_resource_exhausted(&mut resp);
            Ok(resp)
        })
    }
}

const GRPC_ENCODING: &str = "grpc-encoding";

/// What grpc-go answers for a method it does not serve; a known OTLP service whose signal
/// no pipeline takes is also logged, once, since that is a config mistake worth seeing.
fn unimplemented(state: &GrpcState, path: &str) -> Status {
    let service = path
        .trim_start_matches('/')
        .rsplit_once('/')
        .map(|(s, _)| s);
    if let Some(signal) = Signal::ALL
        .into_iter()
        .find(|s| s.grpc_export_path() == path)
    {
        if state.unrouted_logged.first(signal) {
            tracing::warn!(
                %signal,
                "a client sent {signal} over gRPC, but no {signal} pipeline takes them from this receiver; answering UNIMPLEMENTED"
            );
        }
    }
    match service {
        Some(service) if Signal::ALL.iter().any(|s| s.grpc_service_name() == service) => {
            Status::unimplemented(format!("unknown service {service}"))
        }
        _ => Status::unimplemented(format!("unknown method {path}")),
    }
}

#[derive(Clone)]
struct ExportHandler {
    state: Arc<GrpcState>,
    /// Index into `state.routes`.
    route: usize,
}

impl tonic::server::UnaryService<Bytes> for ExportHandler {
    type Response = ExportResponse;
    type Future = futures::future::Ready<Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let charge = request.extensions().get::<Arc<BodyCharge>>().cloned();
        let client_gzip = request
            .extensions()
            .get::<ClientGzip>()
            .map(|g| g.0.clone());
        let raw = request.into_inner();
        // The inflated message is held beside the frame that was read: it counts too.
        if let Some(charge) = charge.filter(|c| c.compressed) {
            if !charge.permit.lock().grow(raw.len() as u64) {
                return futures::future::ready(Err(over_budget(&self.state.budget)));
            }
        }
        let Some(route) = self.state.routes.get(self.route) else {
            return futures::future::ready(Err(Status::internal("no route")));
        };
        let signal = route.ingest.signal();
        let result = match route.ingest.ingest(raw, client_gzip, &route.counters) {
            Ok(accepted) => {
                let partial_success = (accepted.rejected > 0).then(|| PartialSuccess {
                    rejected: accepted.rejected as i64,
                    error_message: INVALID_IDS_MESSAGE.to_owned(),
                });
                Ok(tonic::Response::new(ExportResponse { partial_success }))
            }
            Err(IngestError::Malformed(reason)) => {
                tracing::debug!(%reason, %signal, "malformed gRPC export request");
                Err(Status::invalid_argument(format!(
                    "malformed {}: {reason}",
                    signal.export_request_name()
                )))
            }
            Err(IngestError::Refused(refused)) => {
                let message = format!("pipeline is full, retry later: {refused}");
                let details =
                    rpc::status_with_retry(rpc::CODE_UNAVAILABLE, &message, refused.retry_after);
                Err(Status::with_details(Code::Unavailable, message, details))
            }
        };
        futures::future::ready(result)
    }
}

/// The gzip member a client sent as its message, when it decompressed to exactly the message
/// the handler gets (see `gzip::Inflated::member`).
#[derive(Clone)]
struct ClientGzip(Bytes);

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
pub(crate) struct ChargedBody {
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

fn over_budget(budget: &BodyBudget) -> Status {
    let message = crate::ingest::over_budget_message(budget, "gRPC");
    let details = rpc::status_with_retry(
        rpc::CODE_UNAVAILABLE,
        &message,
        crate::ingest::OVER_BUDGET_RETRY_AFTER,
    );
    Status::with_details(Code::Unavailable, message, details)
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

//! OTLP/gRPC: the `Export` methods of the trace, metrics and logs services, served without
//! decoding the request.
//!
//! A custom codec hands the message to the handler as the `Bytes` it arrived in (after gzip
//! decompression when the client compressed it), so the fast path never builds prost types:
//! the walker validates the bytes and the same buffer goes down the pipeline.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::graceful::Watcher;
use prost::Message;
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::rpc_status::{ExportResponse, PartialSuccess};
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::Signal;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use crate::config::GrpcConfig;
use crate::conn::Protocol;
use crate::ingest::{Ingest, IngestError, INVALID_IDS_MESSAGE};
use crate::rpc;

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
}

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
        if let Some(auth) = &self.state.auth {
            // As otelcol's auth interceptor: nothing is decoded or counted for a request
            // that is not authenticated.
            if let Err(e) = auth.authenticate(req.headers()) {
                tracing::debug!(reason = %e, "gRPC request refused: not authenticated");
                let status = Status::unauthenticated(e.0);
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
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

/// tonic answers OUT_OF_RANGE for a message over the limit (RESOURCE_EXHAUSTED only when
/// decompression overflows); grpc-go, hence otelcol, answers RESOURCE_EXHAUSTED in both
/// cases, and OTLP clients treat that code without RetryInfo as not retryable. The handler
/// never answers OUT_OF_RANGE itself, so any such status here is tonic's size check.
fn size_limit_as_resource_exhausted<B>(resp: &mut Response<B>) {
    let out_of_range = HeaderValue::from_static("11");
    if resp.headers().get("grpc-status") == Some(&out_of_range) {
        resp.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("8"));
    }
}

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
        let raw = request.into_inner();
        let Some(route) = self.state.routes.get(self.route) else {
            return futures::future::ready(Err(Status::internal("no route")));
        };
        let signal = route.ingest.signal();
        let result = match route.ingest.ingest(raw, &route.counters) {
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

/// gRPC's side of a connection: HTTP/2 only, with the config's stream limit and keep-alive.
#[derive(Clone)]
pub(crate) struct GrpcProtocol {
    builder: hyper::server::conn::http2::Builder<TokioExecutor>,
    service: GrpcService,
}

impl GrpcProtocol {
    pub(crate) fn new(config: &GrpcConfig, service: GrpcService) -> Self {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        // Keep-alive pings need a timer; hyper panics without one when they are enabled.
        builder.timer(TokioTimer::new());
        // Flow-control windows stay at hyper's defaults: larger ones would let every stream of
        // every connection park more unread data in memory.
        if config.max_concurrent_streams > 0 {
            builder.max_concurrent_streams(config.max_concurrent_streams);
        }
        if let Some(sp) = config
            .keepalive
            .as_ref()
            .and_then(|k| k.server_parameters.as_ref())
        {
            if let Some(time) = sp.time.filter(|t| !t.is_zero()) {
                builder.keep_alive_interval(time);
                // grpc-go's default ack timeout.
                builder
                    .keep_alive_timeout(sp.timeout.unwrap_or(std::time::Duration::from_secs(20)));
            }
        }
        Self { builder, service }
    }
}

impl Protocol for GrpcProtocol {
    const NAME: &'static str = "gRPC";
    type Error = hyper::Error;

    async fn serve<I>(self, io: I, watcher: Watcher) -> Result<(), hyper::Error>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let conn = self.builder.serve_connection(io, self.service);
        watcher.watch(conn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_out_of_range() {
        let mut resp = Status::out_of_range("too large").into_http::<()>();
        size_limit_as_resource_exhausted(&mut resp);
        assert_eq!(resp.headers()["grpc-status"], "8");
        let mut resp = Status::invalid_argument("bad").into_http::<()>();
        size_limit_as_resource_exhausted(&mut resp);
        assert_eq!(resp.headers()["grpc-status"], "3");
    }
}

//! OTLP/gRPC: the `Export` methods of the trace, metrics and logs services, served without
//! decoding the request.
//!
//! A custom codec hands the message to the handler as the `Bytes` it arrived in (after zstd
//! decompression by tonic, or gzip or snappy decompression by `redline_grpc_server::message`,
//! when the client compressed it), so the fast path never builds prost types: the walker validates the bytes and the
//! same buffer goes down the pipeline, with the client's gzip member when an exporter could
//! send it on as it came.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use prost::Message;
use redline_pipeline::body_budget::BodyBudget;
use redline_pipeline::extension::{AuthCheck, ServerAuthenticator};
use redline_pipeline::rpc_status::{ExportResponse, PartialSuccess};
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{ClientMetadata, Signal};
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder,
};
use tonic::{Code, Status};

use crate::ingest::{Ingest, IngestError, INVALID_IDS_MESSAGE};
use crate::rpc;
use redline_grpc_server::message::{receive, ClientGzip, MessageCharge};
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
        redline_grpc_server::message::request_buffer_settings()
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
    /// Request metadata allowed per call (`max_header_list_size_kib`), in bytes.
    pub max_header_list_size: usize,
    /// Bytes of bodies in flight, shared with the receiver's HTTP server.
    pub budget: BodyBudget,
    /// `auth.authenticator`: checked before anything else, on every request.
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    /// `include_metadata`: each call's metadata travels with its data.
    pub include_metadata: bool,
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
        let client = state
            .include_metadata
            .then(|| redline_grpc_server::client_metadata(&req));
        Box::pin(async move {
            let mut req = match receive(req, &state.budget, state.max_recv_msg_size).await {
                Ok(req) => req,
                Err(status) => return Ok(status.into_http()),
            };
            if let Some(client) = client {
                req.extensions_mut().insert(client);
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
        if let Err(status) =
            MessageCharge::cover(&request, request.get_ref().len(), &self.state.budget)
        {
            return futures::future::ready(Err(status));
        }
        let client_gzip = request
            .extensions()
            .get::<ClientGzip>()
            .map(|g| g.0.clone());
        let client = request.extensions().get::<ClientMetadata>().cloned();
        let raw = request.into_inner();
        let Some(route) = self.state.routes.get(self.route) else {
            return futures::future::ready(Err(Status::internal("no route")));
        };
        let signal = route.ingest.signal();
        let result = match route
            .ingest
            .ingest(raw, client_gzip, client, &route.counters)
        {
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
            // A permanent refusal with no status of its own: otelcol's receiver answers
            // INTERNAL with the error's text.
            Err(IngestError::Refused(refused)) if refused.permanent => Err(Status::internal(
                format!("Permanent error: {}", refused.reason),
            )),
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

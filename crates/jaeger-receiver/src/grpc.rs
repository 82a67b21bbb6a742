//! Jaeger's gRPC API (the collector's port 14250): `jaeger.api_v2.CollectorService/PostSpans`,
//! what jaeger-agent sends. Answers are grpc-go's, as otelcol's server gives them: an empty
//! `PostSpansResponse`, INTERNAL for a message that does not decode, UNIMPLEMENTED for other
//! methods; a refusing pipeline is UNAVAILABLE.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Buf;
use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use prost::Message;
use redline_grpc_server::message::{receive, MessageCharge};
use redline_grpc_server::{admit, size_limit_as_resource_exhausted, unknown_method};
use redline_pipeline::body_budget::BodyBudget;
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::ClientMetadata;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::Status;

use crate::ingest::Ingest;
use crate::proto::{self, PostSpansRequest};

/// The transport otelcol counts these spans under.
pub(crate) const TRANSPORT: &str = "grpc";

const POST_SPANS: &str = "/jaeger.api_v2.CollectorService/PostSpans";

/// `PostSpansResponse`: empty.
#[derive(Clone, Copy, PartialEq, Message)]
pub(crate) struct PostSpansResponse {}

pub(crate) struct GrpcState {
    pub ingest: Ingest,
    pub max_recv_msg_size: usize,
    pub max_header_list_size: usize,
    /// Bytes of bodies in flight, shared with the receiver's `thrift_http` server.
    pub budget: BodyBudget,
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    /// `include_metadata`: each call's metadata travels with its spans.
    pub include_metadata: bool,
}

#[derive(Clone)]
pub(crate) struct GrpcService {
    pub state: Arc<GrpcState>,
}

impl hyper::service::Service<Request<Incoming>> for GrpcService {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            if let Err(refused) = admit(&req, state.max_header_list_size, state.auth.as_ref()).await
            {
                return Ok(refused);
            }
            if req.uri().path() != POST_SPANS {
                return Ok(unknown_method(req.uri().path()).into_http());
            }
            let client = state
                .include_metadata
                .then(|| redline_grpc_server::client_metadata(&req));
            let mut req = match receive(req, &state.budget, state.max_recv_msg_size).await {
                Ok(req) => req,
                Err(status) => return Ok(status.into_http()),
            };
            if let Some(client) = client {
                req.extensions_mut().insert(client);
            }
            let mut grpc = tonic::server::Grpc::new(PostSpansCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(state.max_recv_msg_size);
            let mut resp = grpc.unary(PostSpans { state }, req).await;
            size_limit_as_resource_exhausted(&mut resp);
            Ok(resp)
        })
    }
}

/// prost's codec, except that the request is decoded from one `Bytes` of the whole message,
/// so that every bytes field is a slice of it rather than a split of tonic's buffer. (A
/// snappy or gzip message was inflated before tonic read it: `redline_grpc_server::message`.)
#[derive(Clone, Copy, Debug, Default)]
struct PostSpansCodec;

impl Codec for PostSpansCodec {
    type Encode = PostSpansResponse;
    type Decode = Received;
    type Encoder = tonic_prost::ProstEncoder<PostSpansResponse>;
    type Decoder = WholeMessageDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        WholeMessageDecoder
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct WholeMessageDecoder;

impl Decoder for WholeMessageDecoder {
    type Item = Received;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Received>, Status> {
        let message = src.copy_to_bytes(src.remaining());
        let len = message.len();
        PostSpansRequest::decode(message)
            .map(|request| Some(Received { len, request }))
            .map_err(|e| Status::internal(format!("grpc: error unmarshalling request: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        redline_grpc_server::message::request_buffer_settings()
    }
}

/// A decoded request and the length of the message it came in, which the body budget covers
/// when the message arrived compressed.
struct Received {
    len: usize,
    request: PostSpansRequest,
}

#[derive(Clone)]
struct PostSpans {
    state: Arc<GrpcState>,
}

impl tonic::server::UnaryService<Received> for PostSpans {
    type Response = PostSpansResponse;
    type Future = futures::future::Ready<Result<tonic::Response<PostSpansResponse>, Status>>;

    fn call(&mut self, request: tonic::Request<Received>) -> Self::Future {
        let len = request.get_ref().len;
        if let Err(status) = MessageCharge::cover(&request, len, &self.state.budget) {
            return futures::future::ready(Err(status));
        }
        let client = request.extensions().get::<ClientMetadata>().cloned();
        let batch = request.into_inner().request.batch.unwrap_or_default();
        futures::future::ready(post_spans(&self.state.ingest, batch, client))
    }
}

fn post_spans(
    ingest: &Ingest,
    batch: proto::PbBatch,
    client: Option<ClientMetadata>,
) -> Result<tonic::Response<PostSpansResponse>, Status> {
    let decoded = proto::Decoded { batch };
    // What gogo refuses while decoding (id lengths, times out of range), grpc-go answers as
    // any message that does not decode.
    let converted = proto::convert(&decoded)
        .map_err(|e| Status::internal(format!("grpc: error unmarshalling request: {e}")))?;
    let groups = proto::regroup(&converted);
    let encoded = crate::translate::write_groups(&groups);
    match ingest.encoded(encoded, client) {
        Ok(()) => Ok(tonic::Response::new(PostSpansResponse {})),
        // grpc-go answers otelcol's permanent error UNKNOWN with its text: a code clients
        // do not retry, where UNAVAILABLE says "try again".
        Err(refused) if refused.permanent => Err(Status::unknown(format!(
            "Permanent error: {}",
            refused.reason
        ))),
        Err(refused) => Err(Status::unavailable(format!(
            "pipeline is full, retry later: {refused}"
        ))),
    }
}

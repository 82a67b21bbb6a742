//! An in-process OTLP gRPC sink standing in for Tempo in the forward bench. It takes each
//! request as raw bytes (after gzip decompression) and only counts them, so the bench
//! measures the exporter and the transport, not a prost decode on the receiving side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// Totals received so far.
#[derive(Default, Debug)]
pub struct Counts {
    pub requests: AtomicU64,
    /// Bytes of the decoded (decompressed) messages.
    pub bytes: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct SinkCodec;

impl Codec for SinkCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = SinkEncoder;
    type Decoder = SinkDecoder;

    fn encoder(&mut self) -> SinkEncoder {
        SinkEncoder
    }

    fn decoder(&mut self) -> SinkDecoder {
        SinkDecoder
    }
}

#[derive(Clone, Copy, Default)]
struct SinkDecoder;

impl Decoder for SinkDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[derive(Clone, Copy, Default)]
struct SinkEncoder;

impl Encoder for SinkEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the response: {e}")))
    }
}

#[derive(Clone)]
struct Handler(Arc<Counts>);

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = ExportTraceServiceResponse;
    type Future = futures::future::Ready<Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let raw = request.into_inner();
        self.0.bytes.fetch_add(raw.len() as u64, Ordering::Relaxed);
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        futures::future::ready(Ok(tonic::Response::new(
            ExportTraceServiceResponse::default(),
        )))
    }
}

#[derive(Clone)]
struct Svc(Arc<Counts>);

impl tower::Service<http::Request<tonic::body::Body>> for Svc {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let counts = self.0.clone();
        Box::pin(async move {
            let req = match redline_loadgen::sink::snappy_to_identity(req, 64 << 20).await {
                Ok(req) => req,
                Err(status) => return Ok(status.into_http()),
            };
            let mut grpc = tonic::server::Grpc::new(SinkCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(64 << 20);
            Ok(grpc.unary(Handler(counts), req).await)
        })
    }
}

impl tonic::server::NamedService for Svc {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

/// A running sink; stops when dropped.
pub struct Sink {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Sink {
    /// Serves on a free loopback port. Must run inside a tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let svc = Svc(counts.clone());
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        Ok(Self { addr, counts, task })
    }

    pub fn bytes(&self) -> u64 {
        self.counts.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

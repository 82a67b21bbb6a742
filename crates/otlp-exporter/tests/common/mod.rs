//! A fake Tempo for the exporter tests: opentelemetry-proto's generated `TraceServiceServer`
//! on a loopback port, behind a layer that keeps each request's gRPC frame as it arrived
//! (so tests can compare bytes and see compression) and its headers.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use parking_lot::Mutex;
use prost::Message;
use redline_otlp_exporter::Config;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ComponentId, Signal};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::support::fast_retries;
pub use crate::support::{eventually, Started};
pub use redline_net_testkit::ClosedPort;

/// What the sink does with the next request.
pub enum Behaviour {
    Fail(Code),
    /// Fails with a RetryInfo detail asking the client to wait this long.
    FailWithRetryInfo(Code, Duration),
    /// Never answers.
    Hang,
    /// Answers OK once the gate gets a permit.
    Gate(Arc<Semaphore>),
    /// Answers OK with `partial_success.rejected_spans`.
    Reject(i64),
}

/// One request as the sink saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub request: ExportTraceServiceRequest,
    /// The gRPC message as on the wire: compressed when `compressed`.
    pub payload: Bytes,
    pub compressed: bool,
    pub headers: http::HeaderMap,
    pub accepted: bool,
}

impl Received {
    pub fn span_count(&self) -> usize {
        span_count(&self.request)
    }
}

#[derive(Clone, Debug)]
struct Frame {
    payload: Bytes,
    compressed: bool,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    plan: Mutex<VecDeque<Behaviour>>,
    hang_all: std::sync::atomic::AtomicBool,
}

struct Svc {
    state: Arc<State>,
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let frame = request.extensions().get::<Frame>().cloned();
        let headers = request.metadata().clone().into_headers();
        let decoded = request.into_inner();
        let index = {
            let mut got = self.state.received.lock();
            got.push(Received {
                request: decoded,
                payload: frame
                    .as_ref()
                    .map(|f| f.payload.clone())
                    .unwrap_or_default(),
                compressed: frame.map(|f| f.compressed).unwrap_or(false),
                headers,
                accepted: false,
            });
            got.len() - 1
        };
        let accept = |state: &State| {
            if let Some(r) = state.received.lock().get_mut(index) {
                r.accepted = true;
            }
        };
        if self
            .state
            .hang_all
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            std::future::pending::<()>().await;
        }
        let behaviour = self.state.plan.lock().pop_front();
        match behaviour {
            None => {
                accept(&self.state);
                Ok(Response::new(ExportTraceServiceResponse::default()))
            }
            Some(Behaviour::Fail(code)) => Err(Status::new(code, "planned failure")),
            Some(Behaviour::FailWithRetryInfo(code, delay)) => Err(Status::with_details(
                code,
                "planned failure with RetryInfo",
                Bytes::from(redline_otlp_exporter::retry::encode_retry_info(
                    code,
                    "slow down",
                    delay,
                )),
            )),
            Some(Behaviour::Hang) => {
                std::future::pending::<()>().await;
                Err(Status::internal("unreachable"))
            }
            Some(Behaviour::Gate(gate)) => {
                let _permit = gate
                    .acquire()
                    .await
                    .map_err(|_| Status::internal("gate closed"))?;
                accept(&self.state);
                Ok(Response::new(ExportTraceServiceResponse::default()))
            }
            Some(Behaviour::Reject(n)) => {
                accept(&self.state);
                Ok(Response::new(ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: n,
                        error_message: "planned rejection".into(),
                    }),
                }))
            }
        }
    }
}

/// Keeps the raw gRPC frame of each request in its extensions, then calls the generated
/// server with the same bytes.
#[derive(Clone)]
struct Capture<S> {
    inner: S,
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Capture<S>
where
    S: tower::Service<
            http::Request<Full<Bytes>>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            if bytes.len() >= 5 {
                let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
                let end = (5 + len).min(bytes.len());
                parts.extensions.insert(Frame {
                    payload: bytes.slice(5..end),
                    compressed: bytes[0] == 1,
                });
            }
            inner
                .call(http::Request::from_parts(parts, Full::new(bytes)))
                .await
        })
    }
}

impl<S> tonic::server::NamedService for Capture<S> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

pub struct Sink {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Sink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, false)
    }

    /// A sink that gzip-compresses its responses (as grpc-go servers such as Tempo do when
    /// the request was compressed).
    pub async fn start_compressing_responses() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, true)
    }

    /// A sink on a port the test held closed until now (the collector was started while
    /// Tempo was down).
    pub fn start_on(port: ClosedPort) -> Self {
        Self::serve(port.open(), false)
    }

    fn serve(listener: TcpListener, compress_responses: bool) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State::default());
        let mut server = TraceServiceServer::new(Svc {
            state: state.clone(),
        })
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
        if compress_responses {
            server = server.send_compressed(CompressionEncoding::Gzip);
        }
        let svc = Capture { inner: server };
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await;
        });
        Self { addr, state, task }
    }

    pub fn plan(&self, b: Behaviour) {
        self.state.plan.lock().push_back(b);
    }

    pub fn hang_all(&self) {
        self.state
            .hang_all
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().clone()
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn span_count(r: &ExportTraceServiceRequest) -> usize {
    r.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

/// A request of `spans` spans for `service`; `tag` makes requests distinguishable.
pub fn request(service: &str, spans: usize, tag: u8) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![tag; 16],
                        span_id: vec![tag, i as u8, 0, 0, 0, 0, 0, 1],
                        name: format!("op-{tag}-{i}"),
                        start_time_unix_nano: 1_000,
                        end_time_unix_nano: 2_000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn batch(r: &ExportTraceServiceRequest) -> Batch {
    Batch::traces(Bytes::from(r.encode_to_vec()), span_count(r))
}

/// Plaintext to `addr`, fast retries, one sender (so tests control ordering).
pub fn config(addr: SocketAddr) -> Config {
    let mut c = Config::new(addr.to_string());
    c.tls.insecure = true;
    c.retry_on_failure = fast_retries();
    c.sending_queue.num_consumers = 1;
    c
}

pub fn start(config: Config) -> Started {
    start_with(config, redline_pipeline::extension::Extensions::default())
}

/// [`start`] with these extensions running.
pub fn start_with(config: Config, extensions: redline_pipeline::extension::Extensions) -> Started {
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone()).with_extensions(extensions);
    let id = ComponentId::new("otlp", Some("tempo"));
    let (consumer, running) =
        redline_otlp_exporter::start(&id, config, &ctx, Signal::Traces).expect("starts");
    Started {
        consumer,
        running,
        counters: telemetry.exporter("otlp/tempo", Signal::Traces),
    }
}

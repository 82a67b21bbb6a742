//! `loadgen sink`: an OTLP/gRPC endpoint that counts what it receives (the forward side of a
//! collector under test, standing in for Tempo). Spans are counted with the zero-allocation
//! wire walker; `check` also decodes every request with prost and tracks (trace id, span id)
//! pairs for duplicates. It can refuse a fraction of requests (UNAVAILABLE) and delay
//! answers, for outage and latency experiments. Counts are served as JSON on `GET /count`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::Status;

use crate::codec::{ServerCodec, EXPORT_PATH, SERVICE};
use crate::rng::splitmix64;

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub listen: SocketAddr,
    /// Where `GET /count` is served; `None` for no HTTP endpoint.
    pub count_listen: Option<SocketAddr>,
    /// Fraction of requests refused with UNAVAILABLE.
    pub fail_ratio: f64,
    /// Wait before answering each request.
    pub delay: Duration,
    pub check: bool,
    /// `check` stops recording ids after this many (memory bound); counting goes on.
    pub check_max_ids: usize,
    pub seed: u64,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            count_listen: None,
            fail_ratio: 0.0,
            delay: Duration::ZERO,
            check: false,
            check_max_ids: 10_000_000,
            seed: 1,
        }
    }
}

/// What the sink saw. Refused (injected-failure) requests are not in `requests`/`spans`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCounts {
    pub requests: u64,
    pub spans: u64,
    pub bytes: u64,
    pub refused_requests: u64,
    pub refused_spans: u64,
    pub malformed_requests: u64,
    pub invalid_ids: u64,
    pub duplicate_ids: u64,
    pub ids_tracked: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    spans: AtomicU64,
    bytes: AtomicU64,
    refused_requests: AtomicU64,
    refused_spans: AtomicU64,
    malformed_requests: AtomicU64,
    invalid_ids: AtomicU64,
    duplicate_ids: AtomicU64,
    ids_tracked: AtomicU64,
    calls: AtomicU64,
}

struct State {
    cfg: SinkConfig,
    c: Counters,
    seen: Mutex<HashSet<[u8; 24]>>,
}

impl State {
    fn counts(&self) -> SinkCounts {
        let c = &self.c;
        SinkCounts {
            requests: c.requests.load(Relaxed),
            spans: c.spans.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            refused_requests: c.refused_requests.load(Relaxed),
            refused_spans: c.refused_spans.load(Relaxed),
            malformed_requests: c.malformed_requests.load(Relaxed),
            invalid_ids: c.invalid_ids.load(Relaxed),
            duplicate_ids: c.duplicate_ids.load(Relaxed),
            ids_tracked: c.ids_tracked.load(Relaxed),
        }
    }

    fn should_fail(&self) -> bool {
        if self.cfg.fail_ratio <= 0.0 {
            return false;
        }
        let mut st = self.cfg.seed ^ self.c.calls.fetch_add(1, Relaxed);
        let x = (splitmix64(&mut st) >> 11) as f64 / (1u64 << 53) as f64;
        x < self.cfg.fail_ratio
    }

    async fn export(&self, body: Bytes) -> Result<ExportTraceServiceResponse, Status> {
        if !self.cfg.delay.is_zero() {
            tokio::time::sleep(self.cfg.delay).await;
        }
        let stats = match redline_otlp_wire::validate(&body) {
            Ok(s) => s,
            Err(e) => {
                self.c.malformed_requests.fetch_add(1, Relaxed);
                return Err(Status::invalid_argument(format!(
                    "malformed ExportTraceServiceRequest: {e}"
                )));
            }
        };
        let spans = stats.spans as u64;
        if self.should_fail() {
            self.c.refused_requests.fetch_add(1, Relaxed);
            self.c.refused_spans.fetch_add(spans, Relaxed);
            return Err(Status::unavailable("loadgen sink: injected failure"));
        }
        if self.cfg.check {
            self.check(&body, stats.spans)?;
        }
        self.c
            .invalid_ids
            .fetch_add(stats.spans_with_invalid_ids as u64, Relaxed);
        self.c.requests.fetch_add(1, Relaxed);
        self.c.spans.fetch_add(spans, Relaxed);
        self.c.bytes.fetch_add(body.len() as u64, Relaxed);
        Ok(ExportTraceServiceResponse::default())
    }

    /// Full prost decode (independent of the walker) and duplicate id tracking.
    fn check(&self, body: &Bytes, walker_spans: usize) -> Result<(), Status> {
        let req = ExportTraceServiceRequest::decode(body.clone()).map_err(|e| {
            self.c.malformed_requests.fetch_add(1, Relaxed);
            Status::invalid_argument(format!("prost decode failed: {e}"))
        })?;
        let spans = req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans);
        let mut n = 0usize;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Status::internal("sink state poisoned"))?;
        for s in spans {
            n += 1;
            if s.trace_id.len() != 16 || s.span_id.len() != 8 {
                continue;
            }
            let mut key = [0u8; 24];
            key[..16].copy_from_slice(&s.trace_id);
            key[16..].copy_from_slice(&s.span_id);
            if seen.contains(&key) {
                self.c.duplicate_ids.fetch_add(1, Relaxed);
            } else if seen.len() < self.cfg.check_max_ids {
                seen.insert(key);
                self.c.ids_tracked.fetch_add(1, Relaxed);
            }
        }
        if n != walker_spans {
            self.c.malformed_requests.fetch_add(1, Relaxed);
            return Err(Status::internal(format!(
                "prost saw {n} spans, the walker {walker_spans}"
            )));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct SinkService {
    state: Arc<State>,
}

impl tonic::server::NamedService for SinkService {
    const NAME: &'static str = SERVICE;
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for SinkService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            if req.uri().path() != EXPORT_PATH {
                let msg = format!("unknown method {}", req.uri().path());
                return Ok(Status::unimplemented(msg).into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ServerCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(256 << 20);
            Ok(grpc.unary(Handler { state }, req).await)
        })
    }
}

#[derive(Clone)]
struct Handler {
    state: Arc<State>,
}

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            state
                .export(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

/// A running sink.
pub struct Sink {
    pub addr: SocketAddr,
    pub count_addr: Option<SocketAddr>,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sink {
    /// Binds both listeners and starts serving.
    pub async fn start(cfg: SinkConfig) -> std::io::Result<Sink> {
        let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let count_listener = match cfg.count_listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
            None => None,
        };
        let count_addr = count_listener
            .as_ref()
            .map(|l| l.local_addr())
            .transpose()?;
        let state = Arc::new(State {
            cfg,
            c: Counters::default(),
            seen: Mutex::new(HashSet::new()),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let svc = SinkService {
            state: state.clone(),
        };
        let mut rx = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let res = tonic::transport::Server::builder()
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(8 << 20)
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = res {
                tracing::error!(error = %e, "sink gRPC server failed");
            }
        }));
        if let Some(l) = count_listener {
            let st = state.clone();
            let mut rx = stopped;
            let app = axum::Router::new().route(
                "/count",
                axum::routing::get(move || {
                    let st = st.clone();
                    async move {
                        let body = serde_json::to_string(&st.counts()).unwrap_or_default();
                        ([(http::header::CONTENT_TYPE, "application/json")], body)
                    }
                }),
            );
            tasks.push(tokio::spawn(async move {
                let res = axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = res {
                    tracing::error!(error = %e, "sink count endpoint failed");
                }
            }));
        }
        Ok(Sink {
            addr,
            count_addr,
            state,
            stop,
            tasks,
        })
    }

    pub fn counts(&self) -> SinkCounts {
        self.state.counts()
    }

    /// Stops accepting and waits (bounded) for the servers to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

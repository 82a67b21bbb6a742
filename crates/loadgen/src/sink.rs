//! `loadgen sink`: an OTLP/gRPC endpoint that counts what it receives (the forward side of a
//! collector under test, standing in for Tempo, Mimir or Loki). It serves the `Export` method
//! of all three signals and counts items per signal (spans, metric data points, log records)
//! with the zero-allocation wire walkers; `check` also decodes every request with prost,
//! compares the counts and tracks (trace id, span id) pairs of spans for duplicates. It can
//! refuse a fraction of requests (UNAVAILABLE) and delay answers, for outage and latency
//! experiments. Counts are served as JSON on `GET /count`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::Status;

use crate::codec::ServerCodec;
use crate::rng::splitmix64;
use crate::signal::Signal;

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

/// What the sink saw. `requests`, `spans` and `bytes` are the traces' (`TraceService`); the
/// other signals have their own. Refused (injected-failure) requests are not in them:
/// `refused_requests` counts those of every signal, `refused_spans` the spans among them.
/// `bytes` are after decompression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCounts {
    pub requests: u64,
    pub spans: u64,
    pub bytes: u64,
    #[serde(default)]
    pub metrics_requests: u64,
    #[serde(default)]
    pub data_points: u64,
    #[serde(default)]
    pub metrics_bytes: u64,
    #[serde(default)]
    pub logs_requests: u64,
    #[serde(default)]
    pub log_records: u64,
    #[serde(default)]
    pub logs_bytes: u64,
    pub refused_requests: u64,
    pub refused_spans: u64,
    pub malformed_requests: u64,
    pub invalid_ids: u64,
    pub duplicate_ids: u64,
    pub ids_tracked: u64,
}

impl SinkCounts {
    /// (requests, items, bytes) received of `signal`.
    pub fn of(&self, signal: Signal) -> (u64, u64, u64) {
        match signal {
            Signal::Traces => (self.requests, self.spans, self.bytes),
            Signal::Metrics => (self.metrics_requests, self.data_points, self.metrics_bytes),
            Signal::Logs => (self.logs_requests, self.log_records, self.logs_bytes),
        }
    }
}

/// Requests, items and bytes of one signal.
#[derive(Default)]
struct PerSignal {
    requests: AtomicU64,
    items: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Default)]
struct Counters {
    signals: [PerSignal; 3],
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
        let [t, m, l] = &c.signals;
        SinkCounts {
            requests: t.requests.load(Relaxed),
            spans: t.items.load(Relaxed),
            bytes: t.bytes.load(Relaxed),
            metrics_requests: m.requests.load(Relaxed),
            data_points: m.items.load(Relaxed),
            metrics_bytes: m.bytes.load(Relaxed),
            logs_requests: l.requests.load(Relaxed),
            log_records: l.items.load(Relaxed),
            logs_bytes: l.bytes.load(Relaxed),
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

    async fn export(
        &self,
        signal: Signal,
        body: Bytes,
    ) -> Result<ExportTraceServiceResponse, Status> {
        if !self.cfg.delay.is_zero() {
            tokio::time::sleep(self.cfg.delay).await;
        }
        let walked = match signal {
            Signal::Traces => {
                redline_otlp_wire::validate(&body).map(|s| (s.spans, s.spans_with_invalid_ids))
            }
            Signal::Metrics => {
                redline_otlp_wire::validate_metrics(&body).map(|s| (s.data_points, 0))
            }
            Signal::Logs => redline_otlp_wire::validate_logs(&body).map(|s| (s.log_records, 0)),
        };
        let (items, invalid_ids) = match walked {
            Ok(s) => s,
            Err(e) => {
                self.c.malformed_requests.fetch_add(1, Relaxed);
                return Err(Status::invalid_argument(format!(
                    "malformed {} export request: {e}",
                    signal.name()
                )));
            }
        };
        if self.should_fail() {
            self.c.refused_requests.fetch_add(1, Relaxed);
            if signal == Signal::Traces {
                self.c.refused_spans.fetch_add(items as u64, Relaxed);
            }
            return Err(Status::unavailable("loadgen sink: injected failure"));
        }
        if self.cfg.check {
            self.check(signal, &body, items)?;
        }
        self.c.invalid_ids.fetch_add(invalid_ids as u64, Relaxed);
        let c = &self.c.signals[signal as usize];
        c.requests.fetch_add(1, Relaxed);
        c.items.fetch_add(items as u64, Relaxed);
        c.bytes.fetch_add(body.len() as u64, Relaxed);
        Ok(ExportTraceServiceResponse::default())
    }
}

/// One gRPC service per signal (tonic routes by service name).
trait Route: Send + Sync + 'static {
    const SIGNAL: Signal;
}

struct TraceRoute;
struct MetricsRoute;
struct LogsRoute;

impl Route for TraceRoute {
    const SIGNAL: Signal = Signal::Traces;
}

impl Route for MetricsRoute {
    const SIGNAL: Signal = Signal::Metrics;
}

impl Route for LogsRoute {
    const SIGNAL: Signal = Signal::Logs;
}

struct SinkService<R> {
    state: Arc<State>,
    route: PhantomData<fn() -> R>,
}

impl<R> SinkService<R> {
    fn new(state: Arc<State>) -> Self {
        Self {
            state,
            route: PhantomData,
        }
    }
}

impl<R> Clone for SinkService<R> {
    fn clone(&self) -> Self {
        Self::new(self.state.clone())
    }
}

impl<R: Route> tonic::server::NamedService for SinkService<R> {
    const NAME: &'static str = R::SIGNAL.service();
}

impl<R: Route> tonic::codegen::Service<http::Request<tonic::body::Body>> for SinkService<R> {
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
            if Signal::from_export_path(req.uri().path()) != Some(R::SIGNAL) {
                let msg = format!("unknown method {}", req.uri().path());
                return Ok(Status::unimplemented(msg).into_http());
            }
            let req = match snappy_to_identity(req, 256 << 20).await {
                Ok(req) => req,
                Err(status) => return Ok(status.into_http()),
            };
            let mut grpc = tonic::server::Grpc::new(ServerCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(256 << 20);
            let handler = Handler {
                state,
                signal: R::SIGNAL,
            };
            Ok(grpc.unary(handler, req).await)
        })
    }
}

#[derive(Clone)]
struct Handler {
    state: Arc<State>,
    signal: Signal,
}

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<'static, Result<tonic::Response<Self::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (state, signal) = (self.state.clone(), self.signal);
        Box::pin(async move {
            state
                .export(signal, request.into_inner())
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
        let traces = SinkService::<TraceRoute>::new(state.clone());
        let metrics = SinkService::<MetricsRoute>::new(state.clone());
        let logs = SinkService::<LogsRoute>::new(state.clone());
        let mut rx = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let res = tonic::transport::Server::builder()
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(8 << 20)
                .add_service(traces)
                .add_service(metrics)
                .add_service(logs)
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

#[path = "sink_check.rs"]
mod check;
pub use check::data_points;

/// tonic has no snappy: a `grpc-encoding: snappy` request (the snappy framed format, as
/// otelcol and Redline send it) is read whole, inflated to at most `limit` bytes per message
/// and handed to tonic uncompressed. Any other request is returned as it is.
pub async fn snappy_to_identity(
    req: http::Request<tonic::body::Body>,
    limit: usize,
) -> Result<http::Request<tonic::body::Body>, Status> {
    use bytes::BufMut;
    use http_body_util::BodyExt;
    use std::io::Read;
    if req.headers().get("grpc-encoding").map(|v| v.as_bytes()) != Some(&b"snappy"[..]) {
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    parts.headers.remove("grpc-encoding");
    let data = http_body_util::Limited::new(body, limit.saturating_add(5))
        .collect()
        .await
        .map_err(|e| Status::resource_exhausted(format!("reading a snappy request: {e}")))?
        .to_bytes();
    let mut out = bytes::BytesMut::with_capacity(data.len().saturating_mul(4).min(limit));
    let mut rest = &data[..];
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_first_chunk::<5>() else {
            return Err(Status::internal(
                "a snappy request ends inside a message prefix",
            ));
        };
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        let Some((payload, tail)) = tail.split_at_checked(len) else {
            return Err(Status::internal("a snappy request ends inside a message"));
        };
        let mut message = Vec::new();
        if prefix[0] == 0 {
            message.extend_from_slice(payload);
        } else {
            snap::read::FrameDecoder::new(payload)
                .take((limit as u64).saturating_add(1))
                .read_to_end(&mut message)
                .map_err(|e| Status::internal(format!("Error decompressing: {e}")))?;
            if message.len() > limit {
                return Err(Status::resource_exhausted(format!(
                    "Error decompressing: size limit, of {limit} bytes, exceeded while decompressing message"
                )));
            }
        }
        let len = u32::try_from(message.len())
            .map_err(|_| Status::resource_exhausted("message too large"))?;
        out.put_u8(0);
        out.put_u32(len);
        out.put_slice(&message);
        rest = tail;
    }
    let body = tonic::body::Body::new(http_body_util::Full::new(out.freeze()));
    Ok(http::Request::from_parts(parts, body))
}

//! What the receiver's integration tests share: a receiver started on 127.0.0.1:0 with a
//! recording consumer, the requests they send and the clients they send them with.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod http_client;
pub mod pki;
pub mod raw_grpc;
pub mod requests;
pub mod rpc;
pub mod tls_client;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use parking_lot::Mutex;
use redline_otlp_receiver::{Config, GrpcConfig, HttpConfig, OtlpReceiverFactory, Protocols};
use redline_otlp_wire::{SpanView, TraceVisitor};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::extension::Extensions;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentId, Consumer, Refused, Reservation, RunningComponent, Signal,
    SignalConsumers, SpanTap, TapId, TapWalk,
};
use tonic::transport::Channel;

/// The consumer behind the receiver: records every committed batch, or refuses everything
/// when `refuse` is set. With `tap`, it also offers a span tap to the receiver's walk.
#[derive(Clone, Default)]
pub struct Recorder {
    pub got: Arc<Mutex<Vec<Batch>>>,
    pub refuse: Option<Duration>,
    pub tap: Option<(TapId, Arc<CountingTap>)>,
}

/// A span tap that counts the spans of the walks committed to it.
#[derive(Default)]
pub struct CountingTap {
    pub committed_spans: AtomicUsize,
    pub committed_walks: AtomicUsize,
}

struct CountingWalk<'a> {
    tap: &'a CountingTap,
    spans: usize,
}

impl<'a> TraceVisitor<'a> for CountingWalk<'a> {
    fn span(&mut self, _: &SpanView<'a>) {
        self.spans += 1;
    }
}

impl<'a> TapWalk<'a> for CountingWalk<'a> {
    fn commit(self: Box<Self>) {
        self.tap
            .committed_spans
            .fetch_add(self.spans, Ordering::SeqCst);
        self.tap.committed_walks.fetch_add(1, Ordering::SeqCst);
    }
}

impl SpanTap for CountingTap {
    fn begin<'a>(&'a self, _: usize) -> Box<dyn TapWalk<'a> + 'a> {
        Box::new(CountingWalk {
            tap: self,
            spans: 0,
        })
    }
}

impl Recorder {
    /// Refuses every batch, asking the client to retry after `retry_after`.
    pub fn refusing(retry_after: Duration) -> Self {
        Self {
            refuse: Some(retry_after),
            ..Self::default()
        }
    }
}

impl Consumer for Recorder {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if let Some(retry_after) = self.refuse {
            return Err(Refused {
                component: "exporter/test".into(),
                reason: "queue full".into(),
                retry_after,
                permanent: false,
            });
        }
        let got = self.got.clone();
        Ok(Box::new(CommitFn(move |b| got.lock().push(b))))
    }

    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        if let Some((id, tap)) = &self.tap {
            taps.push((*id, tap.clone()));
        }
    }
}

/// A started `otlp` receiver, its consumer and its counters.
pub struct Receiver {
    /// Taken by tests that shut down with their own deadline.
    pub running: Option<Box<dyn RunningComponent>>,
    pub recorder: Recorder,
    pub telemetry: Telemetry,
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

impl Receiver {
    /// Both protocols on loopback, delivering to a recorder that takes everything.
    pub async fn both() -> Self {
        Self::start(loopback_config(), Recorder::default()).await
    }

    pub async fn start(config: Config, recorder: Recorder) -> Self {
        Self::try_start(config, recorder, Extensions::default())
            .await
            .expect("receiver starts")
    }

    /// Starts `otlp` with `extensions` running, as the service would have started them
    /// first; a build error comes back as its message.
    pub async fn try_start(
        config: Config,
        recorder: Recorder,
        extensions: Extensions,
    ) -> Result<Self, String> {
        Self::try_start_signals(config, recorder, extensions, &[Signal::Traces]).await
    }

    /// Starts `otlp` with pipelines for `signals`, all delivering to `recorder`.
    pub async fn try_start_signals(
        config: Config,
        recorder: Recorder,
        extensions: Extensions,
        signals: &[Signal],
    ) -> Result<Self, String> {
        let ctx = BuildContext::new(Telemetry::new()).with_extensions(extensions);
        Self::launch(config, recorder, ctx, signals).await
    }

    /// Starts `otlp` (traces) with a budget of `bytes` for request bodies in flight, as a
    /// `memory_limiter` in its pipeline would set.
    pub async fn start_with_body_budget(config: Config, recorder: Recorder, bytes: u64) -> Self {
        let ctx = BuildContext {
            body_budget: Some(bytes),
            ..BuildContext::new(Telemetry::new())
        };
        Self::launch(config, recorder, ctx, &[Signal::Traces])
            .await
            .expect("receiver starts")
    }

    async fn launch(
        config: Config,
        recorder: Recorder,
        ctx: BuildContext,
        signals: &[Signal],
    ) -> Result<Self, String> {
        let mut next = SignalConsumers::default();
        for signal in signals {
            next.set(*signal, Arc::new(recorder.clone()));
        }
        let telemetry = ctx.telemetry.clone();
        let running = OtlpReceiverFactory
            .start(&ComponentId::new("otlp", None), &config, &ctx, next)
            .await
            .map_err(|e| e.to_string())?;
        let addrs = running.local_addrs();
        let find = |n: &str| addrs.iter().find(|(k, _)| *k == n).map(|(_, a)| *a);
        Ok(Self {
            grpc: find("grpc"),
            http: find("http"),
            running: Some(running),
            recorder,
            telemetry,
        })
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.recorder.got.lock().clone()
    }

    /// Spans delivered to the consumer, over all batches.
    pub fn spans(&self) -> usize {
        self.recorder.got.lock().iter().map(|b| b.items).sum()
    }

    /// The receiver's `accepted_spans` counter for `transport` (`grpc`, `http`).
    pub fn accepted(&self, transport: &'static str) -> u64 {
        self.accepted_of(Signal::Traces, transport)
    }

    /// The receiver's `refused_spans` counter for `transport` (`grpc`, `http`).
    pub fn refused(&self, transport: &'static str) -> u64 {
        self.telemetry
            .receiver("otlp", transport, Signal::Traces)
            .refused
            .load(Ordering::Relaxed)
    }

    /// The receiver's accepted counter of `signal` for `transport`.
    pub fn accepted_of(&self, signal: Signal, transport: &'static str) -> u64 {
        self.telemetry
            .receiver("otlp", transport, signal)
            .accepted
            .load(Ordering::Relaxed)
    }

    pub async fn grpc_client(&self) -> TraceServiceClient<Channel> {
        let addr = self.grpc.expect("grpc enabled");
        TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connects")
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http.expect("http enabled"), path)
    }

    /// The default OTLP/HTTP traces URL.
    pub fn traces_url(&self) -> String {
        self.http_url("/v1/traces")
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Instant::now() + Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
    }
}

/// gRPC and HTTP, both on 127.0.0.1 with a port the system picks.
pub fn loopback_config() -> Config {
    Config {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: "127.0.0.1:0".into(),
                ..GrpcConfig::default()
            }),
            http: Some(HttpConfig {
                endpoint: "127.0.0.1:0".into(),
                ..HttpConfig::default()
            }),
        },
    }
}

/// [`loopback_config`] with `change` made to its gRPC section.
pub fn loopback_config_with_grpc(change: impl FnOnce(&mut GrpcConfig)) -> Config {
    let mut config = loopback_config();
    if let Some(grpc) = config.protocols.grpc.as_mut() {
        change(grpc);
    }
    config
}

/// [`loopback_config`] with `change` made to its HTTP section.
pub fn loopback_config_with_http(change: impl FnOnce(&mut HttpConfig)) -> Config {
    let mut config = loopback_config();
    if let Some(http) = config.protocols.http.as_mut() {
        change(http);
    }
    config
}

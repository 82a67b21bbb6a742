//! The `fluent_forward` receiver (otelcol's older name `fluentforward` works too): events of
//! the Fluent Forward protocol over TCP, from Fluent Bit's and fluentd's `forward` outputs
//! and the Fluentd logger libraries, as OTLP logs, as otelcol-contrib's
//! `fluentforwardreceiver` makes them; for log pipelines into Loki that already have Fluent
//! Bit on every node.
//!
//! Events are MessagePack; the receiver reads them in place and writes the OTLP request once.
//! Chunks (the `chunk` option, Fluent Bit's `Require_ack_response`) are acknowledged once
//! the pipeline took their records; a pipeline that refuses holds the connection back for up
//! to 30 s before the records are dropped (or, for a chunk, left unacknowledged for the
//! client to resend).

mod config;
mod event;
mod msgpack;
mod otlp;
mod scan;
mod server;
mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_pipeline::component::{build_receiver, BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ReceiverFactory,
    RunningComponent, ShutdownError, Signal, SignalConsumers,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;

/// otelcol's receiver counts what it accepts under this transport.
const TRANSPORT: &str = "http";

/// The log records one complete event makes, as an encoded OTLP logs request and its record
/// count: for fuzzing and benches.
#[doc(hidden)]
pub fn translate(event: &[u8]) -> Result<(bytes::Bytes, usize), String> {
    let mut records = vec![0; otlp::REQUEST_HEAD];
    let parsed = event::read(event, event.len(), &mut records).map_err(|e| format!("{e:?}"))?;
    Ok((otlp::request(records), parsed.records))
}

/// The lengths of the complete events at the start of a connection's `stream`, found as a
/// connection finds them when the first `split` bytes arrive before the rest: for fuzzing.
#[doc(hidden)]
pub fn events(stream: &[u8], split: usize) -> Result<Vec<usize>, String> {
    let mut lengths = Vec::new();
    let mut start = 0;
    let mut scan = scan::Scan::default();
    for arrived in [split.min(stream.len()), stream.len()] {
        while start <= arrived {
            match scan.advance(&stream[start..arrived]) {
                Ok(Some(len)) => {
                    lengths.push(len);
                    start += len;
                    scan = scan::Scan::default();
                }
                Ok(None) => break,
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    }
    Ok(lengths)
}

/// The `fluent_forward` receiver factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct FluentForwardReceiverFactory;

impl FluentForwardReceiverFactory {
    /// Starts a receiver from a config already parsed and checked: what `build` does after
    /// parsing, for tests and embedders.
    pub async fn start(
        &self,
        id: &ComponentId,
        config: &Config,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> Result<Box<dyn RunningComponent>, BuildError> {
        Ok(Box::new(start(id, config, ctx, next).await?))
    }
}

impl FactoryInfo for FluentForwardReceiverFactory {
    fn type_name(&self) -> &'static str {
        "fluent_forward"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["fluentforward"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }
}

impl ReceiverFactory for FluentForwardReceiverFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Logs]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        build_receiver(
            config,
            ctx,
            next,
            Config::from_component,
            |id, parsed, ctx, next| async move { start(&id, &parsed, &ctx, next).await },
        )
    }
}

/// Binds the TCP and UDP sockets before returning, so a port in use fails the build.
async fn start(
    id: &ComponentId,
    config: &Config,
    ctx: &BuildContext,
    next: SignalConsumers,
) -> Result<Running, BuildError> {
    let logs = next.only(Signal::Logs, id, "fluent_forward")?;
    let listener = redline_pipeline::endpoint::listen(config.endpoint.trim())
        .await
        .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
    // The heartbeat's port is the TCP one, also when that was chosen by the system.
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(|e| BuildError::new(id, format!("endpoint: cannot listen on {addr}/udp: {e}")))?;
    let name = id.to_string();
    let shared = Arc::new(server::Shared {
        id: name.clone(),
        next: logs,
        counters: ctx.telemetry.receiver(&name, TRANSPORT, Signal::Logs),
        fluent: Arc::new(telemetry::FluentCounters::new(&ctx.telemetry)),
    });
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    tasks.spawn(server::accept(
        listener,
        shared,
        stop.clone(),
        tasks.clone(),
    ));
    tasks.spawn(server::heartbeat(udp, stop.clone()));
    tracing::info!(receiver = %id, %addr, "Fluent Forward listening");
    Ok(Running {
        id: name,
        addr,
        stop,
        tasks,
    })
}

struct Running {
    id: String,
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("tcp", self.addr)]
    }

    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Running {
            id, stop, tasks, ..
        } = *self;
        Box::pin(async move {
            // As otelcol: stop accepting and close every connection; an event being handed
            // over finishes first.
            stop.cancel();
            tasks.close();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, tasks.wait()).await {
                Ok(()) => Ok(()),
                Err(_) => Err(ShutdownError {
                    component: id,
                    reason: "connections still handing events over at the shutdown deadline"
                        .to_owned(),
                }),
            }
        })
    }
}

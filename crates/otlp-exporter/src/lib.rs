//! OTLP exporters: `otlp` (gRPC) and `otlphttp`, forwarding raw request bytes to Tempo, Loki,
//! another collector or any OTLP endpoint.
//!
//! Batches arrive still encoded (`Batch::raw`) and leave the same way: queued batches are
//! coalesced by concatenation, which is valid protobuf, framed as one gRPC message (gzip at
//! `compression_params.level` with libdeflate, compressed once per request however often it
//! is retried; a request that is one batch its client sent gzipped goes in the client's own
//! gzip, see `Batch::gzip_frame`) and sent on tonic's channel. The queue is bounded in the configured sizer's units and in bytes;
//! `reserve` refuses at once when it is full, so a slow or dead Tempo never blocks receivers.
//! Senders retry retryable gRPC codes with exponential backoff, count what was delivered or
//! dropped, and drain the queue at shutdown until the deadline.
//!
//! With `sending_queue.storage` naming a storage extension (`file_storage`), the queue is an
//! append-only log on disk instead (see `disk`): a batch is written before it counts as
//! queued, acknowledged once delivered or given up on, and what is left at a stop or crash is
//! loaded and sent first by the next start. Delivery is then at-least-once: a batch Tempo took
//! just before a crash, before its acknowledgement reached the disk, is sent again.
//!
//! `otlphttp` shares all of this (queue, coalescing, retries, disk queue, counting) and differs
//! only in its transport (`transport`): HTTP POSTs of protobuf (the received bytes,
//! concatenated) or OTLP/JSON, with gzip, zstd, zlib or snappy (block, or framed with
//! `x-snappy-framed`) bodies, judged by the OTLP/HTTP status rules.

mod balance;
mod codec;
mod compress;
pub mod config;
mod disk;
mod endpoint_labels;
mod exporter;
mod failure_log;
mod grpc;
mod grpc_transport;
mod otlphttp;
mod queue;
pub mod retry;
mod transport;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ExporterFactory, Signal,
};

pub use config::{Config, HttpConfig};
pub use exporter::{ExporterError, Started};
pub use grpc_transport::start;
pub use otlphttp::start as start_http;
#[doc(hidden)]
pub use otlphttp::to_json;

/// A config of one of the two exporters, as their factories handle it.
trait ExporterConfig: serde::de::DeserializeOwned + Send + 'static {
    /// Checks what serde cannot; the error names the key.
    fn check(&self) -> Result<(), config::Invalid>;
    /// The storage extension its `sending_queue.storage` names.
    fn storage(&self) -> Option<&str>;
}

impl ExporterConfig for Config {
    fn check(&self) -> Result<(), config::Invalid> {
        Config::check(self)
    }

    fn storage(&self) -> Option<&str> {
        self.sending_queue.storage.as_deref()
    }
}

impl ExporterConfig for HttpConfig {
    fn check(&self) -> Result<(), config::Invalid> {
        HttpConfig::check(self)
    }

    fn storage(&self) -> Option<&str> {
        self.sending_queue.storage.as_deref()
    }
}

fn parse<C: ExporterConfig>(config: &ComponentConfig) -> Result<C, ConfigError> {
    let parsed: C = config.parse()?;
    parsed.check().map_err(|e| config.locate(e))?;
    Ok(parsed)
}

/// The storage extension a `sending_queue.storage` names, for `redline validate`.
fn storage_ref<C: ExporterConfig>(config: &ComponentConfig) -> Vec<(String, ComponentId)> {
    parse::<C>(config)
        .ok()
        .and_then(|c| c.storage().and_then(|s| ComponentId::parse(s).ok()))
        .map(|id| vec![("sending_queue.storage".to_owned(), id)])
        .unwrap_or_default()
}

/// Parses now, so a bad config is reported where it is, and starts in the build's future.
fn build<C: ExporterConfig>(
    config: &ComponentConfig,
    ctx: &BuildContext,
    signal: Signal,
    start: fn(&ComponentId, C, &BuildContext, Signal) -> Result<Started, BuildError>,
) -> BuildResult<Started> {
    let id = config.id().clone();
    let parsed = parse::<C>(config);
    let ctx = ctx.clone();
    Box::pin(async move {
        let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
        start(&id, parsed, &ctx, signal)
    })
}

/// The `otlp` exporter (alias `otlp_grpc`), for traces, metrics and logs.
pub struct OtlpExporterFactory;

impl FactoryInfo for OtlpExporterFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["otlp_grpc"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse::<Config>(config).map(|_| ())
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        storage_ref::<Config>(config)
    }
}

impl ExporterFactory for OtlpExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<Started> {
        build(config, ctx, signal, start)
    }
}

/// The `otlphttp` exporter (alias `otlp_http`), for traces, metrics and logs.
pub struct OtlpHttpExporterFactory;

impl FactoryInfo for OtlpHttpExporterFactory {
    fn type_name(&self) -> &'static str {
        "otlphttp"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["otlp_http"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse::<HttpConfig>(config).map(|_| ())
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        storage_ref::<HttpConfig>(config)
    }
}

impl ExporterFactory for OtlpHttpExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<Started> {
        build(config, ctx, signal, start_http)
    }
}

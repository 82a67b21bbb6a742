//! OTLP gRPC exporter: forwards raw request bytes to Tempo.
//!
//! Batches arrive still encoded (`TracesBatch::raw`) and leave the same way: queued batches are
//! coalesced by concatenation, which is valid protobuf, framed as one gRPC message (gzip at
//! `compression_params.level`, compressed once per request however often it is retried) and
//! sent on tonic's channel. The queue is bounded in the configured sizer's units and in bytes;
//! `reserve` refuses at once when it is full, so a slow or dead Tempo never blocks receivers.
//! Senders retry retryable gRPC codes with exponential backoff, count what was delivered or
//! dropped, and drain the queue at shutdown until the deadline.
//!
//! With `sending_queue.storage` naming a storage extension (`file_storage`), the queue is an
//! append-only log on disk instead (see `disk`): a batch is written before it counts as
//! queued, acknowledged once delivered or given up on, and what is left at a stop or crash is
//! loaded and sent first by the next start. Delivery is then at-least-once: a batch Tempo took
//! just before a crash, before its acknowledgement reached the disk, is sent again.

mod codec;
pub mod config;
mod disk;
mod exporter;
mod grpc;
mod queue;
pub mod retry;

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ExporterFactory,
    RunningComponent, Signal, TracesConsumer,
};

pub use codec::EXPORT_PATH;
pub use config::Config;
pub use exporter::{start, ExporterError, Started};

/// The `otlp` exporter (alias `otlp_grpc`), traces only.
pub struct OtlpExporterFactory;

fn parse(config: &ComponentConfig) -> Result<Config, ConfigError> {
    let parsed: Config = config.parse()?;
    parsed
        .check()
        .map_err(|e| config.invalid(&e.key_path, e.reason))?;
    Ok(parsed)
}

impl FactoryInfo for OtlpExporterFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["otlp_grpc"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        parse(config)
            .ok()
            .and_then(|c| c.sending_queue.storage)
            .and_then(|s| ComponentId::parse(&s).ok())
            .map(|id| vec![("sending_queue.storage".to_owned(), id)])
            .unwrap_or_default()
    }
}

impl ExporterFactory for OtlpExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }

    fn build_traces(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
    ) -> BuildResult<(Arc<dyn TracesConsumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = parse(config);
        let ctx = ctx.clone();
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            start(&id, parsed, &ctx)
        })
    }
}

//! OTLP gRPC exporter: forwards raw request bytes to Tempo.
//!
//! Batches arrive still encoded (`TracesBatch::raw`) and leave the same way: a raw codec hands
//! the bytes to tonic untouched, and queued batches are coalesced by concatenation, which is
//! valid protobuf. The queue is bounded in the configured sizer's units and in bytes;
//! `reserve` refuses at once when it is full, so a slow or dead Tempo never blocks receivers.
//! Senders retry retryable gRPC codes with exponential backoff, count what was delivered or
//! dropped, and drain the queue at shutdown until the deadline.

mod codec;
pub mod config;
mod exporter;
mod queue;
pub mod retry;

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExporterFactory, RunningComponent,
    Signal, TracesConsumer,
};

pub use codec::{RawTracesCodec, EXPORT_PATH};
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

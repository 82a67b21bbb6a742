//! Processors for every signal: `batch` below, `memory_limiter` in its module.
//!
//! `batch`: otelcol users put a batch processor in every pipeline because the Go collector
//! encodes one export per batch. Redline already batches where it pays off, at the forwarder:
//! the OTLP exporter concatenates whatever is queued into one request (raw protobuf
//! requests concatenate into a valid request), so holding spans back in a processor would
//! only add latency and a window where accepted data sits outside any queue. The processor is
//! therefore accepted with its otelcol keys validated, and passes batches straight through.

pub mod memory_limiter;
pub use memory_limiter::MemoryLimiterFactory;

use std::sync::Arc;
use std::time::Duration;

use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::config::Unsupported;
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};
use serde::Deserialize;

/// otelcol's batch processor settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub timeout: Option<Duration>,
    pub send_batch_size: Option<u32>,
    pub send_batch_max_size: Option<u32>,
    pub metadata_keys: Option<Unsupported>,
    pub metadata_cardinality_limit: Option<u32>,
}

impl BatchConfig {
    pub fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        if let (Some(size), Some(max)) = (self.send_batch_size, self.send_batch_max_size) {
            if max != 0 && max < size {
                return Err(config.invalid(
                    "send_batch_max_size",
                    format!("must be 0 or at least send_batch_size ({size})"),
                ));
            }
        }
        Ok(())
    }
}

pub struct BatchProcessorFactory;

impl FactoryInfo for BatchProcessorFactory {
    fn type_name(&self) -> &'static str {
        "batch"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<BatchConfig>()?.validate(config)
    }
}

impl ProcessorFactory for BatchProcessorFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn edits_data(&self) -> bool {
        false
    }

    /// otelcol's batch processor declares `MutatesData` (it splits and merges requests).
    fn mutates_data(&self) -> bool {
        true
    }

    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let id = config.id().to_string();
        Box::pin(async move {
            tracing::debug!(
                processor = %id,
                "batch: batches pass through; the OTLP exporter coalesces its queue instead"
            );
            let running: Box<dyn RunningComponent> = Box::new(NoopRunning);
            Ok((next, running))
        })
    }
}

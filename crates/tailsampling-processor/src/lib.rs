//! otelcol-contrib's `tail_sampling` processor: spans are held by trace for `decision_wait`,
//! then the trace is kept or dropped whole by its sampling policies (`status_code`,
//! `latency`, attribute matches, `probabilistic`, rate limits, `and`/`not`/`drop`/`composite`,
//! OTTL conditions...). Spans of a trace already sampled go on at once.
//!
//! Like otelcol's, it answers a request once its spans are held, not once they are exported;
//! unlike otelcol's, a late span of a sampled trace that the pipeline downstream refuses
//! makes the request fail (the client retries it), and sampled traces the pipeline refuses
//! at decision time are offered again at the next tick instead of being dropped.

mod backlog;
mod config;
mod group;
mod policy;
mod sampler;
mod store;
mod telemetry;

pub use config::TailSamplingConfig;
pub use policy::{ratio_of_max_u64, Decision};

use std::sync::Arc;
use std::time::Duration;

use redline_pipeline::component::{BuildError, BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};

use config::NamedPolicy;
use sampler::{Intake, Running, Sampler, Settings};
use store::Limits;

/// The section parsed and every policy compiled, or every problem found.
fn compile(
    config: &ComponentConfig,
) -> Result<(TailSamplingConfig, Vec<NamedPolicy>), Vec<ConfigError>> {
    let parsed = config.parse::<TailSamplingConfig>().map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    parsed.check(&mut problems);
    let policies = parsed.compile_policies(&mut problems);
    if problems.is_empty() {
        Ok((parsed, policies))
    } else {
        Err(problems
            .into_iter()
            .map(|(key, reason)| config.invalid(&key, reason))
            .collect())
    }
}

pub struct TailSamplingFactory;

impl FactoryInfo for TailSamplingFactory {
    fn type_name(&self) -> &'static str {
        "tail_sampling"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::config::first_problem(self.validate_all(config))
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        compile(config).err().unwrap_or_default()
    }
}

impl ProcessorFactory for TailSamplingFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        _: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let compiled = compile(config);
        let telemetry = ctx.telemetry.clone();
        Box::pin(async move {
            let (cfg, policies) = compiled.map_err(|errors| {
                BuildError::new(&id, redline_pipeline::config::problems_text(&errors))
            })?;
            let whole_seconds = |d: Duration| d.as_secs();
            let limits = Limits {
                wait_ticks: whole_seconds(cfg.decision_wait).max(1),
                root_wait_ticks: (!cfg.decision_wait_after_root_received.is_zero())
                    .then(|| whole_seconds(cfg.decision_wait_after_root_received)),
                num_traces: usize::try_from(cfg.num_traces).unwrap_or(usize::MAX),
                max_trace_bytes: cfg.maximum_trace_size_bytes,
            };
            let settings = Settings {
                id: id.to_string(),
                policy_prefix: id.name().map(|n| format!("{n}.")).unwrap_or_default(),
                sample_on_first_match: cfg.sample_on_first_match,
                drop_pending_on_shutdown: cfg.drop_pending_traces_on_shutdown,
            };
            let sampler = Sampler::new(
                settings,
                limits,
                &cfg.decision_cache,
                policies,
                next,
                &telemetry,
            );
            let running = Running::start(sampler.clone());
            let consumer: Arc<dyn Consumer> = Arc::new(Intake(sampler));
            let running: Box<dyn RunningComponent> = Box::new(running);
            Ok((consumer, running))
        })
    }
}

#[cfg(test)]
mod tests;

//! otelcol-contrib's `probabilistic_sampler` processor, for traces and logs.
//!
//! Each span or log record is kept or dropped on its own, statelessly, with otelcol's
//! exact decisions: the same keys and defaults (`mode: hash_seed` unless set,
//! `fail_closed: true`, `sampling_precision: 4`), the same FNV hashing of the trace id in
//! hash_seed mode, the same OpenTelemetry consistent sampling (OTEP 235) in the
//! `proportional` and `equalizing` modes, and the same record of the decision on what is
//! kept: the threshold (and, in hash_seed mode, the randomness) written into a span's W3C
//! `tracestate` (`ot=rv:…;th:…`) or a record's `sampling.threshold` /
//! `sampling.randomness` attributes. The tracestate code is `redline-sampling-tracestate`.
//!
//! The processor decodes a request only to sample it; one where nothing changes (every
//! item kept with its state as it was) travels on as the received bytes. Resources and
//! scopes left without items are removed, as otelcol removes them, and a request left
//! empty ends here.

mod attrs;
pub mod config;
mod go_float;
mod logs;
mod sampler;
pub mod stats;
#[cfg(test)]
mod test_support;
mod traces;

pub use config::{ProbabilisticSamplerConfig, Settings};
pub use sampler::{Policy, Sampler};

use std::sync::Arc;

use bytes::Bytes;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::{build_editor, BatchEditor, Edited, OnCommit};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, Refused,
    RunningComponent, Signal,
};

use sampler::LogContext;
use stats::{Stats, Tally};

/// What sampling made of one request.
pub(crate) enum Rewrite {
    Unchanged,
    Dropped,
    /// The re-encoded request and its item count.
    Replaced(Vec<u8>, usize),
}

impl Rewrite {
    /// Keeps the items `decide` keeps (`Some(item_changed)`) in every scope of every resource
    /// of `request`, removes the scopes and resources left without items (including ones that
    /// arrived empty) and re-encodes the request only when any of that changed it.
    fn retain_items<Q: prost::Message, R, S, I>(
        mut request: Q,
        resources: impl Fn(&mut Q) -> &mut Vec<R>,
        scopes: impl Fn(&mut R) -> &mut Vec<S>,
        items: impl Fn(&mut S) -> &mut Vec<I>,
        mut decide: impl FnMut(&mut I) -> Option<bool>,
    ) -> Rewrite {
        let mut changed = false;
        let mut kept = 0;
        for resource in resources(&mut request).iter_mut() {
            for scope in scopes(resource).iter_mut() {
                items(scope).retain_mut(|item| match decide(item) {
                    Some(item_changed) => {
                        changed |= item_changed;
                        kept += 1;
                        true
                    }
                    None => {
                        changed = true;
                        false
                    }
                });
            }
            let scopes = scopes(resource);
            let before = scopes.len();
            scopes.retain_mut(|s| !items(s).is_empty());
            changed |= scopes.len() != before;
        }
        let resources_left = resources(&mut request);
        let before = resources_left.len();
        resources_left.retain_mut(|r| !scopes(r).is_empty());
        changed |= resources_left.len() != before;
        if resources_left.is_empty() {
            Rewrite::Dropped
        } else if changed {
            Rewrite::Replaced(request.encode_to_vec(), kept)
        } else {
            Rewrite::Unchanged
        }
    }
}

/// The processor of one pipeline.
pub struct ProbabilisticSampler {
    id: String,
    signal: Signal,
    settings: Settings,
    stats: Arc<Stats>,
}

impl ProbabilisticSampler {
    pub fn new(id: String, signal: Signal, settings: Settings, stats: Arc<Stats>) -> Self {
        Self {
            id,
            signal,
            settings,
            stats,
        }
    }

    /// Samples one batch; the tally is what the batch adds to the processor's counters.
    pub fn sample(&self, batch: &Batch) -> (Edited, Tally) {
        let mut tally = Tally::default();
        let rewritten = match self.signal {
            Signal::Traces => traces::sample_request(
                &self.settings,
                &batch.raw,
                self.log_context("traces sampler"),
                &mut tally,
            ),
            Signal::Logs => logs::sample_request(
                &self.settings,
                &batch.raw,
                self.log_context("logs sampler"),
                &mut tally,
            ),
            // The factory offers traces and logs only.
            Signal::Metrics => Ok(Rewrite::Unchanged),
        };
        let edited = match rewritten {
            Ok(Rewrite::Unchanged) => Edited::Unchanged,
            Ok(Rewrite::Dropped) => Edited::Dropped,
            Ok(Rewrite::Replaced(raw, items)) => {
                Edited::Replaced(Batch::new(self.signal, Bytes::from(raw), items))
            }
            Err(e) => {
                // Cannot happen for a batch the receiver validated; treated as any item
                // whose sampling information is unreadable.
                tracing::warn!(
                    processor = %self.id, error = %e, fail_closed = self.settings.fail_closed,
                    "probabilistic_sampler: request does not decode"
                );
                if self.settings.fail_closed {
                    Edited::Dropped
                } else {
                    Edited::Unchanged
                }
            }
        };
        (edited, tally)
    }

    fn log_context(&self, sampler: &'static str) -> LogContext<'_> {
        LogContext {
            processor: &self.id,
            sampler,
        }
    }
}

impl BatchEditor for ProbabilisticSampler {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        Ok(self.sample(batch).0)
    }

    fn edit_counted(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        let (edited, tally) = self.sample(batch);
        let stats = self.stats.clone();
        let record: OnCommit = Box::new(move || stats.record(&tally));
        Ok((edited, Some(record)))
    }
}

pub struct ProbabilisticSamplerFactory;

impl FactoryInfo for ProbabilisticSamplerFactory {
    fn type_name(&self) -> &'static str {
        "probabilistic_sampler"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config
            .parse::<ProbabilisticSamplerConfig>()?
            .validate(config)
    }
}

impl ProcessorFactory for ProbabilisticSamplerFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces, Signal::Logs]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            let id = config.id();
            let settings = config
                .parse::<ProbabilisticSamplerConfig>()
                .and_then(|c| c.settings(config))?;
            let family = ctx.telemetry.counter_family(stats::desc(signal));
            let stats = Arc::new(Stats::new(&family, &settings.from_attribute));
            tracing::debug!(processor = %id, %signal, sampler = ?settings.sampler, "probabilistic_sampler: built");
            Ok::<_, ConfigError>(ProbabilisticSampler::new(
                id.to_string(),
                signal,
                settings,
                stats,
            ))
        })
    }
}

#[cfg(test)]
mod tests;

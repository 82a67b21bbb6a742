//! otelcol-contrib's `deltatocumulative` processor: delta sums and histograms (explicit and
//! exponential) become cumulative, each point replaced by its stream's running total, so
//! Prometheus, Mimir and the `prometheusremotewrite` exporter, which take only cumulative
//! data, read what delta SDKs send. Everything else passes as sent.
//!
//! The totals change when a request is converted, before the pipeline downstream takes it;
//! a request refused there (a full queue) puts back what it changed, so the client's retry
//! is not counted twice.

mod aggregate;
mod convert;
mod expo;
mod streams;

pub use aggregate::Dropped;

use std::sync::Arc;
use std::time::Duration;

use redline_pipeline::component::{BackgroundTask, BuildError, BuildResult, FactoryInfo};
use redline_pipeline::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};
use redline_pipeline::telemetry::{
    CounterDesc, DELTATOCUMULATIVE_DATAPOINTS, DELTATOCUMULATIVE_STREAMS_LIMIT,
    DELTATOCUMULATIVE_STREAMS_MAX_STALE, DELTATOCUMULATIVE_STREAMS_TRACKED,
};
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};
use serde::Deserialize;

use convert::DeltaToCumulative;
use streams::Streams;

/// How often streams are checked for staleness, as otelcol checks them.
const STALE_CHECK: Duration = Duration::from_secs(60);

/// The processor's settings, as otelcol names them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaToCumulativeConfig {
    /// A stream not seen for this long is forgotten: its next point starts a new total.
    #[serde(
        default = "default_max_stale",
        deserialize_with = "redline_pipeline::duration::deserialize"
    )]
    pub max_stale: Duration,
    /// The most streams tracked at once; points of further streams are dropped.
    #[serde(default = "default_max_streams")]
    pub max_streams: i64,
}

fn default_max_stale() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_max_streams() -> i64 {
    i64::MAX
}

impl DeltaToCumulativeConfig {
    pub fn parse(config: &ComponentConfig) -> Result<Self, ConfigError> {
        let parsed = config.parse::<Self>()?;
        if parsed.max_stale.is_zero() {
            return Err(config.invalid(
                "max_stale",
                "max_stale must be a positive duration (got 0s)",
            ));
        }
        if parsed.max_streams < 0 {
            return Err(config.invalid(
                "max_streams",
                format!(
                    "max_streams must be a positive number (got {})",
                    parsed.max_streams
                ),
            ));
        }
        Ok(parsed)
    }
}

pub struct DeltaToCumulativeFactory;

impl FactoryInfo for DeltaToCumulativeFactory {
    fn type_name(&self) -> &'static str {
        "deltatocumulative"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["delta_to_cumulative"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        DeltaToCumulativeConfig::parse(config).map(drop)
    }
}

impl ProcessorFactory for DeltaToCumulativeFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        _: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = DeltaToCumulativeConfig::parse(config);
        let telemetry = ctx.telemetry.clone();
        // otelcol's description, stability tag included, so both serve the same HELP.
        let datapoints = ctx.telemetry.counter_family(CounterDesc {
            name: DELTATOCUMULATIVE_DATAPOINTS,
            description: "total number of datapoints processed. may have 'error' attribute, if processing failed [Development]",
            unit: "{datapoint}",
        });
        Box::pin(async move {
            let cfg = parsed.map_err(|e| BuildError::new(&id, e))?;
            let max_streams = usize::try_from(cfg.max_streams).unwrap_or(usize::MAX);
            let streams = Arc::new(Streams::new(max_streams));
            telemetry.register_source(Arc::new(StreamStats {
                streams: Arc::downgrade(&streams),
                limit: cfg.max_streams,
                max_stale: cfg.max_stale,
            }));
            let processor: Arc<dyn Consumer> = Arc::new(DeltaToCumulative {
                id: id.to_string(),
                next,
                streams: streams.clone(),
                datapoints,
            });
            let max_stale = cfg.max_stale;
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + STALE_CHECK,
                    STALE_CHECK,
                );
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    streams.forget_stale(max_stale);
                }
            });
            let running: Box<dyn RunningComponent> = Box::new(BackgroundTask(task));
            Ok((processor, running))
        })
    }
}

/// otelcol's stream gauges (its descriptions, stability tag included).
struct StreamStats {
    streams: std::sync::Weak<Streams>,
    limit: i64,
    max_stale: Duration,
}

impl MetricsSource for StreamStats {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let Some(streams) = self.streams.upgrade() else {
            return;
        };
        for (name, description, unit, value) in [
            (
                DELTATOCUMULATIVE_STREAMS_TRACKED,
                "number of streams tracked [Development]",
                "{dps}",
                streams.tracked() as f64,
            ),
            (
                DELTATOCUMULATIVE_STREAMS_LIMIT,
                "upper limit of tracked streams [Development]",
                "{stream}",
                self.limit as f64,
            ),
            (
                DELTATOCUMULATIVE_STREAMS_MAX_STALE,
                "duration after which streams inactive streams are dropped [Development]",
                "s",
                self.max_stale.as_secs() as f64,
            ),
        ] {
            sink.family(&FamilyDesc {
                name,
                description,
                unit,
                kind: MetricKind::Gauge,
            });
            sink.gauge(&[], value);
        }
    }
}

#[cfg(test)]
mod tests;

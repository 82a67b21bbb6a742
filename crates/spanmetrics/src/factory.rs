//! The `spanmetrics` connector factory: wires [`SpanMetrics`] into a pipeline.

use redline_pipeline::CheckAll;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ConnectorFactory,
    ConnectorParts, Consumer, MetricsFlow, Refused, Reservation, RunningComponent, ShutdownError,
    Signal, SignalConsumers, SpanTap, TapId,
};

use redline_pipeline::telemetry;
use redline_pipeline::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};

use crate::config::Config;
use crate::push::Pusher;
use crate::SpanMetrics;

/// Registers as `spanmetrics` (alias `span_metrics`), traces → metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanMetricsFactory;

fn parse(config: &ComponentConfig) -> Result<(Config, crate::config::Settings), ConfigError> {
    let parsed: Config = config.parse()?;
    let settings = parsed.settings().map_err(|e| config.locate(e))?;
    Ok((parsed, settings))
}

impl FactoryInfo for SpanMetricsFactory {
    fn type_name(&self) -> &'static str {
        "spanmetrics"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["span_metrics"]
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        let parsed: Config = match config.parse() {
            Ok(parsed) => parsed,
            Err(e) => return vec![e],
        };
        let mut problems: Vec<ConfigError> = parsed
            .problems()
            .into_iter()
            .map(|p| config.locate(p))
            .collect();
        if let Some(storage) = &parsed.storage {
            if let Err(e) = ComponentId::parse(storage) {
                problems.push(config.invalid("storage", e));
            }
        }
        problems
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let (parsed, _) = parse(config)?;
        if let Some(storage) = &parsed.storage {
            ComponentId::parse(storage).map_err(|e| config.invalid("storage", e))?;
        }
        Ok(())
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        parse(config)
            .ok()
            .and_then(|(c, _)| c.storage.and_then(|s| ComponentId::parse(&s).ok()))
            .map(|id| vec![("storage".to_owned(), id)])
            .unwrap_or_default()
    }
}

impl ConnectorFactory for SpanMetricsFactory {
    fn signals(&self) -> &'static [(Signal, Signal)] {
        &[(Signal::Traces, Signal::Metrics)]
    }

    fn metrics_flow(&self) -> MetricsFlow {
        MetricsFlow::Sources
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<ConnectorParts> {
        let id = config.id().clone();
        let telemetry = ctx.telemetry.clone();
        let ctx_extensions = ctx.extensions.clone();
        let parsed = parse(config);
        Box::pin(async move {
            let (parsed, settings) = parsed.map_err(|e| BuildError::new(&id, e))?;
            for key in parsed.ignored_settings() {
                tracing::warn!(component = %id, "`{key}` is accepted for otelcol compatibility and has no effect in Redline");
            }
            let expiration = settings.expiration;
            let flush = settings.flush_interval;
            let metrics = Arc::new(SpanMetrics::from_settings(settings));
            let state = match &parsed.storage {
                Some(storage) => Some(StateFile::open(&id, storage, &ctx_extensions, &metrics)?),
                None => None,
            };
            let checkpointer = state.clone().map(|s| s.spawn(Arc::downgrade(&metrics)));
            telemetry.register_source(Arc::new(Stats {
                metrics: Arc::downgrade(&metrics),
                connector: id.to_string(),
                start_time_unix_nano: telemetry.start_time_unix_nano(),
            }));
            // The sweep only matters with an expiration; collect() expires as well.
            let sweeper = expiration.map(|_| {
                let m = Arc::downgrade(&metrics);
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(flush);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        let Some(m) = m.upgrade() else { break };
                        let removed = m.expire_idle();
                        if removed > 0 {
                            tracing::debug!(removed, "spanmetrics: expired idle series");
                        }
                    }
                })
            });
            // Only when a pipeline it feeds has an exporter that cannot read the store.
            let pusher = next
                .get(Signal::Metrics)
                .map(|next| Pusher::spawn(metrics.clone(), next.clone(), flush, id.to_string()));
            Ok(ConnectorParts {
                input: Arc::new(SpanInput {
                    tap: TapId::unique(),
                    metrics: metrics.clone(),
                    id: id.to_string(),
                }),
                metrics: Some(metrics.clone()),
                running: Box::new(Running {
                    sweeper,
                    pusher,
                    checkpointer,
                    state: state.map(|s| (s, metrics)),
                }),
            })
        })
    }
}

/// The traces side: never refuses; commit aggregates on the caller's thread (a few µs per
/// 100-span request, under per-shard locks only).
struct SpanInput {
    metrics: Arc<SpanMetrics>,
    id: String,
    /// This input's tap: requests it already counted during the receiver's walk.
    tap: TapId,
}

impl Consumer for SpanInput {
    fn reserve(&self, _batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let metrics = self.metrics.clone();
        let id = self.id.clone();
        let tap = self.tap;
        Ok(Box::new(CommitFn(move |batch: Batch| {
            if batch.claim_tap(tap) {
                return; // counted while the receiver validated it
            }
            // The receiver validated the request, so skip the checking pass.
            if let Err(e) = metrics.aggregate_validated(&batch.raw) {
                tracing::warn!(component = %id, error = %e, "spanmetrics: malformed request reached the connector");
            }
        })))
    }

    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        taps.push((self.tap, self.metrics.clone()));
    }
}

/// Series count and overflow for Redline's own telemetry endpoint. Holds the connector weakly
/// so the telemetry registry never keeps a stopped connector's series alive.
struct Stats {
    metrics: std::sync::Weak<SpanMetrics>,
    connector: String,
    start_time_unix_nano: u64,
}

impl MetricsSource for Stats {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let Some(m) = self.metrics.upgrade() else {
            return;
        };
        let labels = [("connector", self.connector.as_str())];
        sink.family(&FamilyDesc {
            name: telemetry::SPANMETRICS_ACTIVE_SERIES,
            description:
                "Label sets the spanmetrics connector holds (the overflow series not included).",
            unit: "{series}",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&labels, m.series_count() as f64);
        sink.family(&FamilyDesc {
            name: telemetry::SPANMETRICS_OVERFLOW_SPANS,
            description: "Spans folded into the otel_metric_overflow series by aggregation_cardinality_limit.",
            unit: "{spans}",
            kind: MetricKind::Counter,
        });
        sink.counter(&labels, m.overflow_spans(), self.start_time_unix_nano, None);
    }
}

struct Running {
    sweeper: Option<tokio::task::JoinHandle<()>>,
    pusher: Option<Pusher>,
    checkpointer: Option<tokio::task::JoinHandle<()>>,
    /// Written once more when the connector stops, after the receivers have: the file then
    /// holds every span this process counted.
    state: Option<(StateFile, Arc<SpanMetrics>)>,
}

impl RunningComponent for Running {
    fn shutdown(
        self: Box<Self>,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        for task in [&self.sweeper, &self.checkpointer].into_iter().flatten() {
            task.abort();
        }
        let pusher = self.pusher;
        let state = self.state;
        Box::pin(async move {
            // The service bounds this by the shutdown deadline.
            if let Some(pusher) = pusher {
                pusher.stop().await;
            }
            if let Some((file, metrics)) = state {
                let _ = tokio::task::spawn_blocking(move || file.write(&metrics)).await;
            }
            Ok(())
        })
    }
}

/// How often the state is written while running: what a crash can lose at most, when no
/// scrape has seen newer values (see [`crate::checkpoint`]).
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The state file on the storage extension `storage: <id>` names.
#[derive(Clone)]
struct StateFile {
    path: std::path::PathBuf,
    fsync: bool,
    connector: String,
}

impl StateFile {
    /// Finds the file and continues the counters it holds; a file that cannot be used is
    /// reported and the connector starts from zero.
    fn open(
        id: &ComponentId,
        storage: &str,
        extensions: &redline_pipeline::extension::Extensions,
        metrics: &SpanMetrics,
    ) -> Result<Self, BuildError> {
        let fail = |reason: String| BuildError::new(id, format!("storage: {reason}"));
        let ext = ComponentId::parse(storage).map_err(fail)?;
        let storage = extensions.storage(&ext).map_err(fail)?;
        let dir = storage
            .directory("connector", id, "spanmetrics")
            .map_err(|e| fail(format!("extension `{ext}` gave no directory: {e}")))?;
        let file = Self {
            path: dir.join("state"),
            fsync: storage.fsync(),
            connector: id.to_string(),
        };
        match metrics.load_checkpoint(&file.path) {
            Ok(Some(series)) => tracing::info!(
                connector = %id, series, path = %file.path.display(),
                "spanmetrics: counters continue from the state a previous run left"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                connector = %id, error = %e,
                "spanmetrics: the saved state cannot be used; counters start from zero"
            ),
        }
        Ok(file)
    }

    fn write(&self, metrics: &SpanMetrics) {
        match metrics.write_checkpoint(&self.path, self.fsync) {
            Ok(series) => tracing::debug!(
                connector = %self.connector, series, path = %self.path.display(),
                "spanmetrics: state written"
            ),
            Err(e) => tracing::warn!(
                connector = %self.connector, error = %e, path = %self.path.display(),
                "spanmetrics: cannot write the state; a restart will start from zero"
            ),
        }
    }

    fn spawn(self, metrics: std::sync::Weak<SpanMetrics>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(m) = metrics.upgrade() else { break };
                let file = self.clone();
                let _ = tokio::task::spawn_blocking(move || file.write(&m)).await;
            }
        })
    }
}

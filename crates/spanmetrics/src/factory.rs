//! The `spanmetrics` connector factory: wires [`SpanMetrics`] into a pipeline.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentConfig, ConfigError, ConnectorFactory,
    ConnectorParts, Consumer, MetricsFlow, Refused, Reservation, RunningComponent, ShutdownError,
    Signal, SignalConsumers,
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
    let settings = parsed
        .settings()
        .map_err(|e| config.invalid(&e.path, e.reason))?;
    Ok((parsed, settings))
}

impl FactoryInfo for SpanMetricsFactory {
    fn type_name(&self) -> &'static str {
        "spanmetrics"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["span_metrics"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
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
        let parsed = parse(config);
        Box::pin(async move {
            let (parsed, settings) = parsed.map_err(|e| BuildError::new(&id, e))?;
            for key in parsed.ignored_settings() {
                tracing::warn!(component = %id, "`{key}` is accepted for otelcol compatibility and has no effect in Redline");
            }
            let expiration = settings.expiration;
            let flush = settings.flush_interval;
            let metrics = Arc::new(SpanMetrics::from_settings(settings));
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
                    metrics: metrics.clone(),
                    id: id.to_string(),
                }),
                metrics: Some(metrics),
                running: Box::new(Running { sweeper, pusher }),
            })
        })
    }
}

/// The traces side: never refuses; commit aggregates on the caller's thread (a few µs per
/// 100-span request, under per-shard locks only).
struct SpanInput {
    metrics: Arc<SpanMetrics>,
    id: String,
}

impl Consumer for SpanInput {
    fn reserve(&self, _batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let metrics = self.metrics.clone();
        let id = self.id.clone();
        Ok(Box::new(CommitFn(move |batch: Batch| {
            // The receiver validated the request, so skip the checking pass.
            if let Err(e) = metrics.aggregate_validated(&batch.raw) {
                tracing::warn!(component = %id, error = %e, "spanmetrics: malformed request reached the connector");
            }
        })))
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
}

impl RunningComponent for Running {
    fn shutdown(
        self: Box<Self>,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        if let Some(task) = &self.sweeper {
            task.abort();
        }
        let pusher = self.pusher;
        Box::pin(async move {
            // The service bounds this by the shutdown deadline.
            if let Some(pusher) = pusher {
                pusher.stop().await;
            }
            Ok(())
        })
    }
}

//! The `servicegraph` connector factory: wires [`ServiceGraph`] into a pipeline.

use redline_pipeline::CheckAll;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentConfig, ConfigError, ConnectorFactory,
    ConnectorParts, Consumer, FamilyDesc, MetricKind, MetricsFlow, MetricsSink, MetricsSource,
    Refused, Reservation, RunningComponent, ShutdownError, Signal, SignalConsumers,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{Config, Settings};
use crate::push::Pusher;
use crate::ServiceGraph;

/// otelcol's own-telemetry names (`metadata.yaml`), served with the label `connector`.
pub const TOTAL_EDGES: &str = "otelcol_connector_servicegraph_total_edges";
pub const EXPIRED_EDGES: &str = "otelcol_connector_servicegraph_expired_edges";
pub const DROPPED_SPANS: &str = "otelcol_connector_servicegraph_dropped_spans";
/// Redline's addition: edges waiting in the store (bounded by `store.max_items`).
pub const STORE_EDGES: &str = "redline_servicegraph_store_edges";

/// Registers as `servicegraph` (alias `service_graph`), traces → metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServiceGraphFactory;

fn parse(config: &ComponentConfig) -> Result<(Config, Settings), ConfigError> {
    let parsed: Config = config.parse()?;
    let settings = parsed.settings().map_err(|e| config.locate(e))?;
    Ok((parsed, settings))
}

impl FactoryInfo for ServiceGraphFactory {
    fn type_name(&self) -> &'static str {
        "servicegraph"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["service_graph"]
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        let parsed: Config = match config.parse() {
            Ok(parsed) => parsed,
            Err(e) => return vec![e],
        };
        parsed
            .problems()
            .into_iter()
            .map(|p| config.locate(p))
            .collect()
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        parse(config).map(|(c, _)| c.warnings()).unwrap_or_default()
    }
}

impl ConnectorFactory for ServiceGraphFactory {
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
            // The service prints `warnings()` at start already.
            let (_, settings) = parsed.map_err(|e| BuildError::new(&id, e))?;
            let graph = Arc::new(ServiceGraph::from_settings(settings));
            telemetry.register_source(Arc::new(Stats {
                graph: Arc::downgrade(&graph),
                connector: id.to_string(),
                start_time_unix_nano: telemetry.start_time_unix_nano(),
            }));
            let s = &graph.settings;
            let expirer = every(&graph, s.store_expiration_loop, |g| {
                let n = g.expire();
                if n > 0 {
                    tracing::debug!(expired = n, "servicegraph: edges expired");
                }
            });
            let cleaner = every(&graph, s.cache_loop, |g| {
                let n = g.clean_series();
                if n > 0 {
                    tracing::debug!(removed = n, "servicegraph: idle series removed");
                }
            });
            // Only when a pipeline it feeds has an exporter that cannot read the state.
            let pusher = next
                .get(Signal::Metrics)
                .map(|next| Pusher::spawn(graph.clone(), next.clone(), id.to_string()));
            Ok(ConnectorParts {
                input: Arc::new(SpanInput {
                    graph: graph.clone(),
                    id: id.to_string(),
                    batch_done: pusher.as_ref().and_then(|p| p.batch_done.clone()),
                }),
                metrics: Some(graph),
                running: Box::new(Running {
                    tasks: vec![expirer, cleaner],
                    pusher,
                }),
            })
        })
    }
}

/// Runs `f` every `period` while the connector lives; stops when it is dropped.
fn every(graph: &Arc<ServiceGraph>, period: Duration, f: fn(&ServiceGraph)) -> JoinHandle<()> {
    let g: Weak<ServiceGraph> = Arc::downgrade(graph);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(g) = g.upgrade() else { break };
            f(&g);
        }
    })
}

/// The traces side: never refuses; commit pairs on the caller's thread under per-shard
/// locks only.
struct SpanInput {
    graph: Arc<ServiceGraph>,
    id: String,
    batch_done: Option<Arc<Notify>>,
}

impl Consumer for SpanInput {
    fn reserve(&self, _batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let graph = self.graph.clone();
        let id = self.id.clone();
        let batch_done = self.batch_done.clone();
        Ok(Box::new(CommitFn(move |batch: Batch| {
            if let Err(e) = graph.consume_validated(&batch.raw) {
                tracing::warn!(component = %id, error = %e, "servicegraph: malformed request reached the connector");
            }
            if let Some(n) = batch_done {
                n.notify_one();
            }
        })))
    }
}

/// otelcol's own counters for Redline's telemetry endpoint. Holds the connector weakly so
/// the registry never keeps a stopped connector alive.
struct Stats {
    graph: Weak<ServiceGraph>,
    connector: String,
    start_time_unix_nano: u64,
}

impl MetricsSource for Stats {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let Some(g) = self.graph.upgrade() else {
            return;
        };
        let labels = [("connector", self.connector.as_str())];
        for (name, description, value) in [
            (TOTAL_EDGES, "Total number of unique edges", g.total_edges()),
            (
                EXPIRED_EDGES,
                "Number of edges that expired before finding its matching span",
                g.expired_edges(),
            ),
            (
                DROPPED_SPANS,
                "Number of spans dropped when trying to add edges",
                g.dropped_spans(),
            ),
        ] {
            sink.family(&FamilyDesc {
                name,
                description,
                unit: "1",
                kind: MetricKind::Counter,
            });
            sink.counter(&labels, value, self.start_time_unix_nano, None);
        }
        sink.family(&FamilyDesc {
            name: STORE_EDGES,
            description: "Edges the servicegraph connector holds waiting for their other span.",
            unit: "{edges}",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&labels, g.store_len() as f64);
    }
}

struct Running {
    tasks: Vec<JoinHandle<()>>,
    pusher: Option<Pusher>,
}

impl RunningComponent for Running {
    fn shutdown(
        self: Box<Self>,
        _deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        for task in &self.tasks {
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

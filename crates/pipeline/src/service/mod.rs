//! Builds the component graph a config describes, runs it, and stops it in order.
//!
//! Start order is downstream first, so nothing is ever handed data before its consumer
//! exists: connectors, then exporters, then each pipeline's processors, then receivers
//! (connector outputs are bound to the pipelines they feed before any receiver starts).
//! Shutdown runs the other way: receivers stop accepting, processors and connectors finish,
//! batch exporters drain their queues, and metrics readers go last so a final scrape still
//! sees everything that was accepted.

mod graph;

pub use graph::{validate, validate_after_load_errors, Warning};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::component::{
    BuildContext, BuildError, ComponentId, ComponentKind, MetricsFlow, RunningComponent,
    ShutdownError, Signal, SignalConsumers,
};
use crate::config::{ComponentConfig, Config, PipelineConfig};
use crate::consumer::{Consumer, Fanout, LateBound};
use crate::metrics::MetricsSource;
use crate::status::{PipelineStatus, ServiceState};
use crate::Factories;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid config:\n{0}")]
    Config(crate::config::ConfigErrors),
    /// Displays the component and reason itself (no `source`), so error chains printed
    /// with `{:#}` do not repeat them.
    #[error("failed to start {0}")]
    Build(BuildError),
}

impl From<crate::config::ConfigErrors> for StartError {
    fn from(e: crate::config::ConfigErrors) -> Self {
        StartError::Config(e)
    }
}

impl From<BuildError> for StartError {
    fn from(e: BuildError) -> Self {
        StartError::Build(e)
    }
}

/// The least time any component is given to stop, even once the shutdown deadline passed.
const MIN_STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

struct Started {
    kind: ComponentKind,
    /// Position in the shutdown order; lower stops first.
    stop_rank: u8,
    id: String,
    running: Box<dyn RunningComponent>,
}

/// One consumer for the pipelines a receiver feeds: a fan-out when there are several.
fn fan_in(mut heads: Vec<Arc<dyn Consumer>>) -> Arc<dyn Consumer> {
    if heads.len() == 1 {
        if let Some(only) = heads.pop() {
            return only;
        }
    }
    Arc::new(Fanout::new(heads))
}

/// The smallest body budget the processors of the pipelines `receiver` feeds ask for.
fn body_budget(
    receiver: &ComponentId,
    pipelines: &[PipelineConfig],
    config: &Config,
    factories: &Factories,
) -> Option<u64> {
    pipelines
        .iter()
        .filter(|p| p.receivers.iter().any(|(id, _)| id == receiver))
        .flat_map(|p| &p.processors)
        .filter_map(|(id, _)| {
            let cfg = config.processors.iter().find(|c| c.id() == id)?;
            factories.processors.get(id.type_name())?.body_budget(cfg)
        })
        .min()
}

/// A running pipeline graph.
pub struct Service {
    /// In start order; shutdown walks it in reverse.
    started: Vec<Started>,
    status: PipelineStatus,
}

fn find<'a>(
    list: &'a [ComponentConfig],
    id: &ComponentId,
) -> Result<&'a ComponentConfig, BuildError> {
    list.iter()
        .find(|c| c.id() == id)
        .ok_or_else(|| BuildError::new(id, "is not defined"))
}

impl Service {
    /// Validates `config`, then builds and starts every component it uses.
    pub async fn start(
        config: &Config,
        factories: &Factories,
        ctx: BuildContext,
    ) -> Result<Service, StartError> {
        validate(config, factories)?;
        let host = (*ctx.host).clone().describe(config, factories);
        let ctx = ctx.with_host(host);
        let mut service = Service {
            started: Vec::new(),
            status: ctx.status.clone(),
        };
        service.status.set(ServiceState::Starting);
        match service.build_all(config, factories, &ctx).await {
            Ok(()) => {
                service.status.set(ServiceState::Ready);
                Ok(service)
            }
            Err(e) => {
                // Release the sockets and tasks of what did start before reporting.
                service.shutdown(Instant::now()).await;
                Err(e.into())
            }
        }
    }

    fn push(&mut self, kind: ComponentKind, id: &ComponentId, running: Box<dyn RunningComponent>) {
        let stop_rank = match kind {
            ComponentKind::Receiver => 0,
            ComponentKind::Processor => 1,
            ComponentKind::Connector => 2,
            ComponentKind::Exporter => 3,
            ComponentKind::Extension => 5,
        };
        self.push_ranked(kind, stop_rank, id, running);
    }

    fn push_ranked(
        &mut self,
        kind: ComponentKind,
        stop_rank: u8,
        id: &ComponentId,
        running: Box<dyn RunningComponent>,
    ) {
        self.started.push(Started {
            kind,
            stop_rank,
            id: id.to_string(),
            running,
        });
    }

    async fn build_all(
        &mut self,
        config: &Config,
        factories: &Factories,
        ctx: &BuildContext,
    ) -> Result<(), BuildError> {
        // Extensions first: components look up authenticators and storage while building.
        let mut extensions = crate::extension::Extensions::default();
        for (id, _) in &config.service.extensions {
            let cfg = find(&config.extensions, id)?;
            let factory = factories
                .extensions
                .get(id.type_name())
                .ok_or_else(|| BuildError::new(id, "unknown extension type"))?;
            let (capabilities, running) = factory.build(cfg, ctx).await?;
            extensions.insert(id.clone(), capabilities);
            self.push(ComponentKind::Extension, id, running);
        }
        let ctx = &ctx.clone().with_extensions(extensions);

        let pipelines = &config.service.pipelines;
        let reads_sources = |id: &ComponentId| {
            !config.is_connector(id)
                && factories
                    .exporters
                    .get(id.type_name())
                    .is_some_and(|f| f.metrics_flow() == MetricsFlow::Sources)
        };
        // A processor that edits data must see span metrics too, so a metrics pipeline with one
        // takes the connector's pushed batches through its processors, and its exporters that
        // could read the store in place take those batches instead (as otelcol runs it).
        let edits = |p: &crate::config::PipelineConfig| {
            p.processors.iter().any(|(id, _)| {
                factories
                    .processors
                    .get(id.type_name())
                    .is_none_or(|f| f.edits_data())
            })
        };
        let reads_in_place =
            |p: &crate::config::PipelineConfig, id: &ComponentId| reads_sources(id) && !edits(p);
        let keeps_sources = |id: &ComponentId| {
            config.is_connector(id)
                && factories
                    .connectors
                    .get(id.type_name())
                    .is_some_and(|f| f.metrics_flow() == MetricsFlow::Sources)
        };

        // Connectors first. Their exporter side is a consumer in the pipelines that list them
        // as exporters; their receiver side pushes batches into the pipelines that list them
        // as receivers, through outputs bound once those pipelines exist. A connector that
        // keeps metrics (span metrics) is read in place by the exporters that read sources
        // (Prometheus, remote write), and pushes batches only when a pipeline it feeds has an
        // exporter that takes nothing else (`otlp`, `debug`, a `forward` connector).
        let mut connector_inputs: BTreeMap<ComponentId, Arc<dyn Consumer>> = BTreeMap::new();
        let mut connector_sources: BTreeMap<ComponentId, Arc<dyn MetricsSource>> = BTreeMap::new();
        let mut connector_outputs: BTreeMap<(ComponentId, Signal), Arc<LateBound>> =
            BTreeMap::new();
        for cfg in &config.connectors {
            let used = pipelines
                .iter()
                .any(|p| p.exporters.iter().any(|(id, _)| id == cfg.id()));
            if !used {
                continue;
            }
            let factory = factories
                .connectors
                .get(cfg.id().type_name())
                .ok_or_else(|| BuildError::new(cfg.id(), "unknown connector type"))?;
            let mut next = SignalConsumers::default();
            for p in pipelines
                .iter()
                .filter(|p| p.receivers.iter().any(|(id, _)| id == cfg.id()))
            {
                let pushes = p.signal != Signal::Metrics
                    || factory.metrics_flow() == MetricsFlow::Batches
                    || p.exporters.iter().any(|(e, _)| !reads_in_place(p, e));
                if pushes && next.get(p.signal).is_none() {
                    let late = Arc::new(LateBound::default());
                    connector_outputs.insert((cfg.id().clone(), p.signal), late.clone());
                    next.set(p.signal, late);
                }
            }
            let parts = factory.build(cfg, ctx, next).await?;
            connector_inputs.insert(cfg.id().clone(), parts.input);
            if let Some(source) = parts.metrics {
                connector_sources.insert(cfg.id().clone(), source);
            }
            self.push(ComponentKind::Connector, cfg.id(), parts.running);
        }

        // Exporters of batches: one instance per exporter id and signal, shared by every
        // pipeline of that signal that lists it. Metrics readers (Prometheus, remote write)
        // are built once per id with the sources of every metrics pipeline they are in, and
        // take the OTLP batches of those pipelines as well.
        let mut batch_exporters: BTreeMap<(ComponentId, Signal), Arc<dyn Consumer>> =
            BTreeMap::new();
        let mut metrics_sources: BTreeMap<ComponentId, Vec<Arc<dyn MetricsSource>>> =
            BTreeMap::new();
        for pipeline in pipelines {
            for (id, _) in &pipeline.exporters {
                if config.is_connector(id)
                    || batch_exporters.contains_key(&(id.clone(), pipeline.signal))
                {
                    continue;
                }
                let factory = factories
                    .exporters
                    .get(id.type_name())
                    .ok_or_else(|| BuildError::new(id, "unknown exporter type"))?;
                if pipeline.signal == Signal::Metrics && reads_sources(id) {
                    let sources = metrics_sources.entry(id.clone()).or_default();
                    if edits(pipeline) {
                        continue;
                    }
                    for (r, _) in &pipeline.receivers {
                        if let Some(source) = connector_sources.get(r) {
                            if !sources.iter().any(|s| Arc::ptr_eq(s, source)) {
                                sources.push(source.clone());
                            }
                        }
                    }
                    continue;
                }
                let cfg = find(&config.exporters, id)?;
                let (consumer, running) = factory.build(cfg, ctx, pipeline.signal).await?;
                batch_exporters.insert((id.clone(), pipeline.signal), consumer);
                self.push(ComponentKind::Exporter, id, running);
            }
        }
        for (id, sources) in metrics_sources {
            let cfg = find(&config.exporters, &id)?;
            let factory = factories
                .exporters
                .get(id.type_name())
                .ok_or_else(|| BuildError::new(&id, "unknown exporter type"))?;
            let (consumer, running) = factory.build_metrics_reader(cfg, ctx, sources).await?;
            batch_exporters.insert((id.clone(), Signal::Metrics), consumer);
            // After the batch exporters have drained, so a last scrape sees everything.
            self.push_ranked(ComponentKind::Exporter, 4, &id, running);
        }

        // Each pipeline that carries batches: its processors in order, in front of a fan-out
        // to its exporters. Processors are built per pipeline, as in otelcol. Batches a
        // metrics connector pushes skip the exporters that read its store directly, so they
        // get a chain of their own when the pipeline has both kinds of receivers.
        let mut heads: BTreeMap<(ComponentId, Signal), Vec<Arc<dyn Consumer>>> = BTreeMap::new();
        for pipeline in pipelines {
            let (from_sources, from_batches): (Vec<_>, Vec<_>) =
                pipeline.receivers.iter().map(|(id, _)| id).partition(|id| {
                    pipeline.signal == Signal::Metrics && keeps_sources(id) && !edits(pipeline)
                });
            for (receivers, skip_readers) in [(from_batches, false), (from_sources, true)] {
                if receivers.is_empty() {
                    continue;
                }
                let mut consumers = Vec::new();
                for (id, _) in &pipeline.exporters {
                    if skip_readers && reads_sources(id) {
                        continue;
                    }
                    let consumer = connector_inputs
                        .get(id)
                        .or_else(|| batch_exporters.get(&(id.clone(), pipeline.signal)));
                    if let Some(consumer) = consumer {
                        consumers.push(consumer.clone());
                    }
                }
                if consumers.is_empty() {
                    continue;
                }
                let mut next: Arc<dyn Consumer> = Arc::new(Fanout::new(consumers));
                for (id, _) in pipeline.processors.iter().rev() {
                    let cfg = find(&config.processors, id)?;
                    let factory = factories
                        .processors
                        .get(id.type_name())
                        .ok_or_else(|| BuildError::new(id, "unknown processor type"))?;
                    let (consumer, running) =
                        factory.build(cfg, ctx, pipeline.signal, next).await?;
                    next = consumer;
                    self.push(ComponentKind::Processor, id, running);
                }
                for id in receivers {
                    heads
                        .entry((id.clone(), pipeline.signal))
                        .or_default()
                        .push(next.clone());
                }
            }
        }

        // Connector outputs join the pipelines they feed.
        let mut receiver_next: BTreeMap<ComponentId, SignalConsumers> = BTreeMap::new();
        for ((id, signal), pipeline_heads) in heads {
            let next = fan_in(pipeline_heads);
            if config.is_connector(&id) {
                if let Some(late) = connector_outputs.get(&(id.clone(), signal)) {
                    late.bind(next);
                }
            } else {
                receiver_next.entry(id).or_default().set(signal, next);
            }
        }

        // Receivers last: from here on data flows.
        for (id, next) in receiver_next {
            let cfg = find(&config.receivers, &id)?;
            let factory = factories
                .receivers
                .get(id.type_name())
                .ok_or_else(|| BuildError::new(&id, "unknown receiver type"))?;
            let ctx = &BuildContext {
                body_budget: body_budget(&id, pipelines, config, factories),
                ..ctx.clone()
            };
            let running = factory.build(cfg, ctx, next).await?;
            self.push(ComponentKind::Receiver, &id, running);
        }
        Ok(())
    }

    /// Addresses the components listen on: (component id, name, address).
    pub fn local_addrs(&self) -> Vec<(String, &'static str, SocketAddr)> {
        self.started
            .iter()
            .flat_map(|s| {
                s.running
                    .local_addrs()
                    .into_iter()
                    .map(|(name, addr)| (s.id.clone(), name, addr))
            })
            .collect()
    }

    /// Stops every component, receivers first, each within `deadline`. Returns what did not
    /// stop cleanly; the service is gone either way.
    pub async fn shutdown(self, deadline: Instant) -> Vec<ShutdownError> {
        self.status.set(ServiceState::Stopping);
        let mut started = self.started;
        // Within a rank, later-started components stop first (processors of a pipeline
        // were started back to front).
        started.reverse();
        started.sort_by_key(|s| s.stop_rank);
        let mut errors = Vec::new();
        for s in started {
            tracing::debug!(component = %s.id, kind = s.kind.singular(), "stopping");
            // A stage that ran out the clock (an exporter retrying a dead Tempo) must not
            // make every later component fail: each still gets a moment to close its sockets.
            let deadline = deadline.max(Instant::now() + MIN_STOP_GRACE);
            let stop = s.running.shutdown(deadline);
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A component that ignores its deadline must not hold the whole process: give it
            // a short grace period past the deadline, then move on.
            let grace = remaining + std::time::Duration::from_millis(500);
            match tokio::time::timeout(grace, stop).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(ShutdownError {
                    component: s.id.clone(),
                    reason: "did not stop by the shutdown deadline".to_owned(),
                }),
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests;

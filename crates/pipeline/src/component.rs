//! Component ids, the factory traits every component crate implements, and the handle of a
//! running component.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::config::{ComponentConfig, ConfigError};
use crate::consumer::Consumer;
use crate::extension::{ExtensionCapabilities, Extensions};
use crate::host::HostInfo;
use crate::metrics::MetricsSource;
use crate::status::PipelineStatus;
use crate::telemetry::Telemetry;

/// The five sections of an otelcol config a component can be declared in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Receiver,
    Processor,
    Exporter,
    Connector,
    Extension,
}

impl ComponentKind {
    /// The config section holding this kind, e.g. `receivers`.
    pub fn section(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receivers",
            ComponentKind::Processor => "processors",
            ComponentKind::Exporter => "exporters",
            ComponentKind::Connector => "connectors",
            ComponentKind::Extension => "extensions",
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            ComponentKind::Receiver => "receiver",
            ComponentKind::Processor => "processor",
            ComponentKind::Exporter => "exporter",
            ComponentKind::Connector => "connector",
            ComponentKind::Extension => "extension",
        }
    }
}

/// The telemetry signals a pipeline can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// Every signal, in the order otelcol lists them.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The OTLP/gRPC method that exports this signal.
    pub fn grpc_export_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// The OTLP/HTTP path of this signal, appended to a base `endpoint`.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The protobuf message an export request of this signal is.
    pub fn export_request_name(self) -> &'static str {
        match self {
            Signal::Traces => "ExportTraceServiceRequest",
            Signal::Metrics => "ExportMetricsServiceRequest",
            Signal::Logs => "ExportLogsServiceRequest",
        }
    }

    /// The gRPC service that exports this signal, as grpc-go names it in errors.
    pub fn grpc_service_name(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
        }
    }

    /// What one counted item of this signal is, for logs and messages.
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric points",
            Signal::Logs => "log records",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component id as written in the config: `type` or `type/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    type_name: String,
    name: Option<String>,
}

impl ComponentId {
    /// Parses `type` or `type/name`, with otelcol's rules: the type is non-empty and made of
    /// letters, digits and `_`; the name is non-empty.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (type_name, name) = match s.split_once('/') {
            Some((t, n)) => (t.trim(), Some(n.trim())),
            None => (s.trim(), None),
        };
        if type_name.is_empty() {
            return Err(format!("component id `{s}` has an empty type"));
        }
        if !type_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "component id `{s}`: type `{type_name}` may only contain letters, digits and `_`"
            ));
        }
        if name == Some("") {
            return Err(format!("component id `{s}` has an empty name after `/`"));
        }
        Ok(Self {
            type_name: type_name.to_owned(),
            name: name.map(str::to_owned),
        })
    }

    pub fn new(type_name: &str, name: Option<&str>) -> Self {
        Self {
            type_name: type_name.to_owned(),
            name: name.map(str::to_owned),
        }
    }

    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.type_name, n),
            None => f.write_str(&self.type_name),
        }
    }
}

/// Failure to start a component after its config validated (a port in use, a missing CA file).
#[derive(Debug, thiserror::Error)]
#[error("{component}: {reason}")]
pub struct BuildError {
    pub component: String,
    pub reason: String,
}

impl BuildError {
    pub fn new(component: &ComponentId, reason: impl fmt::Display) -> Self {
        Self {
            component: component.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A component that did not stop cleanly within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{component}: {reason}")]
pub struct ShutdownError {
    pub component: String,
    pub reason: String,
}

/// Shared services handed to every component when it is built.
#[derive(Clone)]
pub struct BuildContext {
    pub telemetry: Telemetry,
    /// Extensions started before this component (all of them: extensions start first).
    pub extensions: Extensions,
    /// Whether the pipeline is up; components report fatal runtime failures here.
    pub status: PipelineStatus,
    /// For a receiver: the bytes of request bodies it may hold in flight, from the
    /// processors of the pipelines it feeds (see [`crate::body_budget`]); `None` when none
    /// of them asks for a bound.
    pub body_budget: Option<u64>,
    /// What the service is made of, for extensions that show it (`zpages`). The binary fills
    /// in the build and the gates; the service adds the pipelines before anything starts.
    pub host: Arc<HostInfo>,
}

impl BuildContext {
    pub fn new(telemetry: Telemetry) -> Self {
        Self {
            telemetry,
            extensions: Extensions::default(),
            status: PipelineStatus::default(),
            body_budget: None,
            host: Arc::default(),
        }
    }

    pub fn with_host(mut self, host: HostInfo) -> Self {
        self.host = Arc::new(host);
        self
    }

    pub fn with_extensions(mut self, extensions: Extensions) -> Self {
        self.extensions = extensions;
        self
    }
}

/// A started component.
pub trait RunningComponent: Send + Sync {
    /// Addresses it listens on, named (`grpc`, `http`, `metrics`): with port 0 in the config,
    /// this is how tests learn the real port.
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        Vec::new()
    }

    /// Stops the component. Receivers stop accepting; exporters send what they queued.
    /// Must return by `deadline`, dropping what it could not finish (and saying so).
    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>>;
}

/// A running component with nothing to stop.
pub struct NoopRunning;

impl RunningComponent for NoopRunning {
    fn shutdown(self: Box<Self>, _: Instant) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async { Ok(()) })
    }
}

/// A running component whose only part is a background task with nothing to drain (a
/// sampler, a sweeper): stopping it aborts the task.
pub struct BackgroundTask(pub tokio::task::JoinHandle<()>);

impl RunningComponent for BackgroundTask {
    fn shutdown(self: Box<Self>, _: Instant) -> BoxFuture<'static, Result<(), ShutdownError>> {
        self.0.abort();
        Box::pin(async { Ok(()) })
    }
}

pub type BuildResult<T> = BoxFuture<'static, Result<T, BuildError>>;

/// A receiver's `build`: its settings parsed now by `parse` (a bad one fails the build,
/// naming the receiver), then `start`, which binds the receiver's sockets before it returns.
pub fn build_receiver<C, R, Fut>(
    config: &ComponentConfig,
    ctx: &BuildContext,
    next: SignalConsumers,
    parse: fn(&ComponentConfig) -> Result<C, ConfigError>,
    start: impl FnOnce(ComponentId, C, BuildContext, SignalConsumers) -> Fut + Send + 'static,
) -> BuildResult<Box<dyn RunningComponent>>
where
    C: Send + 'static,
    R: RunningComponent + 'static,
    Fut: std::future::Future<Output = Result<R, BuildError>> + Send + 'static,
{
    let id = config.id().clone();
    let parsed = parse(config);
    let ctx = ctx.clone();
    Box::pin(async move {
        let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
        let running = start(id, parsed, ctx, next).await?;
        Ok(Box::new(running) as Box<dyn RunningComponent>)
    })
}

/// Facts every factory states about itself.
pub trait FactoryInfo: Send + Sync {
    /// The type name used in configs, e.g. `otlp`.
    fn type_name(&self) -> &'static str;
    /// Other spellings users have in their files, e.g. `span_metrics`.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks a config without starting anything: every bad key or value is reported with
    /// its path by the returned error.
    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError>;
    /// Every problem of a config, for `redline validate` to report them all in one run.
    /// Factories whose checks are independent of each other list them all; the default is
    /// [`validate`](Self::validate)'s one.
    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        self.validate(config).err().into_iter().collect()
    }
    /// What is worth telling the user about a valid config without refusing it: a component
    /// or key otelcol deprecated or removed, with its replacement. `redline validate` prints
    /// these, and so does the start. Only called on a valid config.
    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        let _ = config;
        Vec::new()
    }
    /// Extensions this config refers to (`auth.authenticator`, `sending_queue.storage`), as
    /// (key path relative to the component, extension id), so `redline validate` can check
    /// they are defined and enabled in `service.extensions`. Only called on a valid config.
    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        let _ = config;
        Vec::new()
    }
}

/// The next consumer of each signal: what a receiver or connector hands its batches to.
/// `None` for a signal no pipeline takes from it.
#[derive(Clone, Default)]
pub struct SignalConsumers {
    traces: Option<Arc<dyn Consumer>>,
    metrics: Option<Arc<dyn Consumer>>,
    logs: Option<Arc<dyn Consumer>>,
}

impl SignalConsumers {
    pub fn get(&self, signal: Signal) -> Option<&Arc<dyn Consumer>> {
        match signal {
            Signal::Traces => self.traces.as_ref(),
            Signal::Metrics => self.metrics.as_ref(),
            Signal::Logs => self.logs.as_ref(),
        }
    }

    /// The consumer of `signal`, for a receiver of that signal alone (`type_name`); a build
    /// error when no pipeline of it takes from the receiver.
    pub fn only(
        &self,
        signal: Signal,
        id: &ComponentId,
        type_name: &str,
    ) -> Result<Arc<dyn Consumer>, BuildError> {
        self.get(signal).cloned().ok_or_else(|| {
            BuildError::new(
                id,
                format!("the {type_name} receiver only feeds {signal} pipelines"),
            )
        })
    }

    pub fn set(&mut self, signal: Signal, consumer: Arc<dyn Consumer>) {
        let slot = match signal {
            Signal::Traces => &mut self.traces,
            Signal::Metrics => &mut self.metrics,
            Signal::Logs => &mut self.logs,
        };
        *slot = Some(consumer);
    }

    pub fn with(mut self, signal: Signal, consumer: Arc<dyn Consumer>) -> Self {
        self.set(signal, consumer);
        self
    }

    /// The signals that have a consumer.
    pub fn signals(&self) -> Vec<Signal> {
        Signal::ALL
            .into_iter()
            .filter(|s| self.get(*s).is_some())
            .collect()
    }
}

/// How metrics reach an exporter, or leave a connector. Every metrics exporter takes encoded
/// OTLP batches (from receivers, processors, `forward`, and from connectors that push).
/// `Sources` on an exporter means it can also read connector stores in place at scrape or
/// flush time; on a connector, that it keeps such a store (span metrics) and pushes batches
/// only to pipelines with an exporter that cannot read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsFlow {
    Batches,
    Sources,
}

pub trait ReceiverFactory: FactoryInfo {
    /// Signals it can produce.
    fn signals(&self) -> &'static [Signal];
    /// Binds sockets and starts serving; batches of each signal go to its consumer in
    /// `next`. A signal without one is answered as otelcol does when no pipeline takes it.
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<Box<dyn RunningComponent>>;
}

pub trait ProcessorFactory: FactoryInfo {
    fn signals(&self) -> &'static [Signal];
    /// Whether it may change or drop data. A metrics pipeline with such a processor takes a
    /// connector's metrics as pushed batches through it, instead of letting its exporters
    /// read the connector's store in place past it.
    fn edits_data(&self) -> bool {
        true
    }
    /// otelcol's `MutatesData` capability, shown on `zpages`: whether it may change the data
    /// it is handed (a batcher that regroups requests does, in otelcol's terms).
    fn mutates_data(&self) -> bool {
        self.edits_data()
    }
    /// The bytes of request bodies the receivers in front of it should hold in flight at
    /// most (the `memory_limiter`'s spike allowance), if it has a view on that.
    fn body_budget(&self, _config: &ComponentConfig) -> Option<u64> {
        None
    }
    /// Wraps `next` in this processor for a pipeline of `signal`. Processors are built per
    /// pipeline, as in otelcol.
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)>;
}

pub trait ExporterFactory: FactoryInfo {
    /// Signals it can take.
    fn signals(&self) -> &'static [Signal];
    /// How it takes metrics, when [`signals`](Self::signals) has them.
    fn metrics_flow(&self) -> MetricsFlow {
        MetricsFlow::Batches
    }
    /// Builds the exporter of one signal: one instance (queue, connections, counters) per
    /// exporter id and signal, shared by every pipeline of that signal that lists it.
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let _ = ctx;
        let id = config.id().clone();
        Box::pin(async move { Err(BuildError::new(&id, format!("does not export {signal}"))) })
    }
    /// Builds a metrics exporter of [`MetricsFlow::Sources`]: it reads `sources` (the
    /// connectors' stores of every metrics pipeline it is in) and takes the OTLP metrics
    /// batches of those pipelines through the returned consumer.
    fn build_metrics_reader(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let _ = (ctx, sources);
        let id = config.id().clone();
        Box::pin(async move { Err(BuildError::new(&id, "does not read metric sources")) })
    }
}

/// What a connector is made of once built.
pub struct ConnectorParts {
    /// Its exporter side, in the pipelines it is an exporter of.
    pub input: Arc<dyn Consumer>,
    /// Its receiver side when it keeps metrics to be read ([`MetricsFlow::Sources`]).
    pub metrics: Option<Arc<dyn MetricsSource>>,
    pub running: Box<dyn RunningComponent>,
}

pub trait ConnectorFactory: FactoryInfo {
    /// (signal consumed, signal produced) pairs it supports.
    fn signals(&self) -> &'static [(Signal, Signal)];
    /// How its metrics output leaves it.
    fn metrics_flow(&self) -> MetricsFlow {
        MetricsFlow::Batches
    }
    /// `next` holds, per produced signal, the pipelines it is a receiver of (bound once the
    /// graph is built; nothing flows before).
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<ConnectorParts>;
}

pub trait ExtensionFactory: FactoryInfo {
    /// Starts the extension; what it offers other components goes in the capabilities.
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)>;
}

/// Every component type the binary knows, by kind and type name (aliases included).
#[derive(Default, Clone)]
pub struct Factories {
    pub receivers: BTreeMap<&'static str, Arc<dyn ReceiverFactory>>,
    pub processors: BTreeMap<&'static str, Arc<dyn ProcessorFactory>>,
    pub exporters: BTreeMap<&'static str, Arc<dyn ExporterFactory>>,
    pub connectors: BTreeMap<&'static str, Arc<dyn ConnectorFactory>>,
    pub extensions: BTreeMap<&'static str, Arc<dyn ExtensionFactory>>,
}

macro_rules! register {
    ($fn_name:ident, $field:ident, $trait:ident) => {
        pub fn $fn_name(&mut self, factory: impl $trait + 'static) -> &mut Self {
            let factory: Arc<dyn $trait> = Arc::new(factory);
            self.$field.insert(factory.type_name(), factory.clone());
            for alias in factory.aliases() {
                self.$field.insert(alias, factory.clone());
            }
            self
        }
    };
}

impl Factories {
    register!(receiver, receivers, ReceiverFactory);
    register!(processor, processors, ProcessorFactory);
    register!(exporter, exporters, ExporterFactory);
    register!(connector, connectors, ConnectorFactory);
    register!(extension, extensions, ExtensionFactory);

    /// Type names known for a kind (aliases included), for error messages.
    pub fn known(&self, kind: ComponentKind) -> Vec<&'static str> {
        match kind {
            ComponentKind::Receiver => self.receivers.keys().copied().collect(),
            ComponentKind::Processor => self.processors.keys().copied().collect(),
            ComponentKind::Exporter => self.exporters.keys().copied().collect(),
            ComponentKind::Connector => self.connectors.keys().copied().collect(),
            ComponentKind::Extension => self.extensions.keys().copied().collect(),
        }
    }

    /// The validator of a type of some kind, if known.
    pub fn info(&self, kind: ComponentKind, type_name: &str) -> Option<&dyn FactoryInfo> {
        match kind {
            ComponentKind::Receiver => self.receivers.get(type_name).map(|f| f.as_ref() as _),
            ComponentKind::Processor => self.processors.get(type_name).map(|f| f.as_ref() as _),
            ComponentKind::Exporter => self.exporters.get(type_name).map(|f| f.as_ref() as _),
            ComponentKind::Connector => self.connectors.get(type_name).map(|f| f.as_ref() as _),
            ComponentKind::Extension => self.extensions.get(type_name).map(|f| f.as_ref() as _),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_component_ids() {
        let id = ComponentId::parse("otlp/tempo").expect("valid");
        assert_eq!(id.type_name(), "otlp");
        assert_eq!(id.name(), Some("tempo"));
        assert_eq!(id.to_string(), "otlp/tempo");
        assert_eq!(
            ComponentId::parse("spanmetrics").expect("valid").name(),
            None
        );
        assert!(ComponentId::parse("/x").is_err());
        assert!(ComponentId::parse("otlp/").is_err());
        assert!(ComponentId::parse("ot lp").is_err());
    }
}

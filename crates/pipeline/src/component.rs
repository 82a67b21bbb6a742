//! Component ids, the factory traits every component crate implements, and the handle of a
//! running component.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use crate::config::{ComponentConfig, ConfigError};
use crate::consumer::TracesConsumer;
use crate::extension::{ExtensionCapabilities, Extensions};
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
}

impl BuildContext {
    pub fn new(telemetry: Telemetry) -> Self {
        Self {
            telemetry,
            extensions: Extensions::default(),
            status: PipelineStatus::default(),
        }
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

pub type BuildResult<T> = BoxFuture<'static, Result<T, BuildError>>;

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
    /// Extensions this config refers to (`auth.authenticator`, `sending_queue.storage`), as
    /// (key path relative to the component, extension id), so `redline validate` can check
    /// they are defined and enabled in `service.extensions`. Only called on a valid config.
    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        let _ = config;
        Vec::new()
    }
}

pub trait ReceiverFactory: FactoryInfo {
    /// Signals it can produce.
    fn signals(&self) -> &'static [Signal];
    /// Binds sockets and starts serving; batches go to `next`.
    fn build_traces(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: Arc<dyn TracesConsumer>,
    ) -> BuildResult<Box<dyn RunningComponent>>;
}

pub trait ProcessorFactory: FactoryInfo {
    fn signals(&self) -> &'static [Signal];
    /// Wraps `next` in this processor for a traces pipeline.
    fn build_traces(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: Arc<dyn TracesConsumer>,
    ) -> BuildResult<(Arc<dyn TracesConsumer>, Box<dyn RunningComponent>)>;
}

pub trait ExporterFactory: FactoryInfo {
    /// Signals it can take.
    fn signals(&self) -> &'static [Signal];
    fn build_traces(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
    ) -> BuildResult<(Arc<dyn TracesConsumer>, Box<dyn RunningComponent>)> {
        let _ = ctx;
        let id = config.id().clone();
        Box::pin(async move { Err(BuildError::new(&id, "does not export traces")) })
    }
    fn build_metrics(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        let _ = (ctx, sources);
        let id = config.id().clone();
        Box::pin(async move { Err(BuildError::new(&id, "does not export metrics")) })
    }
}

/// What a traces-to-metrics connector is made of once built.
pub struct ConnectorParts {
    /// Its exporter side, in traces pipelines.
    pub traces: Arc<dyn TracesConsumer>,
    /// Its receiver side, read by the exporters of metrics pipelines.
    pub metrics: Arc<dyn MetricsSource>,
    pub running: Box<dyn RunningComponent>,
}

pub trait ConnectorFactory: FactoryInfo {
    /// (signal consumed, signal produced) pairs it supports.
    fn signals(&self) -> &'static [(Signal, Signal)];
    fn build(&self, config: &ComponentConfig, ctx: &BuildContext) -> BuildResult<ConnectorParts>;
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

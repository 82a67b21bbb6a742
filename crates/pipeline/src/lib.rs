//! Pipeline core: the otelcol-compatible config model, component ids and factories, the
//! consumer edges data travels over, the metrics pull interface, and the service that builds
//! a graph of components, starts it in reverse order and shuts it down in order.
//!
//! This crate knows no concrete component: receivers, connectors and exporters live in their
//! own crates and depend on this one, never on each other.

pub mod batch;
pub mod body_budget;
pub mod client;
pub mod client_tls;
pub mod component;
pub mod config;
pub mod consumer;
pub mod duration;
pub mod edit;
pub mod endpoint;
pub mod extension;
pub mod host;
pub mod metrics;
pub mod only_bool;
pub mod percent;
pub mod prom_names;
pub mod retry;
pub mod rpc_status;
pub mod service;
pub mod status;
mod system_ca;
pub mod telemetry;
pub mod tls;
pub mod user_file;

pub use batch::Batch;
pub use client::ClientMetadata;
pub use component::{
    BuildContext, BuildError, ComponentId, ComponentKind, ConnectorFactory, ConnectorParts,
    ExporterFactory, ExtensionFactory, Factories, MetricsFlow, ProcessorFactory, ReceiverFactory,
    RunningComponent, ShutdownError, Signal, SignalConsumers,
};
pub use config::{CheckAll, ComponentConfig, ConfigError, Invalid};
pub use consumer::{
    Consumer, Fanout, LateBound, Refused, Reservation, SpanTap, TapId, TapWalk, TapWalks,
};
pub use metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint, STALE_NAN,
};
pub use service::{Service, StartError, Warning};

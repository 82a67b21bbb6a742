//! What the running service is made of, for extensions that show it to people (`zpages`):
//! the build, the feature gates as the command line left them, the pipelines as built and the
//! extensions. Described once at start from the validated config; it never changes after.

use std::time::SystemTime;

use crate::component::{Factories, Signal};
use crate::config::Config;

/// Who built the binary, as otelcol's `component.BuildInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    pub command: String,
    pub description: String,
    pub version: String,
}

/// One feature gate and the state the command line left it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureGate {
    pub id: &'static str,
    pub enabled: bool,
    /// otelcol's stage: `Alpha`, `Beta` or `Stable`.
    pub stage: &'static str,
    /// What Redline does with the gate, for the reader of the page.
    pub redline: &'static str,
}

/// A pipeline as built: component ids in the order they run, a connector marked as such.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineSummary {
    pub id: String,
    pub signal: Signal,
    /// otelcol's `MutatesData` capability of the pipeline: whether one of its processors may
    /// change data in place.
    pub mutates_data: bool,
    pub receivers: Vec<String>,
    pub processors: Vec<String>,
    pub exporters: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct HostInfo {
    pub build: BuildInfo,
    pub feature_gates: Vec<FeatureGate>,
    pub pipelines: Vec<PipelineSummary>,
    /// Ids of the extensions `service.extensions` starts, in its order.
    pub extensions: Vec<String>,
    pub started_at: SystemTime,
}

impl Default for HostInfo {
    fn default() -> Self {
        Self {
            build: BuildInfo::default(),
            feature_gates: Vec::new(),
            pipelines: Vec::new(),
            extensions: Vec::new(),
            started_at: SystemTime::now(),
        }
    }
}

/// otelcol's suffix for a connector in a pipeline's receiver or exporter list.
const CONNECTOR: &str = " (connector)";

impl HostInfo {
    /// Fills in the pipelines and extensions of `config`, which has been validated.
    pub fn describe(mut self, config: &Config, factories: &Factories) -> Self {
        let named = |id: &crate::ComponentId| {
            if config.is_connector(id) {
                format!("{id}{CONNECTOR}")
            } else {
                id.to_string()
            }
        };
        self.pipelines = config
            .service
            .pipelines
            .iter()
            .map(|p| PipelineSummary {
                id: p.id.clone(),
                signal: p.signal,
                mutates_data: p.processors.iter().any(|(id, _)| {
                    factories
                        .processors
                        .get(id.type_name())
                        .is_none_or(|f| f.mutates_data())
                }),
                receivers: p.receivers.iter().map(|(id, _)| named(id)).collect(),
                processors: p.processors.iter().map(|(id, _)| id.to_string()).collect(),
                exporters: p.exporters.iter().map(|(id, _)| named(id)).collect(),
            })
            .collect();
        self.extensions = config
            .service
            .extensions
            .iter()
            .map(|(id, _)| id.to_string())
            .collect();
        self
    }
}

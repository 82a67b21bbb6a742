//! otelcol-compatible configuration: YAML with positions, `${...}` references expanded, typed
//! component configs whose errors name the file, line and key path.

mod de;
mod error;
mod every_problem;
mod expand;
mod load;
mod node;
mod secret;
mod sources;
mod telemetry;
mod telemetry_logs;
mod telemetry_metrics;
#[cfg(test)]
mod telemetry_tests;
#[cfg(test)]
mod tests;
mod unsupported;
mod yaml;
mod yaml_relax;

pub use error::{CheckAll, ConfigError, Invalid};
pub use load::{
    first_problem, load_sources, load_sources_lenient, load_sources_lenient_with_env, load_str,
    load_str_lenient, load_str_with_env, problems_text, Config, ConfigErrors, PipelineConfig,
    ServiceConfig,
};
pub use node::{Mark, Node, NodeValue};
pub use secret::Secret;
pub use sources::{ListMerge, Origins, Source};
pub use telemetry::{
    AttributeValue, LogOutput, LogsConfig, LogsSampling, MetricsTelemetryConfig, OtlpCompression,
    OtlpProtocol, OtlpPushConfig, PeriodicReaderConfig, PushExporterConfig, TelemetryConfig,
    TelemetryResource, Temporality,
};
pub use unsupported::{present, Unsupported};

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::component::{ComponentId, ComponentKind};

/// One component's section of the config file, kept as a positioned YAML tree until the
/// component's factory parses it into its own `Config` type.
#[derive(Clone, Debug)]
pub struct ComponentConfig {
    id: ComponentId,
    kind: ComponentKind,
    node: Node,
    file: Arc<str>,
    /// Where the component's id is written: errors about the section as a whole point here,
    /// since an empty section's node has no useful position of its own.
    mark: Mark,
}

impl ComponentConfig {
    pub fn new(kind: ComponentKind, id: ComponentId, node: Node, file: Arc<str>) -> Self {
        let mark = node.mark;
        Self {
            id,
            kind,
            node,
            file,
            mark,
        }
    }

    /// Sets the position of the component's id key (the loader does; tests need not).
    pub fn with_mark(mut self, mark: Mark) -> Self {
        self.mark = mark;
        self
    }

    pub fn id(&self) -> &ComponentId {
        &self.id
    }

    pub fn kind(&self) -> ComponentKind {
        self.kind
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Position of the component's id in the file.
    pub fn mark(&self) -> Mark {
        self.mark
    }

    /// Key path of this component in the file, e.g. `connectors.spanmetrics`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.kind.section(), self.id)
    }

    /// Deserializes this component's section into `T`. An empty section (`spanmetrics:`)
    /// deserializes like an empty map, so every field takes its default. Errors name the
    /// dotted path of the offending key and its position.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        de::from_node(&self.node, &self.file, &self.path(), self.mark)
    }

    /// [`ComponentConfig::invalid`] for a problem the component's own checks found.
    pub fn locate(&self, problem: Invalid) -> ConfigError {
        self.invalid(&problem.key_path, problem.reason)
    }

    /// An error about the value at `key_path` (dotted, relative to this component, with `[i]`
    /// for list items; empty for the component itself), located at that key's line when the
    /// key is present, else at the nearest enclosing key that is.
    pub fn invalid(&self, key_path: &str, reason: impl std::fmt::Display) -> ConfigError {
        let full = if key_path.is_empty() {
            self.path()
        } else if key_path.starts_with('[') {
            format!("{}{}", self.path(), key_path)
        } else {
            format!("{}.{}", self.path(), key_path)
        };
        let mark = find_mark(&self.node, key_path).unwrap_or(self.mark);
        ConfigError::new(
            Some(self.file.clone()),
            Some(mark),
            full,
            reason.to_string(),
        )
    }
}

/// Position of the deepest key of `path` present under `node`.
fn find_mark(node: &Node, path: &str) -> Option<Mark> {
    deepest_key(node, path).map(|(_, mark)| mark)
}

/// How many segments of the dotted `path` (`[i]` for list items) are present under `node`,
/// and the position of the deepest. Keys may themselves contain dots (`service.name` as an
/// attribute key), so each map level tries every key that is a prefix of the rest of the
/// path and keeps the one that leads deepest.
pub(super) fn deepest_key(node: &Node, path: &str) -> Option<(usize, Mark)> {
    let path = path.strip_prefix('.').unwrap_or(path);
    if path.is_empty() {
        return None;
    }
    let below = |child: &Node, rest: &str, here: Mark| match deepest_key(child, rest) {
        Some((depth, mark)) => (depth + 1, mark),
        None => (1, here),
    };
    match &node.value {
        NodeValue::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| {
                let rest = path.strip_prefix(yaml::key_text(k))?;
                (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
                    .then(|| below(v, rest, yaml::key_mark_for(k, v)))
            })
            .fold(None, |best: Option<(usize, Mark)>, found| match best {
                Some(b) if b.0 >= found.0 => Some(b),
                _ => Some(found),
            }),
        NodeValue::Seq(items) => {
            let (index, rest) = path.strip_prefix('[')?.split_once(']')?;
            let item = items.get(index.parse::<usize>().ok()?)?;
            Some(below(item, rest, item.mark))
        }
        NodeValue::Null | NodeValue::Scalar { .. } => None,
    }
}

//! otelcol-compatible configuration: YAML with positions, `${env:VAR}` expansion, typed
//! component configs whose errors name the file, line and key path.

mod error;
mod node;

pub use error::ConfigError;
pub use node::{Mark, Node, NodeValue};

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
}

impl ComponentConfig {
    pub fn new(kind: ComponentKind, id: ComponentId, node: Node, file: Arc<str>) -> Self {
        Self {
            id,
            kind,
            node,
            file,
        }
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

    /// Key path of this component in the file, e.g. `connectors.spanmetrics`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.kind.section(), self.id)
    }

    /// Deserializes this component's section into `T`. An empty section (`spanmetrics:`)
    /// deserializes like an empty map, so every field takes its default.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let _ = &self.node;
        Err(self.invalid("", "config parsing is not wired yet"))
    }

    /// An error about the value at `key_path` (dotted, relative to this component; empty for
    /// the component itself), located at that key's line when the key is present.
    pub fn invalid(&self, key_path: &str, reason: impl std::fmt::Display) -> ConfigError {
        let full = if key_path.is_empty() {
            self.path()
        } else {
            format!("{}.{}", self.path(), key_path)
        };
        ConfigError::new(Some(self.file.clone()), None, full, reason.to_string())
    }
}

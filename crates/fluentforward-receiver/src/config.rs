//! otelcol's `fluent_forward` receiver section: one key.

use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

/// `receivers.fluent_forward` (or its older name `fluentforward`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`: events over TCP, heartbeats over UDP on the same port.
    #[serde(default)]
    pub endpoint: String,
}

impl Config {
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        let parsed: Config = config.parse()?;
        parsed.check(config)?;
        Ok(parsed)
    }

    pub fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let endpoint = self.endpoint.trim();
        if endpoint.is_empty() {
            // otelcol then listens on a random port of every interface, which no client finds.
            return Err(config.invalid(
                "endpoint",
                "must be set (`host:port`, e.g. 0.0.0.0:8006, where Fluent Bit's forward output sends)",
            ));
        }
        if endpoint.starts_with('/') || endpoint.starts_with("unix://") {
            return Err(config.invalid(
                "endpoint",
                "a unix socket is an otelcol setting Redline does not support yet (only `host:port` is)",
            ));
        }
        redline_pipeline::endpoint::split_listen_endpoint(endpoint)
            .map(|_| ())
            .map_err(|e| config.invalid("endpoint", e))
    }
}

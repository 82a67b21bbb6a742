//! otelcol-contrib's `resource_detection` processor (alias `resourcedetection`) with the
//! `env` and `system` detectors, for traces, metrics and logs.
//!
//! Detection runs once, when the processor is built; a detector that fails stops the start,
//! as in otelcol. Each batch then gets the detected attributes merged into every resource
//! (`override: true`, the default, replaces values already there) and the detected schema
//! URL where a resource group has none. Only resources are rewritten, spliced into the
//! request; a batch whose resources already hold everything travels on as its bytes.

mod config;
mod env;
mod merge;
pub mod system;

pub use config::{Config, Detector, RetryConfig};
pub use env::{EnvError, DEPRECATED_ENV_VAR, ENV_VAR};
pub use merge::{Detection, DetectionEditor};
pub use system::{Files, LocalFiles, SystemConfig, SystemError};

use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue};
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::build_editor;
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};

const TYPE: &str = "resource_detection";
const DEPRECATED_TYPE: &str = "resourcedetection";

/// A detector that failed at start.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("env detector: {0}")]
    Env(#[from] EnvError),
    #[error("system detector: {0}")]
    System(#[from] SystemError),
}

/// Parses and validates a section: the config and its detectors in order.
pub fn parse(config: &ComponentConfig) -> Result<(Config, Vec<Detector>), ConfigError> {
    let parsed = config.parse::<Config>()?;
    let detectors = parsed.validate(config)?;
    Ok((parsed, detectors))
}

/// Runs `detectors` in order against the environment `lookup` and the machine's `files`,
/// merging their results the first-wins way otelcol merges them.
pub fn detect(
    config: &Config,
    detectors: &[Detector],
    lookup: &dyn Fn(&str) -> Option<String>,
    files: &dyn Files,
) -> Result<Detection, DetectError> {
    let mut detection = Detection::default();
    for detector in detectors {
        let (found, schema_url): (Vec<KeyValue>, &str) = match detector {
            Detector::Env => {
                let pairs = env::detect(lookup)?;
                let attrs = pairs
                    .into_iter()
                    .map(|(k, v)| kv(k, Value::StringValue(v)))
                    .collect();
                (attrs, "")
            }
            Detector::System => {
                let found = system::detect(&config.system, files)?;
                let attrs = found
                    .into_iter()
                    .map(|(k, v)| {
                        let value = match v {
                            system::Detected::Str(s) => Value::StringValue(s),
                            system::Detected::Int(i) => Value::IntValue(i),
                            system::Detected::List(items) => Value::ArrayValue(ArrayValue {
                                values: items
                                    .into_iter()
                                    .map(|s| AnyValue {
                                        value: Some(Value::StringValue(s)),
                                    })
                                    .collect(),
                            }),
                        };
                        kv(k, value)
                    })
                    .collect();
                (attrs, system::SCHEMA_URL)
            }
        };
        if detection.schema_url.is_empty() {
            detection.schema_url = schema_url.to_owned();
        }
        merge::merge_attributes(&mut detection.attributes, &found, false);
    }
    Ok(detection)
}

fn kv(key: String, value: Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub struct ResourceDetectionFactory;

impl FactoryInfo for ResourceDetectionFactory {
    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn aliases(&self) -> &'static [&'static str] {
        &[DEPRECATED_TYPE]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(drop)
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        if config.id().type_name() == DEPRECATED_TYPE {
            vec![format!(
                "the component type {DEPRECATED_TYPE:?} is deprecated; use {TYPE:?}"
            )]
        } else {
            Vec::new()
        }
    }
}

impl ProcessorFactory for ResourceDetectionFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            let id = config.id();
            let (cfg, detectors) = parse(config).map_err(|e| e.to_string())?;
            let lookup = |name: &str| std::env::var(name).ok();
            let detection =
                detect(&cfg, &detectors, &lookup, &LocalFiles).map_err(|e| e.to_string())?;
            tracing::info!(
                processor = %id,
                signal = signal.as_str(),
                attributes = ?detection.attributes.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
                schema_url = %detection.schema_url,
                "resource_detection: detected resource information"
            );
            Ok::<_, String>(DetectionEditor::new(
                id.to_string(),
                detection,
                cfg.override_existing,
            ))
        })
    }
}

#[cfg(test)]
mod tests;

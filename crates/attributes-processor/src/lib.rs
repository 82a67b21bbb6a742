//! otelcol-contrib's `resource` and `attributes` processors, for traces, metrics and logs.
//!
//! Both run the same action engine ([`AttrActions`], otelcol's `attraction`): `resource` on
//! each resource's attributes, `attributes` on the attributes of every span, metric data
//! point or log record that its `include` / `exclude` sections select ([`Filter`]). Each is a
//! [`BatchEditor`](redline_pipeline::edit::BatchEditor): a batch no action changed travels on
//! as its original bytes. `resource` splices new resources into the request and leaves every
//! item's bytes alone; `attributes` decodes and re-encodes the whole request when it changes
//! something.

mod action;
mod editor;

pub use action::{ActionConfig, ActionConfigError, ActionError, AttrActions};
pub use editor::{AttributesEditor, ResourceEditor};
pub use redline_filter_match::{
    AttributeMatch, ConfigValue, Filter, Kind, LibraryMatch, MatchError, MatchProperties,
    RegexError, SeverityNumberMatch,
};

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::build_editor;
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};
use serde::Deserialize;

/// The `resource` processor's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    #[serde(default)]
    pub attributes: Vec<ActionConfig>,
}

/// The `attributes` processor's settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    #[serde(default)]
    pub include: Option<MatchProperties>,
    #[serde(default)]
    pub exclude: Option<MatchProperties>,
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
}

/// Parses and validates a `resource` section into its actions.
pub fn resource_actions(config: &ComponentConfig) -> Result<AttrActions, ConfigError> {
    let parsed = config.parse::<ResourceConfig>()?;
    compile_actions(config, "attributes", &parsed.attributes)
}

/// Parses and validates an `attributes` section.
pub fn attributes_config(
    config: &ComponentConfig,
) -> Result<(AttributesConfig, AttrActions), ConfigError> {
    let parsed = config.parse::<AttributesConfig>()?;
    let actions = compile_actions(config, "actions", &parsed.actions)?;
    Ok((parsed, actions))
}

fn compile_actions(
    config: &ComponentConfig,
    list: &str,
    actions: &[ActionConfig],
) -> Result<AttrActions, ConfigError> {
    if actions.is_empty() {
        return Err(config.invalid(list, format!("missing required field \"{list}\"")));
    }
    AttrActions::new(actions)
        .map_err(|e| config.invalid(&format!("{list}[{}].{}", e.index, e.field), e.error))
}

pub struct ResourceProcessorFactory;

impl FactoryInfo for ResourceProcessorFactory {
    fn type_name(&self) -> &'static str {
        "resource"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        resource_actions(config).map(drop)
    }
}

impl ProcessorFactory for ResourceProcessorFactory {
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
            resource_actions(config).map(|actions| ResourceEditor {
                id: config.id().to_string(),
                actions,
            })
        })
    }
}

pub struct AttributesProcessorFactory;

impl FactoryInfo for AttributesProcessorFactory {
    fn type_name(&self) -> &'static str {
        "attributes"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        attributes_config(config).map(drop)
    }
}

impl ProcessorFactory for AttributesProcessorFactory {
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
        let kind = match signal {
            Signal::Traces => Kind::Spans,
            Signal::Metrics => Kind::Metrics,
            Signal::Logs => Kind::Logs,
        };
        build_editor(config, ctx, signal, next, || {
            let (cfg, actions) = attributes_config(config).map_err(|e| e.to_string())?;
            let filter = Filter::new(cfg.include.as_ref(), cfg.exclude.as_ref(), kind)
                .map_err(|e| format!("{} pipeline: {e}", signal.as_str()))?;
            Ok::<_, String>(AttributesEditor {
                id: config.id().to_string(),
                signal,
                actions,
                filter,
            })
        })
    }
}

#[cfg(test)]
mod tests;

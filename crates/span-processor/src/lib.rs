//! otelcol-contrib's `span` processor: renames spans from their attributes
//! (`name.from_attributes`), extracts attributes from span names with named regex groups
//! (`name.to_attributes`), and sets span status (`status`), on the spans its `include` /
//! `exclude` sections select.
//!
//! It is a [`BatchEditor`](redline_pipeline::edit::BatchEditor): a request in which no span
//! changed travels on as the bytes the client sent; one that changed is decoded and
//! re-encoded whole.

mod editor;
mod rename;

pub use editor::SpanEditor;
pub use rename::{Rename, StatusEdit, ToAttributes};

use std::sync::Arc;

use redline_filter_match::{Filter, Kind, MatchProperties};
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::build_editor;
use redline_pipeline::{
    BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, RunningComponent,
    Signal,
};
use serde::Deserialize;

/// The `span` processor's settings, as otelcol's `spanprocessor.Config` names them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanConfig {
    #[serde(default)]
    pub include: Option<MatchProperties>,
    #[serde(default)]
    pub exclude: Option<MatchProperties>,
    #[serde(default)]
    pub name: NameConfig,
    #[serde(default)]
    pub status: Option<StatusConfig>,
}

/// `name`: how a span's name is made from its attributes, and attributes from its name.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameConfig {
    /// Attribute keys whose values, in this order, become the span's name; a span missing
    /// any of them keeps its name.
    #[serde(default)]
    pub from_attributes: Vec<String>,
    /// Put between the values of `from_attributes`.
    #[serde(default)]
    pub separator: String,
    #[serde(default)]
    pub to_attributes: Option<ToAttributesConfig>,
}

/// `name.to_attributes`: regexes whose named groups become attributes of the span.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToAttributesConfig {
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub break_after_match: bool,
    #[serde(default)]
    pub keep_original_name: bool,
}

/// `status`: the status every selected span gets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub description: String,
}

/// A `span` section checked and compiled: its edits and the spans they apply to.
pub struct Compiled {
    pub rename: Rename,
    pub filter: Filter,
}

/// Parses and checks a `span` section, reporting every problem it has.
pub fn compile(config: &ComponentConfig) -> Result<Compiled, Vec<ConfigError>> {
    let parsed = config.parse::<SpanConfig>().map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let rules = parsed
        .name
        .to_attributes
        .as_ref()
        .map_or(&[][..], |t| &t.rules);
    if parsed.name.from_attributes.is_empty() && rules.is_empty() && parsed.status.is_none() {
        errors.push(config.invalid(
            "name",
            "either \"from_attributes\" or \"to_attributes\" must be specified in \"name:\", \
             or \"status\" must be specified",
        ));
    }
    let status = parsed.status.as_ref().and_then(|s| {
        StatusEdit::new(&s.code, &s.description)
            .map_err(|(key, reason)| errors.push(config.invalid(key, reason)))
            .ok()
    });
    let to_attributes = parsed.name.to_attributes.as_ref().and_then(|t| {
        ToAttributes::new(t)
            .map_err(|failed| {
                for (index, e) in failed {
                    errors.push(config.invalid(&format!("name.to_attributes.rules[{index}]"), e));
                }
            })
            .ok()
    });
    // Each section alone, so an error names the one it is in.
    for (key, include, exclude) in [
        ("include", parsed.include.as_ref(), None),
        ("exclude", None, parsed.exclude.as_ref()),
    ] {
        if let Err(e) = Filter::new(include, exclude, Kind::Spans) {
            errors.push(config.invalid(key, e));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let filter = Filter::new(
        parsed.include.as_ref(),
        parsed.exclude.as_ref(),
        Kind::Spans,
    )
    .map_err(|e| vec![config.invalid("", e)])?;
    Ok(Compiled {
        rename: Rename {
            from_attributes: parsed.name.from_attributes,
            separator: parsed.name.separator,
            to_attributes,
            status,
        },
        filter,
    })
}

pub struct SpanProcessorFactory;

impl FactoryInfo for SpanProcessorFactory {
    fn type_name(&self) -> &'static str {
        "span"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::config::first_problem(self.validate_all(config))
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        compile(config).err().unwrap_or_default()
    }
}

impl ProcessorFactory for SpanProcessorFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            compile(config)
                .map(|c| SpanEditor::new(config.id().to_string(), c))
                .map_err(|errors| redline_pipeline::config::problems_text(&errors))
        })
    }
}

#[cfg(test)]
mod tests;

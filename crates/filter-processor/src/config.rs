//! The filter processor's settings: OTTL conditions per signal and context, in otelcol's two
//! spellings (`traces: {span: [...]}` and `trace_conditions: [{context, conditions}]`). The
//! legacy `include`/`exclude` match properties are named and refused: OTTL conditions
//! express all of them.

use redline_ottl::{ContextKind, ErrorMode};
use redline_pipeline::config::Unsupported;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// otelcol's default is `ignore`.
    #[serde(default = "ignore")]
    pub error_mode: ErrorMode,
    /// Legacy span matching (`include`/`exclude`).
    pub spans: Option<Unsupported>,
    #[serde(default)]
    pub traces: TraceFilters,
    #[serde(default)]
    pub metrics: MetricFilters,
    #[serde(default)]
    pub logs: LogFilters,
    pub profiles: Option<Unsupported>,
    #[serde(default)]
    pub trace_conditions: Vec<ContextConditions>,
    #[serde(default)]
    pub metric_conditions: Vec<ContextConditions>,
    #[serde(default)]
    pub log_conditions: Vec<ContextConditions>,
    pub profile_conditions: Option<Unsupported>,
}

fn ignore() -> ErrorMode {
    ErrorMode::Ignore
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFilters {
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default)]
    pub span: Vec<String>,
    #[serde(default)]
    pub spanevent: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricFilters {
    pub include: Option<Unsupported>,
    pub exclude: Option<Unsupported>,
    pub regexp: Option<Unsupported>,
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default)]
    pub metric: Vec<String>,
    #[serde(default)]
    pub datapoint: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogFilters {
    pub include: Option<Unsupported>,
    pub exclude: Option<Unsupported>,
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default)]
    pub log_record: Vec<String>,
}

/// One group of the `*_conditions` form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConditions {
    #[serde(default, deserialize_with = "context_name")]
    pub context: Option<ContextKind>,
    #[serde(default)]
    pub conditions: Vec<String>,
    pub error_mode: Option<ErrorMode>,
}

fn context_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ContextKind>, D::Error> {
    let name = String::deserialize(d)?;
    ContextKind::from_name(&name).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown context \"{name}\"; supported: resource, scope, span, spanevent, metric, datapoint, log"
            ))
        })
}

//! The filter processor's settings: OTTL conditions per signal and context, in otelcol's two
//! spellings (`traces: {span: [...]}` and `trace_conditions: [{context, conditions}]`), and
//! the legacy `include`/`exclude` match properties (`spans`, `metrics.include`, ...), read as
//! otelcol reads them (`legacy.rs`).

use redline_filter_match::{AttributeMatch, MatchProperties, RegexpCache};
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
    #[serde(default)]
    pub spans: LegacySpans,
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
    pub include: Option<MetricMatchProperties>,
    pub exclude: Option<MetricMatchProperties>,
    /// otelcol's regexp result cache: accepted, since a cache changes no result.
    pub regexp: Option<RegexpCache>,
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
    pub include: Option<LogMatchProperties>,
    pub exclude: Option<LogMatchProperties>,
    #[serde(default)]
    pub resource: Vec<String>,
    #[serde(default)]
    pub log_record: Vec<String>,
}

/// `spans`: otelcol's `filterconfig.MatchConfig`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacySpans {
    pub include: Option<MatchProperties>,
    pub exclude: Option<MatchProperties>,
}

/// `metrics.include` / `metrics.exclude`: otelcol's `filterconfig.MetricMatchProperties`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricMatchProperties {
    /// `strict`, `regexp` or `expr`; checked only where a property needs it, as otelcol does.
    #[serde(default)]
    pub match_type: String,
    #[serde(default)]
    pub regexp: Option<RegexpCache>,
    #[serde(default)]
    pub metric_names: Vec<String>,
    /// The `expr` language's expressions, which Redline refuses.
    #[serde(default)]
    pub expressions: Vec<String>,
    #[serde(default)]
    pub resource_attributes: Vec<AttributeMatch>,
}

/// `logs.include` / `logs.exclude`: otelcol's `LogMatchProperties`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogMatchProperties {
    #[serde(default)]
    pub match_type: String,
    #[serde(default)]
    pub resource_attributes: Vec<AttributeMatch>,
    #[serde(default)]
    pub record_attributes: Vec<AttributeMatch>,
    #[serde(default)]
    pub severity_texts: Vec<String>,
    #[serde(default)]
    pub severity_number: Option<LogSeverityNumber>,
    #[serde(default)]
    pub bodies: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSeverityNumber {
    /// A severity name (`INFO`, `warn3`, case-insensitive) or number (`"9"`).
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub match_undefined: bool,
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

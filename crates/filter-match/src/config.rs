//! The keys of an `include` / `exclude` section (otelcol's `filterconfig.MatchProperties`).

use serde::Deserialize;

use crate::ConfigValue;

use crate::{Kind, MatchError};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchProperties {
    /// `strict` or `regexp`; checked only where a property needs it, as otelcol does.
    #[serde(default)]
    pub match_type: String,
    /// Result caching only: matching is the same without it.
    #[serde(default)]
    pub regexp: Option<RegexpCache>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub span_names: Vec<String>,
    #[serde(default)]
    pub span_kinds: Vec<String>,
    #[serde(default)]
    pub log_bodies: Vec<String>,
    #[serde(default)]
    pub log_severity_texts: Vec<String>,
    #[serde(default)]
    pub log_severity_number: Option<SeverityNumberMatch>,
    #[serde(default)]
    pub metric_names: Vec<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeMatch>,
    #[serde(default)]
    pub resources: Vec<AttributeMatch>,
    #[serde(default)]
    pub libraries: Vec<LibraryMatch>,
}

/// otelcol's regexp result cache settings: accepted, since a cache changes no result.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexpCache {
    #[serde(default)]
    pub cacheenabled: bool,
    #[serde(default)]
    pub cachemaxnumentries: i64,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeMatch {
    #[serde(default)]
    pub key: String,
    /// Absent: the key only has to be present.
    #[serde(default)]
    pub value: Option<ConfigValue>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryMatch {
    #[serde(default)]
    pub name: String,
    /// Absent: any version; `""`: only an empty version.
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityNumberMatch {
    /// The lowest severity number that matches (9 is INFO).
    #[serde(default)]
    pub min: i32,
    /// Whether a record without a severity number matches.
    #[serde(default)]
    pub match_undefined: bool,
}

impl MatchProperties {
    /// otelcol's `ValidateForSpans` / `ValidateForLogs` / `ValidateForMetrics`.
    pub(super) fn check_for(&self, kind: Kind) -> Result<(), MatchError> {
        let invalid = |msg| Err(MatchError::InvalidForSignal(msg));
        match kind {
            Kind::Spans => {
                if !self.log_bodies.is_empty() {
                    return invalid("log_bodies should not be specified for trace spans");
                }
                if !self.log_severity_texts.is_empty() {
                    return invalid("log_severity_texts should not be specified for trace spans");
                }
                if self.log_severity_number.is_some() {
                    return invalid("log_severity_number should not be specified for trace spans");
                }
                if !self.metric_names.is_empty() {
                    return invalid("metric_names should not be specified for trace spans");
                }
                if self.services.is_empty()
                    && self.span_names.is_empty()
                    && self.attributes.is_empty()
                    && self.libraries.is_empty()
                    && self.resources.is_empty()
                    && self.span_kinds.is_empty()
                {
                    return invalid("at least one of \"attributes\", \"libraries\",  or \"resources\" field must be specified");
                }
            }
            Kind::Logs => {
                if !self.span_names.is_empty()
                    || !self.services.is_empty()
                    || !self.span_kinds.is_empty()
                    || !self.metric_names.is_empty()
                {
                    return invalid("services, span_names, span_kinds and metric_names are not valid for log records");
                }
                if self.attributes.is_empty()
                    && self.libraries.is_empty()
                    && self.resources.is_empty()
                    && self.log_bodies.is_empty()
                    && self.log_severity_texts.is_empty()
                    && self.log_severity_number.is_none()
                {
                    return invalid("at least one of \"attributes\", \"libraries\", \"span_kinds\", \"resources\", \"log_bodies\", \"log_severity_texts\" or \"log_severity_number\" field must be specified");
                }
            }
            Kind::Metrics => {
                if !self.log_bodies.is_empty()
                    || !self.log_severity_texts.is_empty()
                    || !self.span_names.is_empty()
                    || !self.services.is_empty()
                    || !self.span_kinds.is_empty()
                    || !self.attributes.is_empty()
                    || !self.libraries.is_empty()
                    || self.log_severity_number.is_some()
                {
                    return invalid("\"span_names\", \"span_kinds\", \"log_bodies\", \"log_severity_texts\", \"log_severity_number\", \"services\", \"attributes\" and \"libraries\" are not valid for metrics");
                }
                if self.metric_names.is_empty() && self.resources.is_empty() {
                    return invalid(
                        "at least one of \"metric_names\" or \"resources\" field must be specified",
                    );
                }
            }
        }
        Ok(())
    }
}

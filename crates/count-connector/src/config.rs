//! The `count` section as otelcol-contrib's countconnector reads it, checked and compiled
//! once: a metric per name in each section, its OTTL conditions compiled in the section's
//! context, its attributes with their defaults.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use redline_filter_match::ConfigValue;
use redline_ottl::{ConditionSet, ContextKind, ErrorMode};
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

/// A section of metrics to count, by metric name. A section left out, or set empty, keeps its
/// default metric, as otelcol's `Unmarshal` does.
type Section = Option<BTreeMap<String, Option<MetricInfo>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub spans: Section,
    #[serde(default)]
    pub spanevents: Section,
    #[serde(default)]
    pub metrics: Section,
    #[serde(default)]
    pub datapoints: Section,
    #[serde(default)]
    pub logs: Section,
    /// Checked like the others; Redline carries no profiles, so nothing reads it.
    #[serde(default)]
    pub profiles: Section,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricInfo {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    #[serde(default)]
    pub key: String,
    /// `null` is no default, as otelcol reads it.
    #[serde(default)]
    pub default_value: Option<ConfigValue>,
}

/// One metric to count: an item counts when every attribute has a value (its own, its
/// scope's, its resource's, or the default) and a condition matches (any item, without
/// conditions).
#[derive(Debug)]
pub(crate) struct Definition {
    pub name: String,
    pub description: String,
    pub condition: Option<ConditionSet>,
    pub attributes: Vec<Dimension>,
}

#[derive(Debug)]
pub(crate) struct Dimension {
    pub key: String,
    pub default: Option<AnyValue>,
}

/// Every metric of the connector, by the kind of item it counts.
#[derive(Debug)]
pub(crate) struct Definitions {
    pub spans: Vec<Definition>,
    pub span_events: Vec<Definition>,
    pub metrics: Vec<Definition>,
    pub data_points: Vec<Definition>,
    pub logs: Vec<Definition>,
}

/// A section's key, the context its conditions are compiled in (none for `profiles`), and
/// its default metric.
struct SectionKind {
    key: &'static str,
    context: Option<ContextKind>,
    default_name: &'static str,
    default_description: &'static str,
    takes_attributes: bool,
}

const SPANS: SectionKind = SectionKind {
    key: "spans",
    context: Some(ContextKind::Span),
    default_name: "trace.span.count",
    default_description: "The number of spans observed.",
    takes_attributes: true,
};
const SPAN_EVENTS: SectionKind = SectionKind {
    key: "spanevents",
    context: Some(ContextKind::SpanEvent),
    default_name: "trace.span.event.count",
    default_description: "The number of span events observed.",
    takes_attributes: true,
};
const METRICS: SectionKind = SectionKind {
    key: "metrics",
    context: Some(ContextKind::Metric),
    default_name: "metric.count",
    default_description: "The number of metrics observed.",
    takes_attributes: false,
};
const DATA_POINTS: SectionKind = SectionKind {
    key: "datapoints",
    context: Some(ContextKind::DataPoint),
    default_name: "metric.datapoint.count",
    default_description: "The number of data points observed.",
    takes_attributes: true,
};
const LOGS: SectionKind = SectionKind {
    key: "logs",
    context: Some(ContextKind::Log),
    default_name: "log.record.count",
    default_description: "The number of log records observed.",
    takes_attributes: true,
};
const PROFILES: SectionKind = SectionKind {
    key: "profiles",
    context: None,
    default_name: "profile.count",
    default_description: "The number of profiles observed.",
    takes_attributes: true,
};

/// Parses and compiles the section, or returns every problem in it.
pub(crate) fn compile(config: &ComponentConfig) -> Result<Definitions, Vec<ConfigError>> {
    let parsed: Config = config.parse().map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    let mut section =
        |kind: &SectionKind, given: &Section| compile_section(kind, given, &mut problems);
    let definitions = Definitions {
        spans: section(&SPANS, &parsed.spans),
        span_events: section(&SPAN_EVENTS, &parsed.spanevents),
        metrics: section(&METRICS, &parsed.metrics),
        data_points: section(&DATA_POINTS, &parsed.datapoints),
        logs: section(&LOGS, &parsed.logs),
    };
    section(&PROFILES, &parsed.profiles);
    if problems.is_empty() {
        Ok(definitions)
    } else {
        Err(problems
            .into_iter()
            .map(|(path, reason)| config.invalid(&path, reason))
            .collect())
    }
}

/// What otelcol takes silently but a user would want to know: a `profiles` section (Redline
/// carries no profiles), and an attribute key listed twice in one metric (no item can have
/// the set complete, so the metric never counts, in otelcol as here).
pub(crate) fn warnings(config: &ComponentConfig) -> Vec<String> {
    let Ok(parsed) = config.parse::<Config>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if parsed.profiles.as_ref().is_some_and(|p| !p.is_empty()) {
        out.push(
            "profiles: Redline carries no profiles; the section is checked but not used".to_owned(),
        );
    }
    let sections = [
        ("spans", &parsed.spans),
        ("spanevents", &parsed.spanevents),
        ("datapoints", &parsed.datapoints),
        ("logs", &parsed.logs),
        ("profiles", &parsed.profiles),
    ];
    for (key, section) in sections {
        for (name, info) in section.iter().flatten() {
            let attributes = info.as_ref().map_or(&[][..], |i| &i.attributes[..]);
            for (i, a) in attributes.iter().enumerate() {
                if attributes[..i].iter().any(|b| b.key == a.key) {
                    out.push(format!(
                        "{key}.{name}.attributes[{i}]: the key {:?} is listed twice, so the \
                         metric never counts anything",
                        a.key
                    ));
                }
            }
        }
    }
    out
}

fn compile_section(
    kind: &SectionKind,
    given: &Section,
    problems: &mut Vec<(String, String)>,
) -> Vec<Definition> {
    let given = match given {
        Some(metrics) if !metrics.is_empty() => metrics,
        _ => {
            return vec![Definition {
                name: kind.default_name.to_owned(),
                description: kind.default_description.to_owned(),
                condition: None,
                attributes: Vec::new(),
            }]
        }
    };
    let mut definitions = Vec::with_capacity(given.len());
    for (name, info) in given {
        let path = format!("{}.{name}", kind.key);
        if name.is_empty() {
            problems.push((kind.key.to_owned(), "metric name missing".to_owned()));
            continue;
        }
        let empty = MetricInfo::default();
        let info = info.as_ref().unwrap_or(&empty);
        let condition = conditions(kind, &path, &info.conditions, problems);
        let attributes = dimensions(kind, &path, &info.attributes, problems);
        if let (Some(condition), Some(attributes)) = (condition, attributes) {
            definitions.push(Definition {
                name: name.clone(),
                description: info.description.clone(),
                condition,
                attributes,
            });
        }
    }
    definitions
}

/// The compiled conditions (`Some(None)` without any), or `None` after noting problems.
fn conditions(
    kind: &SectionKind,
    path: &str,
    conditions: &[String],
    problems: &mut Vec<(String, String)>,
) -> Option<Option<ConditionSet>> {
    if conditions.is_empty() {
        return Some(None);
    }
    let Some(context) = kind.context else {
        // No profile context to compile in: the syntax is all that can be checked.
        let mut ok = true;
        for (i, text) in conditions.iter().enumerate() {
            if let Err(e) = redline_ottl::parse_condition(text) {
                problems.push((format!("{path}.conditions[{i}]"), e.to_string()));
                ok = false;
            }
        }
        return ok.then_some(None);
    };
    // otelcol compiles these with `ottl.PropagateError`: an evaluation error fails the request.
    match ConditionSet::compile(context, conditions, ErrorMode::Propagate) {
        Ok(set) => Some(Some(set)),
        Err(errors) => {
            for e in errors {
                let at = match conditions.iter().position(|c| *c == e.statement) {
                    Some(i) => format!("{path}.conditions[{i}]"),
                    None => format!("{path}.conditions"),
                };
                problems.push((at, e.to_string()));
            }
            None
        }
    }
}

fn dimensions(
    kind: &SectionKind,
    path: &str,
    attributes: &[AttributeConfig],
    problems: &mut Vec<(String, String)>,
) -> Option<Vec<Dimension>> {
    if !kind.takes_attributes && !attributes.is_empty() {
        problems.push((
            format!("{path}.attributes"),
            format!("attributes are not supported in the {} section", kind.key),
        ));
        return None;
    }
    let mut ok = true;
    for (i, a) in attributes.iter().enumerate() {
        if a.key.is_empty() {
            problems.push((
                format!("{path}.attributes[{i}].key"),
                "attribute key missing".to_owned(),
            ));
            ok = false;
        }
    }
    ok.then(|| {
        attributes
            .iter()
            .map(|a| Dimension {
                key: a.key.clone(),
                default: a.default_value.as_ref().map(ConfigValue::to_any_value),
            })
            .collect()
    })
}

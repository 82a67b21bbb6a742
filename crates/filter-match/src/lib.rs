//! `include` / `exclude` sections as the `attributes` and `filter` processors read them
//! (otelcol's legacy `filterspan`, `filterlog` and `filtermetric` matchers, the ones used
//! while their OTTL-bridge feature gates stay off, as they do by default).
//!
//! An item is selected unless it fails `include` or matches `exclude`. Which properties a
//! signal may use is checked when the processor is built for that signal, as otelcol does;
//! match types and patterns are only checked where a property needs them, also as otelcol
//! does (an `include` with only key-only `attributes` needs no `match_type`).

mod config;
mod set;
#[cfg(test)]
mod tests;
mod value;

pub use config::{AttributeMatch, LibraryMatch, MatchProperties, RegexpCache, SeverityNumberMatch};
pub use redline_go_regex::RegexError;
use redline_pdata_text::format_float_f;
use value::same_structure;
pub use value::ConfigValue;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use redline_otlp_wire::enums::SPAN_KIND_NAMES;

use set::FilterSet;

/// Why `include` / `exclude` cannot be used for a signal.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("{0}")]
    InvalidForSignal(&'static str),
    #[error("unrecognized match_type: '{0}', valid types are: [regexp strict]")]
    MatchType(String),
    #[error(transparent)]
    Regex(#[from] redline_go_regex::RegexError),
    #[error("can't have empty key in the list of attributes")]
    EmptyKey,
    #[error("match_type=regexp for {0:?} only supports Str, but found {1}")]
    RegexpNeedsString(String, &'static str),
    #[error("span_kinds string must match one of the standard span kinds when match_type=strict: [SPAN_KIND_CLIENT SPAN_KIND_CONSUMER SPAN_KIND_INTERNAL SPAN_KIND_PRODUCER SPAN_KIND_SERVER]")]
    SpanKind,
}

/// An `include` or `exclude` section compiled for one signal.
#[derive(Debug)]
struct Compiled {
    services: Option<FilterSet>,
    span_names: Option<FilterSet>,
    span_kinds: Option<FilterSet>,
    bodies: Option<FilterSet>,
    severity_texts: Option<FilterSet>,
    severity_number: Option<SeverityNumberMatch>,
    metric_names: Option<FilterSet>,
    libraries: Vec<(FilterSet, Option<FilterSet>)>,
    attributes: Vec<AttributeMatcher>,
    resources: Vec<AttributeMatcher>,
}

#[derive(Debug)]
struct AttributeMatcher {
    key: String,
    value: Expected,
}

#[derive(Debug)]
enum Expected {
    Present,
    Equal(AnyValue),
    Pattern(FilterSet),
}

/// Decides which items a processor selects.
#[derive(Debug, Default)]
pub struct Filter {
    include: Option<Compiled>,
    exclude: Option<Compiled>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Spans,
    Logs,
    Metrics,
}

impl Filter {
    /// Compiles `include` and `exclude` for `kind`, with otelcol's checks for that signal.
    pub fn new(
        include: Option<&MatchProperties>,
        exclude: Option<&MatchProperties>,
        kind: Kind,
    ) -> Result<Self, MatchError> {
        let compile = |p: Option<&MatchProperties>| p.map(|p| compile(p, kind)).transpose();
        Ok(Self {
            include: compile(include)?.flatten(),
            exclude: compile(exclude)?.flatten(),
        })
    }

    pub fn is_noop(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    fn keeps(&self, matches: impl Fn(&Compiled) -> bool) -> bool {
        self.include.as_ref().is_none_or(&matches) && !self.exclude.as_ref().is_some_and(matches)
    }

    pub fn span(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        span: &Span,
    ) -> bool {
        self.keeps(|c| {
            c.services
                .as_ref()
                .is_none_or(|f| f.matches(&service_name(resource)))
                && c.span_names.as_ref().is_none_or(|f| f.matches(&span.name))
                && c.span_kinds
                    .as_ref()
                    .is_none_or(|f| f.matches(span_kind(span.kind)))
                && c.common(&span.attributes, resource, scope)
        })
    }

    pub fn log(
        &self,
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
        log: &LogRecord,
    ) -> bool {
        self.keeps(|c| {
            c.bodies
                .as_ref()
                .is_none_or(|f| f.matches(&redline_pdata_text::as_string(log.body.as_ref())))
                && c.severity_texts
                    .as_ref()
                    .is_none_or(|f| f.matches(&log.severity_text))
                && c.severity_number
                    .as_ref()
                    .is_none_or(|n| n.matches(log.severity_number))
                && c.common(&log.attributes, resource, scope)
        })
    }

    /// The filter processor's metric sections (otelcol's `MetricMatchProperties`): by name
    /// only, each side given as its `match_type` and `metric_names`. A side without names
    /// selects nothing and is left out, as is one with `match_type: expr` (otelcol then reads
    /// `expressions`, whose language Redline refuses before this is built).
    pub fn metric_names(
        include: Option<(&str, &[String])>,
        exclude: Option<(&str, &[String])>,
    ) -> Result<Self, MatchError> {
        let compile = |side: Option<(&str, &[String])>| -> Result<Option<Compiled>, MatchError> {
            match side {
                Some((match_type, names)) if match_type != "expr" && !names.is_empty() => {
                    Ok(Some(Compiled {
                        metric_names: Some(FilterSet::new(match_type, names)?),
                        ..Compiled::empty()
                    }))
                }
                _ => Ok(None),
            }
        };
        Ok(Self {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// Metrics match on their name only: otelcol's legacy metric matcher reads neither
    /// `resources` nor anything else, although the config accepts `resources`.
    pub fn metric(&self, metric: &Metric) -> bool {
        self.keeps(|c| {
            c.metric_names
                .as_ref()
                .is_some_and(|f| f.matches(&metric.name))
        })
    }
}

impl SeverityNumberMatch {
    fn matches(&self, severity: i32) -> bool {
        if severity == 0 {
            self.match_undefined
        } else {
            severity >= self.min
        }
    }
}

impl Compiled {
    fn common(
        &self,
        attrs: &[KeyValue],
        resource: Option<&Resource>,
        scope: Option<&InstrumentationScope>,
    ) -> bool {
        let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
        for (name_set, version_set) in &self.libraries {
            if !name_set.matches(name) || !version_set.as_ref().is_none_or(|v| v.matches(version)) {
                return false;
            }
        }
        let resource_attrs = resource.map_or(&[][..], |r| &r.attributes[..]);
        if !self.resources.is_empty() && !attributes_match(&self.resources, resource_attrs) {
            return false;
        }
        attributes_match(&self.attributes, attrs)
    }
}

/// otelcol's `AttributesMatcher`: every listed key present, with the listed value where one
/// is given (equal for `strict`, a pattern for `regexp`).
#[derive(Debug)]
pub struct AttributesFilter(Vec<AttributeMatcher>);

impl AttributesFilter {
    /// `None` for an empty list, which otelcol leaves out (it would select everything).
    pub fn new(match_type: &str, list: &[AttributeMatch]) -> Result<Option<Self>, MatchError> {
        let matchers = attribute_matchers(match_type, list)?;
        Ok((!matchers.is_empty()).then_some(Self(matchers)))
    }

    pub fn matches(&self, attrs: &[KeyValue]) -> bool {
        attributes_match(&self.0, attrs)
    }
}

fn attributes_match(matchers: &[AttributeMatcher], attrs: &[KeyValue]) -> bool {
    if matchers.is_empty() {
        return true;
    }
    matchers.iter().all(|m| {
        let Some(kv) = attrs.iter().find(|kv| kv.key == m.key) else {
            return false;
        };
        let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
        match &m.value {
            Expected::Present => true,
            Expected::Pattern(set) => scalar_text(value).is_some_and(|t| set.matches(&t)),
            Expected::Equal(want) => equal(want.value.as_ref(), value),
        }
    })
}

/// A scalar as the regexp matcher sees it; `None` for other kinds (which never match).
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::StringValue(s) => Some(s.clone()),
        Value::BoolValue(b) => Some(b.to_string()),
        Value::DoubleValue(d) => Some(format_float_f(*d)),
        Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn equal(want: Option<&Value>, got: Option<&Value>) -> bool {
    match (want, got) {
        (Some(Value::DoubleValue(a)), Some(Value::DoubleValue(b))) => a == b,
        (Some(Value::StringValue(a)), Some(Value::StringValue(b))) => a == b,
        (Some(Value::BoolValue(a)), Some(Value::BoolValue(b))) => a == b,
        (Some(Value::IntValue(a)), Some(Value::IntValue(b))) => a == b,
        _ => same_structure(want, got),
    }
}

/// `service.name` as otelcol's span matcher reads it, with its stand-in when absent.
fn service_name(resource: Option<&Resource>) -> std::borrow::Cow<'_, str> {
    resource
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .map_or(std::borrow::Cow::Borrowed("<nil-service-name>"), |kv| {
            redline_pdata_text::as_string(kv.value.as_ref())
        })
}

fn span_kind(kind: i32) -> &'static str {
    usize::try_from(kind)
        .ok()
        .and_then(|k| SPAN_KIND_NAMES.get(k))
        .copied()
        .unwrap_or("")
}

const STRICT_SPAN_KINDS: [&str; 5] = [
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CONSUMER",
    "SPAN_KIND_PRODUCER",
];

/// `None` for a metrics section that ends up matching on nothing (otelcol then applies no
/// filter at all for it).
fn compile(p: &MatchProperties, kind: Kind) -> Result<Option<Compiled>, MatchError> {
    p.check_for(kind)?;
    if kind == Kind::Spans && !p.span_kinds.is_empty() && p.match_type == "strict" {
        if let Some(_bad) = p
            .span_kinds
            .iter()
            .find(|k| !STRICT_SPAN_KINDS.contains(&k.as_str()))
        {
            return Err(MatchError::SpanKind);
        }
    }
    let set = |items: &[String]| -> Result<Option<FilterSet>, MatchError> {
        if items.is_empty() {
            Ok(None)
        } else {
            FilterSet::new(&p.match_type, items).map(Some)
        }
    };
    if kind == Kind::Metrics {
        if p.match_type == "expr" || p.metric_names.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Compiled {
            metric_names: set(&p.metric_names)?,
            ..Compiled::empty()
        }));
    }
    let mut libraries = Vec::with_capacity(p.libraries.len());
    for lib in &p.libraries {
        let name = FilterSet::new(&p.match_type, std::slice::from_ref(&lib.name))?;
        let version = lib
            .version
            .as_ref()
            .map(|v| FilterSet::new(&p.match_type, std::slice::from_ref(v)))
            .transpose()?;
        libraries.push((name, version));
    }
    Ok(Some(Compiled {
        services: set(&p.services)?,
        span_names: set(&p.span_names)?,
        span_kinds: set(&p.span_kinds)?,
        bodies: set(&p.log_bodies)?,
        severity_texts: set(&p.log_severity_texts)?,
        severity_number: p.log_severity_number.clone(),
        metric_names: None,
        libraries,
        attributes: attribute_matchers(&p.match_type, &p.attributes)?,
        resources: attribute_matchers(&p.match_type, &p.resources)?,
    }))
}

impl Compiled {
    fn empty() -> Self {
        Self {
            services: None,
            span_names: None,
            span_kinds: None,
            bodies: None,
            severity_texts: None,
            severity_number: None,
            metric_names: None,
            libraries: Vec::new(),
            attributes: Vec::new(),
            resources: Vec::new(),
        }
    }
}

fn attribute_matchers(
    match_type: &str,
    list: &[AttributeMatch],
) -> Result<Vec<AttributeMatcher>, MatchError> {
    list.iter()
        .map(|a| {
            if a.key.is_empty() {
                return Err(MatchError::EmptyKey);
            }
            let value = match &a.value {
                None => Expected::Present,
                Some(v) => {
                    let v = v.to_any_value();
                    match match_type {
                        "regexp" => match &v.value {
                            Some(Value::StringValue(s)) => Expected::Pattern(FilterSet::new(
                                "regexp",
                                std::slice::from_ref(s),
                            )?),
                            other => {
                                return Err(MatchError::RegexpNeedsString(
                                    a.key.clone(),
                                    redline_pdata_text::type_name(Some(&AnyValue {
                                        value: other.clone(),
                                    })),
                                ))
                            }
                        },
                        "strict" => Expected::Equal(v),
                        other => return Err(MatchError::MatchType(other.to_owned())),
                    }
                }
            };
            Ok(AttributeMatcher {
                key: a.key.clone(),
                value,
            })
        })
        .collect()
}

//! The attribute action engine the `resource` and `attributes` processors share (otelcol's
//! `coreinternal/attraction`): a list of `insert`, `update`, `upsert`, `delete`, `hash`,
//! `extract` and `convert` actions, applied in order to one attribute list.

mod apply;
#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::common::v1::AnyValue;
use regex::Regex;
use serde::Deserialize;

use redline_filter_match::ConfigValue;
use redline_go_regex::{self as goregex, RegexError};

/// One entry of `actions:` (`attributes:` in the `resource` processor), with otelcol's keys.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: Option<ConfigValue>,
    #[serde(default)]
    pub default_value: Option<ConfigValue>,
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub from_attribute: String,
    #[serde(default)]
    pub from_context: String,
    #[serde(default)]
    pub converted_type: String,
    /// Case-insensitive, as in otelcol.
    #[serde(default)]
    pub action: String,
}

impl ActionConfig {
    fn value_sources(&self) -> usize {
        usize::from(self.value.is_some())
            + usize::from(!self.from_attribute.is_empty())
            + usize::from(!self.from_context.is_empty())
    }
}

/// Why an action is invalid (otelcol refuses the same configs, at startup).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("missing required field \"key\"")]
    MissingKey,
    #[error("at least one of \"key\" and \"pattern\" must be set")]
    MissingKeyOrPattern,
    #[error(
        "one of \"value\", \"from_attribute\", \"from_context\" or \"default_value\" must be set"
    )]
    MissingValueSource,
    #[error("only one of \"value\", \"from_attribute\" and \"from_context\" may be set")]
    MultipleValueSources,
    #[error("action \"{action}\" does not use this field; it must not be set")]
    FieldNotUsed { action: &'static str },
    #[error("action \"extract\" needs a \"pattern\"")]
    MissingPattern,
    #[error(transparent)]
    Regex(#[from] RegexError),
    #[error("pattern {0:?} has no named groups to extract into")]
    NoNamedGroups(String),
    #[error("pattern {0:?} has an unnamed group: every group of an extract pattern must be named")]
    UnnamedGroup(String),
    #[error("action \"convert\" needs a \"converted_type\"")]
    MissingConvertedType,
    #[error("{0:?} is not a converted_type; expected one of int, double, string")]
    BadConvertedType(String),
    #[error("unsupported action {0:?}; expected one of insert, update, upsert, delete, hash, extract, convert")]
    UnknownAction(String),
    #[error("from_context {0:?} is not supported by Redline: its receivers keep no client address or authentication data")]
    UnsupportedContext(String),
}

/// An invalid action: which one (0-based), which of its keys, and why.
#[derive(Debug, thiserror::Error)]
#[error("action {index}, {field}: {error}")]
pub struct ActionConfigError {
    pub index: usize,
    pub field: &'static str,
    pub error: ActionError,
}

/// Where an insert, update or upsert takes its value from, tried in this order.
#[derive(Clone, Debug)]
struct Source {
    value: Option<AnyValue>,
    /// The client metadata key `from_context` reads (`metadata.<key>`, or a bare key); when
    /// the client sent none the later sources apply.
    from_context: Option<String>,
    from_attribute: Option<String>,
    default: Option<AnyValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Str,
    Int,
    Double,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Source),
    Update(Source),
    Upsert(Source),
    Delete(Option<Regex>),
    Hash(Option<Regex>),
    Extract { regex: Regex, names: Vec<String> },
    Convert(Target),
}

#[derive(Clone, Debug)]
struct Action {
    key: String,
    op: Op,
}

/// A validated action list, ready to apply.
#[derive(Clone, Debug)]
pub struct AttrActions {
    actions: Vec<Action>,
}

impl AttrActions {
    /// Validates and compiles `configs` with otelcol's rules; the first invalid action is
    /// the error.
    pub fn new(configs: &[ActionConfig]) -> Result<Self, ActionConfigError> {
        let actions = configs
            .iter()
            .enumerate()
            .map(|(index, config)| {
                compile(config).map_err(|(field, error)| ActionConfigError {
                    index,
                    field,
                    error,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { actions })
    }
}

type CompileError = (&'static str, ActionError);

fn compile(c: &ActionConfig) -> Result<Action, CompileError> {
    let action = c.action.to_lowercase();
    let keyless_ok = matches!(action.as_str(), "delete" | "hash");
    let pattern_instead = keyless_ok && !c.pattern.is_empty();
    if c.key.is_empty() && !pattern_instead {
        return Err(if keyless_ok {
            ("key", ActionError::MissingKeyOrPattern)
        } else {
            ("key", ActionError::MissingKey)
        });
    }
    let op = match action.as_str() {
        "insert" | "update" | "upsert" => {
            let source = source(c)?;
            match action.as_str() {
                "insert" => Op::Insert(source),
                "update" => Op::Update(source),
                _ => Op::Upsert(source),
            }
        }
        "delete" | "hash" => {
            let name = if action == "delete" { "delete" } else { "hash" };
            not_set(name, "value", c.value.is_some())?;
            not_set(name, "from_attribute", !c.from_attribute.is_empty())?;
            let regex = optional_regex(&c.pattern)?;
            not_set(name, "converted_type", !c.converted_type.is_empty())?;
            if name == "delete" {
                Op::Delete(regex)
            } else {
                Op::Hash(regex)
            }
        }
        "extract" => extract(c)?,
        "convert" => {
            not_set("convert", "value", c.value_sources() > 0)?;
            not_set("convert", "pattern", !c.pattern.is_empty())?;
            Op::Convert(match c.converted_type.as_str() {
                "string" => Target::Str,
                "int" => Target::Int,
                "double" => Target::Double,
                "" => return Err(("converted_type", ActionError::MissingConvertedType)),
                other => {
                    return Err((
                        "converted_type",
                        ActionError::BadConvertedType(other.to_owned()),
                    ))
                }
            })
        }
        _ => return Err(("action", ActionError::UnknownAction(c.action.clone()))),
    };
    Ok(Action {
        key: c.key.clone(),
        op,
    })
}

fn not_set(action: &'static str, field: &'static str, set: bool) -> Result<(), CompileError> {
    if set {
        Err((field, ActionError::FieldNotUsed { action }))
    } else {
        Ok(())
    }
}

fn source(c: &ActionConfig) -> Result<Source, CompileError> {
    if c.value_sources() == 0 && c.default_value.is_none() {
        return Err(("value", ActionError::MissingValueSource));
    }
    if c.value_sources() > 1 {
        return Err(("value", ActionError::MultipleValueSources));
    }
    let name = match c.action.to_lowercase().as_str() {
        "insert" => "insert",
        "update" => "update",
        _ => "upsert",
    };
    not_set(name, "pattern", !c.pattern.is_empty())?;
    not_set(name, "converted_type", !c.converted_type.is_empty())?;
    let context = c.from_context.as_str();
    if context == "client.address" || context.starts_with("auth.") {
        return Err((
            "from_context",
            ActionError::UnsupportedContext(context.to_owned()),
        ));
    }
    Ok(Source {
        value: c.value.as_ref().map(ConfigValue::to_any_value),
        from_context: (!context.is_empty()).then(|| {
            context
                .strip_prefix("metadata.")
                .unwrap_or(context)
                .to_owned()
        }),
        from_attribute: (!c.from_attribute.is_empty()).then(|| c.from_attribute.clone()),
        default: c.default_value.as_ref().map(ConfigValue::to_any_value),
    })
}

fn optional_regex(pattern: &str) -> Result<Option<Regex>, CompileError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    goregex::compile(pattern)
        .map(Some)
        .map_err(|e| ("pattern", e.into()))
}

fn extract(c: &ActionConfig) -> Result<Op, CompileError> {
    not_set("extract", "value", c.value_sources() > 0)?;
    if c.pattern.is_empty() {
        return Err(("pattern", ActionError::MissingPattern));
    }
    not_set("extract", "converted_type", !c.converted_type.is_empty())?;
    let regex = goregex::compile(&c.pattern).map_err(|e| ("pattern", e.into()))?;
    let groups: Vec<Option<&str>> = regex.capture_names().skip(1).collect();
    if groups.is_empty() {
        return Err(("pattern", ActionError::NoNamedGroups(c.pattern.clone())));
    }
    let names = groups
        .into_iter()
        .map(|name| name.map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ("pattern", ActionError::UnnamedGroup(c.pattern.clone())))?;
    Ok(Op::Extract { regex, names })
}

//! What the `span` processor does to one selected span, in otelcol's order: the name from
//! attributes, then attributes from the name, then the status.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use redline_go_regex::RegexError;
use regex::Regex;

use crate::ToAttributesConfig;

/// Written for an attribute value that has no text form (bytes, arrays, maps, empty), as
/// otelcol writes it.
const UNKNOWN_TYPE: &str = "<unknown-attribute-type>";

/// The edits of one `span` processor.
#[derive(Debug)]
pub struct Rename {
    pub(crate) from_attributes: Vec<String>,
    pub(crate) separator: String,
    pub(crate) to_attributes: Option<ToAttributes>,
    pub(crate) status: Option<StatusEdit>,
}

/// `name.to_attributes`, its rules compiled.
#[derive(Debug)]
pub struct ToAttributes {
    rules: Vec<Rule>,
    break_after_match: bool,
    keep_original_name: bool,
}

#[derive(Debug)]
struct Rule {
    regex: Regex,
    /// The name of each group, by index (`""` for an unnamed group, as Go's
    /// `SubexpNames` gives it: otelcol then adds an attribute with an empty key).
    group_names: Vec<String>,
}

impl ToAttributes {
    /// Compiles the rules with Go's regexp meaning; each one that fails, with its index.
    pub fn new(config: &ToAttributesConfig) -> Result<Self, Vec<(usize, RegexError)>> {
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut failed = Vec::new();
        for (index, pattern) in config.rules.iter().enumerate() {
            match redline_go_regex::compile(pattern) {
                Ok(regex) => {
                    let group_names = regex
                        .capture_names()
                        .map(|n| n.unwrap_or_default().to_owned())
                        .collect();
                    rules.push(Rule { regex, group_names });
                }
                Err(e) => failed.push((index, e)),
            }
        }
        if !failed.is_empty() {
            return Err(failed);
        }
        Ok(Self {
            rules,
            break_after_match: config.break_after_match,
            keep_original_name: config.keep_original_name,
        })
    }
}

/// `status`: the code and message every selected span gets.
#[derive(Debug)]
pub struct StatusEdit {
    code: StatusCode,
    message: String,
}

impl StatusEdit {
    /// otelcol's checks: the code spelled as it spells it, a description only with `Error`.
    /// On a problem, the key it is in and why.
    pub fn new(code: &str, description: &str) -> Result<Self, (&'static str, String)> {
        let code = match code {
            "Ok" => StatusCode::Ok,
            "Error" => StatusCode::Error,
            "Unset" => StatusCode::Unset,
            other => {
                return Err((
                    "status.code",
                    format!("must be \"Ok\", \"Error\" or \"Unset\", not {other:?}"),
                ))
            }
        };
        if !description.is_empty() && code != StatusCode::Error {
            return Err((
                "status.description",
                "can be specified only for \"code\" \"Error\"".to_owned(),
            ));
        }
        Ok(Self {
            code,
            message: description.to_owned(),
        })
    }
}

impl Rename {
    /// Applies every edit to `span`; whether anything changed.
    pub fn apply(&self, span: &mut Span) -> bool {
        let mut changed = self.name_from_attributes(span);
        if let Some(to) = &self.to_attributes {
            changed |= to.apply(span);
        }
        if let Some(status) = &self.status {
            changed |= status.apply(span);
        }
        changed
    }

    /// The values of `from_attributes` joined by `separator`, when the span has them all.
    fn name_from_attributes(&self, span: &mut Span) -> bool {
        if self.from_attributes.is_empty() {
            return false;
        }
        let mut name = String::new();
        for (i, key) in self.from_attributes.iter().enumerate() {
            let Some(kv) = span.attributes.iter().find(|kv| kv.key == *key) else {
                return false;
            };
            if i > 0 {
                name.push_str(&self.separator);
            }
            match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => name.push_str(s),
                Some(Value::BoolValue(b)) => name.push_str(if *b { "true" } else { "false" }),
                Some(Value::IntValue(n)) => name.push_str(&n.to_string()),
                Some(Value::DoubleValue(d)) => {
                    name.push_str(&redline_pdata_text::format_float_f(*d));
                }
                _ => name.push_str(UNKNOWN_TYPE),
            }
        }
        set_if_different(&mut span.name, name)
    }
}

impl ToAttributes {
    /// Each rule in turn on the name the previous one left: every named group that took
    /// part in the match becomes an attribute (replacing a value the span had), and its
    /// text in the name becomes `{group}`.
    fn apply(&self, span: &mut Span) -> bool {
        let mut changed = false;
        for rule in &self.rules {
            if span.name.is_empty() {
                break;
            }
            let Some(captures) = rule.regex.captures(&span.name) else {
                continue;
            };
            let mut renamed = String::with_capacity(span.name.len() + 16);
            let mut copied_to = 0;
            for (group, name) in rule.group_names.iter().enumerate().skip(1) {
                // A group that took no part in the match, or one inside a group already
                // replaced: otelcol panics on either (it slices the name at -1, or
                // backwards); the group's text is kept and, if it matched, recorded.
                let Some(m) = captures.get(group) else {
                    continue;
                };
                changed |= put_str(&mut span.attributes, name, m.as_str());
                if m.start() < copied_to {
                    continue;
                }
                renamed.push_str(&span.name[copied_to..m.start()]);
                renamed.push('{');
                renamed.push_str(name);
                renamed.push('}');
                copied_to = m.end();
            }
            renamed.push_str(&span.name[copied_to..]);
            if !self.keep_original_name {
                changed |= set_if_different(&mut span.name, renamed);
            }
            if self.break_after_match {
                break;
            }
        }
        changed
    }
}

impl StatusEdit {
    fn apply(&self, span: &mut Span) -> bool {
        let code = self.code as i32;
        let current = span
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.code, s.message.as_str()));
        if current == (code, self.message.as_str()) {
            return false;
        }
        span.status = Some(Status {
            code,
            message: self.message.clone(),
        });
        true
    }
}

/// pdata's `Map.PutStr`: the first attribute with `key` takes the value, or one is added.
fn put_str(attributes: &mut Vec<KeyValue>, key: &str, value: &str) -> bool {
    let new = Some(AnyValue {
        value: Some(Value::StringValue(value.to_owned())),
    });
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) if kv.value == new => false,
        Some(kv) => {
            kv.value = new;
            true
        }
        None => {
            attributes.push(KeyValue {
                key: key.to_owned(),
                value: new,
                ..KeyValue::default()
            });
            true
        }
    }
}

fn set_if_different(slot: &mut String, value: String) -> bool {
    if *slot == value {
        return false;
    }
    *slot = value;
    true
}

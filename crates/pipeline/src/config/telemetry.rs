//! `service.telemetry`: Redline's own logs, metrics and resource, with otelcol v0.161's keys
//! (its `otelconftelemetry` config, on the v0.3.0 declarative-configuration schema).
//!
//! Every otelcol key is either honoured, accepted with a notice the binary logs at startup
//! (it has nothing to change in Redline, and the notice says why), or refused by name.

use super::load::Loader;
use super::yaml::{join_key, key_text};
use super::{Node, NodeValue};

pub use super::telemetry_logs::{LogOutput, LogsConfig, LogsSampling};
pub use super::telemetry_metrics::{
    MetricsTelemetryConfig, OtlpCompression, OtlpProtocol, OtlpPushConfig, PeriodicReaderConfig,
    PushExporterConfig, Temporality,
};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetryConfig {
    pub logs: LogsConfig,
    pub metrics: MetricsTelemetryConfig,
    pub resource: TelemetryResource,
    /// Settings accepted although they change nothing in Redline, each saying which and why;
    /// the binary logs them once at startup so none is ignored silently.
    pub notices: Vec<String>,
}

/// `service.telemetry.resource`: the resource of Redline's own telemetry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetryResource {
    /// In file order. A `None` value removes an attribute Redline sets by default
    /// (`service.name`, `service.version`, `service.instance.id`), as `null` does in otelcol.
    pub attributes: Vec<(String, Option<AttributeValue>)>,
    pub schema_url: Option<String>,
}

/// A scalar attribute or log field value, typed as YAML typed it.
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

impl AttributeValue {
    /// The value of a scalar node: a plain `true`, `12` or `1.5` is typed, anything quoted
    /// is a string (yaml.v3's resolution, which otelcol decodes `any` values with).
    pub(super) fn of_scalar(text: &str, quoted: bool) -> Self {
        if quoted {
            return Self::Str(text.to_owned());
        }
        match text {
            "true" | "True" | "TRUE" => return Self::Bool(true),
            "false" | "False" | "FALSE" => return Self::Bool(false),
            _ => {}
        }
        if let Ok(i) = text.parse::<i64>() {
            return Self::Int(i);
        }
        let numeric = text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
        match text.parse::<f64>() {
            Ok(f) if numeric && text.contains(|c: char| c.is_ascii_digit()) => Self::Double(f),
            _ => Self::Str(text.to_owned()),
        }
    }
}

impl std::fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) => write!(f, "{d}"),
        }
    }
}

const TELEMETRY_KEYS: &str = "logs, metrics, traces, resource";

impl Loader {
    pub(super) fn telemetry(&mut self, node: &Node, path: &str) -> TelemetryConfig {
        let mut telemetry = TelemetryConfig::default();
        let Some(entries) = self.entries(node, path, "a map with logs, metrics, resource") else {
            return telemetry;
        };
        for (k, v) in entries {
            let key = key_text(k);
            let key_path = join_key(path, key);
            match key {
                "logs" => {
                    if let Some(logs) = self.logs(k, v, &key_path) {
                        telemetry.logs = logs;
                    }
                }
                "metrics" => {
                    if let Some(metrics) = self.metrics_telemetry(k, v, &key_path) {
                        telemetry.metrics = metrics;
                    }
                }
                "resource" => telemetry.resource = self.resource(v, &key_path),
                "traces" => self.traces(v, &key_path, &mut telemetry.notices),
                _ => self.error(
                    k.mark,
                    key_path,
                    format!("unknown key; expected one of {TELEMETRY_KEYS}"),
                ),
            }
        }
        telemetry
    }

    /// `traces`: Redline records no spans of its own. Without `processors` otelcol exports
    /// none either, so the section means the same in both; exporting them is refused.
    fn traces(&mut self, node: &Node, path: &str, notices: &mut Vec<String>) {
        let Some(entries) = self.entries(node, path, "a map with level, propagators") else {
            return;
        };
        for (k, v) in entries {
            let key = key_text(k);
            let key_path = join_key(path, key);
            match key {
                "level" => {
                    let ok = matches!(&v.value, NodeValue::Scalar { text, .. }
                        if ["none", "basic", "normal", "detailed"]
                            .contains(&text.to_ascii_lowercase().as_str()));
                    if !ok && v.value != NodeValue::Null {
                        self.error(
                            v.mark,
                            key_path,
                            "must be one of none, basic, normal, detailed",
                        );
                    }
                }
                "propagators" => notices.push(format!(
                    "{key_path}: accepted; Redline records no spans of its own, so there is \
                     no trace context to propagate"
                )),
                "processors"
                    if matches!(&v.value, NodeValue::Null)
                        || matches!(&v.value, NodeValue::Seq(items) if items.is_empty()) => {}
                "processors" => self.error(
                    k.mark,
                    key_path,
                    "is not supported by Redline: it records no spans of its own to export",
                ),
                "limits" | "sampler" => notices.push(format!(
                    "{key_path}: accepted; Redline records no spans of its own"
                )),
                _ => self.error(
                    k.mark,
                    key_path,
                    "unknown key; expected one of level, propagators, processors, limits, sampler",
                ),
            }
        }
    }

    /// `resource`: otelcol's legacy map (`attr: value`, `null` to drop a default) or the
    /// declarative schema (`attributes: [{name, value}]`, `schema_url`); not both.
    fn resource(&mut self, node: &Node, path: &str) -> TelemetryResource {
        let mut resource = TelemetryResource::default();
        let Some(entries) = self.entries(node, path, "a map of attribute names to values") else {
            return resource;
        };
        let mut legacy_seen = None;
        let mut schema_seen = None;
        for (k, v) in entries {
            let key = key_text(k);
            let key_path = join_key(path, key);
            match key {
                "attributes" => {
                    schema_seen = Some(k.mark);
                    self.schema_attributes(v, &key_path, &mut resource.attributes);
                }
                "schema_url" => match &v.value {
                    NodeValue::Scalar { text, .. } => resource.schema_url = Some(text.clone()),
                    NodeValue::Null => {}
                    _ => self.error(v.mark, key_path, "must be a URL"),
                },
                // otelcol's own message: it refuses this key for now.
                "attributes_list" => self.error(
                    k.mark,
                    key_path,
                    "is not supported (as in otelcol): use resource.attributes",
                ),
                "detectors" | "detection/development" => self.error(
                    k.mark,
                    key_path,
                    "is not supported by Redline: it does not detect resource attributes; \
                     list them under resource",
                ),
                _ => {
                    legacy_seen = Some(k.mark);
                    let value = match &v.value {
                        NodeValue::Null => None,
                        NodeValue::Scalar { text, quoted } => {
                            match AttributeValue::of_scalar(text, *quoted) {
                                s @ AttributeValue::Str(_) => Some(s),
                                // otelcol refuses a typed value here too.
                                _ => {
                                    self.error(
                                        v.mark,
                                        key_path,
                                        "must be a string or null (quote it)",
                                    );
                                    continue;
                                }
                            }
                        }
                        _ => {
                            self.error(v.mark, key_path, "must be a string or null");
                            continue;
                        }
                    };
                    resource.attributes.push((key.to_owned(), value));
                }
            }
        }
        if let (Some(_), Some(mark)) = (schema_seen, legacy_seen) {
            self.error(
                mark,
                path.to_owned(),
                "`attributes` cannot be used together with inline attributes (as in otelcol)",
            );
        }
        resource
    }

    /// `attributes: [{name: a, value: b, type: string}]`.
    fn schema_attributes(
        &mut self,
        node: &Node,
        path: &str,
        out: &mut Vec<(String, Option<AttributeValue>)>,
    ) {
        let items: &[Node] = match &node.value {
            NodeValue::Seq(items) => items,
            NodeValue::Null => &[],
            _ => {
                self.error(
                    node.mark,
                    path.to_owned(),
                    "must be a list of {name, value}",
                );
                return;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let Some(fields) = self.entries(item, &item_path, "a map with name, value, type")
            else {
                continue;
            };
            let (mut name, mut value, mut kind) = (None, None, None);
            for (k, v) in fields {
                match (key_text(k), &v.value) {
                    ("name", NodeValue::Scalar { text, .. }) => name = Some(text.clone()),
                    ("value", NodeValue::Scalar { text, quoted }) => {
                        value = Some((text.clone(), *quoted, v.mark));
                    }
                    ("type", NodeValue::Scalar { text, .. }) => kind = Some((text.clone(), v.mark)),
                    (key @ ("name" | "value" | "type"), _) => self.error(
                        v.mark,
                        join_key(&item_path, key),
                        "must be a single value (arrays are not supported by Redline)",
                    ),
                    (key, _) => self.error(
                        k.mark,
                        join_key(&item_path, key),
                        "unknown key; expected one of name, value, type",
                    ),
                }
            }
            let (Some(name), Some((text, quoted, mark))) = (name, value) else {
                self.error(item.mark, item_path, "needs both `name` and `value`");
                continue;
            };
            let value = match kind.as_ref().map(|(k, _)| k.as_str()) {
                None => AttributeValue::of_scalar(&text, quoted),
                Some("string") => AttributeValue::Str(text),
                Some("bool") => match AttributeValue::of_scalar(&text, false) {
                    b @ AttributeValue::Bool(_) => b,
                    _ => {
                        self.error(mark, join_key(&item_path, "value"), "must be true or false");
                        continue;
                    }
                },
                Some("int") => match AttributeValue::of_scalar(&text, false) {
                    n @ AttributeValue::Int(_) => n,
                    _ => {
                        self.error(mark, join_key(&item_path, "value"), "must be an integer");
                        continue;
                    }
                },
                Some("double") => match AttributeValue::of_scalar(&text, false) {
                    AttributeValue::Int(n) => AttributeValue::Double(n as f64),
                    d @ AttributeValue::Double(_) => d,
                    _ => {
                        self.error(mark, join_key(&item_path, "value"), "must be a number");
                        continue;
                    }
                },
                Some(other) => {
                    let mark = kind.as_ref().map_or(mark, |(_, m)| *m);
                    self.error(
                        mark,
                        join_key(&item_path, "type"),
                        format!(
                            "`{other}` is not one of string, bool, int, double \
                             (array types are not supported by Redline)"
                        ),
                    );
                    continue;
                }
            };
            out.push((name, Some(value)));
        }
    }
}

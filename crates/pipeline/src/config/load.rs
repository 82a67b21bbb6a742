//! The top-level config file: component sections and the `service` section.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::yaml::{self, join_key, key_text};
use super::{de, ComponentConfig, ConfigError, Mark, Node, NodeValue, Unsupported};
use crate::component::{ComponentId, ComponentKind, Signal};

/// A loaded config file. Component sections are kept as positioned trees: each component's
/// factory parses its own section.
#[derive(Clone, Debug)]
pub struct Config {
    pub file: Arc<str>,
    pub receivers: Vec<ComponentConfig>,
    pub processors: Vec<ComponentConfig>,
    pub exporters: Vec<ComponentConfig>,
    pub connectors: Vec<ComponentConfig>,
    pub extensions: Vec<ComponentConfig>,
    pub service: ServiceConfig,
    /// Variables referenced as `${env:NAME}` without a default that were not set; they
    /// expanded to the empty string, as otelcol does, and the caller should warn about them.
    pub unset_env_vars: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    pub pipelines: Vec<PipelineConfig>,
    pub extensions: Vec<(ComponentId, Mark)>,
    pub telemetry: TelemetryConfig,
}

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// As written, e.g. `traces` or `traces/2`.
    pub id: String,
    pub signal: Signal,
    pub mark: Mark,
    pub receivers: Vec<(ComponentId, Mark)>,
    pub processors: Vec<(ComponentId, Mark)>,
    pub exporters: Vec<(ComponentId, Mark)>,
}

#[derive(Clone, Debug, Default)]
pub struct TelemetryConfig {
    pub logs: LogsConfig,
    pub metrics: MetricsTelemetryConfig,
}

/// Where Redline serves its own metrics (`otelcol_receiver_accepted_spans`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsTelemetryConfig {
    /// `none`, `basic`, `normal` or `detailed`; `None` when the section is absent.
    pub level: Option<String>,
    /// `host:port` of the Prometheus pull endpoint, from `address` or a `readers` entry.
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct LogsConfig {
    /// `debug`, `info`, `warn` or `error`.
    pub level: Option<String>,
    /// `console`, `json` or `logfmt`.
    pub encoding: Option<String>,
}

/// Every problem found in a config file, so one run of `redline validate` lists them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
}

/// Reads and loads a config file, expanding `${env:VAR}` from the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            Some(Arc::from(name.as_str())),
            None,
            String::new(),
            format!("cannot read the config file: {e}"),
        )
    })?;
    load_str(&name, &text)
}

/// Loads config text, expanding `${env:VAR}` from the process environment; `file_name` is
/// used in error messages.
pub fn load_str(file_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    // A variable that is not valid Unicode cannot be put in a config: it counts as unset.
    load_str_with_env(file_name, text, &|name| std::env::var(name).ok())
}

/// [`load_str`] with the environment given as a lookup function, so tests and embedders do
/// not depend on (or mutate) the process environment.
pub fn load_str_with_env(
    file_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let (config, errors) = load_lenient(file_name, text, env)?;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Reads a config file like [`load_file`], but a file that is valid YAML comes back with
/// what could be read of it next to the errors found, so `redline validate` can also check
/// the components of a file whose `service` section has problems. `Err` only when the file
/// cannot be read or is not YAML.
pub fn load_file_lenient(path: &Path) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            Some(Arc::from(name.as_str())),
            None,
            String::new(),
            format!("cannot read the config file: {e}"),
        )
    })?;
    load_lenient(&name, &text, &|name| std::env::var(name).ok())
}

/// [`load_file_lenient`] for text in memory.
pub fn load_str_lenient(
    file_name: &str,
    text: &str,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    load_lenient(file_name, text, &|name| std::env::var(name).ok())
}

fn load_lenient(
    file_name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let file: Arc<str> = Arc::from(file_name);
    let parsed = yaml::parse(&file, text, env).map_err(ConfigErrors)?;
    let mut loader = Loader {
        file: file.clone(),
        errors: Vec::new(),
    };
    let mut config = Config {
        file,
        receivers: Vec::new(),
        processors: Vec::new(),
        exporters: Vec::new(),
        connectors: Vec::new(),
        extensions: Vec::new(),
        service: ServiceConfig::default(),
        unset_env_vars: parsed.unset_env_vars,
    };
    loader.top_level(&parsed.root, &mut config);
    Ok((config, loader.errors))
}

const TOP_LEVEL_KEYS: &str = "receivers, processors, exporters, connectors, extensions, service";

struct Loader {
    file: Arc<str>,
    errors: Vec<ConfigError>,
}

impl Loader {
    fn error(&mut self, mark: Mark, path: String, reason: impl fmt::Display) {
        self.errors.push(ConfigError::new(
            Some(self.file.clone()),
            Some(mark),
            path,
            reason.to_string(),
        ));
    }

    /// The entries of a map node; `None` (after recording an error) for anything but a map or
    /// nothing at all.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
    ) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            NodeValue::Map(entries) => Some(entries),
            NodeValue::Null => Some(&[]),
            _ => {
                self.error(node.mark, path.to_owned(), format!("must be {what}"));
                None
            }
        }
    }

    fn top_level(&mut self, root: &Node, config: &mut Config) {
        let Some(entries) = self.entries(
            root,
            "",
            "a map of sections (receivers, exporters, service, ...)",
        ) else {
            return;
        };
        let mut service = None;
        for (k, v) in entries {
            let kind = match key_text(k) {
                "receivers" => ComponentKind::Receiver,
                "processors" => ComponentKind::Processor,
                "exporters" => ComponentKind::Exporter,
                "connectors" => ComponentKind::Connector,
                "extensions" => ComponentKind::Extension,
                "service" => {
                    service = Some((k, v));
                    continue;
                }
                other => {
                    self.error(
                        k.mark,
                        other.to_owned(),
                        format!("unknown top-level key; expected one of {TOP_LEVEL_KEYS}"),
                    );
                    continue;
                }
            };
            let components = self.components(kind, v);
            match kind {
                ComponentKind::Receiver => config.receivers = components,
                ComponentKind::Processor => config.processors = components,
                ComponentKind::Exporter => config.exporters = components,
                ComponentKind::Connector => config.connectors = components,
                ComponentKind::Extension => config.extensions = components,
            }
        }
        match service {
            Some((k, v)) => config.service = self.service(k, v),
            None => self.error(
                root.mark,
                "service".into(),
                "missing: a config needs `service.pipelines`",
            ),
        }
    }

    fn components(&mut self, kind: ComponentKind, node: &Node) -> Vec<ComponentConfig> {
        let section = kind.section();
        let what = format!("a map of {} ids to their settings", kind.singular());
        let Some(entries) = self.entries(node, section, &what) else {
            return Vec::new();
        };
        let mut out: Vec<ComponentConfig> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let raw = key_text(k);
            let path = join_key(section, raw);
            let id = match ComponentId::parse(raw) {
                Ok(id) => id,
                Err(reason) => {
                    self.error(k.mark, path, reason);
                    continue;
                }
            };
            // Exact duplicates are refused by the YAML reader; these differ only in spacing.
            if let Some(first) = out.iter().find(|c| *c.id() == id) {
                let line = first.mark().line;
                self.error(
                    k.mark,
                    path,
                    format!(
                        "duplicate {} id `{id}` (first at line {line})",
                        kind.singular()
                    ),
                );
                continue;
            }
            out.push(
                ComponentConfig::new(kind, id, v.clone(), self.file.clone()).with_mark(k.mark),
            );
        }
        out
    }

    fn service(&mut self, key: &Node, node: &Node) -> ServiceConfig {
        let mut service = ServiceConfig::default();
        let Some(entries) = self.entries(node, "service", "a map with `pipelines`") else {
            return service;
        };
        let mut pipelines_seen = false;
        for (k, v) in entries {
            let path = join_key("service", key_text(k));
            match key_text(k) {
                "pipelines" => {
                    pipelines_seen = true;
                    service.pipelines = self.pipelines(k, v, &path);
                }
                "extensions" => service.extensions = self.id_list(v, &path),
                "telemetry" => service.telemetry = self.telemetry(v, &path),
                _ => self.error(
                    k.mark,
                    path,
                    "unknown key; expected one of pipelines, extensions, telemetry",
                ),
            }
        }
        if !pipelines_seen {
            self.error(
                key.mark,
                "service.pipelines".into(),
                "missing: define at least one pipeline",
            );
        }
        service
    }

    fn pipelines(&mut self, key: &Node, node: &Node, path: &str) -> Vec<PipelineConfig> {
        let Some(entries) = self.entries(node, path, "a map of pipeline ids to pipelines") else {
            return Vec::new();
        };
        if entries.is_empty() {
            self.error(
                key.mark,
                path.to_owned(),
                "no pipelines: define at least one",
            );
            return Vec::new();
        }
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let id = key_text(k);
            let pipeline_path = join_key(path, id);
            let signal = match ComponentId::parse(id) {
                Ok(parsed) => match parsed.type_name() {
                    "traces" => Some(Signal::Traces),
                    "metrics" => Some(Signal::Metrics),
                    "logs" => Some(Signal::Logs),
                    other => {
                        self.error(
                            k.mark,
                            pipeline_path.clone(),
                            format!(
                                "unknown signal `{other}`: a pipeline id is `traces`, \
                                 `metrics` or `logs`, optionally followed by `/name`"
                            ),
                        );
                        None
                    }
                },
                Err(reason) => {
                    self.error(k.mark, pipeline_path.clone(), reason);
                    None
                }
            };
            let mut pipeline = PipelineConfig {
                id: id.trim().to_owned(),
                signal: signal.unwrap_or(Signal::Traces),
                mark: k.mark,
                receivers: Vec::new(),
                processors: Vec::new(),
                exporters: Vec::new(),
            };
            let Some(body) = self.entries(
                v,
                &pipeline_path,
                "a map with receivers, processors, exporters",
            ) else {
                continue;
            };
            for (bk, bv) in body {
                let list_path = join_key(&pipeline_path, key_text(bk));
                match key_text(bk) {
                    "receivers" => pipeline.receivers = self.id_list(bv, &list_path),
                    "processors" => pipeline.processors = self.id_list(bv, &list_path),
                    "exporters" => pipeline.exporters = self.id_list(bv, &list_path),
                    _ => self.error(
                        bk.mark,
                        list_path,
                        "unknown key; expected one of receivers, processors, exporters",
                    ),
                }
            }
            if signal.is_some() {
                out.push(pipeline);
            }
        }
        out
    }

    /// A list of component ids, like `[otlp, otlp/tempo]`.
    fn id_list(&mut self, node: &Node, path: &str) -> Vec<(ComponentId, Mark)> {
        let items: &[Node] = match &node.value {
            NodeValue::Seq(items) => items,
            NodeValue::Null => &[],
            _ => {
                self.error(
                    node.mark,
                    path.to_owned(),
                    "must be a list of component ids",
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match &item.value {
                NodeValue::Scalar { text, .. } => match ComponentId::parse(text) {
                    Ok(id) => out.push((id, item.mark)),
                    Err(reason) => self.error(item.mark, item_path, reason),
                },
                _ => self.error(
                    item.mark,
                    item_path,
                    "must be a component id such as `otlp/tempo`",
                ),
            }
        }
        out
    }

    fn telemetry(&mut self, node: &Node, path: &str) -> TelemetryConfig {
        let mut telemetry = TelemetryConfig::default();
        let Some(entries) = self.entries(node, path, "a map with `logs`") else {
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
                // Known otelcol settings: refused by name rather than silently ignored.
                "traces" | "resource" => {
                    self.error(k.mark, key_path, super::unsupported::UNSUPPORTED_REASON)
                }
                _ => self.error(
                    k.mark,
                    key_path,
                    "unknown key; expected one of logs, metrics, traces, resource",
                ),
            }
        }
        telemetry
    }

    fn metrics_telemetry(
        &mut self,
        key: &Node,
        node: &Node,
        path: &str,
    ) -> Option<MetricsTelemetryConfig> {
        let raw = match de::from_node::<MetricsRaw>(node, &self.file, path, key.mark) {
            Ok(raw) => raw,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let level = raw
            .level
            .unwrap_or_else(|| "normal".to_owned())
            .to_ascii_lowercase();
        if !["none", "basic", "normal", "detailed"].contains(&level.as_str()) {
            self.error(
                find_value_mark(node, "level").unwrap_or(key.mark),
                join_key(path, "level"),
                format!("`{level}` is not one of none, basic, normal, detailed"),
            );
            return None;
        }
        let mut endpoints: Vec<String> = raw.address.into_iter().collect();
        for reader in raw.readers.unwrap_or_default() {
            let p = reader.pull.exporter.prometheus;
            let host = p.host.unwrap_or_else(|| "localhost".to_owned());
            endpoints.push(format!("{host}:{}", p.port.unwrap_or(8888)));
        }
        if endpoints.len() > 1 {
            self.error(
                key.mark,
                path.to_owned(),
                "Redline serves its own metrics on one endpoint: give either `address` or one `readers` entry",
            );
            return None;
        }
        // otelcol's default reader: a Prometheus pull endpoint on localhost:8888.
        let endpoint = match (level.as_str(), endpoints.pop()) {
            ("none", _) => None,
            (_, Some(e)) => Some(e),
            (_, None) => Some("localhost:8888".to_owned()),
        };
        Some(MetricsTelemetryConfig {
            level: Some(level),
            endpoint,
        })
    }

    fn logs(&mut self, key: &Node, node: &Node, path: &str) -> Option<LogsConfig> {
        let raw = match de::from_node::<LogsRaw>(node, &self.file, path, key.mark) {
            Ok(raw) => raw,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let mut valid = true;
        let mut check = |field: &str, value: Option<String>, allowed: &[&str]| {
            let value = value?;
            // zap reads levels case-insensitively; keep one spelling downstream.
            let lower = value.to_ascii_lowercase();
            if allowed.contains(&lower.as_str()) {
                return Some(lower);
            }
            valid = false;
            self.error(
                find_value_mark(node, field).unwrap_or(key.mark),
                join_key(path, field),
                format!("`{value}` is not one of {}", allowed.join(", ")),
            );
            None
        };
        let logs = LogsConfig {
            level: check("level", raw.level, &["debug", "info", "warn", "error"]),
            encoding: check("encoding", raw.encoding, &["console", "json", "logfmt"]),
        };
        valid.then_some(logs)
    }
}

/// Position of the value of `key` in the map `node`, if present.
fn find_value_mark(node: &Node, key: &str) -> Option<Mark> {
    let NodeValue::Map(entries) = &node.value else {
        return None;
    };
    let (k, v) = entries.iter().find(|(k, _)| key_text(k) == key)?;
    Some(yaml::key_mark_for(k, v))
}

// The `Unsupported` fields exist only to refuse their keys; they are never read.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsRaw {
    level: Option<String>,
    address: Option<String>,
    readers: Option<Vec<ReaderRaw>>,
    views: Option<Unsupported>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderRaw {
    pull: PullRaw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullRaw {
    exporter: PullExporterRaw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullExporterRaw {
    prometheus: PrometheusReaderRaw,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusReaderRaw {
    host: Option<String>,
    port: Option<u16>,
    without_units: Option<Unsupported>,
    without_type_suffix: Option<Unsupported>,
    without_scope_info: Option<Unsupported>,
    with_resource_constant_labels: Option<Unsupported>,
}

// The `Unsupported` fields exist only to refuse their keys; they are never read.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsRaw {
    level: Option<String>,
    encoding: Option<String>,
    development: Option<Unsupported>,
    disable_caller: Option<Unsupported>,
    disable_stacktrace: Option<Unsupported>,
    sampling: Option<Unsupported>,
    output_paths: Option<Unsupported>,
    error_output_paths: Option<Unsupported>,
    initial_fields: Option<Unsupported>,
    processors: Option<Unsupported>,
}

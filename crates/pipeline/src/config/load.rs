//! The top-level config file: component sections and the `service` section.

use std::fmt;
use std::sync::Arc;

use super::sources::{merge_sources, ListMerge, Origins, Source};
use super::telemetry::TelemetryConfig;
use super::yaml::{self, join_key, key_text};
use super::{ComponentConfig, ConfigError, Mark, Node, NodeValue};
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
    /// Each source's own tree when the config merges several, to name the right one in
    /// messages.
    pub origins: Origins,
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

impl Config {
    /// Whether `id`, named in a pipeline, is one of the connectors (otherwise it is a
    /// receiver or an exporter of that name).
    pub fn is_connector(&self, id: &ComponentId) -> bool {
        self.connectors.iter().any(|c| c.id() == id)
    }
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

/// A factory's `validate` when its `validate_all` gathers every problem: the first of them.
pub fn first_problem(problems: Vec<ConfigError>) -> Result<(), ConfigError> {
    match problems.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// A component's build error when compiling its section found `problems`: all of them, on
/// one line (`validate` has reported each at its key already).
pub fn problems_text(problems: &[ConfigError]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self(vec![e])
    }
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

/// Loads config text like [`load_str`], but text that is valid YAML comes back with what
/// could be read of it next to the errors found, so `redline validate` can also check the
/// components of a config whose `service` section has problems. `Err` only when the text is
/// not YAML.
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
    Ok(load_parsed(file, parsed, Origins::default()))
}

/// Loads the config the sources make once merged (`--config` given once or more, `--set`),
/// expanding `${env:VAR}` from the process environment.
pub fn load_sources(sources: &[Source], lists: ListMerge) -> Result<Config, ConfigErrors> {
    let (config, errors) = load_sources_lenient(sources, lists)?;
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// [`load_sources`] read leniently, like [`load_str_lenient`]: `Err` only when a source cannot
/// be read or is not YAML.
pub fn load_sources_lenient(
    sources: &[Source],
    lists: ListMerge,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    load_sources_lenient_with_env(sources, lists, &|name| std::env::var(name).ok())
}

/// [`load_sources_lenient`] with the environment given as a lookup function.
pub fn load_sources_lenient_with_env(
    sources: &[Source],
    lists: ListMerge,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
    let (file, parsed, origins) = merge_sources(sources, env, lists)?;
    let (config, errors) = load_parsed(file, parsed, origins);
    let errors = config.origins.attribute(errors);
    Ok((config, errors))
}

fn load_parsed(
    file: Arc<str>,
    parsed: yaml::Parsed,
    origins: Origins,
) -> (Config, Vec<ConfigError>) {
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
        origins,
    };
    loader.top_level(&parsed.root, &mut config);
    (config, loader.errors)
}

const TOP_LEVEL_KEYS: &str = "receivers, processors, exporters, connectors, extensions, service";

pub(super) struct Loader {
    pub(super) file: Arc<str>,
    pub(super) errors: Vec<ConfigError>,
}

impl Loader {
    pub(super) fn error(&mut self, mark: Mark, path: String, reason: impl fmt::Display) {
        self.errors.push(ConfigError::new(
            Some(self.file.clone()),
            Some(mark),
            path,
            reason.to_string(),
        ));
    }

    /// The entries of a map node; `None` (after recording an error) for anything but a map or
    /// nothing at all.
    pub(super) fn entries<'n>(
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
}

/// Position of the value of `key` in the map `node`, if present.
pub(super) fn find_value_mark(node: &Node, key: &str) -> Option<Mark> {
    let NodeValue::Map(entries) = &node.value else {
        return None;
    };
    let (k, v) = entries.iter().find(|(k, _)| key_text(k) == key)?;
    Some(yaml::key_mark_for(k, v))
}

//! otelcol's config sources. `--config` takes a path or a URI (`file:`, `env:`, `yaml:`) and
//! may be given several times; `--set key::path=value` adds one value. The sources are merged
//! in order as otelcol's confmap merges them: maps key by key, anything else (scalars, lists)
//! replaced by the later source (with otelcol's `confmap.enableMergeAppendOption` gate, lists
//! of component ids append, [`ListMerge`]). In every source a key `a::b` is `b` inside `a`, as
//! in otelcol (whose `--set a.b=c` is `yaml:a::b: c`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::deepest_key;
use super::expand::{self, is_env_name, EnvLookup};
use super::yaml::{self, key_text};
use super::{ConfigError, ConfigErrors, Mark, Node, NodeValue};

/// Where a part of the config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A path, or `file:PATH`.
    File(PathBuf),
    /// `env:NAME`: YAML in an environment variable.
    Env(String),
    /// `yaml:TEXT`: YAML on the command line.
    Yaml(String),
    /// `--set key::path=value`, as its flag.
    Set { flag: String, yaml: String },
}

impl Source {
    /// A `--config` value. Like otelcol, a value starting with a scheme (`name:`) is a URI,
    /// anything else a path.
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        let Some((scheme, rest)) = uri.split_once(':').filter(|(s, _)| is_scheme(s)) else {
            return Ok(Self::File(PathBuf::from(uri)));
        };
        match scheme {
            "file" => Ok(Self::File(PathBuf::from(rest))),
            "env" if is_env_name(rest) => Ok(Self::Env(rest.to_owned())),
            "env" => Err(flag_error(
                "--config",
                format!("`{uri}`: `env:` takes the name of an environment variable"),
            )),
            "yaml" => Ok(Self::Yaml(rest.to_owned())),
            "http" | "https" | "s3" | "aws" | "googlesecretmanager" => Err(flag_error(
                "--config",
                format!(
                    "`{uri}`: the `{scheme}:` config source is not supported by Redline; \
                     download the file and pass its path"
                ),
            )),
            _ => Err(flag_error(
                "--config",
                format!(
                    "`{uri}`: unknown config source scheme `{scheme}:`; Redline reads a path, \
                     `file:PATH`, `env:NAME` or `yaml:TEXT`"
                ),
            )),
        }
    }

    /// A `--set` value, `key.path=value` or `key::path=value`, read as otelcol reads it: the
    /// value is YAML, and every `.` of the key is a `::` (so a component name with a dot
    /// cannot be set this way, in otelcol either).
    pub fn set(flag: &str) -> Result<Self, ConfigError> {
        match flag.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Self::Set {
                flag: format!("--set {flag}"),
                yaml: format!("{}: {}", key.trim().replace('.', "::"), value.trim()),
            }),
            _ => Err(flag_error(
                "--set",
                format!("`{flag}`: expected key.path=value"),
            )),
        }
    }

    /// How messages name this source.
    fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Env(name) => format!("env:{name}"),
            Self::Yaml(text) => {
                let line = text.lines().next().unwrap_or_default();
                match line.char_indices().nth(40) {
                    Some((at, _)) => format!("--config yaml:{}…", &line[..at]),
                    None if line.len() < text.len() => format!("--config yaml:{line}…"),
                    None => format!("--config yaml:{line}"),
                }
            }
            Self::Set { flag, .. } => flag.clone(),
        }
    }

    /// Whether positions in this source mean something to the user: text on the command
    /// line has no file to open at a line.
    fn has_lines(&self) -> bool {
        matches!(self, Self::File(_) | Self::Env(_))
    }

    fn text(&self, env: EnvLookup<'_>) -> Result<String, ConfigError> {
        let unreadable =
            |why: String| ConfigError::new(Some(Arc::from(self.name())), None, String::new(), why);
        match self {
            Self::File(path) => crate::user_file::read_text(path)
                .map_err(|e| unreadable(format!("cannot read the config file: {e}"))),
            Self::Env(name) => env(name)
                .ok_or_else(|| unreadable(format!("environment variable `{name}` is not set"))),
            Self::Yaml(text) | Self::Set { yaml: text, .. } => Ok(text.clone()),
        }
    }
}

fn is_scheme(s: &str) -> bool {
    // One letter is a Windows drive (`C:\...`), which otelcol reads as a path too.
    s.len() >= 2 && expand::is_scheme(s)
}

fn flag_error(flag: &str, reason: String) -> ConfigError {
    ConfigError::new(None, None, flag.to_owned(), reason)
}

/// How a later source's list merges with an earlier one's at the same key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListMerge {
    /// The later list replaces the earlier one: otelcol's default.
    #[default]
    Replace,
    /// otelcol's `confmap.enableMergeAppendOption` gate: the lists of component ids
    /// (`service.extensions`, and the `receivers` and `exporters` of each pipeline) are the
    /// earlier list followed by the later one's ids it does not hold yet; every other list is
    /// replaced. `processors` are replaced too: their order is the user's to write.
    AppendComponentLists,
}

/// The sources, read, parsed and merged: the name for messages about the whole config, the
/// merged tree, the variables that were unset, and each source's own tree for
/// [`Origins::attribute`]. Every source that cannot be read or parsed is reported.
pub(super) fn merge_sources(
    sources: &[Source],
    env: EnvLookup<'_>,
    lists: ListMerge,
) -> Result<(Arc<str>, yaml::Parsed, Origins), ConfigErrors> {
    let mut errors = Vec::new();
    let mut parts = Vec::new();
    for source in sources {
        let name: Arc<str> = Arc::from(source.name());
        let lines = source.has_lines();
        let parsed = source
            .text(env)
            .map_err(|e| vec![e])
            .and_then(|text| yaml::parse(&name, &text, env));
        match parsed {
            Ok(mut parsed) => {
                parsed.root = nest_keys(parsed.root);
                parts.push((name, lines, parsed));
            }
            Err(e) => errors.extend(e.into_iter().map(|mut e| {
                if !lines {
                    e.mark = None;
                }
                e
            })),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let names: Vec<&str> = parts.iter().map(|(n, _, _)| &**n).collect();
    let file: Arc<str> = Arc::from(names.join(" + "));
    let mut merged: Option<Node> = None;
    let mut unset_env_vars = Vec::new();
    let mut origins = Vec::new();
    for (name, lines, parsed) in parts {
        for var in parsed.unset_env_vars {
            if !unset_env_vars.contains(&var) {
                unset_env_vars.push(var);
            }
        }
        merged = Some(match merged {
            None => parsed.root.clone(),
            Some(base) => merge(base, parsed.root.clone(), &Merging::new(lists)),
        });
        origins.push(Origin {
            name,
            lines,
            root: parsed.root,
        });
    }
    let root = merged.unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: NodeValue::Null,
    });
    // One file needs no attribution: its errors already name it, at their lines.
    let origins = if origins.len() > 1 || origins.iter().any(|o| !o.lines) {
        Origins(origins)
    } else {
        Origins::default()
    };
    Ok((
        file,
        yaml::Parsed {
            root,
            unset_env_vars,
        },
        origins,
    ))
}

/// Where a merge is in the tree, when lists of component ids append: the key path from the
/// root.
struct Merging {
    lists: ListMerge,
    path: Vec<String>,
}

impl Merging {
    fn new(lists: ListMerge) -> Self {
        Self {
            lists,
            path: Vec::new(),
        }
    }

    /// Whether the list at the current path holds component ids that append: otelcol's
    /// patterns `service::extensions`, `service::**::receivers` and `service::**::exporters`.
    fn appends(&self) -> bool {
        if self.lists != ListMerge::AppendComponentLists {
            return false;
        }
        match self.path.as_slice() {
            [service, extensions] => service == "service" && extensions == "extensions",
            [service, _, .., last] => {
                service == "service" && matches!(last.as_str(), "receivers" | "exporters")
            }
            _ => false,
        }
    }
}

/// `over` merged onto `base`: maps key by key (keys of `base` keep their place, new ones
/// follow), lists of component ids appended where `at` says so, anything else replaced.
fn merge(base: Node, over: Node, at: &Merging) -> Node {
    match (base.value, over.value) {
        (NodeValue::Map(entries), NodeValue::Map(more)) => {
            let mut map = Entries::new(entries);
            for (k, v) in more {
                map.merge_at(k, v, at);
            }
            Node {
                mark: base.mark,
                value: NodeValue::Map(map.entries),
            }
        }
        (NodeValue::Seq(items), NodeValue::Seq(more)) if at.appends() => Node {
            mark: base.mark,
            value: NodeValue::Seq(append_new(items, more)),
        },
        (_, value) => Node {
            mark: over.mark,
            value,
        },
    }
}

/// `items` followed by the values of `more` it does not hold yet. Ids are looked up by text,
/// so a list of many ids appends in linear time; anything else is compared in full.
fn append_new(mut items: Vec<Node>, more: Vec<Node>) -> Vec<Node> {
    let mut texts: HashSet<String> = items
        .iter()
        .filter_map(|n| match &n.value {
            NodeValue::Scalar { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    for item in more {
        let new = match &item.value {
            NodeValue::Scalar { text, .. } => texts.insert(text.clone()),
            _ => !items.iter().any(|i| same_value(i, &item)),
        };
        if new {
            items.push(item);
        }
    }
    items
}

/// Equal values, wherever they were written (map entries in order).
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (NodeValue::Null, NodeValue::Null) => true,
        (NodeValue::Scalar { text: x, .. }, NodeValue::Scalar { text: y, .. }) => x == y,
        (NodeValue::Seq(x), NodeValue::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (NodeValue::Map(x), NodeValue::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((xk, xv), (yk, yv))| key_text(xk) == key_text(yk) && same_value(xv, yv))
        }
        _ => false,
    }
}

/// A map's entries with an index by key, so that merging many keys stays linear (a config
/// may hold a million values).
struct Entries {
    entries: Vec<(Node, Node)>,
    index: HashMap<String, usize>,
}

impl Entries {
    fn new(entries: Vec<(Node, Node)>) -> Self {
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (key_text(k).to_owned(), i))
            .collect();
        Self { entries, index }
    }

    /// Merges `value` into the entry of `key`, or adds it; lists are replaced.
    fn merge(&mut self, key: Node, value: Node) {
        self.merge_at(key, value, &Merging::new(ListMerge::Replace));
    }

    /// [`Entries::merge`] below the path of `at`.
    fn merge_at(&mut self, key: Node, value: Node, at: &Merging) {
        let slot = self
            .index
            .get(key_text(&key))
            .and_then(|&i| self.entries.get_mut(i));
        match slot {
            Some((_, existing)) => {
                let placeholder = Node {
                    mark: value.mark,
                    value: NodeValue::Null,
                };
                let old = std::mem::replace(existing, placeholder);
                *existing = if at.lists == ListMerge::Replace {
                    merge(old, value, at)
                } else {
                    let mut path = at.path.clone();
                    path.push(key_text(&key).to_owned());
                    merge(
                        old,
                        value,
                        &Merging {
                            lists: at.lists,
                            path,
                        },
                    )
                };
            }
            None => {
                self.index
                    .insert(key_text(&key).to_owned(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

/// Map keys written `a::b::c` as nested maps `a: {b: {c: ...}}`, at every level.
fn nest_keys(node: Node) -> Node {
    let value = match node.value {
        NodeValue::Map(entries) if entries.iter().any(|(k, _)| key_text(k).contains("::")) => {
            let mut map = Entries::new(Vec::with_capacity(entries.len()));
            for (k, v) in entries {
                let mut parts = key_text(&k).split("::");
                let first = parts.next().unwrap_or_default().to_owned();
                let rest: Vec<&str> = parts.collect();
                let mut value = nest_keys(v);
                for part in rest.iter().rev() {
                    value = Node {
                        mark: value.mark,
                        value: NodeValue::Map(vec![(scalar_key(part, k.mark), value)]),
                    };
                }
                map.merge(scalar_key(&first, k.mark), value);
            }
            NodeValue::Map(map.entries)
        }
        NodeValue::Map(entries) => NodeValue::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k, nest_keys(v)))
                .collect(),
        ),
        NodeValue::Seq(items) => NodeValue::Seq(items.into_iter().map(nest_keys).collect()),
        value => value,
    };
    Node {
        mark: node.mark,
        value,
    }
}

fn scalar_key(text: &str, mark: Mark) -> Node {
    Node {
        mark,
        value: NodeValue::Scalar {
            text: text.to_owned(),
            quoted: false,
        },
    }
}

/// Each source's own tree, when there are several, so that a problem found in the merged
/// config names the source its key came from.
#[derive(Clone, Debug, Default)]
pub struct Origins(Vec<Origin>);

#[derive(Clone, Debug)]
struct Origin {
    name: Arc<str>,
    /// Whether messages give positions in it ([`Source::has_lines`]).
    lines: bool,
    root: Node,
}

impl Origins {
    /// `errors` each naming the source that holds the most of its key path (the later source
    /// on a tie: its value is the one merged), with no position in text given on the
    /// command line nor for a key no source holds.
    pub fn attribute(&self, errors: Vec<ConfigError>) -> Vec<ConfigError> {
        if self.0.is_empty() {
            return errors;
        }
        errors
            .into_iter()
            .map(|mut e| {
                if e.mark.is_none() {
                    return e;
                }
                let best = self
                    .0
                    .iter()
                    .map(|origin| {
                        (
                            origin,
                            deepest_key(&origin.root, &e.path).map_or(0, |(d, _)| d),
                        )
                    })
                    .filter(|(_, depth)| *depth > 0)
                    .max_by_key(|(_, depth)| *depth);
                match best {
                    Some((origin, _)) => {
                        if !origin.lines {
                            e.mark = None;
                        }
                        e.file = Some(origin.name.clone());
                    }
                    // A problem with no key in any source (a missing section) has no line
                    // in the sources together.
                    None => e.mark = None,
                }
                e
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_sources_lenient_with_env;

    const BASE: &str = "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}\n\
                        exporters:\n  otlp:\n    endpoint: tempo:4317\n    headers: {a: '1'}\n\
                        service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [otlp]}\n";

    fn env(name: &str) -> Option<String> {
        (name == "BASE").then(|| BASE.to_owned())
    }

    fn load(sources: &[Source]) -> Result<(super::super::Config, Vec<ConfigError>), ConfigErrors> {
        load_sources_lenient_with_env(sources, ListMerge::Replace, &env)
    }

    fn pipeline_ids(config: &super::super::Config) -> [Vec<String>; 2] {
        let traces = &config.service.pipelines[0];
        [&traces.receivers, &traces.exporters]
            .map(|ids| ids.iter().map(|(id, _)| id.to_string()).collect())
    }

    fn exporter_text(config: &super::super::Config) -> String {
        format!("{:?}", config.exporters[0].node())
    }

    #[test]
    fn uris_as_otelcol_reads_them() {
        assert_eq!(Source::parse("a.yaml"), Ok(Source::File("a.yaml".into())));
        assert_eq!(
            Source::parse("/etc/c.yaml"),
            Ok(Source::File("/etc/c.yaml".into()))
        );
        assert_eq!(
            Source::parse("file:/etc/c.yaml"),
            Ok(Source::File("/etc/c.yaml".into()))
        );
        assert_eq!(
            Source::parse(r"C:\c.yaml"),
            Ok(Source::File(r"C:\c.yaml".into()))
        );
        assert_eq!(Source::parse("env:CFG_1"), Ok(Source::Env("CFG_1".into())));
        assert_eq!(
            Source::parse("yaml:a::b: 1"),
            Ok(Source::Yaml("a::b: 1".into()))
        );
        for (bad, says) in [
            ("env:", "takes the name of an environment variable"),
            ("env:1X", "takes the name of an environment variable"),
            (
                "https://h/c.yaml",
                "the `https:` config source is not supported by Redline",
            ),
            ("consul:x", "unknown config source scheme `consul:`"),
        ] {
            let e = Source::parse(bad).expect_err(bad);
            assert_eq!(e.path, "--config");
            assert!(e.reason.contains(says), "{bad}: {}", e.reason);
        }
    }

    #[test]
    fn set_flags_as_otelcol_reads_them() {
        let Ok(Source::Set { flag, yaml }) = Source::set("exporters.otlp.timeout = 2s") else {
            panic!("a set flag")
        };
        assert_eq!(flag, "--set exporters.otlp.timeout = 2s");
        assert_eq!(yaml, "exporters::otlp::timeout: 2s");
        for bad in ["no-equals", "=value", " =value"] {
            let e = Source::set(bad).expect_err(bad);
            assert_eq!(e.path, "--set");
        }
    }

    #[test]
    fn later_sources_merge_maps_and_replace_the_rest() {
        let (config, errors) = load(&[
            Source::Env("BASE".into()),
            Source::Yaml("exporters::otlp: {timeout: 2s, headers: {b: '2'}}".into()),
            Source::set("exporters.otlp.endpoint=other:4317").expect("set"),
        ])
        .expect("loads");
        assert_eq!(errors, []);
        let exporter = exporter_text(&config);
        for part in ["other:4317", "2s", "\"a\"", "\"b\""] {
            assert!(exporter.contains(part), "{part} in {exporter}");
        }
        assert!(!exporter.contains("tempo:4317"), "{exporter}");
        assert_eq!(
            &*config.file,
            "env:BASE + --config yaml:exporters::otlp: {timeout: 2s, headers: … \
             + --set exporters.otlp.endpoint=other:4317"
        );
        // A list is replaced whole, and null replaces a map.
        let (config, _) = load(&[
            Source::Env("BASE".into()),
            Source::Yaml("exporters: {otlp: {headers: null, endpoint: x:1}, debug: {}}".into()),
            Source::Yaml("service::pipelines::traces::exporters: [debug]".into()),
        ])
        .expect("loads");
        let exporter = exporter_text(&config);
        assert!(
            exporter.contains("x:1") && !exporter.contains("\"a\""),
            "{exporter}"
        );
        assert_eq!(pipeline_ids(&config)[1], ["debug"]);
    }

    #[test]
    fn with_the_append_gate_component_lists_append() {
        let sources = [
            Source::Env("BASE".into()),
            Source::Yaml(
                "exporters: {debug: {}}\nextensions: {health_check: {}}\n\
                 service:\n  extensions: [health_check]\n  pipelines:\n    traces:\n      \
                 receivers: [otlp]\n      exporters: [debug, otlp]\n      \
                 processors: [batch]\nprocessors: {batch: {}}\n"
                    .into(),
            ),
            Source::Yaml("service::pipelines::traces::processors: [batch, batch/2]".into()),
            Source::Yaml("processors::batch/2: {}".into()),
        ];
        let (config, _) =
            load_sources_lenient_with_env(&sources, ListMerge::AppendComponentLists, &env)
                .expect("loads");
        // Ids already there are not repeated; the new ones follow in their order.
        assert_eq!(pipeline_ids(&config), [vec!["otlp"], vec!["otlp", "debug"]]);
        let traces = &config.service.pipelines[0];
        // Processors are replaced: their order is meaningful.
        let processors: Vec<String> = traces
            .processors
            .iter()
            .map(|(id, _)| id.to_string())
            .collect();
        assert_eq!(processors, ["batch", "batch/2"]);
        // Without the gate the later lists replace the earlier ones.
        let (config, _) = load(&sources).expect("loads");
        assert_eq!(pipeline_ids(&config), [vec!["otlp"], vec!["debug", "otlp"]]);
    }

    #[test]
    fn each_problem_names_the_source_its_key_came_from() {
        let (config, errors) = load(&[
            Source::Env("BASE".into()),
            Source::Yaml("\nexporters::otlp::compression: zip".into()),
            Source::set("exporters.otlp.timeout=-1s").expect("set"),
        ])
        .expect("loads");
        assert_eq!(errors, []);
        let mut found = config.origins.attribute(vec![
            config.exporters[0].invalid("compression", "bad"),
            config.exporters[0].invalid("timeout", "bad"),
            config.exporters[0].invalid("endpoint", "bad"),
        ]);
        let shown: Vec<String> = found.drain(..).map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "--config yaml:…: exporters.otlp.compression: bad",
                "--set exporters.otlp.timeout=-1s: exporters.otlp.timeout: bad",
                "env:BASE:4:15: exporters.otlp.endpoint: bad",
            ]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_device_or_a_runaway_file_is_not_read_into_memory() {
        let errors = load(&[Source::File("/dev/zero".into())]).expect_err("endless");
        assert_eq!(
            errors.to_string(),
            "/dev/zero: cannot read the config file: larger than 16 MiB"
        );
    }

    #[test]
    fn every_source_that_cannot_be_read_is_reported() {
        let missing = std::env::temp_dir().join("redline-no-such-config.yaml");
        let errors = load(&[
            Source::File(missing.clone()),
            Source::Env("UNSET".into()),
            Source::Yaml("a: [".into()),
        ])
        .expect_err("three broken sources");
        let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with(&format!(
            "{}: cannot read the config file",
            missing.display()
        )));
        assert_eq!(
            shown[1],
            "env:UNSET: environment variable `UNSET` is not set"
        );
        assert!(
            shown[2].starts_with("--config yaml:a: [: invalid YAML"),
            "{}",
            shown[2]
        );
    }
}

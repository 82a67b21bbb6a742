//! Checks that a config describes a graph Redline can build: every type is known, every
//! reference resolves, every connector joins two pipelines, every component supports the
//! signal of the pipelines it is in.

use std::collections::{BTreeMap, BTreeSet};

use crate::component::{ComponentId, ComponentKind, Factories, Signal};
use crate::config::{ComponentConfig, Config, ConfigError, ConfigErrors, Mark, PipelineConfig};

/// Something suspicious that does not stop Redline from running, e.g. an unused component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning(pub String);

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

struct Checker<'a> {
    config: &'a Config,
    factories: &'a Factories,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Checker<'_> {
    fn error(&mut self, mark: Option<Mark>, path: String, reason: String) {
        self.errors.push(ConfigError::new(
            Some(self.config.file.clone()),
            mark,
            path,
            reason,
        ));
    }

    /// A warning about the key at `path`, located like an error (in the source it came from
    /// when the config merges several).
    fn warn(&mut self, mark: Mark, path: String, reason: String) {
        let at = ConfigError::new(Some(self.config.file.clone()), Some(mark), path, reason);
        for located in self.config.origins.attribute(vec![at]) {
            self.warnings.push(Warning(located.to_string()));
        }
    }

    fn check_types_and_configs(&mut self) {
        let sections: [(ComponentKind, &[ComponentConfig]); 5] = [
            (ComponentKind::Receiver, &self.config.receivers),
            (ComponentKind::Processor, &self.config.processors),
            (ComponentKind::Exporter, &self.config.exporters),
            (ComponentKind::Connector, &self.config.connectors),
            (ComponentKind::Extension, &self.config.extensions),
        ];
        for (kind, components) in sections {
            for component in components {
                let type_name = component.id().type_name();
                match self.factories.info(kind, type_name) {
                    Some(factory) => match component.every_problem(|c| factory.validate_all(c)) {
                        problems if !problems.is_empty() => self.errors.extend(problems),
                        _ => {
                            for w in factory.warnings(component) {
                                self.warn(component.mark(), component.path(), w);
                            }
                            self.check_extension_refs(factory.extension_refs(component), component)
                        }
                    },
                    None => {
                        let reason = unsupported_type(kind, type_name, &self.factories.known(kind));
                        self.error(Some(component.node().mark), component.path(), reason);
                    }
                }
            }
        }
    }

    /// Every extension a component refers to must be enabled in `service.extensions`.
    fn check_extension_refs(
        &mut self,
        refs: Vec<(String, ComponentId)>,
        component: &ComponentConfig,
    ) {
        for (key, id) in refs {
            let enabled = self.config.service.extensions.iter().any(|(e, _)| *e == id);
            if !enabled {
                let defined = self.config.extensions.iter().any(|e| *e.id() == id);
                let reason = if defined {
                    format!("refers to extension `{id}`, which is defined but not listed in `service.extensions`")
                } else {
                    format!("refers to extension `{id}`, which is not defined in `extensions`")
                };
                self.errors.push(component.invalid(&key, reason));
            }
        }
    }

    fn defined(&self, kind: ComponentKind) -> BTreeSet<&ComponentId> {
        let list = match kind {
            ComponentKind::Receiver => &self.config.receivers,
            ComponentKind::Processor => &self.config.processors,
            ComponentKind::Exporter => &self.config.exporters,
            ComponentKind::Connector => &self.config.connectors,
            ComponentKind::Extension => &self.config.extensions,
        };
        list.iter().map(|c| c.id()).collect()
    }

    fn check_pipelines(&mut self) {
        let receivers = self.defined(ComponentKind::Receiver);
        let processors = self.defined(ComponentKind::Processor);
        let exporters = self.defined(ComponentKind::Exporter);
        let connectors = self.defined(ComponentKind::Connector);

        // Per connector: the signals of the pipelines it exports from and receives into.
        let mut connector_in: BTreeMap<ComponentId, BTreeSet<Signal>> = BTreeMap::new();
        let mut connector_out: BTreeMap<ComponentId, BTreeSet<Signal>> = BTreeMap::new();
        let mut errors = Vec::new();

        for pipeline in &self.config.service.pipelines {
            let base = format!("service.pipelines.{}", pipeline.id);
            if pipeline.receivers.is_empty() {
                errors.push((
                    Some(pipeline.mark),
                    format!("{base}.receivers"),
                    "must list at least one receiver".to_owned(),
                ));
            }
            if pipeline.exporters.is_empty() {
                errors.push((
                    Some(pipeline.mark),
                    format!("{base}.exporters"),
                    "must list at least one exporter".to_owned(),
                ));
            }
            let mut seen = BTreeSet::new();
            for (list, id, mark) in entries(pipeline) {
                if !seen.insert((list, id)) {
                    errors.push((
                        Some(*mark),
                        format!("{base}.{list}"),
                        format!("`{id}` is listed twice"),
                    ));
                }
                let path = format!("{base}.{list}");
                let found = match list {
                    "receivers" => {
                        if connectors.contains(id) {
                            connector_out
                                .entry(id.clone())
                                .or_default()
                                .insert(pipeline.signal);
                            true
                        } else {
                            receivers.contains(id)
                        }
                    }
                    "processors" => processors.contains(id),
                    _ => {
                        if connectors.contains(id) {
                            connector_in
                                .entry(id.clone())
                                .or_default()
                                .insert(pipeline.signal);
                            true
                        } else {
                            exporters.contains(id)
                        }
                    }
                };
                if !found {
                    let section = match list {
                        "receivers" => "`receivers` or `connectors`",
                        "processors" => "`processors`",
                        _ => "`exporters` or `connectors`",
                    };
                    errors.push((
                        Some(*mark),
                        path,
                        format!("references `{id}`, which is not defined in {section}"),
                    ));
                    continue;
                }
                if let Some(reason) = self.signal_support(list, id, pipeline.signal, &connectors) {
                    errors.push((Some(*mark), path, reason));
                }
            }
        }

        for id in &connectors {
            let ins = connector_in.get(*id);
            let outs = connector_out.get(*id);
            let path = format!("connectors.{id}");
            match (ins, outs) {
                (Some(_), None) => errors.push((
                    None,
                    path,
                    "is used as an exporter but not as a receiver of any pipeline: a connector joins two pipelines".to_owned(),
                )),
                (None, Some(_)) => errors.push((
                    None,
                    path,
                    "is used as a receiver but not as an exporter of any pipeline: a connector joins two pipelines".to_owned(),
                )),
                (Some(ins), Some(outs)) => {
                    // An unknown type was reported where it is defined; nothing more to say.
                    let Some(factory) = self.factories.connectors.get(id.type_name()) else {
                        continue;
                    };
                    let supported = factory.signals();
                    // As otelcol: every signal in needs some supported signal out and vice
                    // versa; unsupported pairs among them are simply not connected.
                    for i in ins {
                        if !outs.iter().any(|o| supported.contains(&(*i, *o))) {
                            errors.push((
                                None,
                                path.clone(),
                                format!("is used as an exporter in a {i} pipeline but not as a receiver of any pipeline it can feed from {i}"),
                            ));
                        }
                    }
                    for o in outs {
                        if !ins.iter().any(|i| supported.contains(&(*i, *o))) {
                            errors.push((
                                None,
                                path.clone(),
                                format!("is used as a receiver in a {o} pipeline but not as an exporter of any pipeline it can produce {o} from"),
                            ));
                        }
                    }
                }
                (None, None) => {}
            }
        }
        for (mark, path, reason) in errors {
            let mark = mark.or_else(|| self.mark_of(&path));
            self.error(mark, path, reason);
        }
    }

    /// Connectors that lead from a pipeline back into itself would loop batches forever;
    /// otelcol refuses such graphs too.
    fn check_connector_cycles(&mut self) {
        let pipelines = &self.config.service.pipelines;
        // Pipeline i feeds pipeline j when a connector is an exporter of i and a receiver of j.
        let feeds = |i: usize, j: usize| {
            pipelines[i].exporters.iter().any(|(c, _)| {
                self.config.is_connector(c) && pipelines[j].receivers.iter().any(|(r, _)| r == c)
            })
        };
        let n = pipelines.len();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; n];
        let mut cycle: Option<Vec<usize>> = None;
        fn visit(
            i: usize,
            n: usize,
            feeds: &dyn Fn(usize, usize) -> bool,
            state: &mut [u8],
            path: &mut Vec<usize>,
            cycle: &mut Option<Vec<usize>>,
        ) {
            state[i] = 1;
            path.push(i);
            for j in 0..n {
                if cycle.is_some() || !feeds(i, j) {
                    continue;
                }
                match state[j] {
                    0 => visit(j, n, feeds, state, path, cycle),
                    1 => {
                        let from = path.iter().position(|p| *p == j).unwrap_or(0);
                        *cycle = Some(path[from..].to_vec());
                    }
                    _ => {}
                }
            }
            path.pop();
            state[i] = 2;
        }
        for i in 0..n {
            if state[i] == 0 && cycle.is_none() {
                visit(i, n, &feeds, &mut state, &mut Vec::new(), &mut cycle);
            }
        }
        if let Some(cycle) = cycle {
            let names: Vec<&str> = cycle.iter().map(|i| pipelines[*i].id.as_str()).collect();
            let first = cycle[0];
            let reason = format!(
                "connectors form a cycle through pipelines {} -> {}",
                names.join(" -> "),
                names[0]
            );
            let mark = pipelines[first].mark;
            self.error(
                Some(mark),
                format!("service.pipelines.{}", pipelines[first].id),
                reason,
            );
        }
    }

    /// Why a component cannot sit in a pipeline of `signal`, if it cannot.
    fn signal_support(
        &self,
        list: &str,
        id: &ComponentId,
        signal: Signal,
        connectors: &BTreeSet<&ComponentId>,
    ) -> Option<String> {
        let t = id.type_name();
        let signals: &[Signal] = if connectors.contains(id) {
            return None; // checked per pair once all pipelines are known
        } else {
            match list {
                "receivers" => self.factories.receivers.get(t).map(|f| f.signals())?,
                "processors" => self.factories.processors.get(t).map(|f| f.signals())?,
                _ => self.factories.exporters.get(t).map(|f| f.signals())?,
            }
        };
        (!signals.contains(&signal)).then(|| format!("`{id}` does not support {signal} pipelines"))
    }

    fn mark_of(&self, path: &str) -> Option<Mark> {
        let id = path.strip_prefix("connectors.")?;
        self.config
            .connectors
            .iter()
            .find(|c| c.id().to_string() == id)
            .map(|c| c.node().mark)
    }

    fn check_unused_and_extensions(&mut self) {
        let mut used: BTreeSet<(ComponentKind, &ComponentId)> = BTreeSet::new();
        for pipeline in &self.config.service.pipelines {
            for (list, id, _) in entries(pipeline) {
                let kind = match list {
                    "receivers" => ComponentKind::Receiver,
                    "processors" => ComponentKind::Processor,
                    _ => ComponentKind::Exporter,
                };
                used.insert((kind, id));
                used.insert((ComponentKind::Connector, id));
            }
        }
        let extensions = self.defined(ComponentKind::Extension);
        let mut errors = Vec::new();
        for (id, mark) in &self.config.service.extensions {
            if !extensions.contains(id) {
                errors.push((
                    *mark,
                    format!("references `{id}`, which is not defined in `extensions`"),
                ));
            }
            used.insert((ComponentKind::Extension, id));
        }
        for (mark, reason) in errors {
            self.error(Some(mark), "service.extensions".to_owned(), reason);
        }
        let sections: [(ComponentKind, &[ComponentConfig]); 5] = [
            (ComponentKind::Receiver, &self.config.receivers),
            (ComponentKind::Processor, &self.config.processors),
            (ComponentKind::Exporter, &self.config.exporters),
            (ComponentKind::Connector, &self.config.connectors),
            (ComponentKind::Extension, &self.config.extensions),
        ];
        for (kind, components) in sections {
            for c in components {
                if !used.contains(&(kind, c.id())) {
                    self.warn(
                        c.mark(),
                        c.path(),
                        "defined but not used in any pipeline; it will not run".to_owned(),
                    );
                }
            }
        }
        for var in &self.config.unset_env_vars {
            self.warnings.push(Warning(format!(
                "{}: environment variable `{var}` is not set; it expanded to an empty string",
                self.config.file
            )));
        }
    }
}

/// Why a component type cannot be used: most are otelcol components Redline does not have,
/// so that is what the message says; a near miss of a type Redline has is likely a typo.
fn unsupported_type(kind: ComponentKind, type_name: &str, known: &[&str]) -> String {
    let supported = if known.is_empty() {
        "none yet".to_owned()
    } else {
        known.join(", ")
    };
    let near = known
        .iter()
        .find(|k| edit_distance(k, type_name) <= 2 && type_name.len() > 3)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    format!(
        "{} `{type_name}` is not supported by Redline{near} (Redline's {}: {supported})",
        kind.singular(),
        kind.section()
    )
}

/// Levenshtein distance, for "did you mean" on short type names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Every entry of a pipeline as (list name, id, mark).
fn entries(p: &PipelineConfig) -> impl Iterator<Item = (&'static str, &ComponentId, &Mark)> {
    let r = p.receivers.iter().map(|(id, m)| ("receivers", id, m));
    let pr = p.processors.iter().map(|(id, m)| ("processors", id, m));
    let e = p.exporters.iter().map(|(id, m)| ("exporters", id, m));
    r.chain(pr).chain(e)
}

/// Checks everything that can be checked without starting anything. Returns the warnings
/// when the config is usable, or every error found.
pub fn validate(config: &Config, factories: &Factories) -> Result<Vec<Warning>, ConfigErrors> {
    let mut checker = Checker {
        config,
        factories,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    checker.check_types_and_configs();
    checker.check_pipelines();
    checker.check_connector_cycles();
    checker.check_unused_and_extensions();
    if checker.errors.is_empty() {
        Ok(checker.warnings)
    } else {
        Err(ConfigErrors(config.origins.attribute(checker.errors)))
    }
}

/// [`validate`] for a config that was read with errors (`load_*_lenient`): the components
/// are still checked, so one run reports every problem of the file, and what the read
/// errors already explain (a pipeline that could not be read) is not reported again.
pub fn validate_after_load_errors(
    config: &Config,
    factories: &Factories,
    load_errors: Vec<ConfigError>,
) -> Result<Vec<Warning>, ConfigErrors> {
    if load_errors.is_empty() {
        return validate(config, factories);
    }
    // A pipeline's own path: `service.pipelines.<id>`.
    let pipeline_of = |path: &str| -> Option<String> {
        let rest = path.strip_prefix("service.pipelines.")?;
        Some(rest.split('.').next().unwrap_or(rest).to_owned())
    };
    let broken: BTreeSet<String> = load_errors
        .iter()
        .filter_map(|e| pipeline_of(&e.path))
        .collect();
    let mut errors = load_errors;
    if let Err(found) = validate(config, factories) {
        errors.extend(
            found
                .0
                .into_iter()
                .filter(|e| !pipeline_of(&e.path).is_some_and(|p| broken.contains(&p))),
        );
    }
    Err(ConfigErrors(errors))
}

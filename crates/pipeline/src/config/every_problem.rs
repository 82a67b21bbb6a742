//! Every problem of a component's section in one `validate` run, even where the component's
//! own checks stop at the first: a key that does not parse stops serde for the whole section,
//! and most factories return one error. The key a problem names is set aside and the checks
//! run again on what is left, until they pass or name nothing more that can be set aside.
//! A key the section cannot do without (serde's `missing field`) goes back holding a stand-in
//! value its checks accept (or at least one of a type that parses), so the checks behind it
//! still run.

use super::{yaml, ComponentConfig, ConfigError, Node, NodeValue};

/// Rounds before giving up: a section with more bad keys than this reports the first ones.
const MAX_ROUNDS: usize = 64;

impl ComponentConfig {
    /// Every problem `check` finds in this section, in the order found. Problems of later
    /// rounds that could come from a key set aside (at or under it, or naming it) are left
    /// out: a report may miss a problem hidden behind another, but never invents one.
    pub fn every_problem(
        &self,
        check: impl Fn(&ComponentConfig) -> Vec<ConfigError>,
    ) -> Vec<ConfigError> {
        let base = self.path();
        let mut current = self.clone();
        let mut found: Vec<ConfigError> = Vec::new();
        let mut set_aside: Vec<SetAside> = Vec::new();
        let mut stood_in: Vec<String> = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let problems = check(&current);
            if problems.is_empty() {
                break;
            }
            let mut progress = false;
            // The checks ran before this round set anything aside: only keys set aside in
            // earlier rounds can have made its problems.
            let before_round = set_aside.len();
            for problem in problems {
                // A problem made by setting a key aside is not reported, but what it names
                // is set aside too, or it would stop the checks behind it; a key the section
                // cannot do without goes back with a stand-in value.
                let made_up = set_aside[..before_round]
                    .iter()
                    .any(|s| s.explains(&problem));
                let at_stand_in = stood_in.iter().any(|p| under(&problem.path, p));
                if at_stand_in {
                    // What the key's checks say about its stand-in: nothing to do.
                } else if made_up
                    && stand_in(
                        &mut current,
                        &base,
                        &problem,
                        &set_aside,
                        &mut stood_in,
                        &check,
                    )
                {
                    progress = true;
                } else if let Some(pruned) = relative(&problem.path, &base)
                    .and_then(|rel| prune(&mut current.node, rel, &base))
                {
                    set_aside.push(pruned);
                    progress = true;
                }
                if !made_up && !found.contains(&problem) {
                    found.push(problem);
                }
            }
            if !progress {
                break;
            }
        }
        found
    }
}

/// Puts back a key that was set aside and that serde then reported missing (`problem`),
/// holding a stand-in value, so that the checks needing the section parsed run on the rest:
/// the first that passes the key's own checks too, else the first its type accepts (what the
/// key's checks say about a stand-in is never reported). Returns whether one was put back;
/// its path is added to `stood_in`, where problems are not set aside again.
fn stand_in(
    current: &mut ComponentConfig,
    base: &str,
    problem: &ConfigError,
    set_aside: &[SetAside],
    stood_in: &mut Vec<String>,
    check: &impl Fn(&ComponentConfig) -> Vec<ConfigError>,
) -> bool {
    let Some(key) = problem
        .reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    else {
        return false;
    };
    let path = format!("{}.{key}", problem.path);
    let Some(rel) = relative(&problem.path, base) else {
        return false;
    };
    if !set_aside.iter().any(|s| s.path == path) || stood_in.contains(&path) {
        return false;
    }
    let mark = current.node.mark;
    let mut typed = None;
    for value in stand_ins() {
        let mut trial = current.clone();
        let Some(entries) = map_at(&mut trial.node, rel) else {
            return false;
        };
        entries.push((
            Node {
                mark,
                value: text(key, false),
            },
            Node { mark, value },
        ));
        let problems = check(&trial);
        if problems.iter().any(|p| p == problem) {
            continue;
        }
        if !problems.iter().any(|p| under(&p.path, &path)) {
            typed = Some(trial);
            break;
        }
        let wrong_type = problems
            .iter()
            .any(|p| p.path == path && p.reason.starts_with("invalid type"));
        if !wrong_type && typed.is_none() {
            typed = Some(trial);
        }
    }
    let Some(trial) = typed else {
        return false;
    };
    *current = trial;
    stood_in.push(path);
    true
}

/// Values of each type a key may need, and a few texts that common checks accept (not empty,
/// an address, a URL).
fn stand_ins() -> [NodeValue; 8] {
    [
        text("", true),
        text("0", false),
        text("false", false),
        NodeValue::Map(Vec::new()),
        NodeValue::Seq(Vec::new()),
        text("x", true),
        text("localhost:1", true),
        text("http://localhost:1", true),
    ]
}

fn text(text: &str, quoted: bool) -> NodeValue {
    NodeValue::Scalar {
        text: text.to_owned(),
        quoted,
    }
}

/// The entries of the map `path` leads to under `node` (`""`: `node` itself).
fn map_at<'n>(node: &'n mut Node, path: &str) -> Option<&'n mut Vec<(Node, Node)>> {
    if path.is_empty() {
        return match &mut node.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        };
    }
    match &mut node.value {
        NodeValue::Map(entries) => entries.iter_mut().find_map(|(k, v)| {
            let rest = path.strip_prefix(yaml::key_text(k))?;
            match rest.as_bytes().first() {
                None => map_at(v, ""),
                Some(b'.') => map_at(v, &rest[1..]),
                Some(b'[') => map_at(v, rest),
                Some(_) => None,
            }
        }),
        NodeValue::Seq(items) => {
            let (index, rest) = path.strip_prefix('[')?.split_once(']')?;
            let item = items.get_mut(index.parse::<usize>().ok()?)?;
            map_at(item, rest.strip_prefix('.').unwrap_or(rest))
        }
        _ => None,
    }
}

/// A key removed from the section, by its full path and its own name.
#[derive(Debug)]
struct SetAside {
    path: String,
    key: String,
}

impl SetAside {
    /// Whether `problem` may only exist because this key is gone.
    fn explains(&self, problem: &ConfigError) -> bool {
        if under(&problem.path, &self.path) {
            return true;
        }
        // A key is unknown wherever it is written: setting another key aside, even one of the
        // same name elsewhere (`grpc.dialer` and `http.dialer`), cannot make it so.
        if problem.reason.starts_with("unknown field `") {
            return false;
        }
        // What serde expected instead (`unknown variant \`x\`, expected one of \`a\`, ...`)
        // lists keys without being about them.
        let about = match problem.reason.find(", expected ") {
            Some(at) => &problem.reason[..at],
            None => &problem.reason,
        };
        names(about, &self.key)
    }
}

/// `path` relative to the component at `base` (`tls.cert_file`, `[2]`, or empty for the
/// component itself); `None` for a path outside it.
fn relative<'a>(path: &'a str, base: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() || rest.starts_with('.') || rest.starts_with('[') {
        Some(rest.strip_prefix('.').unwrap_or(rest))
    } else {
        None
    }
}

fn under(path: &str, ancestor: &str) -> bool {
    path.strip_prefix(ancestor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// Whether `text` mentions `word` as a whole word (`missing field \`endpoint\``).
fn names(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !word.is_empty()
        && text.match_indices(word).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + word.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
}

/// Removes the map entry `path` leads to under `node` (whose own path is `base`). A list item
/// is never removed, since the items after it would be renumbered and later problems would
/// name the wrong one: the key holding the list goes instead, as does a key whose path goes
/// on to something it does not hold. An empty path removes nothing. Keys may contain dots
/// (`service.name`), so each level tries every key that is a prefix of the rest of the path
/// before settling for a whole entry.
fn prune(node: &mut Node, path: &str, base: &str) -> Option<SetAside> {
    let NodeValue::Map(entries) = &mut node.value else {
        return None;
    };
    if path.is_empty() {
        return None;
    }
    let mut enclosing = None;
    for (i, (key, value)) in entries.iter_mut().enumerate() {
        let key = yaml::key_text(key);
        let Some(rest) = path.strip_prefix(key) else {
            continue;
        };
        let here = format!("{base}.{key}");
        let deeper = match rest.as_bytes().first() {
            None => {
                enclosing = Some(i);
                break;
            }
            Some(b'.') => prune(value, &rest[1..], &here),
            Some(b'[') => prune_in_list(value, rest, &here),
            Some(_) => continue,
        };
        if deeper.is_some() {
            return deeper;
        }
        enclosing = enclosing.or(Some(i));
    }
    let (key, _) = entries.remove(enclosing?);
    let key = yaml::key_text(&key).to_owned();
    Some(SetAside {
        path: format!("{base}.{key}"),
        key,
    })
}

/// [`prune`] under the list item `path` starts with (`[2].name`); `None` when the path ends at
/// the item itself.
fn prune_in_list(node: &mut Node, path: &str, base: &str) -> Option<SetAside> {
    let NodeValue::Seq(items) = &mut node.value else {
        return None;
    };
    let (index, rest) = path.strip_prefix('[')?.split_once(']')?;
    let item = items.get_mut(index.parse::<usize>().ok()?)?;
    let here = format!("{base}[{index}]");
    match rest.as_bytes().first() {
        Some(b'.') => prune(item, &rest[1..], &here),
        Some(b'[') => prune_in_list(item, rest, &here),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        endpoint: String,
        #[serde(default)]
        timeout_ms: u32,
        #[serde(default)]
        tls: Tls,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tls {
        cert_file: Option<String>,
        key_file: Option<String>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
        label: Option<String>,
    }

    /// Parse, then one cross-key check, stopping at the first problem as most factories do.
    fn check(c: &ComponentConfig) -> Vec<ConfigError> {
        match c.parse::<Cfg>() {
            Err(e) => vec![e],
            Ok(cfg) if cfg.tls.cert_file.is_some() && cfg.tls.key_file.is_none() => {
                vec![c.invalid("tls.cert_file", "needs key_file beside it")]
            }
            Ok(_) => Vec::new(),
        }
    }

    fn problems(section: &str) -> Vec<String> {
        let text = format!(
            "exporters:\n  x:\n{section}service:\n  pipelines:\n    traces:\n      receivers: [x]\n      exporters: [x]\n"
        );
        let config = load_str("t.yaml", &text).expect("loads");
        let component = &config.exporters[0];
        component
            .every_problem(check)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_bad_key_of_a_section_in_one_run() {
        let got = problems(
            "    endpoint: a\n    timeout_ms: soon\n    bogus: 1\n    tls: {key_file: [k]}\n",
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("t.yaml:4:17: exporters.x.timeout_ms: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("t.yaml:5:5: exporters.x.bogus: unknown field"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("t.yaml:6:11: exporters.x.tls.key_file: invalid type"),
            "{got:?}"
        );
    }

    #[test]
    fn a_missing_key_is_reported_once_the_keys_before_it_are_set_aside() {
        let got = problems("    bogus: 1\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("exporters.x.bogus: unknown field"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x: missing field `endpoint`"),
            "{got:?}"
        );
    }

    #[test]
    fn an_unknown_key_is_reported_when_a_key_of_its_name_was_set_aside_elsewhere() {
        let got = problems("    endpoint: a\n    tls: {key_file: [k]}\n    key_file: k\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("exporters.x.tls.key_file: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x.key_file: unknown field `key_file`"),
            "{got:?}"
        );
    }

    #[test]
    fn problems_found_together_are_all_reported() {
        // A check that lists every item's problem at once, the second naming a key of the
        // first one's name: none of them can come from a key set aside in the same round.
        let all_items = |c: &ComponentConfig| -> Vec<ConfigError> {
            match c.parse::<Cfg>() {
                Err(e) => vec![e],
                Ok(cfg) => cfg
                    .items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| item.label.is_some())
                    .map(|(i, _)| c.invalid(&format!("items[{i}].label"), "`a.label` is taken"))
                    .collect(),
            }
        };
        let text = "exporters:\n  x:\n    endpoint: a\n    items: [{n: 1, label: a}, {n: 2, label: b}]\nservice:\n  pipelines:\n    traces:\n      receivers: [x]\n      exporters: [x]\n";
        let config = load_str("t.yaml", text).expect("loads");
        let got: Vec<String> = config.exporters[0]
            .every_problem(all_items)
            .iter()
            .map(|p| p.path.clone())
            .collect();
        assert_eq!(
            got,
            ["exporters.x.items[0].label", "exporters.x.items[1].label"]
        );
    }

    #[test]
    fn no_problem_is_made_up_by_setting_a_key_aside() {
        // With key_file set aside, the cross-key check would complain about cert_file; the
        // file has both, so only key_file's own problem is real.
        let got = problems("    endpoint: a\n    tls: {cert_file: c, key_file: [k]}\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("exporters.x.tls.key_file: invalid type"),
            "{got:?}"
        );
        // A bad endpoint set aside is not then reported missing.
        let got = problems("    endpoint: [a]\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("exporters.x.endpoint: invalid type"),
            "{got:?}"
        );
    }

    #[test]
    fn a_required_key_that_does_not_parse_hides_nothing_behind_it() {
        // `endpoint` is required: set aside, serde would stop at its absence before the other
        // keys and the cross-key check; it goes back as a stand-in instead.
        let got = problems("    endpoint: [a]\n    timeout_ms: soon\n    tls: {cert_file: c}\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("exporters.x.endpoint: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x.timeout_ms: invalid type"),
            "{got:?}"
        );
        assert!(
            got[2].contains("exporters.x.tls.cert_file: needs key_file"),
            "{got:?}"
        );
        // A required key inside a list item gets its stand-in there.
        let got = problems("    endpoint: a\n    items: [{n: x}, {n: y, m: 1}]\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("exporters.x.items[0].n: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x.items[1].n: invalid type"),
            "{got:?}"
        );
        assert!(
            got[2].contains("exporters.x.items[1].m: unknown field"),
            "{got:?}"
        );
    }

    #[test]
    fn list_items_keep_their_numbers() {
        let got = problems(
            "    endpoint: a\n    items: [{n: 1, label: [a]}, {n: 2, label: [b]}, {n: 3, m: 3}]\n",
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("exporters.x.items[0].label: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x.items[1].label: invalid type"),
            "{got:?}"
        );
        assert!(
            got[2].contains("exporters.x.items[2].m: unknown field"),
            "{got:?}"
        );
        // An item that is itself wrong (not a key in it) is never removed, which would
        // renumber the items after it: the whole list is set aside, and what follows it in
        // the list goes unreported rather than misnamed.
        let got = problems("    endpoint: a\n    items: [{n: 1}, 7, {n: y}]\n    timeout_ms: z\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("exporters.x.items[1]: invalid type"),
            "{got:?}"
        );
        assert!(
            got[1].contains("exporters.x.timeout_ms: invalid type"),
            "{got:?}"
        );
    }

    #[test]
    fn a_path_through_dotted_keys_sets_aside_the_entry_it_names_not_its_parent() {
        let text = "exporters:\n  x:\n    labels: {a: {b: 1}, a.b: 2, c: 3}\n\
                    service:\n  pipelines:\n    traces: {receivers: [x], exporters: [x]}\n";
        let config = load_str("t.yaml", text).expect("loads");
        let mut node = config.exporters[0].node().clone();
        let pruned = prune(&mut node, "labels.a.b", "exporters.x").expect("pruned");
        assert_eq!(pruned.path, "exporters.x.labels.a.b");
        // Both `a.b` (a key) and `a` then `b` (nested) match the path; the nested one is
        // tried first and found, so it goes. Run again, the dotted key goes.
        let again = prune(&mut node, "labels.a.b", "exporters.x").expect("pruned");
        assert_eq!(again.path, "exporters.x.labels.a.b");
        let NodeValue::Map(top) = &node.value else {
            panic!("a map")
        };
        let NodeValue::Map(labels) = &top[0].1.value else {
            panic!("a map")
        };
        let keys: Vec<&str> = labels.iter().map(|(k, _)| yaml::key_text(k)).collect();
        assert_eq!(keys, ["a", "c"]);
        // A path into something the key does not hold sets the key aside.
        let parent = prune(&mut node, "labels.c.d", "exporters.x").expect("pruned");
        assert_eq!(parent.path, "exporters.x.labels.c");
        assert!(prune(&mut node, "", "exporters.x").is_none());
        assert!(prune(&mut node, "nothing", "exporters.x").is_none());
    }

    #[test]
    fn whole_words_only() {
        assert!(names("missing field `endpoint`", "endpoint"));
        assert!(names("endpoint: must be set", "endpoint"));
        assert!(!names("the endpoints differ", "endpoint"));
        assert!(!names("tls_endpoint is wrong", "endpoint"));
        assert!(!names("anything", ""));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative("exporters.otlp.tls.ca", "exporters.otlp"),
            Some("tls.ca")
        );
        assert_eq!(relative("exporters.otlp", "exporters.otlp"), Some(""));
        assert_eq!(relative("exporters.otlp[1]", "exporters.otlp"), Some("[1]"));
        assert_eq!(relative("exporters.otlphttp.x", "exporters.otlp"), None);
    }
}

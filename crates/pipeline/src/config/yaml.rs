//! YAML text to a positioned [`Node`] tree, with `${env:VAR}` expansion in scalar values.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use super::env::{self, EnvLookup};
use super::yaml_relax::{self, Relaxed};
use super::{ConfigError, Mark, Node, NodeValue};

/// Deeper nesting than this is refused: no real config comes close, and it keeps every
/// recursive walk over the tree (deserializer, drop) far from the stack limit.
const MAX_DEPTH: usize = 128;

/// Caps the nodes an alias may copy in total, so a "billion laughs" file is an error, not an
/// out-of-memory kill.
const MAX_NODES: usize = 1_000_000;

/// The tree of one document, and the environment variables it referenced that were unset.
pub(crate) struct Parsed {
    pub root: Node,
    pub unset_env_vars: Vec<String>,
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    file: &'a Arc<str>,
    lookup: EnvLookup<'a>,
    unset: Vec<String>,
    stack: Vec<Frame>,
    /// Anchored node, its node count and its height.
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    root: Option<Node>,
    /// Set when parsing [`yaml_relax`]'s rewrite of the file: maps positions back.
    relaxed: Option<&'a Relaxed>,
}

/// Parses one YAML document. An empty file is a `Null` root. Every duplicate key is
/// reported; a syntax error stops at the first.
pub(crate) fn parse(
    file: &Arc<str>,
    text: &str,
    lookup: EnvLookup<'_>,
) -> Result<Parsed, Vec<ConfigError>> {
    let parsed = match build(file, text, lookup, None) {
        Ok(parsed) => parsed,
        // A file saphyr refuses may only have flow collections or quoted scalars indented
        // less than YAML 1.2 allows, which otelcol's yaml.v3 accepts: parse it again with
        // those lines indented. Its error, if any, is the one to show: the first may be an
        // indentation otelcol accepts, in front of the real problem.
        Err(first) => match yaml_relax::relax(text) {
            Some(relaxed) => build(file, &relaxed.text, lookup, Some(&relaxed)),
            None => Err(first),
        }
        .map_err(|e| vec![e])?,
    };
    let mut errors = Vec::new();
    check_keys(file, &parsed.root, "", &mut errors);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

fn build(
    file: &Arc<str>,
    text: &str,
    lookup: EnvLookup<'_>,
    relaxed: Option<&Relaxed>,
) -> Result<Parsed, ConfigError> {
    let mut b = Builder {
        file,
        lookup,
        unset: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        relaxed,
    };
    let mut documents = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            let mark = b.mark(m.line(), m.col());
            b.error(mark, format!("invalid YAML: {}", e.info()))
        })?;
        let mark = b.mark(span.start.line(), span.start.col());
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(b.error(
                        mark,
                        "the file holds several YAML documents (`---`); Redline reads one".into(),
                    ));
                }
            }
            Event::Alias(id) => {
                let (node, size, height) = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| b.error(mark, "alias to an unknown anchor".into()))?;
                b.count(size, mark)?;
                // Aliases nest copies inside copies: the depth limit must hold for them too.
                if b.stack.len() + height > MAX_DEPTH {
                    return Err(b.error(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                let node = Node {
                    mark,
                    value: node.value,
                };
                b.finish(node, 0)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_key = matches!(b.stack.last(), Some(Frame::Map { key: None, .. }));
                let forced_str = b.check_tag(tag.as_deref(), mark, true)?;
                let quoted = forced_str || style != ScalarStyle::Plain;
                let value = if is_key {
                    // otelcol expands references in values only; a key is taken literally.
                    NodeValue::Scalar {
                        text: text.into_owned(),
                        quoted,
                    }
                } else if !quoted && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    NodeValue::Null
                } else {
                    let expanded = env::expand(&text, b.lookup, &mut b.unset)
                        .map_err(|reason| b.error(mark, reason))?;
                    // An unset variable in a plain value leaves no value at all: the setting
                    // takes its default, as in otelcol.
                    if expanded.is_empty() && !quoted {
                        NodeValue::Null
                    } else {
                        NodeValue::Scalar {
                            text: expanded,
                            quoted,
                        }
                    }
                };
                b.count(1, mark)?;
                b.finish(Node { mark, value }, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                b.check_tag(tag.as_deref(), mark, false)?;
                b.push(
                    Frame::Seq {
                        mark,
                        anchor,
                        items: Vec::new(),
                    },
                    mark,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                b.check_tag(tag.as_deref(), mark, false)?;
                b.push(
                    Frame::Map {
                        mark,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    },
                    mark,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = b
                    .stack
                    .pop()
                    .ok_or_else(|| b.error(mark, "unbalanced YAML collection end".into()))?;
                let (node, anchor) = match frame {
                    Frame::Seq {
                        mark,
                        anchor,
                        items,
                    } => (
                        Node {
                            mark,
                            value: NodeValue::Seq(items),
                        },
                        anchor,
                    ),
                    Frame::Map {
                        mark,
                        anchor,
                        entries,
                        ..
                    } => (
                        Node {
                            mark,
                            value: NodeValue::Map(b.merge(entries)?),
                        },
                        anchor,
                    ),
                };
                b.count(1, mark)?;
                b.finish(node, anchor)?;
            }
        }
    }
    let root = b.root.take().unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: NodeValue::Null,
    });
    Ok(Parsed {
        root,
        unset_env_vars: b.unset,
    })
}

impl Builder<'_> {
    /// The position in the user's file of saphyr's 1-based line and 0-based column.
    fn mark(&self, line: usize, col: usize) -> Mark {
        let mark = Mark {
            line,
            column: col + 1,
        };
        self.relaxed.map_or(mark, |r| r.original(mark))
    }

    fn error(&self, mark: Mark, reason: String) -> ConfigError {
        ConfigError::new(Some(self.file.clone()), Some(mark), String::new(), reason)
    }

    fn count(&mut self, n: usize, mark: Mark) -> Result<(), ConfigError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(self.error(
                mark,
                format!("the document expands to more than {MAX_NODES} values (aliases?)"),
            ));
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame, mark: Mark) -> Result<(), ConfigError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Accepts the YAML core-schema tags (they change nothing here but `!!str` forcing a
    /// string); any other tag would carry a meaning Redline cannot honour.
    fn check_tag(&self, tag: Option<&Tag>, mark: Mark, scalar: bool) -> Result<bool, ConfigError> {
        let Some(tag) = tag else { return Ok(false) };
        // The non-specific tag `!` changes nothing for yaml.v3 (`a: ! 12` is the integer 12).
        if tag.handle.is_empty() && tag.suffix == "!" {
            return Ok(false);
        }
        if tag.is_yaml_core_schema() {
            match (tag.suffix.as_str(), scalar) {
                ("str", true) => return Ok(true),
                ("int" | "float" | "bool" | "null", true) | ("map" | "seq", false) => {
                    return Ok(false)
                }
                _ => {}
            }
        }
        Err(self.error(mark, format!("YAML tag `{tag}` is not supported here")))
    }

    /// Applies YAML merge keys (`<<: *defaults`), which Go's yaml.v3 (and so otelcol)
    /// honours: the merged maps' entries are added unless the map sets that key itself, and
    /// an earlier merged map wins over a later one.
    fn merge(&self, entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, ConfigError> {
        let is_merge = |k: &Node| matches!(&k.value, NodeValue::Scalar { text, quoted: false } if text == "<<");
        if !entries.iter().any(|(k, _)| is_merge(k)) {
            return Ok(entries);
        }
        let mut own = Vec::with_capacity(entries.len());
        let mut sources = Vec::new();
        for (k, v) in entries {
            if !is_merge(&k) {
                own.push((k, v));
                continue;
            }
            match v.value {
                NodeValue::Map(m) => sources.push(m),
                NodeValue::Seq(items) => {
                    for item in items {
                        match item.value {
                            NodeValue::Map(m) => sources.push(m),
                            _ => {
                                return Err(self.error(
                                    item.mark,
                                    "a `<<` merge list may only hold maps".into(),
                                ))
                            }
                        }
                    }
                }
                _ => return Err(self.error(k.mark, "`<<` merges a map or a list of maps".into())),
            }
        }
        for (k, v) in sources.into_iter().flatten() {
            let key = key_text(&k);
            if !own.iter().any(|(o, _)| key_text(o) == key) {
                own.push((k, v));
            }
        }
        Ok(own)
    }

    /// Attaches a completed node to its parent collection (or makes it the root).
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), ConfigError> {
        if anchor != 0 {
            let (size, height) = measure(&node);
            self.anchors.insert(anchor, (node.clone(), size, height));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => {
                    if !matches!(node.value, NodeValue::Scalar { .. }) {
                        let what = match node.value {
                            NodeValue::Null => "null",
                            NodeValue::Seq(_) => "a sequence",
                            _ => "a map",
                        };
                        return Err(self.error(
                            node.mark,
                            format!("a map key must be a plain string, not {what}"),
                        ));
                    }
                    *key = Some(node);
                }
            },
        }
        Ok(())
    }
}

/// Number of nodes and height of a tree.
fn measure(node: &Node) -> (usize, usize) {
    let children: Box<dyn Iterator<Item = &Node>> = match &node.value {
        NodeValue::Null | NodeValue::Scalar { .. } => return (1, 1),
        NodeValue::Seq(items) => Box::new(items.iter()),
        NodeValue::Map(entries) => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
    };
    children
        .map(measure)
        .fold((1, 1), |(count, height), (c, h)| {
            (count.saturating_add(c), height.max(h + 1))
        })
}

pub(crate) fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn key_text(node: &Node) -> &str {
    match &node.value {
        NodeValue::Scalar { text, .. } => text,
        _ => "",
    }
}

/// Refuses duplicate keys anywhere in the tree: YAML forbids them, and a silent "last one
/// wins" would hide a user's mistake.
fn check_keys(file: &Arc<str>, node: &Node, path: &str, errors: &mut Vec<ConfigError>) {
    match &node.value {
        NodeValue::Null | NodeValue::Scalar { .. } => {}
        NodeValue::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                check_keys(file, item, &format!("{path}[{i}]"), errors);
            }
        }
        NodeValue::Map(entries) => {
            let mut seen: HashMap<&str, Mark> = HashMap::new();
            for (k, v) in entries {
                let key = key_text(k);
                let child = join_key(path, key);
                if let Some(first) = seen.insert(key, k.mark) {
                    errors.push(ConfigError::new(
                        Some(file.clone()),
                        Some(k.mark),
                        child.clone(),
                        format!(
                            "duplicate key `{key}` (first at line {}, again at line {})",
                            first.line, k.mark.line
                        ),
                    ));
                    // Keep the first position so a third copy names the first line too.
                    seen.insert(key, first);
                }
                check_keys(file, v, &child, errors);
            }
        }
    }
}

/// Where a problem with a map entry is shown: at a scalar value (same line, exact column),
/// else at the key, since a nested block starts on a later line.
pub(crate) fn key_mark_for(key: &Node, value: &Node) -> Mark {
    match value.value {
        NodeValue::Scalar { .. } => value.mark,
        _ => key.mark,
    }
}

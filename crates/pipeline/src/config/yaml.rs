//! YAML text to a positioned [`Node`] tree, with `${...}` references expanded in scalar values.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use super::de::is_typed_plain;
use super::expand::{self, EnvLookup, Expander, Retrieved};
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

struct Builder<'a, 'e> {
    file: &'a Arc<str>,
    /// `None` reads scalars as written: to see what the text of a reference holds before
    /// expanding any of it.
    refs: Option<&'a mut Expander<'e>>,
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
    let mut refs = Expander::new(lookup);
    let root = build_as_yaml_v3(file, text, Some(&mut refs)).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    check_keys(file, &root, "", &mut errors);
    if errors.is_empty() {
        Ok(Parsed {
            root,
            unset_env_vars: refs.unset,
        })
    } else {
        Err(errors)
    }
}

/// [`build`], taking what otelcol's yaml.v3 takes.
fn build_as_yaml_v3(
    file: &Arc<str>,
    text: &str,
    mut refs: Option<&mut Expander<'_>>,
) -> Result<Node, ConfigError> {
    match build(file, text, refs.as_deref_mut(), None) {
        Ok(root) => Ok(root),
        // A file saphyr refuses may only have flow collections or quoted scalars indented
        // less than YAML 1.2 allows, which otelcol's yaml.v3 accepts: parse it again with
        // those lines indented. Its error, if any, is the one to show: the first may be an
        // indentation otelcol accepts, in front of the real problem.
        Err(first) => match yaml_relax::relax(text) {
            Some(relaxed) => build(file, &relaxed.text, refs, Some(&relaxed)),
            None => Err(first),
        },
    }
}

fn build(
    file: &Arc<str>,
    text: &str,
    refs: Option<&mut Expander<'_>>,
    relaxed: Option<&Relaxed>,
) -> Result<Node, ConfigError> {
    let mut b = Builder {
        file,
        refs,
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
                } else if !quoted && is_null_literal(&text) {
                    NodeValue::Null
                } else {
                    b.value(text.into_owned(), quoted, mark)?
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
    Ok(b.root.take().unwrap_or(Node {
        mark: Mark { line: 1, column: 1 },
        value: NodeValue::Null,
    }))
}

impl Builder<'_, '_> {
    /// A scalar value with its references expanded.
    fn value(&mut self, text: String, quoted: bool, mark: Mark) -> Result<NodeValue, ConfigError> {
        let Some(refs) = self.refs.as_deref_mut() else {
            return Ok(NodeValue::Scalar { text, quoted });
        };
        let expanded = match expand::whole_reference(&text) {
            Some(reference) => match refs.retrieve(reference) {
                Ok(Retrieved::Text(raw)) => {
                    let value =
                        refs.nested(|refs| resolved(self.file, reference, &raw, refs, quoted));
                    let value = value.map_err(|reason| self.error(mark, reason))?;
                    return self.graft(value, mark);
                }
                Ok(Retrieved::Unset) => Ok(String::new()),
                Err(reason) => Err(reason),
            },
            None => refs.expand(&text),
        }
        .map_err(|reason| self.error(mark, reason))?;
        // An unset variable in a plain value leaves no value at all: the setting takes its
        // default, as in otelcol.
        Ok(if expanded.is_empty() && !quoted {
            NodeValue::Null
        } else {
            NodeValue::Scalar {
                text: expanded,
                quoted,
            }
        })
    }

    /// Takes a value a reference gave into this document: its nodes count against the
    /// limits, and every position in it becomes the reference's, since errors name this
    /// file.
    fn graft(&mut self, mut value: NodeValue, mark: Mark) -> Result<NodeValue, ConfigError> {
        if matches!(value, NodeValue::Seq(_) | NodeValue::Map(_)) {
            let mut node = Node { mark, value };
            let (size, height) = measure(&node);
            self.count(size, mark)?;
            if self.stack.len() + height > MAX_DEPTH {
                return Err(self.error(mark, format!("nesting deeper than {MAX_DEPTH} levels")));
            }
            remark(&mut node, mark);
            value = node.value;
        }
        Ok(value)
    }

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

/// The value of the text a reference that is a whole value gave, as otelcol's resolver makes
/// it: text holding YAML with a map, a list, a number, a boolean or null is that value (the
/// map or list with its own references expanded); anything else (a plain string, a
/// certificate, text that is not YAML) is the text exactly as given, expanded.
fn resolved(
    file: &Arc<str>,
    reference: &str,
    raw: &str,
    refs: &mut Expander<'_>,
    quoted: bool,
) -> Result<NodeValue, String> {
    // What the text holds is decided before any of it is expanded, so every reference in it
    // is resolved once.
    match build_as_yaml_v3(file, raw, None).map(|node| node.value) {
        Ok(NodeValue::Seq(_) | NodeValue::Map(_)) => {
            let node = build_as_yaml_v3(file, raw, Some(refs)).map_err(|e| {
                // The innermost text is the one to fix; the position is the outermost
                // reference's, in the file.
                if e.reason.starts_with(TEXT_OF) {
                    e.reason
                } else {
                    let line = e.mark.map_or(1, |m| m.line);
                    format!("{TEXT_OF}`${{{reference}}}`, line {line}: {}", e.reason)
                }
            })?;
            Ok(node.value)
        }
        // Nothing, or null itself. Text that YAML reads as null only because it is a comment
        // (a token starting with `#`) is text.
        Ok(NodeValue::Null) if !quoted && is_null_literal(raw.trim()) => Ok(NodeValue::Null),
        Ok(NodeValue::Scalar {
            text,
            quoted: false,
        }) if is_typed_plain(&text) => Ok(NodeValue::Scalar { text, quoted }),
        _ => {
            let text = refs.expand(raw)?;
            Ok(if text.is_empty() && !quoted {
                NodeValue::Null
            } else {
                NodeValue::Scalar { text, quoted: true }
            })
        }
    }
}

const TEXT_OF: &str = "in the text of ";

/// A plain scalar that is YAML's null.
fn is_null_literal(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Gives every node of a tree the same position.
fn remark(node: &mut Node, mark: Mark) {
    node.mark = mark;
    match &mut node.value {
        NodeValue::Null | NodeValue::Scalar { .. } => {}
        NodeValue::Seq(items) => items.iter_mut().for_each(|n| remark(n, mark)),
        NodeValue::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            remark(k, mark);
            remark(v, mark);
        }),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str, quoted: bool) -> NodeValue {
        NodeValue::Scalar {
            text: text.to_owned(),
            quoted,
        }
    }

    /// A value that is one reference becomes what the referenced text holds, as otelcol's
    /// resolver makes it (checked against otelcol-contrib's `print-config`).
    #[test]
    fn a_whole_value_reference_takes_the_shape_of_its_text() {
        let dir = std::env::temp_dir().join(format!("redline-yaml-refs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary file");
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\nabc\n-----END CERTIFICATE-----\n";
        for (name, text) in [
            (
                "map.yaml",
                "endpoint: ${env:HOST}:4317\ntls:\n  insecure: true\n",
            ),
            ("pem", pem),
            ("num", "12\n"),
            ("empty", ""),
            ("bad", "[a: b\n"),
            ("word", "zstd\n"),
            ("hash", "#not-a-comment\n"),
        ] {
            std::fs::write(dir.join(name), text).expect("temporary file");
        }
        let d = dir.display();
        let text = format!(
            "a: ${{file:{d}/map.yaml}}\nb: ${{file:{d}/pem}}\nc: ${{file:{d}/num}}\n\
             d: \"${{file:{d}/num}}\"\ne: ${{file:{d}/empty}}\nf: ${{file:{d}/bad}}\n\
             g: ${{file:{d}/word}}\nh: ${{env:LIST}}\ni: ${{file:{d}/hash}}\n"
        );
        let env = |name: &str| match name {
            "HOST" => Some("tempo".to_owned()),
            "LIST" => Some("[x, \"${env:HOST}\"]".to_owned()),
            _ => None,
        };
        let file: Arc<str> = Arc::from("test.yaml");
        let root = match parse(&file, &text, &env) {
            Ok(parsed) => parsed.root,
            Err(e) => panic!("{e:?}"),
        };
        std::fs::remove_dir_all(&dir).expect("temporary file");
        let NodeValue::Map(entries) = root.value else {
            panic!("root is not a map")
        };
        let get = |key: &str| {
            let (_, v) = entries
                .iter()
                .find(|(k, _)| key_text(k) == key)
                .expect("temporary file");
            v.clone()
        };

        // A map, its own references expanded, every node at the reference's position.
        let a = get("a");
        assert_eq!(a.mark, Mark { line: 1, column: 4 });
        let NodeValue::Map(map) = &a.value else {
            panic!("a: {a:?}")
        };
        assert_eq!(map[0].1.value, scalar("tempo:4317", false));
        assert_eq!(map[1].1.mark, Mark { line: 1, column: 4 });
        // Text that is a string stays exactly as written: a certificate keeps its lines, a
        // word its newline (otelcol then refuses `zstd\n` as a compression, and so does
        // Redline).
        assert_eq!(get("b").value, scalar(pem, true));
        assert_eq!(get("g").value, scalar("zstd\n", true));
        assert_eq!(get("f").value, scalar("[a: b\n", true));
        // A number is a number to an integer setting, quoted or not.
        assert_eq!(get("c").value, scalar("12", false));
        assert_eq!(get("d").value, scalar("12", true));
        assert_eq!(get("e").value, NodeValue::Null);
        // YAML reads a token starting with `#` as a comment; it is the token.
        assert_eq!(get("i").value, scalar("#not-a-comment\n", true));
        // A variable's text is YAML too.
        let NodeValue::Seq(items) = get("h").value else {
            panic!("h")
        };
        assert_eq!(items[1].value, scalar("tempo", true));
    }

    #[test]
    fn a_file_that_includes_itself_is_an_error_at_the_reference() {
        let path = std::env::temp_dir().join(format!("redline-yaml-self-{}", std::process::id()));
        std::fs::write(&path, format!("x: ${{file:{}}}\n", path.display()))
            .expect("temporary file");
        let text = format!("receivers:\n  r: ${{file:{}}}\n", path.display());
        let file: Arc<str> = Arc::from("test.yaml");
        let errors = match parse(&file, &text, &|_: &str| None) {
            Ok(_) => panic!("a file including itself was accepted"),
            Err(e) => e,
        };
        std::fs::remove_file(&path).expect("temporary file");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].mark, Some(Mark { line: 2, column: 6 }));
        assert!(
            errors[0].reason.contains("nest more than 32 levels"),
            "{}",
            errors[0]
        );
    }
}

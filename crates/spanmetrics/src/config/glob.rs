//! Glob dimensions' patterns, read as otelcol reads them (gobwas/glob with `.` as separator):
//! `*` any run of characters without a `.`, `**` any run, `?` one character other than `.`,
//! `[abc]` / `[!abc]` / `[a-z]` / `[!a-z]` one character of (or not of) a list or range,
//! `{a,b}` alternatives (nested ones too), `\c` the character `c`, anything else itself.

use std::fmt;

const SEPARATOR: char = '.';

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq)]
pub struct Glob {
    text: String,
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Text(String),
    /// `*`
    Any,
    /// `**`
    Super,
    /// `?`
    Single,
    /// `[...]`: the characters or the one range, and whether `!` negates it.
    Class {
        not: bool,
        chars: Vec<char>,
        range: Option<(char, char)>,
    },
    /// `{a,b}`
    Alternatives(Vec<Vec<Node>>),
}

/// Why a pattern does not compile.
#[derive(Debug, PartialEq, Eq)]
pub struct GlobError(&'static str);

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Glob {
    pub fn compile(pattern: &str) -> Result<Self, GlobError> {
        let mut parser = Parser {
            chars: pattern.chars().collect(),
            at: 0,
        };
        let nodes = parser.sequence(0)?;
        if parser.at < parser.chars.len() {
            return Err(GlobError("unexpected `}` or `,`"));
        }
        Ok(Self {
            text: pattern.to_owned(),
            nodes,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, text: &str) -> bool {
        self.prefix_of(text.as_bytes()) && matches(&self.nodes, text, &mut |rest| rest.is_empty())
    }

    /// [`matches`](Self::matches) for bytes that should be UTF-8 (an attribute key); those
    /// that are not never match. Most keys differ from a pattern's literal start, so that is
    /// compared first, before anything is decoded.
    pub fn matches_bytes(&self, text: &[u8]) -> bool {
        self.prefix_of(text)
            && std::str::from_utf8(text)
                .is_ok_and(|t| matches(&self.nodes, t, &mut |rest| rest.is_empty()))
    }

    /// Whether `text` starts with the pattern's literal start (always, without one): a cheap
    /// test that most attribute keys fail.
    pub fn prefix_of(&self, text: &[u8]) -> bool {
        match self.nodes.first() {
            Some(Node::Text(prefix)) => text.starts_with(prefix.as_bytes()),
            _ => true,
        }
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// Nodes up to the end, or inside `depth` alternatives up to their `,` or `}`.
    fn sequence(&mut self, depth: usize) -> Result<Vec<Node>, GlobError> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                ',' | '}' if depth > 0 => break,
                '*' => {
                    self.at += 1;
                    if self.peek() == Some('*') {
                        self.at += 1;
                        nodes.push(Node::Super);
                    } else {
                        nodes.push(Node::Any);
                    }
                }
                '?' => {
                    self.at += 1;
                    nodes.push(Node::Single);
                }
                '[' => {
                    self.at += 1;
                    nodes.push(self.class()?);
                }
                '{' => {
                    self.at += 1;
                    nodes.push(self.alternatives(depth + 1)?);
                }
                _ => nodes.push(Node::Text(self.text(depth)?)),
            }
        }
        Ok(nodes)
    }

    fn text(&mut self, depth: usize) -> Result<String, GlobError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.at += 1;
                    match self.peek() {
                        Some(escaped) => out.push(escaped),
                        None => break,
                    }
                }
                '*' | '?' | '[' | '{' => break,
                ',' | '}' if depth > 0 => break,
                _ => out.push(c),
            }
            self.at += 1;
        }
        Ok(out)
    }

    fn class(&mut self) -> Result<Node, GlobError> {
        let not = self.peek() == Some('!');
        if not {
            self.at += 1;
        }
        let first = self
            .peek()
            .ok_or(GlobError("unexpected end of input in `[`"))?;
        if self.chars.get(self.at + 1) == Some(&'-') {
            let hi = *self
                .chars
                .get(self.at + 2)
                .ok_or(GlobError("unexpected end of input in `[`"))?;
            self.at += 3;
            if self.peek() != Some(']') {
                return Err(GlobError("expected `]` after a range"));
            }
            self.at += 1;
            return Ok(Node::Class {
                not,
                chars: Vec::new(),
                range: Some((first, hi)),
            });
        }
        let mut chars = Vec::new();
        loop {
            match self.peek() {
                None => return Err(GlobError("unexpected end of input in `[`")),
                Some(']') => break,
                Some('\\') => {
                    self.at += 1;
                    if let Some(c) = self.peek() {
                        chars.push(c);
                        self.at += 1;
                    }
                }
                Some(c) => {
                    chars.push(c);
                    self.at += 1;
                }
            }
        }
        self.at += 1;
        if chars.is_empty() {
            return Err(GlobError("empty character class `[]`"));
        }
        Ok(Node::Class {
            not,
            chars,
            range: None,
        })
    }

    fn alternatives(&mut self, depth: usize) -> Result<Node, GlobError> {
        let mut alternatives = vec![self.sequence(depth)?];
        loop {
            match self.peek() {
                Some(',') => {
                    self.at += 1;
                    alternatives.push(self.sequence(depth)?);
                }
                Some('}') => {
                    self.at += 1;
                    return Ok(Node::Alternatives(alternatives));
                }
                _ => return Err(GlobError("unclosed `{`")),
            }
        }
    }
}

/// Whether `nodes` match a prefix of `text` after which `rest` accepts what is left.
fn matches(nodes: &[Node], text: &str, rest: &mut dyn FnMut(&str) -> bool) -> bool {
    let Some((node, tail)) = nodes.split_first() else {
        return rest(text);
    };
    match node {
        Node::Text(t) => text
            .strip_prefix(t.as_str())
            .is_some_and(|after| matches(tail, after, rest)),
        Node::Single => {
            first_char(text).is_some_and(|(c, after)| c != SEPARATOR && matches(tail, after, rest))
        }
        Node::Class { not, chars, range } => first_char(text).is_some_and(|(c, after)| {
            let inside = match range {
                Some((lo, hi)) => (*lo..=*hi).contains(&c),
                None => chars.contains(&c),
            };
            inside != *not && matches(tail, after, rest)
        }),
        Node::Any | Node::Super => {
            let stop_at_separator = matches!(node, Node::Any);
            let mut at = 0;
            loop {
                if let Some(after) = text.get(at..) {
                    if matches(tail, after, rest) {
                        return true;
                    }
                }
                match text.get(at..).and_then(first_char) {
                    Some((c, _)) if !(stop_at_separator && c == SEPARATOR) => at += c.len_utf8(),
                    _ => return false,
                }
            }
        }
        Node::Alternatives(alternatives) => alternatives
            .iter()
            .any(|alt| matches(alt, text, &mut |after| matches(tail, after, rest))),
    }
}

fn first_char(text: &str) -> Option<(char, &str)> {
    let c = text.chars().next()?;
    Some((c, text.get(c.len_utf8()..).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::compile(pattern).expect("compiles").matches(text)
    }

    #[test]
    fn stars_stop_at_the_separator_and_double_stars_do_not() {
        assert!(m("k8s.*.name", "k8s.pod.name"));
        assert!(!m("k8s.*.name", "k8s.cluster.label.name"));
        assert!(m("db.**.name", "db.a.b.name"));
        assert!(m("db.**.name", "db..name"));
        assert!(!m("db.**.name", "db.name"));
        assert!(m("http.*", "http.method"));
        assert!(!m("http.*", "http.request.method"));
        assert!(m("*", ""));
        assert!(!m("*", "a.b"));
        assert!(m("**", "a.b"));
    }

    #[test]
    fn single_classes_and_alternatives() {
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a.c"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[!ab]x", ".x"), "classes do not care about the separator");
        assert!(m("v[0-9]", "v7"));
        assert!(!m("v[!0-9]", "v7"));
        assert!(m("{http,rpc}.*", "rpc.method"));
        assert!(!m("{http,rpc}.*", "db.system"));
        assert!(m("a{b,c{d,e}}f", "acef"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        // Outside alternatives, `}` and `,` are characters like others.
        assert!(m("a,b}", "a,b}"));
    }

    #[test]
    fn what_gobwas_refuses_is_refused() {
        for bad in ["[", "[a", "[]", "{a,b", "[a-", "[a-cx]", "a}{"] {
            assert!(Glob::compile(bad).is_err(), "{bad}");
        }
    }
}

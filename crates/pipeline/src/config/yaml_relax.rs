//! yaml.v3's leniency about indentation inside flow collections and quoted scalars.
//!
//! YAML 1.2 requires every line of a flow collection (`[...]`, `{...}`) or of a multi-line
//! quoted scalar to be indented deeper than the block collection it sits in, and saphyr
//! enforces that. Go's yaml.v3, which otelcol reads its files with, follows libyaml and does
//! not look at indentation at all inside them, so otelcol accepts
//!
//! ```yaml
//!     traces:
//!       exporters: [
//!     debug,
//!   ]
//! ```
//!
//! Inside such a construct, leading whitespace never changes a value (line folding drops it),
//! so indenting the offending lines gives saphyr a file with the same meaning. [`relax`] does
//! exactly that and records how many spaces it put in front of each line, so positions in
//! errors and nodes are mapped back to the user's file: lines are never added or removed.
//!
//! The same pass turns a tab between a key's `:` and its value into a space: saphyr refuses
//! it before a plain value, yaml.v3 reads it as the blank it is, and the column is kept.
//!
//! The scan here is a small lexer that only tracks what decides whether a line starts inside
//! a flow collection or a quoted scalar: quotes, comments, flow indicators, and block scalars
//! (whose text may hold brackets). It runs only after saphyr refused a file, so a file saphyr
//! accepts is never touched.

use super::Mark;

/// The text with under-indented flow lines indented, and how to map positions back.
pub(crate) struct Relaxed {
    pub text: String,
    /// Spaces inserted at the start of each line (index 0 is line 1).
    shifts: Vec<usize>,
}

impl Relaxed {
    /// The position in the original file of a position in [`Relaxed::text`].
    pub fn original(&self, mark: Mark) -> Mark {
        let shift = mark
            .line
            .checked_sub(1)
            .and_then(|i| self.shifts.get(i))
            .copied()
            .unwrap_or(0);
        Mark {
            line: mark.line,
            // A position inside the inserted spaces can only be the line's start.
            column: mark.column.saturating_sub(shift).max(1),
        }
    }
}

/// What the lexer is inside of when a line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    Single,
    Double,
}

#[derive(Debug, Default)]
struct Lexer {
    /// Open flow collections.
    depth: usize,
    /// Column of the outermost open flow collection, or of an open quoted scalar outside any:
    /// lines that start inside must be indented deeper than it.
    opener: usize,
    quote: Option<Quote>,
    /// Inside a block scalar whose content lines are indented deeper than this column (-1
    /// for a scalar at the document's top level).
    block_scalar: Option<isize>,
    /// In a flow collection: the next character may start a node (a quote opens a scalar).
    token_start: bool,
    /// A quoted scalar just ended: a `:` right after it is a value indicator (`"a":1`).
    after_quote: bool,
    /// Tabs of the current line that separate a `:` from its value (char indices).
    tabs: Vec<usize>,
}

/// Indents the lines that start inside a flow collection or a quoted scalar at or left of
/// the column its opening character is in, and makes separating tabs after `:` spaces.
/// `None` when no line needed either.
pub(crate) fn relax(text: &str) -> Option<Relaxed> {
    let mut lexer = Lexer::default();
    let mut out = String::with_capacity(text.len() + 64);
    let mut shifts = Vec::new();
    let mut changed = false;
    for line in text.split_inclusive('\n') {
        let chars: Vec<char> = line.chars().collect();
        let first = chars
            .iter()
            .position(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'));
        let mut shift = 0;
        if let Some(first) = first {
            if let Some(limit) = lexer.block_scalar {
                if first as isize <= limit {
                    lexer.block_scalar = None;
                }
            }
            let inside = lexer.depth > 0 || lexer.quote.is_some();
            if inside && first <= lexer.opener {
                shift = lexer.opener + 1 - first;
            }
            if lexer.block_scalar.is_none() {
                lexer.line(&chars, first);
            }
        }
        shifts.push(shift);
        if shift > 0 {
            changed = true;
            out.extend(std::iter::repeat_n(' ', shift));
        }
        if lexer.tabs.is_empty() {
            out.push_str(line);
        } else {
            // saphyr refuses a tab between `:` and a plain value; yaml.v3 takes it as the
            // blank it is. A space keeps every column where it was.
            changed = true;
            for (i, c) in chars.iter().enumerate() {
                out.push(if lexer.tabs.contains(&i) { ' ' } else { *c });
            }
            lexer.tabs.clear();
        }
    }
    changed.then_some(Relaxed { text: out, shifts })
}

fn is_blank(c: Option<&char>) -> bool {
    matches!(c, None | Some(' ' | '\t' | '\r' | '\n'))
}

fn is_flow_indicator(c: Option<&char>) -> bool {
    matches!(c, Some(',' | '[' | ']' | '{' | '}'))
}

impl Lexer {
    /// Scans one line whose first non-blank character is at `first`.
    fn line(&mut self, c: &[char], first: usize) {
        let mut i = first;
        // Content of a block scalar must be indented deeper than its parent node: the last
        // `- ` entry or key on the line. A scalar that starts its line (the value of a key on
        // the line before) is taken to belong one column to the left.
        let mut parent = first as isize - 1;
        while i < c.len() {
            if let Some(q) = self.quote {
                i = self.quoted(c, i, q);
                continue;
            }
            if self.depth > 0 {
                i = self.flow(c, i);
                continue;
            }
            // Block context, at the start of a token.
            let ch = c[i];
            let next = c.get(i + 1);
            match ch {
                ' ' | '\t' | '\r' | '\n' => i += 1,
                '#' => return,
                '-' | '?' | ':' if is_blank(next) => {
                    if ch == '-' {
                        parent = i as isize;
                    }
                    i += 1;
                    if ch == ':' {
                        self.separator_tabs(c, i);
                    }
                }
                '[' | '{' => {
                    self.depth = 1;
                    self.opener = i;
                    self.token_start = true;
                    i += 1;
                }
                '"' | '\'' => {
                    self.quote = Some(if ch == '"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    });
                    self.opener = i;
                    i += 1;
                }
                '|' | '>' => {
                    // Only indicators, blanks and a comment may follow on the line.
                    let rest = &c[i + 1..];
                    let end = rest
                        .iter()
                        .position(|c| !matches!(c, '-' | '+' | '0'..='9'))
                        .unwrap_or(rest.len());
                    let tail = &rest[end..];
                    let comment_or_end = tail
                        .iter()
                        .find(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                        .is_none_or(|c| *c == '#');
                    if comment_or_end {
                        self.block_scalar = Some(parent);
                    }
                    return;
                }
                '&' | '!' | '*' => {
                    while i < c.len() && !is_blank(c.get(i)) {
                        i += 1;
                    }
                }
                _ => {
                    // A plain scalar: up to `: `, ` #` or the end of the line.
                    parent = i as isize;
                    i += 1;
                    while i < c.len() {
                        if c[i] == ':' && is_blank(c.get(i + 1)) {
                            break;
                        }
                        if c[i] == '#' && is_blank(c.get(i - 1)) {
                            return;
                        }
                        i += 1;
                    }
                }
            }
        }
    }

    /// Records the tabs in the blanks from `i` on.
    fn separator_tabs(&mut self, c: &[char], mut i: usize) {
        while let Some(ch @ (' ' | '\t')) = c.get(i) {
            if *ch == '\t' {
                self.tabs.push(i);
            }
            i += 1;
        }
    }

    /// Scans a quoted scalar from `i`; returns where scanning goes on.
    fn quoted(&mut self, c: &[char], mut i: usize, q: Quote) -> usize {
        while i < c.len() {
            match (q, c[i]) {
                // An escape, or a line break escaped by a final backslash.
                (Quote::Double, '\\') => i += 2,
                (Quote::Single, '\'') if c.get(i + 1) == Some(&'\'') => i += 2,
                (Quote::Double, '"') | (Quote::Single, '\'') => {
                    self.quote = None;
                    self.token_start = false;
                    self.after_quote = true;
                    return i + 1;
                }
                _ => i += 1,
            }
        }
        i
    }

    /// Scans flow content from `i` up to the end of the line or of the outermost collection.
    fn flow(&mut self, c: &[char], mut i: usize) -> usize {
        let mut after_blank = i == 0 || is_blank(c.get(i - 1));
        while i < c.len() && self.depth > 0 {
            let ch = c[i];
            let next = c.get(i + 1);
            if is_blank(Some(&ch)) {
                self.after_quote = false;
                after_blank = true;
                i += 1;
                continue;
            }
            let after_quote = std::mem::take(&mut self.after_quote);
            match ch {
                '#' if after_blank => return c.len(),
                '[' | '{' => {
                    self.depth += 1;
                    self.token_start = true;
                }
                ']' | '}' => {
                    self.depth -= 1;
                    self.token_start = false;
                }
                ',' => self.token_start = true,
                ':' if is_blank(next) || is_flow_indicator(next) || after_quote => {
                    self.token_start = true;
                    self.separator_tabs(c, i + 1);
                }
                '"' | '\'' if self.token_start => {
                    self.quote = Some(if ch == '"' {
                        Quote::Double
                    } else {
                        Quote::Single
                    });
                    return i + 1;
                }
                '&' | '!' if self.token_start => {
                    while i + 1 < c.len()
                        && !is_blank(c.get(i + 1))
                        && !is_flow_indicator(c.get(i + 1))
                    {
                        i += 1;
                    }
                }
                '?' if self.token_start && is_blank(next) => {}
                _ => self.token_start = false,
            }
            after_blank = false;
            i += 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::yaml::{self, key_text};
    use super::super::{Node, NodeValue};
    use super::*;

    /// The tree as compact JSON-like text with sorted keys: the form the Go check printed.
    fn render(n: &Node) -> String {
        match &n.value {
            NodeValue::Null => "null".into(),
            NodeValue::Scalar { text, quoted } => {
                let bare =
                    !quoted && (text == "true" || text == "false" || text.parse::<i64>().is_ok());
                if bare {
                    text.clone()
                } else {
                    format!("{text:?}")
                }
            }
            NodeValue::Seq(items) => {
                let items: Vec<String> = items.iter().map(render).collect();
                format!("[{}]", items.join(","))
            }
            NodeValue::Map(entries) => {
                let mut entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{:?}:{}", key_text(k), render(v)))
                    .collect();
                entries.sort();
                format!("{{{}}}", entries.join(","))
            }
        }
    }

    fn parse(text: &str) -> Result<Node, String> {
        let file: Arc<str> = Arc::from("t.yaml");
        yaml::parse(&file, text, &|_| None)
            .map(|p| p.root)
            .map_err(|e| e[0].to_string())
    }

    /// Each form below is accepted by go.yaml.in/yaml/v3 v3.0.5 (the parser of otelcol
    /// v0.161's confmap), and the expected value is what it decoded, checked with a small Go
    /// program outside the repository.
    #[test]
    fn accepts_what_yaml_v3_accepts() {
        let cases = [
            // A closing bracket after a comment line, at the key's column.
            (
                "service:\n  pipelines:\n    traces:\n      receivers: [otlp,\n        # the gateway\n      ]\n      exporters: [debug]\n",
                r#"{"service":{"pipelines":{"traces":{"exporters":["debug"],"receivers":["otlp"]}}}}"#,
            ),
            // Items and bracket left of the key, trailing comma.
            ("a:\n  exporters: [\n  debug,\n  ]\n", r#"{"a":{"exporters":["debug"]}}"#),
            ("a:\n  exporters: [\n    debug,\n]\n", r#"{"a":{"exporters":["debug"]}}"#),
            ("a:\n  exporters: [\ndebug,\n]\n", r#"{"a":{"exporters":["debug"]}}"#),
            // Multi-line flow maps, a brace at any column, trailing commas.
            ("a:\n  b: {x: 1,\n y: 2\n }\n", r#"{"a":{"b":{"x":1,"y":2}}}"#),
            ("a:\n  b: {x: 1,\ny: 2\n}\nc: 3\n", r#"{"a":{"b":{"x":1,"y":2}},"c":3}"#),
            ("a:\n  b: [1, 2,]\n  c: {x: 1,}\n", r#"{"a":{"b":[1,2],"c":{"x":1}}}"#),
            ("a:\n  b: {x:\n1}\n", r#"{"a":{"b":{"x":1}}}"#),
            // Comments inside flow collections.
            (
                "a:\n  b: [\n    # comment\n    1, # trailing\n    2\n    # end\n  ]\n",
                r#"{"a":{"b":[1,2]}}"#,
            ),
            (
                "a:\n  b: {\n    x: 1,   # c\n    # comment\n    y: [a,\n  b],\n}\n",
                r#"{"a":{"b":{"x":1,"y":["a","b"]}}}"#,
            ),
            // Nested in block sequences, and flow in flow.
            ("a:\n  b:\n    - [1,\n  2]\n", r#"{"a":{"b":[[1,2]]}}"#),
            (
                "a:\n  b:\n    - {name: x,\n  value: y}\n    - z\n",
                r#"{"a":{"b":[{"name":"x","value":"y"},"z"]}}"#,
            ),
            ("a:\n  b: [\n    {x: 1,\n  y: 2},\n  ]\n", r#"{"a":{"b":[{"x":1,"y":2}]}}"#),
            ("- a: [1,\n  2]\n  b: 3\n", r#"[{"a":[1,2],"b":3}]"#),
            // Multi-line plain and quoted scalars, dedented.
            ("a:\n  b: [ one\n two, three ]\n", r#"{"a":{"b":["one two","three"]}}"#),
            ("a:\n  b: \"multi\nline\"\n", r#"{"a":{"b":"multi line"}}"#),
            ("a:\n  b: 'one\n\n two'\n", r#"{"a":{"b":"one\ntwo"}}"#),
            ("a:\n  b: [ \"x\ny\" ]\n", r#"{"a":{"b":["x y"]}}"#),
            // What looks like brackets in scalars and comments is not a collection.
            (
                "a:\n  s: |\n    text [ with { brackets\n    \"unclosed\n  b: [1,\n2]\n",
                r#"{"a":{"b":[1,2],"s":"text [ with { brackets\n\"unclosed\n"}}"#,
            ),
            (
                "a:\n  - k: >-\n      folded [\n  - l: [x,\n y]\n",
                r#"{"a":[{"k":"folded ["},{"l":["x","y"]}]}"#,
            ),
            (
                "a:\n  b: [\"x, ]y\", 'it''s ] here',\n  \"esc \\\" ]\"\n  ]\n  c: 1\n",
                r#"{"a":{"b":["x, ]y","it's ] here","esc \" ]"],"c":1}}"#,
            ),
            (
                "a:\n  b: [http://x:1/p, a#b, c # comment ]\n ]\n  c: 2\n",
                r#"{"a":{"b":["http://x:1/p","a#b","c"],"c":2}}"#,
            ),
            ("a:\n  b: a[b\n  c: [1,\n 2]\n", r#"{"a":{"b":"a[b","c":[1,2]}}"#),
            (
                "a:\n  b: \"x # not [ comment\n y\"\n  c: [1,\n 2]\n",
                r#"{"a":{"b":"x # not [ comment y","c":[1,2]}}"#,
            ),
            ("a:\n  b: {\"k\":1,\n 'q': [2,\n3],\n}\n", r#"{"a":{"b":{"k":1,"q":[2,3]}}}"#),
            ("a:\n  b: [&x 1,\n *x]\n", r#"{"a":{"b":[1,1]}}"#),
            // Tabs between a key and its value; the non-specific tag `!`.
            ("x:\n  a:\tb\n  c:\t\t1\n", r#"{"x":{"a":"b","c":1}}"#),
            ("- a:\tb\n", r#"[{"a":"b"}]"#),
            ("a: {b:\tc}\n", r#"{"a":{"b":"c"}}"#),
            ("a: ! 12\nb: !\n  c: 1\n", r#"{"a":12,"b":{"c":1}}"#),
        ];
        for (text, want) in cases {
            match parse(text) {
                Ok(root) => assert_eq!(render(&root), want, "{text}"),
                Err(e) => panic!("refused {text:?}: {e}"),
            }
        }
    }

    /// yaml.v3 refuses these too; the relaxed reading must not make them valid.
    #[test]
    fn still_refuses_what_yaml_v3_refuses() {
        for text in [
            "a:\n  b: [1,\n 2]\n c: 3\n",
            "a:\n  b: [1, 2]]\n",
            "a:\n  b: {x: 1\n  c: 2\n",
            "a:\n  b: [1,\n  2\nc: 3\n",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn positions_are_the_files() {
        // The items sit left of the key; nodes and errors still name their own columns.
        let root = parse("a:\n  b: [\n x,\n    y]\n").expect("parses");
        let NodeValue::Map(a) = &root.value else {
            panic!("map")
        };
        let NodeValue::Map(b) = &a[0].1.value else {
            panic!("map")
        };
        let NodeValue::Seq(items) = &b[0].1.value else {
            panic!("seq")
        };
        assert_eq!(
            (items[0].mark, items[1].mark),
            (Mark { line: 3, column: 2 }, Mark { line: 4, column: 5 })
        );
        let e = parse("a:\n  b: [1,\n 2]\n c: 3\n").expect_err("refused");
        assert!(e.starts_with("t.yaml:4:2: "), "{e}");
    }

    #[test]
    fn leaves_other_lines_alone() {
        assert!(relax("a:\n  b: [1,\n      2]\n  s: |\n   [x\n").is_none());
        let r = relax("a:\n  b: [1,\n2]\n  s: |\n   [x,\n  c: 1\n").expect("relaxed");
        // One column right of the bracket; the block scalar's `[x,` opens nothing.
        assert_eq!(r.text, "a:\n  b: [1,\n      2]\n  s: |\n   [x,\n  c: 1\n");
        assert_eq!(r.shifts, [0, 0, 6, 0, 0, 0]);
    }
}

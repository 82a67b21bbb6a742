//! Go `regexp` patterns compiled with Rust's `regex`.
//!
//! Both are RE2 dialects with leftmost-first matching; the difference that changes results on
//! ordinary data is that Go's Perl classes (`\d`, `\w`, `\s`, `\b` and their negations) are
//! ASCII-only, while Rust's are Unicode-aware. The pattern is rewritten to the ASCII forms
//! before compiling, so `\d` does not match `٣` here either.
//!
//! Go's parser differs on repetitions too, so the rewrite applies its rules: a `{` that does
//! not start a valid `{n}`, `{n,}` or `{n,m}` is a literal brace (Rust refuses it); a count
//! above 1000 is refused, and so is a repetition of a repetition (`a**`, `a+*`, `a{2}{3}`),
//! which Rust would take.

use regex::Regex;

/// A pattern Go accepts that did not compile here, or one Go would also refuse.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {reason}")]
pub struct RegexError {
    pub pattern: String,
    pub reason: String,
}

/// Compiles `pattern` with Go's meaning of the Perl classes and Go's repetition rules.
pub fn compile(pattern: &str) -> Result<Regex, RegexError> {
    let error = |reason: String| RegexError {
        pattern: pattern.to_owned(),
        reason,
    };
    let translated = ascii_perl_classes(pattern).map_err(error)?;
    Regex::new(&translated).map_err(|e| error(e.to_string()))
}

/// The most Go's parser allows in a `{n,m}` count.
const MAX_REPEAT: u32 = 1000;

/// The `{n}`, `{n,}` or `{n,m}` at the start of `rest` (which starts with `{`): its length
/// in bytes and its counts; `None` when Go would read the brace as a literal.
fn repeat_at(rest: &str) -> Option<(usize, u32, Option<u32>)> {
    let body_end = rest.find('}')?;
    let body = &rest[1..body_end];
    let number = |s: &str| -> Option<u32> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Go refuses counts past 1000 anyway; anything longer only needs to be large.
        Some(s.parse().unwrap_or(u32::MAX))
    };
    let (min, max) = match body.split_once(',') {
        None => {
            let n = number(body)?;
            (n, Some(n))
        }
        Some((min, "")) => (number(min)?, None),
        Some((min, max)) => (number(min)?, Some(number(max)?)),
    };
    Some((body_end + 1, min, max))
}

/// Where the rewrite stands relative to Go's repetition rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    /// A literal, class, group or anything a repetition may follow.
    Atom,
    /// A repetition operator: another one right after it is an error.
    Repeat,
    /// `(`: a `?` right after it opens a group flag or name, not a repetition.
    Open,
}

/// Rewrites `\d \D \w \W \s \S \b \B` to their ASCII forms, inside and outside brackets,
/// escapes the braces Go reads as literals, and refuses the repetitions Go refuses.
fn ascii_perl_classes(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.char_indices().map(|(_, c)| c).peekable();
    let mut at = 0usize;
    let mut last = Last::Atom;
    // Where the last repetition operator began, for Go's message about the next one.
    let mut repeat_start = 0usize;
    // Depth of `[...]` nesting: Rust allows nested classes, so `[[^0-9]a]` is valid there.
    let mut in_class = false;
    // Whether the previous character opened a class (a `]` right after `[` or `[^` is literal).
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let here = at;
        at += c.len_utf8();
        let opened = class_start;
        class_start = false;
        if !in_class {
            match c {
                '*' | '+' | '?' if last == Last::Open && c == '?' => {
                    out.push(c);
                    last = Last::Atom;
                    continue;
                }
                '*' | '+' | '?' => {
                    if last == Last::Repeat {
                        return Err(nested(pattern, repeat_start, here + 1));
                    }
                    out.push(c);
                    last = Last::Repeat;
                    repeat_start = here;
                    // `*?`: the same repetition, not greedy.
                    if chars.peek() == Some(&'?') {
                        chars.next();
                        at += 1;
                        out.push('?');
                    }
                    continue;
                }
                '{' => match repeat_at(&pattern[here..]) {
                    Some((len, min, max)) => {
                        if last == Last::Repeat {
                            return Err(nested(pattern, repeat_start, here + len));
                        }
                        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
                            return Err(format!(
                                "invalid repeat count: `{}`",
                                &pattern[here..here + len]
                            ));
                        }
                        out.push_str(&pattern[here..here + len]);
                        for _ in 1..len {
                            chars.next();
                        }
                        at = here + len;
                        last = Last::Repeat;
                        repeat_start = here;
                        if chars.peek() == Some(&'?') {
                            chars.next();
                            at += 1;
                            out.push('?');
                        }
                        continue;
                    }
                    None => {
                        out.push_str("\\{");
                        last = Last::Atom;
                        continue;
                    }
                },
                '(' => {
                    out.push('(');
                    last = Last::Open;
                    continue;
                }
                _ => last = Last::Atom,
            }
        }
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                at += next.len_utf8();
                match ascii_class(next, in_class) {
                    Some(replacement) => out.push_str(replacement),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    at += 1;
                    out.push('^');
                }
            }
            // A POSIX class like `[:alpha:]` inside brackets: copy it whole.
            '[' if chars.peek() == Some(&':') => {
                out.push('[');
                for d in chars.by_ref() {
                    at += d.len_utf8();
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            ']' if in_class && !opened => {
                in_class = false;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Go's message for a repetition right after another: both operators, from where the first
/// began to where the second ends (its non-greedy `?` included).
fn nested(pattern: &str, first: usize, second_end: usize) -> String {
    let end = if pattern[second_end..].starts_with('?') {
        second_end + 1
    } else {
        second_end
    };
    let op = pattern.get(first..end).unwrap_or(pattern);
    format!("invalid nested repetition operator: `{op}`")
}

fn ascii_class(c: char, in_class: bool) -> Option<&'static str> {
    Some(match (c, in_class) {
        ('d', false) => "[0-9]",
        ('D', false) => "[^0-9]",
        ('w', false) => "[0-9A-Za-z_]",
        ('W', false) => "[^0-9A-Za-z_]",
        ('s', false) => r"[\t\n\f\r ]",
        ('S', false) => r"[^\t\n\f\r ]",
        ('b', false) => r"(?-u:\b)",
        ('B', false) => r"(?-u:\B)",
        ('d', true) => "0-9",
        ('D', true) => "[^0-9]",
        ('w', true) => "0-9A-Za-z_",
        ('W', true) => "[^0-9A-Za-z_]",
        ('s', true) => r"\t\n\f\r ",
        ('S', true) => r"[^\t\n\f\r ]",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        let digits = compile(r"^\d+$").expect("valid");
        assert!(digits.is_match("123"));
        assert!(!digits.is_match("١٢٣"));
        let word = compile(r"^[\w.]+$").expect("valid");
        assert!(word.is_match("a_b.c"));
        assert!(!word.is_match("é"));
        let not_space = compile(r"^[^\s]+$").expect("valid");
        assert!(not_space.is_match("a\u{a0}b"), "NBSP is not Go whitespace");
        assert!(compile(r"\bfoo\b").expect("valid").is_match("a foo b"));
    }

    #[test]
    fn other_syntax_is_kept() {
        assert_eq!(ascii_perl_classes(r"[]\d]").as_deref(), Ok(r"[]0-9]"));
        assert_eq!(
            ascii_perl_classes(r"[[:alpha:]\W]x\.").as_deref(),
            Ok(r"[[:alpha:][^0-9A-Za-z_]]x\.")
        );
        assert_eq!(
            ascii_perl_classes(r"(?P<a>\S+)").as_deref(),
            Ok(r"(?P<a>[^\t\n\f\r ]+)")
        );
        let re = compile(r"^(?P<first>[^/]+)/(?<second>.*)$").expect("valid");
        assert_eq!(
            re.captures("x/y/z")
                .and_then(|c| c.name("second"))
                .map(|m| m.as_str()),
            Some("y/z")
        );
    }

    #[test]
    fn brackets_and_posix_classes() {
        let re = |p: &str| compile(p).expect("valid");
        assert!(re(r"^[]a]+$").is_match("]a"));
        assert!(re(r"^[[:alpha:]\d]+$").is_match("ab12"));
        assert!(!re(r"^\s$").is_match("\u{a0}"));
        assert!(!re(r"^\d$").is_match("٣"));
    }

    #[test]
    fn repetitions_follow_go() {
        // A brace that starts no valid repeat is a literal.
        let literal = compile(r"^a{,5}{x}b{$").expect("valid in Go");
        assert!(literal.is_match("a{,5}{x}b{"));
        assert!(compile(r"^a{2}$").expect("valid").is_match("aa"));
        assert!(compile(r"^a{2,}b{1,3}?$").expect("valid").is_match("aaab"));
        assert!(compile(r"^[{]$").expect("valid").is_match("{"));
        assert!(compile(r"^\{$").expect("valid").is_match("{"));
        // Non-greedy forms and groups are not nested repetitions.
        for ok in [r"a*?", r"a+?b??", r"(a*)*", r"(?i)a", r"(?:a)+", r"a{2}?"] {
            assert!(compile(ok).is_ok(), "{ok}");
        }
        // Go names both operators.
        for (nested, op) in [
            (r"a**", "**"),
            (r"a++", "++"),
            (r"a*+", "*+"),
            (r"a{2}{3}", "{2}{3}"),
            (r"a*?*", "*?*"),
            (r"a??+?", "??+?"),
        ] {
            let e = compile(nested).expect_err("nested repetition");
            assert_eq!(
                e.reason,
                format!("invalid nested repetition operator: `{op}`"),
                "{nested}"
            );
        }
        for big in [r"a{1001}", r"a{0,1001}", r"a{1001,}"] {
            let e = compile(big).expect_err("too many");
            assert!(e.reason.contains("invalid repeat count"), "{big}: {e}");
        }
        assert!(compile(r"a{1000}").is_ok());
    }

    #[test]
    fn bad_patterns_are_errors() {
        let err = compile("(unclosed").expect_err("invalid");
        assert_eq!(err.pattern, "(unclosed");
    }
}

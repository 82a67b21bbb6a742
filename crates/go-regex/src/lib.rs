//! Go `regexp` patterns compiled with Rust's `regex`.
//!
//! Both are RE2 dialects with leftmost-first matching; the difference that changes results on
//! ordinary data is that Go's Perl classes (`\d`, `\w`, `\s`, `\b` and their negations) are
//! ASCII-only, while Rust's are Unicode-aware. The pattern is rewritten to the ASCII forms
//! before compiling, so `\d` does not match `٣` here either.

use regex::Regex;

/// A pattern Go accepts that did not compile here, or one Go would also refuse.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {reason}")]
pub struct RegexError {
    pub pattern: String,
    pub reason: String,
}

/// Compiles `pattern` with Go's meaning of the Perl classes.
pub fn compile(pattern: &str) -> Result<Regex, RegexError> {
    Regex::new(&ascii_perl_classes(pattern)).map_err(|e| RegexError {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })
}

/// Rewrites `\d \D \w \W \s \S \b \B` to their ASCII forms, inside and outside brackets.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // Depth of `[...]` nesting: Rust allows nested classes, so `[[^0-9]a]` is valid there.
    let mut in_class = false;
    // Whether the previous character opened a class (a `]` right after `[` or `[^` is literal).
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let opened = class_start;
        class_start = false;
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
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
                    out.push('^');
                }
            }
            // A POSIX class like `[:alpha:]` inside brackets: copy it whole.
            '[' if chars.peek() == Some(&':') => {
                out.push('[');
                for d in chars.by_ref() {
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
    out
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
        assert_eq!(ascii_perl_classes(r"[]\d]"), r"[]0-9]");
        assert_eq!(
            ascii_perl_classes(r"[[:alpha:]\W]x\."),
            r"[[:alpha:][^0-9A-Za-z_]]x\."
        );
        assert_eq!(ascii_perl_classes(r"(?P<a>\S+)"), r"(?P<a>[^\t\n\f\r ]+)");
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
    fn bad_patterns_are_errors() {
        let err = compile("(unclosed").expect_err("invalid");
        assert_eq!(err.pattern, "(unclosed");
    }
}

//! Regular expressions with Go's (RE2) meaning, Go's `Regexp.Expand` replacement templates,
//! and gobwas/glob patterns (`replace_match`), all on top of the `regex` crate.
//!
//! Patterns compile through `redline-go-regex` (Go's ASCII Perl classes); Rust's regex has
//! no `\C` and no `\Q...\E`, so such patterns fail to compile where Go would accept them.

use regex::Regex;

/// Compiles a pattern with Go's RE2 semantics for the Perl classes.
pub(crate) fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    redline_go_regex::compile(pattern).map_err(|e| e.reason)
}

/// Go's `Regexp.Expand` on one match: `$1`, `${1}`, `$name`, `${name}`, `$$`. A name is the
/// longest run of letters, digits and `_` (so `$1x` names the group `1x`, which does not
/// exist and expands to nothing); a malformed reference leaves the `$` as text.
pub(crate) fn expand(re: &Regex, template: &str, caps: &regex::Captures<'_>, out: &mut String) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = extract_name(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.push_str(m.as_str());
        }
    }
    out.push_str(rest);
}

fn extract_name(s: &str) -> Option<(&str, &str)> {
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let end = body
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let mut rest = &body[end..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    Some((name, rest))
}

// Go: all ASCII digits, below 1e8, no leading zero.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || name.len() > 8 {
        return None;
    }
    if name.len() > 1 && name.starts_with('0') {
        return None;
    }
    name.parse().ok()
}

/// Go's `Regexp.ReplaceAllString`: every match replaced by the expanded template.
pub(crate) fn replace_all(re: &Regex, input: &str, template: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    for caps in re.captures_iter(input) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&input[last..m.start()]);
        expand(re, template, &caps, &mut out);
        last = m.end();
    }
    out.push_str(&input[last..]);
    out
}

/// A gobwas/glob pattern (no separators) as an anchored regex: `*` any text, `?` one
/// character, `[abc]`/`[!a-z]` classes, `{a,b}` alternatives, `\` escapes.
pub(crate) fn compile_glob(pattern: &str) -> Result<Regex, String> {
    let mut out = String::from("^(?s:");
    let mut chars = pattern.chars();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => match chars.next() {
                Some(n) => out.push_str(&regex::escape(n.encode_utf8(&mut [0; 4]))),
                None => return Err("unexpected end of pattern after escape".into()),
            },
            '[' => {
                out.push('[');
                let mut closed = false;
                let mut first = true;
                for inner in chars.by_ref() {
                    match inner {
                        '!' if first => out.push('^'),
                        ']' => {
                            closed = true;
                            break;
                        }
                        '-' => out.push('-'),
                        other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
                    }
                    first = false;
                }
                if !closed {
                    return Err("unexpected end of pattern: unclosed [".into());
                }
                out.push(']');
            }
            '{' => {
                depth += 1;
                out.push_str("(?:");
            }
            '}' if depth > 0 => {
                depth -= 1;
                out.push(')');
            }
            ',' if depth > 0 => out.push('|'),
            other => out.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
    }
    if depth > 0 {
        return Err("unexpected end of pattern: unclosed {".into());
    }
    out.push_str(")$");
    Regex::new(&out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        compile_go_regex(p).expect("test pattern compiles")
    }

    #[test]
    fn perl_classes_are_ascii_as_in_go() {
        assert!(!re(r"^\d$").is_match("٣"));
        assert!(re(r"^\d$").is_match("3"));
        assert!(!re(r"^\w+$").is_match("é"));
        assert!(re(r"^[\w.]+$").is_match("a.b_1"));
        assert!(re(r"\bfoo\b").is_match("a foo b"));
        assert!(re(r"^[]a]+$").is_match("]a"));
        assert!(re(r"^[[:alpha:]\d]+$").is_match("ab12"));
        assert!(!re(r"^\s$").is_match("\u{a0}"));
    }

    // Go's Regexp.Expand rules, from regexp's own documentation.
    #[test]
    fn expand_follows_go() {
        let r = re(r"(?P<first>\w+) (\w+)");
        let got = |t: &str| replace_all(&r, "hello world", t);
        assert_eq!(got("$2 $1"), "world hello");
        assert_eq!(got("${2}x"), "worldx");
        assert_eq!(got("$2x"), "");
        assert_eq!(got("$first!"), "hello!");
        assert_eq!(got("${first}"), "hello");
        assert_eq!(got("$$1"), "$1");
        assert_eq!(got("$"), "$");
        assert_eq!(got("${1"), "${1");
        assert_eq!(got("$9"), "");
        assert_eq!(got("$01"), "");
    }

    #[test]
    fn replace_all_as_go() {
        let r = re("a(x*)b");
        assert_eq!(replace_all(&r, "-ab-axxb-", "T"), "-T-T-");
        assert_eq!(replace_all(&r, "-ab-axxb-", "$1"), "--xx-");
        assert_eq!(replace_all(&r, "-ab-axxb-", "$1W"), "---");
        assert_eq!(replace_all(&r, "-ab-axxb-", "${1}W"), "-W-xxW-");
    }

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| compile_glob(p).expect("glob compiles").is_match(s);
        assert!(g("/user/*/list", "/user/123/list"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "abbc"));
        assert!(g("[!a]bc", "xbc"));
        assert!(!g("[!a]bc", "abc"));
        assert!(g("{foo,bar}*", "barbaz"));
        assert!(g("a.b", "a.b"));
        assert!(!g("a.b", "axb"));
        assert!(compile_glob("[ab").is_err());
        assert!(compile_glob("{a,b").is_err());
    }
}

//! `${...}` references with otelcol's semantics: `${env:NAME}` (also `${NAME}`, either with
//! `:-default`), `${file:PATH}` and `${yaml:TEXT}`.
//!
//! As in otelcol's resolver, the text a reference gives is itself expanded again, so a
//! variable or a file may hold references (and `$$`), and a reference may be built from
//! others (`${file:/etc/${env:SITE}/token}`). How the text becomes a value when a reference is
//! the whole value (a map, a number, a certificate) is the YAML builder's part.

use crate::user_file;

/// Looks an environment variable up; injected so tests need not touch the process
/// environment.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// References inside the text of references, at most this deep: a variable or file that
/// refers to itself is an error here, where otelcol gives up after 1,000 rounds.
const MAX_NESTING: usize = 32;

/// References one document may resolve in all, counting repeats: text that refers to itself
/// twice would otherwise double the work at every level.
const MAX_RETRIEVALS: usize = 10_000;

/// Bytes the references of one document may bring in, in all.
const MAX_RETRIEVED_BYTES: usize = 64 << 20;

/// What a reference gave.
pub(crate) enum Retrieved {
    /// An environment variable that is unset and has no default.
    Unset,
    /// The text as its provider gave it (a variable's value, a file's bytes), not yet
    /// expanded itself.
    Text(String),
}

/// Resolves the references of one document, keeping the budgets above across all of them.
pub(crate) struct Expander<'a> {
    lookup: EnvLookup<'a>,
    /// Unset variables without a default, once each, so the loader can warn about them.
    pub unset: Vec<String>,
    depth: usize,
    retrievals: usize,
    retrieved_bytes: usize,
}

impl<'a> Expander<'a> {
    pub(crate) fn new(lookup: EnvLookup<'a>) -> Self {
        Self {
            lookup,
            unset: Vec::new(),
            depth: 0,
            retrievals: 0,
            retrieved_bytes: 0,
        }
    }

    /// Expands every reference in `text`, each replaced by its text (itself expanded), and
    /// turns `$$` into `$`. A `$` followed by anything else is kept as is, as otelcol does.
    /// Unset variables without a default expand to the empty string. The error is a reason
    /// without position; the caller adds the line.
    pub(crate) fn expand(&mut self, text: &str) -> Result<String, String> {
        // Fast path: nearly every scalar in a config has no `$`.
        if !text.contains('$') {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner_start) = after.strip_prefix('{') {
                let Some(len) = closing_brace(inner_start) else {
                    if self.depth > 0 {
                        // Text a reference gave (a password, a file) keeps an unclosed `${`
                        // as it is, as otelcol keeps it. In the config's own text it is
                        // almost always a typo, so it is an error there.
                        out.push_str("${");
                        rest = inner_start;
                        continue;
                    }
                    return Err(format!(
                        "unclosed `${{` in `{text}`: expected `}}` to end the reference"
                    ));
                };
                if let Retrieved::Text(raw) = self.retrieve(&inner_start[..len])? {
                    out.push_str(&self.nested(|refs| refs.expand(&raw))?);
                }
                rest = &inner_start[len + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Runs `f` on text a reference gave, one level deeper.
    pub(crate) fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "references nest more than {MAX_NESTING} levels deep: does a variable or \
                 file refer to itself?"
            ));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// The text of one reference (what is between `${` and `}`). References inside it are
    /// expanded first, as otelcol expands the innermost first.
    pub(crate) fn retrieve(&mut self, reference: &str) -> Result<Retrieved, String> {
        let built;
        let reference = if reference.contains("${") {
            built = self.nested(|refs| refs.expand(reference))?;
            built.as_str()
        } else {
            reference
        };
        self.retrievals += 1;
        if self.retrievals > MAX_RETRIEVALS {
            return Err(format!(
                "the document resolves more than {MAX_RETRIEVALS} references (in `${{{reference}}}`)"
            ));
        }
        let retrieved = match split_scheme(reference) {
            (None | Some("env"), body) => self.env(reference, body)?,
            (Some("file"), path) => Retrieved::Text(read_file(reference, path)?),
            (Some("yaml"), text) => Retrieved::Text(text.to_owned()),
            (Some(scheme), _) if is_scheme(scheme) => {
                return Err(format!(
                    "config provider `{scheme}` is not supported (in `${{{reference}}}`): \
                     Redline reads `env`, `file` and `yaml` references"
                ))
            }
            _ => return Err(format!("invalid reference `${{{reference}}}`")),
        };
        if let Retrieved::Text(text) = &retrieved {
            self.retrieved_bytes = self.retrieved_bytes.saturating_add(text.len());
            if self.retrieved_bytes > MAX_RETRIEVED_BYTES {
                return Err(format!(
                    "the document's references bring in more than {} MiB (at `${{{reference}}}`)",
                    MAX_RETRIEVED_BYTES >> 20
                ));
            }
        }
        Ok(retrieved)
    }

    fn env(&mut self, reference: &str, body: &str) -> Result<Retrieved, String> {
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if !is_env_name(name) {
            return Err(format!(
                "invalid environment variable name `{name}` in `${{{reference}}}`: \
                 it must match [A-Za-z_][A-Za-z0-9_]*"
            ));
        }
        Ok(match ((self.lookup)(name), default) {
            (Some(value), _) => Retrieved::Text(value),
            // otelcol uses the default only when the variable is unset, not when it is empty.
            (None, Some(default)) => Retrieved::Text(default.to_owned()),
            (None, None) => {
                if !self.unset.iter().any(|n| n == name) {
                    self.unset.push(name.to_owned());
                }
                Retrieved::Unset
            }
        })
    }
}

/// The inside of the one reference `text` consists of, if it is exactly one reference.
pub(crate) fn whole_reference(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("${")?;
    let len = closing_brace(inner)?;
    (len + 1 == inner.len()).then(|| &inner[..len])
}

/// The provider scheme of a reference and what follows it. `${NAME:-default}` is the legacy
/// form with a default, not a provider called NAME.
fn split_scheme(reference: &str) -> (Option<&str>, &str) {
    match reference.split_once(':') {
        Some((name, rest)) if rest.starts_with('-') && is_env_name(name) => (None, reference),
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, reference),
    }
}

/// A file's text, read through the bounded reader. Relative paths are taken from the working
/// directory, as otelcol's file provider takes them.
fn read_file(reference: &str, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err(format!("`${{{reference}}}` names no file"));
    }
    user_file::read_text(path)
        .map_err(|e| format!("cannot read `{path}` (in `${{{reference}}}`): {e}"))
}

/// Index of the `}` closing a reference whose body starts `s`, allowing nested `${...}`.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// An environment variable name as otelcol takes it: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// otelcol's provider scheme syntax.
pub(super) fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("tempo".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("4317".into()),
            "DOLLARS" => Some("a$$b".into()),
            "INDIRECT" => Some("${env:HOST}".into()),
            "SELF" => Some("x${env:SELF}".into()),
            "SECRET" => Some("pa$$w${rd".into()),
            "TWICE" => Some("${env:TWICE}${env:TWICE}".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> (Result<String, String>, Vec<String>) {
        let mut refs = Expander::new(&env);
        let r = refs.expand(text);
        (r, refs.unset)
    }

    #[test]
    fn expands_both_forms() {
        assert_eq!(run("${env:HOST}:${PORT}").0, Ok("tempo:4317".into()));
        assert_eq!(run("plain").0, Ok("plain".into()));
        assert_eq!(run("a$b $").0, Ok("a$b $".into()));
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        assert_eq!(run("${env:NOPE:-0.0.0.0}:1").0, Ok("0.0.0.0:1".into()));
        assert_eq!(run("${NOPE:-x}").0, Ok("x".into()));
        assert_eq!(run("${env:EMPTY:-x}").0, Ok(String::new()));
        assert_eq!(run("${env:HOST:-x}").0, Ok("tempo".into()));
        assert_eq!(run("${env:NOPE:-${env:HOST}}").0, Ok("tempo".into()));
        assert_eq!(run("${env:NOPE:-}").0, Ok(String::new()));
        // A default counts as set: nothing to warn about.
        assert!(run("${env:NOPE:-x}").1.is_empty());
    }

    #[test]
    fn dollar_dollar_escapes() {
        assert_eq!(run("$$").0, Ok("$".into()));
        assert_eq!(run("$${env:HOST}").0, Ok("${env:HOST}".into()));
        assert_eq!(run("a$$$${HOST}").0, Ok("a$${HOST}".into()));
        assert_eq!(run("$$$").0, Ok("$$".into()));
    }

    #[test]
    fn unset_without_default_is_empty_and_recorded_once() {
        let (r, unset) = run("${env:A}-${B}-${env:A}");
        assert_eq!(r, Ok("--".into()));
        assert_eq!(unset, vec!["A".to_string(), "B".to_string()]);
    }

    #[test]
    fn refuses_bad_references() {
        let e = run("x ${env:HOST").0.expect_err("unclosed");
        assert!(e.contains("unclosed `${`"), "{e}");
        let e = run("${http://x}").0.expect_err("http provider");
        assert!(e.contains("config provider `http` is not supported"), "{e}");
        let e = run("${file:}").0.expect_err("no file");
        assert!(e.contains("names no file"), "{e}");
        assert!(run("${}").0.is_err());
        assert!(run("${env:1A}").0.is_err());
        assert!(run("${A B}").0.is_err());
    }

    #[test]
    fn what_a_reference_gives_is_expanded_again() {
        // As otelcol: a variable's `$$` is an escape too, and its references resolve.
        assert_eq!(run("${env:DOLLARS}").0, Ok("a$b".into()));
        assert_eq!(run("p-${env:INDIRECT}").0, Ok("p-tempo".into()));
        // A reference built from another.
        assert_eq!(run("${env:${env:NOPE:-HOST}}").0, Ok("tempo".into()));
        // An unclosed `${` in a variable is text (a password), as otelcol takes it.
        assert_eq!(run("${env:SECRET}").0, Ok("pa$w${rd".into()));
        // An escaped reference stays text, and is not expanded later.
        assert_eq!(run("$${env:INDIRECT}").0, Ok("${env:INDIRECT}".into()));
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let e = run("${env:SELF}").0.expect_err("self");
        assert!(e.contains("nest more than 32 levels"), "{e}");
        let e = run("${env:TWICE}").0.expect_err("twice");
        assert!(e.contains("nest more than 32 levels"), "{e}");
        // Twenty levels of doubling would be a million lookups: the budget stops it.
        let doubling = |name: &str| {
            let level: u32 = name.strip_prefix('L')?.parse().ok()?;
            Some(if level < 20 {
                format!("${{env:L{0}}}${{env:L{0}}}", level + 1)
            } else {
                "x".to_owned()
            })
        };
        let e = Expander::new(&doubling)
            .expand("${env:L0}")
            .expect_err("doubling");
        assert!(e.contains("more than 10000 references"), "{e}");
    }

    #[test]
    fn files_and_inline_yaml() {
        let dir = std::env::temp_dir().join(format!("redline-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary file");
        let token = dir.join("token");
        std::fs::write(&token, "s3cret\n").expect("temporary file");
        let nested = dir.join("nested");
        std::fs::write(
            &nested,
            format!("<${{file:{}}}> ${{env:HOST}}", token.display()),
        )
        .expect("temporary file");
        let t = token.display();
        // The file's text exactly as it is, trailing newline included (otelcol does the same).
        assert_eq!(
            run(&format!("Bearer ${{file:{t}}}")).0,
            Ok("Bearer s3cret\n".into())
        );
        assert_eq!(
            run(&format!("${{file:{}}}", nested.display())).0,
            Ok("<s3cret\n> tempo".into())
        );
        assert_eq!(run("x ${yaml:[1, 2]}").0, Ok("x [1, 2]".into()));
        let missing = dir.join("missing");
        let e = run(&format!("${{file:{}}}", missing.display()))
            .0
            .expect_err("missing");
        assert!(e.contains("cannot read") && e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).expect("temporary file");
    }
}

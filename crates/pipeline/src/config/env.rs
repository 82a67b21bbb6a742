//! `${env:VAR}` expansion with otelcol's semantics.

/// Looks an environment variable up; injected so tests need not touch the process
/// environment.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands `${env:NAME}`, `${NAME}` and `${env:NAME:-default}`, and turns `$$` into `$`.
/// A `$` followed by anything else is kept as is, as otelcol does. Unset variables without a
/// default expand to the empty string and are appended to `unset` (once each), so the loader
/// can warn about them. The error is a reason without position; the caller adds the line.
pub(crate) fn expand(
    text: &str,
    lookup: EnvLookup<'_>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
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
            let len = closing_brace(inner_start).ok_or_else(|| {
                format!("unclosed `${{` in `{text}`: expected `}}` to end the reference")
            })?;
            let reference = &inner_start[..len];
            out.push_str(&resolve(reference, lookup, unset)?);
            rest = &inner_start[len + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` closing a reference whose body starts `s`, allowing nested `${...}` in a
/// default value.
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

fn resolve(
    reference: &str,
    lookup: EnvLookup<'_>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let (name_and_default, scheme) = match reference.split_once(':') {
        // `${NAME:-default}`: the legacy form with a default, not a provider called NAME.
        Some((name, rest)) if rest.starts_with('-') && is_env_name(name) => (reference, None),
        Some((scheme, rest)) => (rest, Some(scheme)),
        None => (reference, None),
    };
    if let Some(scheme) = scheme {
        if scheme != "env" {
            return Err(if is_scheme(scheme) {
                format!("config provider `{scheme}` is not supported (in `${{{reference}}}`)")
            } else {
                format!("invalid reference `${{{reference}}}`")
            });
        }
    }
    let (name, default) = match name_and_default.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (name_and_default, None),
    };
    if !is_env_name(name) {
        return Err(format!(
            "invalid environment variable name `{name}` in `${{{reference}}}`: \
             it must match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    match lookup(name) {
        Some(value) => Ok(value),
        // otelcol uses the default only when the variable is unset, not when it is empty.
        None => match default {
            Some(default) => expand(default, lookup, unset),
            None => {
                if !unset.iter().any(|n| n == name) {
                    unset.push(name.to_owned());
                }
                Ok(String::new())
            }
        },
    }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// otelcol's provider scheme syntax.
fn is_scheme(s: &str) -> bool {
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
            _ => None,
        }
    }

    fn run(text: &str) -> (Result<String, String>, Vec<String>) {
        let mut unset = Vec::new();
        let r = expand(text, &env, &mut unset);
        (r, unset)
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
        let e = run("${file:/etc/x}").0.expect_err("file provider");
        assert!(e.contains("config provider `file` is not supported"), "{e}");
        let e = run("${http://x}").0.expect_err("http provider");
        assert!(e.contains("config provider `http` is not supported"), "{e}");
        assert!(run("${}").0.is_err());
        assert!(run("${env:1A}").0.is_err());
        assert!(run("${A B}").0.is_err());
    }
}

//! Editor implementations: [`apply_editor`] edits prost messages as otelcol's editors edit
//! pdata; [`editor_would_change`] answers, from a read-only view, whether applying would
//! change anything (never `false` when it would), without writing or, in the common case,
//! allocating.

use std::borrow::Cow;
use std::collections::HashSet;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use regex::Regex;

use super::converters::{apply_string_fn, regex_of};
use super::getters::{self, value_as_map};
use super::patterns::{expand, replace_all};
use super::{Editor, MergeStrategy, Pattern, Replacement, StringFn};
use crate::compare::values_equal;
use crate::error::EvalError;
use crate::eval::{eval, read_path, Reader};
use crate::ir::CPath;
use crate::paths::{Field, Indexing};
use crate::value::{MapRef, Value};
use crate::write::{any_str, map_target, set_path, set_str, Writer};

fn pattern_name(e: &Editor) -> &'static str {
    match e {
        Editor::DeleteMatchingKeys { .. } => "delete_matching_keys",
        Editor::KeepMatchingKeys { .. } => "keep_matching_keys",
        Editor::ReplacePattern { .. } => "replace_pattern",
        Editor::ReplaceAllPatterns { .. } => "replace_all_patterns",
        Editor::ReplaceMatch { .. } => "replace_match",
        _ => "replace_all_matches",
    }
}

/// otelcol's `validFormatString` + `fmt.Sprintf(format, value)`: exactly the `%s` verbs,
/// no other `%`, and no line break.
fn apply_format(format: &str, value: &str) -> Result<String, EvalError> {
    let invalid = || {
        EvalError::new(
            "replacementFormat must be format string containing a single %s and no other format specifiers",
        )
    };
    if !format.contains("%s") || format.contains('\n') {
        return Err(invalid());
    }
    let mut out = String::with_capacity(format.len() + value.len());
    let mut used = false;
    let mut rest = format;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        if rest.get(pos + 1..pos + 2) != Some("s") {
            return Err(invalid());
        }
        out.push_str(if used { "%!s(MISSING)" } else { value });
        used = true;
        rest = &rest[pos + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The per-match path of the replace editors when a `function` is given: each match is
/// expanded, passed through the function, then through the optional format.
fn replace_with_function(
    re: &Regex,
    input: &str,
    template: &str,
    f: StringFn,
    format: Option<&Result<String, EvalError>>,
) -> Result<String, EvalError> {
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    for caps in re.captures_iter(input) {
        let Some(m) = caps.get(0) else { continue };
        let mut expanded = String::new();
        expand(re, template, &caps, &mut expanded);
        let mut replaced = apply_string_fn(f, &expanded);
        if let Some(format) = format {
            replaced = apply_format(format.as_ref().map_err(Clone::clone)?, &replaced)?;
        }
        out.push_str(&input[last..m.start()]);
        out.push_str(&replaced);
        last = m.end();
    }
    out.push_str(&input[last..]);
    Ok(out)
}

/// What the replace editors need, evaluated before the target is borrowed for writing. A
/// static pattern is borrowed from the compiled statement: cloning a `Regex` would give the
/// clone a fresh matching cache, rebuilt on every call.
struct Prepared<'p> {
    regex: Cow<'p, Regex>,
    replacement: String,
    function: Option<StringFn>,
    format: Option<Result<String, EvalError>>,
}

fn prepare<'p, R: Reader + ?Sized>(
    r: &R,
    pattern: &'p Pattern,
    with: &Replacement,
    func: &str,
) -> Result<Prepared<'p>, EvalError> {
    let replacement = getters::string(r, &with.replacement)?.into_owned();
    let regex = compiled_regex(r, pattern, func)?;
    Ok(Prepared {
        regex,
        replacement,
        function: with.function,
        format: with
            .format
            .as_ref()
            .map(|f| getters::string(r, f).map(|s| s.into_owned())),
    })
}

/// The statement's regex, borrowed when static, compiled now when the pattern is an
/// expression. Inlined for the static case the dry run meets on every item.
#[inline(always)]
fn compiled_regex<'p, R: Reader + ?Sized>(
    r: &R,
    pattern: &'p Pattern,
    func: &str,
) -> Result<Cow<'p, Regex>, EvalError> {
    match pattern {
        Pattern::Static(re) => Ok(Cow::Borrowed(re)),
        Pattern::Dynamic(_) => compile_dynamic(r, pattern, func),
    }
}

fn compile_dynamic<'p, R: Reader + ?Sized>(
    r: &R,
    pattern: &'p Pattern,
    func: &str,
) -> Result<Cow<'p, Regex>, EvalError> {
    regex_of(r, pattern, func).map(|re| Cow::Owned(re.into_owned()))
}

impl Prepared<'_> {
    /// The new text for a matching string.
    fn replace(&self, input: &str) -> Result<String, EvalError> {
        match self.function {
            Some(f) => replace_with_function(
                &self.regex,
                input,
                &self.replacement,
                f,
                self.format.as_ref(),
            ),
            None => Ok(replace_all(&self.regex, input, &self.replacement)),
        }
    }

    /// `replace_match`'s replacement: the function and format apply to the replacement itself.
    fn match_replacement(&self) -> Result<String, EvalError> {
        match self.function {
            None => Ok(self.replacement.clone()),
            Some(f) => {
                let v = apply_string_fn(f, &self.replacement);
                match &self.format {
                    Some(format) => apply_format(format.as_ref().map_err(Clone::clone)?, &v),
                    None => Ok(v),
                }
            }
        }
    }
}

fn key_set<R: Reader + ?Sized>(
    r: &R,
    keys: &[crate::ir::Expr],
) -> Result<HashSet<String>, EvalError> {
    keys.iter()
        .map(|k| getters::string(r, k).map(|s| s.into_owned()))
        .collect()
}

/// pdata's `Map.Remove`: the first entry with the key is replaced by the last one.
fn pdata_remove(map: &mut Vec<KeyValue>, key: &str) {
    if let Some(i) = map.iter().position(|kv| kv.key == key) {
        map.swap_remove(i);
    }
}

fn truncate(s: &str, limit: usize, utf8_safe: bool, marker: &str) -> String {
    let mut cut = limit.saturating_sub(marker.len());
    if utf8_safe {
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
    }
    // Without utf8_safe Go may cut inside a character; Rust strings cannot hold the broken
    // bytes, so the partial character becomes U+FFFD.
    let head = String::from_utf8_lossy(s.as_bytes().get(..cut).unwrap_or(&[])).into_owned();
    head + marker
}

pub(crate) fn apply_editor<W: Writer + ?Sized>(w: &mut W, e: &Editor) -> Result<(), EvalError> {
    match e {
        Editor::Set { target, value } => {
            let v = eval(w, value)?.into_owned();
            set_path(w, target, v)
        }
        Editor::DeleteKey { target, key } => {
            let key = getters::string(w, key)?.into_owned();
            pdata_remove(map_target(w, target)?, &key);
            Ok(())
        }
        Editor::DeleteMatchingKeys { target, pattern }
        | Editor::KeepMatchingKeys { target, pattern } => {
            let keep_matches = matches!(e, Editor::KeepMatchingKeys { .. });
            let re = regex_of(w, pattern, pattern_name(e))?.into_owned();
            map_target(w, target)?.retain(|kv| re.is_match(&kv.key) == keep_matches);
            Ok(())
        }
        Editor::KeepKeys { target, keys } => {
            let keys = key_set(w, keys)?;
            map_target(w, target)?.retain(|kv| keys.contains(&kv.key));
            Ok(())
        }
        Editor::Limit {
            target,
            limit,
            priority_keys,
        } => {
            let map = map_target(w, target)?;
            if map.len() <= *limit {
                return Ok(());
            }
            let mut count = priority_keys
                .iter()
                .filter(|k| map.iter().any(|kv| &kv.key == *k))
                .count();
            map.retain(|kv| {
                if priority_keys.contains(&kv.key) {
                    return true;
                }
                if count < *limit {
                    count += 1;
                    return true;
                }
                false
            });
            Ok(())
        }
        Editor::TruncateAll {
            target,
            limit,
            utf8_safe,
            marker,
        } => {
            for kv in map_target(w, target)?.iter_mut() {
                let Some(v) = kv.value.as_mut() else { continue };
                let Some(s) = any_str(v) else { continue };
                if s.len() > *limit {
                    let t = truncate(s, *limit, *utf8_safe, marker);
                    set_str(v, t);
                }
            }
            Ok(())
        }
        Editor::ReplacePattern {
            target,
            pattern,
            with,
        } => {
            if read_path(w, target)?.is_nil() {
                return Ok(());
            }
            let prepared = prepare(w, pattern, with, "replace_pattern")?;
            let new = match read_path(w, target)? {
                Value::Str(s) if prepared.regex.is_match(&s) => prepared.replace(&s)?,
                _ => return Ok(()),
            };
            set_path(w, target, Value::string(new))
        }
        Editor::ReplaceAllPatterns {
            target,
            keys_mode,
            pattern,
            with,
        } => {
            let prepared = prepare(w, pattern, with, "replace_all_patterns")?;
            let map = map_target(w, target)?;
            if *keys_mode {
                let old = std::mem::take(map);
                for mut kv in old {
                    if prepared.regex.is_match(&kv.key) {
                        match prepared.replace(&kv.key) {
                            Ok(k) => kv.key = k,
                            // otelcol drops the entry when the function fails.
                            Err(_) => continue,
                        }
                    }
                    // pdata's PutEmpty: a repeated key overwrites the first entry's value.
                    match map.iter_mut().find(|t| t.key == kv.key) {
                        Some(existing) => existing.value = kv.value,
                        None => map.push(kv),
                    }
                }
            } else {
                for kv in map.iter_mut() {
                    let Some(v) = kv.value.as_mut() else { continue };
                    let Some(s) = any_str(v) else { continue };
                    if !prepared.regex.is_match(s) {
                        continue;
                    }
                    if let Ok(new) = prepared.replace(s) {
                        set_str(v, new);
                    }
                }
            }
            Ok(())
        }
        Editor::ReplaceMatch {
            target,
            pattern,
            with,
        } => {
            let prepared = prepare(w, pattern, with, "replace_match")?;
            let replacement = prepared.match_replacement()?;
            match read_path(w, target)? {
                Value::Str(s) if prepared.regex.is_match(&s) => {}
                _ => return Ok(()),
            }
            set_path(w, target, Value::string(replacement))
        }
        Editor::ReplaceAllMatches {
            target,
            pattern,
            with,
        } => {
            let prepared = prepare(w, pattern, with, "replace_all_matches")?;
            let replacement = prepared.match_replacement()?;
            for kv in map_target(w, target)?.iter_mut() {
                let Some(v) = kv.value.as_mut() else { continue };
                if any_str(v).is_some_and(|s| prepared.regex.is_match(s)) {
                    set_str(v, replacement.clone());
                }
            }
            Ok(())
        }
        Editor::MergeMaps {
            target,
            source,
            strategy,
        } => {
            map_target(w, target)?;
            let source = getters::map(w, source)?.into_vec();
            let map = map_target(w, target)?;
            for kv in source {
                let existing = map.iter_mut().find(|t| t.key == kv.key);
                match (strategy, existing) {
                    (MergeStrategy::Insert, None) | (MergeStrategy::Upsert, None) => map.push(kv),
                    (MergeStrategy::Update, Some(t)) | (MergeStrategy::Upsert, Some(t)) => {
                        t.value = kv.value
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}

/// Exact structural identity (map order included): what a write of `b` over `a` leaves
/// unchanged.
fn identical(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.entries()
                    .zip(y.entries())
                    .all(|((ka, va), (kb, vb))| ka == kb && identical(&va, &vb))
        }
        (Value::Slice(x), Value::Slice(y)) => {
            x.len() == y.len()
                && x.elements()
                    .zip(y.elements())
                    .all(|(va, vb)| identical(&va, &vb))
        }
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        _ => values_equal(a, b),
    }
}

fn target_map<'a, R: Reader + ?Sized>(
    r: &'a R,
    target: &'a CPath,
) -> Result<MapRef<'a>, EvalError> {
    value_as_map(read_path(r, target)?)
}

/// Whether applying the editor could change the item; errors are the ones applying would
/// hit (the caller treats them as "apply to find out").
pub(crate) fn editor_would_change<R: Reader + ?Sized>(
    r: &R,
    e: &Editor,
) -> Result<bool, EvalError> {
    let target = editor_target(e);
    // The cache is invisible in the output but later statements read it: the dry run does not
    // track it, so a write to it sends the request to the real run.
    if target.field == Field::Cache || target.field.indexing() == Indexing::ExactlyOne {
        return Ok(true);
    }
    Ok(match e {
        Editor::Set { target, value } => {
            let new = eval(r, value)?;
            if new.is_nil() {
                return Ok(true);
            }
            !identical(&read_path(r, target)?, &new)
        }
        Editor::DeleteKey { target, key } => {
            let key = getters::string(r, key)?;
            target_map(r, target)?.contains_key(&key)
        }
        Editor::DeleteMatchingKeys { target, pattern }
        | Editor::KeepMatchingKeys { target, pattern } => {
            let keep_matches = matches!(e, Editor::KeepMatchingKeys { .. });
            let re = regex_of(r, pattern, pattern_name(e))?;
            let map = target_map(r, target)?;
            let any = map.entries().any(|(k, _)| re.is_match(k) != keep_matches);
            any
        }
        Editor::KeepKeys { target, keys } => {
            let map = target_map(r, target)?;
            let wanted: Vec<_> = keys
                .iter()
                .map(|k| getters::string(r, k))
                .collect::<Result<_, _>>()?;
            let any = map.entries().any(|(k, _)| !wanted.iter().any(|w| w == k));
            any
        }
        Editor::Limit { target, limit, .. } => target_map(r, target)?.len() > *limit,
        Editor::TruncateAll { target, limit, .. } => {
            let map = target_map(r, target)?;
            let any = map
                .entries()
                .any(|(_, v)| v.as_str().is_some_and(|s| s.len() > *limit));
            any
        }
        Editor::ReplacePattern {
            target,
            pattern,
            with,
        } => {
            // Read once: a span field of the encoded request is found by scanning the span.
            let current = read_path(r, target)?;
            if current.is_nil() {
                return Ok(false);
            }
            // Evaluated even when nothing matches: applying would fail on them first.
            let replacement = getters::string(r, &with.replacement)?;
            let re = compiled_regex(r, pattern, "replace_pattern")?;
            // The replacement text is only built for a match.
            match current {
                Value::Str(s) if re.is_match(&s) => {
                    let prepared = Prepared {
                        regex: re,
                        replacement: replacement.into_owned(),
                        function: with.function,
                        format: with
                            .format
                            .as_ref()
                            .map(|f| getters::string(r, f).map(|s| s.into_owned())),
                    };
                    prepared.replace(&s)? != *s
                }
                _ => false,
            }
        }
        Editor::ReplaceAllPatterns {
            target,
            keys_mode,
            pattern,
            with,
        } => {
            let prepared = prepare(r, pattern, with, "replace_all_patterns")?;
            let map = target_map(r, target)?;
            let any = if *keys_mode {
                // Rebuilding the map also merges repeated keys.
                map.entries().any(|(k, _)| prepared.regex.is_match(k)) || has_duplicate_keys(&map)
            } else {
                map.entries().any(|(_, v)| match v.as_str() {
                    Some(s) if prepared.regex.is_match(s) => {
                        prepared.replace(s).is_ok_and(|new| new != s)
                    }
                    _ => false,
                })
            };
            any
        }
        Editor::ReplaceMatch {
            target,
            pattern,
            with,
        } => {
            let prepared = prepare(r, pattern, with, "replace_match")?;
            let replacement = prepared.match_replacement()?;
            match read_path(r, target)? {
                Value::Str(s) => prepared.regex.is_match(&s) && *s != replacement,
                _ => false,
            }
        }
        Editor::ReplaceAllMatches {
            target,
            pattern,
            with,
        } => {
            let prepared = prepare(r, pattern, with, "replace_all_matches")?;
            let replacement = prepared.match_replacement()?;
            let map = target_map(r, target)?;
            let any = map.entries().any(|(_, v)| {
                v.as_str()
                    .is_some_and(|s| prepared.regex.is_match(s) && s != replacement)
            });
            any
        }
        Editor::MergeMaps {
            target,
            source,
            strategy,
        } => {
            let map = target_map(r, target)?;
            let source = getters::map(r, source)?;
            let any = source.entries().any(|(k, v)| match (strategy, map.get(k)) {
                (MergeStrategy::Insert, existing) => existing.is_none(),
                (MergeStrategy::Update, Some(cur)) => !identical(&cur, &v),
                (MergeStrategy::Update, None) => false,
                (MergeStrategy::Upsert, Some(cur)) => !identical(&cur, &v),
                (MergeStrategy::Upsert, None) => true,
            });
            any
        }
    })
}

fn has_duplicate_keys(map: &MapRef<'_>) -> bool {
    map.entries()
        .enumerate()
        .any(|(i, (k, _))| map.entries().take(i).any(|(earlier, _)| earlier == k))
}

pub(crate) fn editor_target(e: &Editor) -> &CPath {
    match e {
        Editor::Set { target, .. }
        | Editor::DeleteKey { target, .. }
        | Editor::DeleteMatchingKeys { target, .. }
        | Editor::KeepKeys { target, .. }
        | Editor::KeepMatchingKeys { target, .. }
        | Editor::Limit { target, .. }
        | Editor::TruncateAll { target, .. }
        | Editor::ReplacePattern { target, .. }
        | Editor::ReplaceAllPatterns { target, .. }
        | Editor::ReplaceMatch { target, .. }
        | Editor::ReplaceAllMatches { target, .. }
        | Editor::MergeMaps { target, .. } => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings() {
        assert_eq!(apply_format("pre-%s", "x").ok(), Some("pre-x".into()));
        assert_eq!(
            apply_format("%s-%s", "x").ok(),
            Some("x-%!s(MISSING)".into())
        );
        assert!(apply_format("%d", "x").is_err());
        assert!(apply_format("no verb", "x").is_err());
        assert!(apply_format("100%% %s", "x").is_err());
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("hello world", 5, true, ""), "hello");
        assert_eq!(truncate("hello world", 5, true, "..."), "he...");
        assert_eq!(truncate("héllo", 2, true, ""), "h");
        assert_eq!(truncate("héllo", 2, false, ""), "h\u{fffd}");
    }

    #[test]
    fn pdata_remove_swaps_last_in() {
        let mut m = vec![
            crate::value::kv("a", &Value::Int(1)),
            crate::value::kv("b", &Value::Int(2)),
            crate::value::kv("c", &Value::Int(3)),
        ];
        pdata_remove(&mut m, "a");
        let keys: Vec<&str> = m.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(keys, ["c", "b"]);
    }
}

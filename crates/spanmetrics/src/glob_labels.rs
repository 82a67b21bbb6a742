//! The labels of glob dimensions, which vary in number and name from span to span, kept as
//! one dimension value: the (key, value) pairs sorted by key, each string written as its length
//! in bytes, `:`, and the string. Equal label sets make equal values, so they key one series.

use std::fmt::Write;

use redline_otlp_wire::{AnyValueView, ResourceView, SpanView};

use crate::config::glob::Glob;

/// A walk's buffer of matched attributes, reused from span to span.
#[derive(Default)]
pub(crate) struct GlobLabels {
    pairs: Vec<(String, String)>,
    /// The current resource's matching attributes, first of each key.
    resource: Vec<(String, String)>,
}

fn matches(globs: &[Glob], key: &str) -> bool {
    globs.iter().any(|g| g.matches(key))
}

/// `(key, value)` as a label: the key if it is UTF-8 (the receiver checked it), the value as
/// otelcol writes a non-string one.
fn label(key: &[u8], value: AnyValueView<'_>) -> Option<(String, String)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut text = String::new();
    value.write_as_string(&mut text);
    Some((key.to_owned(), text))
}

impl GlobLabels {
    /// Notes the resource's matching attributes.
    pub(crate) fn resource(&mut self, globs: &[Glob], resource: &ResourceView<'_>) {
        self.resource.clear();
        for kv in resource.attributes().lazy() {
            let Ok(key) = std::str::from_utf8(kv.key_bytes()) else {
                continue;
            };
            if matches(globs, key) && !self.resource.iter().any(|(k, _)| k == key) {
                self.resource.extend(label(kv.key_bytes(), kv.value()));
            }
        }
    }

    /// Starts a span's labels: its matching attributes (first of each key).
    pub(crate) fn span(&mut self, globs: &[Glob], span: &SpanView<'_>) {
        self.pairs.clear();
        for kv in span.attributes().lazy() {
            let Ok(key) = std::str::from_utf8(kv.key_bytes()) else {
                continue;
            };
            if matches(globs, key) && !self.has(key) {
                self.pairs.extend(label(kv.key_bytes(), kv.value()));
            }
        }
    }

    /// Adds an event's matching attributes whose keys the span does not have (the events
    /// family looks at the event's attributes ahead of the resource's, as otelcol does).
    pub(crate) fn event<'v>(
        &mut self,
        globs: &[Glob],
        span: &SpanView<'_>,
        attributes: impl Iterator<Item = (&'v [u8], AnyValueView<'v>)>,
    ) {
        for (key_bytes, value) in attributes {
            let Ok(key) = std::str::from_utf8(key_bytes) else {
                continue;
            };
            if matches(globs, key) && !self.has(key) && span.lazy_attribute(key_bytes).is_none() {
                self.pairs.extend(label(key_bytes, value));
            }
        }
    }

    /// Adds the resource's matching attributes whose keys the span (and an event added
    /// before) does not have, then writes the labels into `out`; `false` when there are none.
    pub(crate) fn finish(&mut self, span: &SpanView<'_>, out: &mut String) -> bool {
        for (key, value) in &self.resource {
            let taken = self.pairs.iter().any(|(k, _)| k == key)
                || span.lazy_attribute(key.as_bytes()).is_some();
            if !taken {
                self.pairs.push((key.clone(), value.clone()));
            }
        }
        if self.pairs.is_empty() {
            return false;
        }
        self.pairs.sort_by(|a, b| a.0.cmp(&b.0));
        out.clear();
        for (key, value) in &self.pairs {
            let _ = write!(out, "{}:{key}{}:{value}", key.len(), value.len());
        }
        true
    }

    fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }
}

/// The labels a value written by [`GlobLabels::finish`] holds; a malformed value yields what
/// comes before the fault.
pub(crate) fn decode(mut value: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut next = move || -> Option<&str> {
        let (len, rest) = value.split_once(':')?;
        let len: usize = len.parse().ok()?;
        let s = rest.get(..len)?;
        value = rest.get(len..)?;
        Some(s)
    };
    std::iter::from_fn(move || Some((next()?, next()?)))
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn values_hold_any_text() {
        let pairs: Vec<_> = decode("5:k.a:b3:x:y0:1:5:").collect();
        assert_eq!(pairs, [("k.a:b", "x:y"), ("", "5")]);
        // Truncated: what comes before the fault.
        assert_eq!(decode("1:a1:b9:c").collect::<Vec<_>>(), [("a", "b")]);
        assert_eq!(decode("x").count(), 0);
    }
}

//! The labels of glob dimensions, which vary in number and name from span to span, kept as
//! one dimension value: the (key, value) pairs sorted by key, each string written as its length
//! in bytes, `:`, and the string. Equal label sets make equal values, so they key one series.

use std::ops::Range;

use redline_otlp_wire::{AnyValueView, ResourceView, SpanView};

use crate::config::glob::Glob;

/// Matched attributes: their keys and values written one after the other into `text`, and
/// where each pair is. Reused from span to span, so a walk allocates only while it grows.
#[derive(Default)]
struct Pairs {
    text: String,
    at: Vec<(Range<usize>, Range<usize>)>,
}

impl Pairs {
    fn clear(&mut self) {
        self.text.clear();
        self.at.clear();
    }

    fn key(&self, i: usize) -> &str {
        self.at
            .get(i)
            .and_then(|(k, _)| self.text.get(k.clone()))
            .unwrap_or("")
    }

    fn has(&self, key: &[u8]) -> bool {
        (0..self.at.len()).any(|i| self.key(i).as_bytes() == key)
    }

    /// Adds `key` (UTF-8, as the receiver checked; skipped otherwise) and its value as
    /// otelcol writes it.
    fn push(&mut self, key: &[u8], value: AnyValueView<'_>) {
        if let Ok(key) = std::str::from_utf8(key) {
            self.push_with(key, |text| value.write_as_string(text));
        }
    }

    fn push_text(&mut self, key: &str, value: &str) {
        self.push_with(key, |text| text.push_str(value));
    }

    fn push_with(&mut self, key: &str, write_value: impl FnOnce(&mut String)) {
        let k = self.text.len()..self.text.len() + key.len();
        self.text.push_str(key);
        let start = self.text.len();
        write_value(&mut self.text);
        self.at.push((k, start..self.text.len()));
    }
}

/// A walk's buffers for glob dimensions' labels.
#[derive(Default)]
pub(crate) struct GlobLabels {
    pairs: Pairs,
    /// The current resource's matching attributes, first of each key.
    resource: Pairs,
    /// Keys that start like a pattern, and whether they match: a request repeats the same
    /// few keys in every span, and a full match backtracks.
    verdicts: Vec<(Box<[u8]>, bool)>,
}

/// More distinct keys than this in one request are matched without being remembered.
const MAX_VERDICTS: usize = 64;

impl GlobLabels {
    fn matches(&mut self, globs: &[Glob], key: &[u8]) -> bool {
        if !globs.iter().any(|g| g.prefix_of(key)) {
            return false;
        }
        if let Some((_, verdict)) = self.verdicts.iter().find(|(k, _)| **k == *key) {
            return *verdict;
        }
        let verdict = globs.iter().any(|g| g.matches_bytes(key));
        if self.verdicts.len() < MAX_VERDICTS {
            self.verdicts.push((key.into(), verdict));
        }
        verdict
    }
}

impl GlobLabels {
    /// Notes the resource's matching attributes.
    pub(crate) fn resource(&mut self, globs: &[Glob], resource: &ResourceView<'_>) {
        self.resource.clear();
        for kv in resource.attributes().lazy() {
            let key = kv.key_bytes();
            if self.matches(globs, key) && !self.resource.has(key) {
                self.resource.push(key, kv.value());
            }
        }
    }

    /// Starts a span's labels: its matching attributes (first of each key).
    pub(crate) fn span(&mut self, globs: &[Glob], span: &SpanView<'_>) {
        self.pairs.clear();
        for kv in span.attributes().lazy() {
            let key = kv.key_bytes();
            if self.matches(globs, key) && !self.pairs.has(key) {
                self.pairs.push(key, kv.value());
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
        for (key, value) in attributes {
            if self.matches(globs, key)
                && !self.pairs.has(key)
                && span.lazy_attribute(key).is_none()
            {
                self.pairs.push(key, value);
            }
        }
    }

    /// Adds the resource's matching attributes whose keys the span (and an event added
    /// before) does not have, then writes the labels into `out`; `false` when there are none.
    pub(crate) fn finish(&mut self, span: &SpanView<'_>, out: &mut String) -> bool {
        let resource = &self.resource;
        for (k, v) in &resource.at {
            let (Some(key), Some(value)) =
                (resource.text.get(k.clone()), resource.text.get(v.clone()))
            else {
                continue;
            };
            let taken =
                self.pairs.has(key.as_bytes()) || span.lazy_attribute(key.as_bytes()).is_some();
            if !taken {
                self.pairs.push_text(key, value);
            }
        }
        let pairs = &mut self.pairs;
        if pairs.at.is_empty() {
            return false;
        }
        let text = &pairs.text;
        pairs
            .at
            .sort_by(|a, b| text.get(a.0.clone()).cmp(&text.get(b.0.clone())));
        out.clear();
        let mut len = itoa::Buffer::new();
        for (k, v) in &pairs.at {
            for part in [k, v] {
                out.push_str(len.format(part.len()));
                out.push(':');
                out.push_str(text.get(part.clone()).unwrap_or(""));
            }
        }
        true
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

//! One attribute map, or one log body, redacted as otelcol's processor does it: keys ignored,
//! removed when not allowed, values allowed, masked whole when their key is blocked, or with
//! their blocked parts masked; then the summary written on the item.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};

use crate::config::{Rules, Summary};

/// The summary attributes of one kind of finding: the keys' attribute (none for ignored
/// keys, which are only counted) and the count's.
struct MetaKeys {
    keys: &'static str,
    count: &'static str,
}

const REDACTED: MetaKeys = MetaKeys {
    keys: "redaction.redacted.keys",
    count: "redaction.redacted.count",
};
const MASKED: MetaKeys = MetaKeys {
    keys: "redaction.masked.keys",
    count: "redaction.masked.count",
};
const ALLOWED: MetaKeys = MetaKeys {
    keys: "redaction.allowed.keys",
    count: "redaction.allowed.count",
};
const IGNORED: MetaKeys = MetaKeys {
    keys: "",
    count: "redaction.ignored.count",
};
const BODY_REDACTED: MetaKeys = MetaKeys {
    keys: "redaction.body.redacted.keys",
    count: "redaction.body.redacted.count",
};
const BODY_MASKED: MetaKeys = MetaKeys {
    keys: "redaction.body.masked.keys",
    count: "redaction.body.masked.count",
};
const BODY_ALLOWED: MetaKeys = MetaKeys {
    keys: "redaction.body.allowed.keys",
    count: "redaction.body.allowed.count",
};
const BODY_IGNORED: MetaKeys = MetaKeys {
    keys: "",
    count: "redaction.body.ignored.count",
};

/// What was found in one map (or one body): how many of each kind, and their keys when the
/// summary lists them (`debug`); redacted keys are always kept, to be removed.
struct Findings {
    keep_keys: bool,
    redacted: Vec<String>,
    masked: Vec<String>,
    allowed: Vec<String>,
    ignored: Vec<String>,
    /// Masked, allowed and ignored, counted whether or not their keys are kept.
    counts: [usize; 3],
}

impl Findings {
    fn new(summary: Summary) -> Self {
        Self {
            keep_keys: summary == Summary::Debug,
            redacted: Vec::new(),
            masked: Vec::new(),
            allowed: Vec::new(),
            ignored: Vec::new(),
            counts: [0; 3],
        }
    }

    fn masked(&mut self, key: impl FnOnce() -> String) {
        self.counts[0] += 1;
        if self.keep_keys {
            self.masked.push(key());
        }
    }

    fn allowed(&mut self, key: impl FnOnce() -> String) {
        self.counts[1] += 1;
        if self.keep_keys {
            self.allowed.push(key());
        }
    }

    fn ignored(&mut self, key: impl FnOnce() -> String) {
        self.counts[2] += 1;
        if self.keep_keys {
            self.ignored.push(key());
        }
    }
}

/// pdata's `Value.Str()`: the string, or `""` for a value of any other type.
fn str_of(value: Option<&AnyValue>) -> &str {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s,
        _ => "",
    }
}

fn string_value(s: String) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    })
}

/// pdata's `Map.Remove`: the first attribute of the key, its place taken by the last one.
fn remove(attributes: &mut Vec<KeyValue>, key: &str) {
    if let Some(i) = attributes.iter().position(|kv| kv.key == key) {
        attributes.swap_remove(i);
    }
}

/// pdata's `Map.PutStr`/`PutInt`: the first attribute of the key takes the value in place,
/// or a new one is appended.
fn put(attributes: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    let value = Some(AnyValue { value: Some(value) });
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => attributes.push(KeyValue {
            key: key.to_owned(),
            value,
            ..KeyValue::default()
        }),
    }
}

impl Rules {
    pub(crate) fn ignores(&self, key: &str) -> bool {
        self.ignored_keys.contains(key)
            || self.ignored_key_patterns.iter().any(|re| re.is_match(key))
    }

    pub(crate) fn redacts(&self, key: &str) -> bool {
        !self.allow_all_keys && !self.allowed_keys.contains(key)
    }

    pub(crate) fn blocks_key(&self, key: &str) -> bool {
        self.blocked_key_patterns.iter().any(|re| re.is_match(key))
    }

    pub(crate) fn allows_value(&self, value: &str) -> bool {
        self.allowed_values.iter().any(|re| re.is_match(value))
    }

    /// Every blocked value's matches masked, one regex after the other; `None` when no
    /// regex matched (nothing is copied then).
    fn mask_blocked(&self, value: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for re in &self.blocked_values {
            let current = out.as_deref().unwrap_or(value);
            if re.is_match(current) {
                out = Some(self.masker.replace(re, current));
            }
        }
        out
    }

    /// Redacts one attribute map in place; whether anything changed.
    pub fn attributes(&self, attributes: &mut Vec<KeyValue>) -> bool {
        let mut found = Findings::new(self.summary);
        let mut changed = false;
        for kv in attributes.iter_mut() {
            if self.ignores(&kv.key) {
                found.ignored(|| kv.key.clone());
                continue;
            }
            if self.redacts(&kv.key) {
                found.redacted.push(kv.key.clone());
                continue;
            }
            let text: Cow<'_, str> = if self.redact_all_types {
                redline_pdata_text::as_string(kv.value.as_ref())
            } else {
                Cow::Borrowed(str_of(kv.value.as_ref()))
            };
            if self.allows_value(&text) {
                found.allowed(|| kv.key.clone());
                continue;
            }
            if self.blocks_key(&kv.key) {
                let masked = self.masker.whole(&text);
                found.masked(|| kv.key.clone());
                kv.value = string_value(masked);
                changed = true;
                continue;
            }
            if let Some(masked) = self.mask_blocked(&text).filter(|m| *m != text) {
                found.masked(|| kv.key.clone());
                kv.value = string_value(masked);
                changed = true;
            }
        }
        for key in &found.redacted {
            remove(attributes, key);
            changed = true;
        }
        changed | self.summarize(found, attributes, [&REDACTED, &MASKED, &ALLOWED, &IGNORED])
    }

    /// Redacts a log record's body in place, writing its summary on `attributes`; whether
    /// anything changed.
    pub fn body(&self, body: &mut Option<AnyValue>, attributes: &mut Vec<KeyValue>) -> bool {
        let mut found = Findings::new(self.summary);
        let mut changed = false;
        match body.as_mut().and_then(|b| b.value.as_mut()) {
            Some(any_value::Value::KvlistValue(map)) => {
                changed |= self.body_map(None, &mut map.values, &mut found);
            }
            Some(any_value::Value::ArrayValue(list)) => {
                for (i, value) in list.values.iter_mut().enumerate() {
                    changed |= self.body_value(format!("[{i}]"), value, &mut found);
                }
            }
            _ => {
                let text = redline_pdata_text::as_string(body.as_ref()).into_owned();
                // otelcol returns here, before writing any summary.
                if self.allows_value(&text) {
                    return false;
                }
                if let Some(masked) = self.mask_blocked(&text).filter(|m| *m != text) {
                    found.masked(|| "body".to_owned());
                    *body = string_value(masked);
                    changed = true;
                }
            }
        }
        changed
            | self.summarize(
                found,
                attributes,
                [&BODY_REDACTED, &BODY_MASKED, &BODY_ALLOWED, &BODY_IGNORED],
            )
    }

    /// The entries of a map in a body: `path` is the map's own key path (none at the top).
    fn body_map(
        &self,
        path: Option<&str>,
        entries: &mut Vec<KeyValue>,
        found: &mut Findings,
    ) -> bool {
        let at = |key: &str| match path {
            Some(p) => format!("{p}.{key}"),
            None => key.to_owned(),
        };
        let mut changed = false;
        let mut redacted = Vec::new();
        for kv in entries.iter_mut() {
            if self.ignores(&kv.key) {
                found.ignored(|| at(&kv.key));
                continue;
            }
            if self.redacts(&kv.key) {
                redacted.push(kv.key.clone());
                continue;
            }
            if self.blocks_key(&kv.key) {
                found.masked(|| at(&kv.key));
                let masked = self.masker.whole(str_of(kv.value.as_ref()));
                kv.value = string_value(masked);
                changed = true;
                continue;
            }
            let value = kv.value.get_or_insert_with(AnyValue::default);
            changed |= self.body_value(at(&kv.key), value, found);
        }
        for key in redacted {
            remove(entries, &key);
            found.redacted.push(at(&key));
            changed = true;
        }
        changed
    }

    /// A value inside a body, at `path`.
    fn body_value(&self, path: String, value: &mut AnyValue, found: &mut Findings) -> bool {
        match value.value.as_mut() {
            Some(any_value::Value::KvlistValue(map)) => {
                self.body_map(Some(&path), &mut map.values, found)
            }
            Some(any_value::Value::ArrayValue(list)) => {
                let mut changed = false;
                for (i, item) in list.values.iter_mut().enumerate() {
                    changed |= self.body_value(format!("{path}.[{i}]"), item, found);
                }
                changed
            }
            _ => {
                let text = redline_pdata_text::as_string(Some(value)).into_owned();
                if self.allows_value(&text) {
                    found.allowed(|| path);
                    return false;
                }
                let Some(masked) = self.mask_blocked(&text).filter(|m| *m != text) else {
                    return false;
                };
                found.masked(|| path);
                *value = AnyValue {
                    value: Some(any_value::Value::StringValue(masked)),
                };
                true
            }
        }
    }

    /// Writes the summary of `found` on `attributes` as configured (redacted, masked,
    /// allowed, ignored, in that order); whether it wrote anything.
    fn summarize(
        &self,
        found: Findings,
        attributes: &mut Vec<KeyValue>,
        meta: [&MetaKeys; 4],
    ) -> bool {
        let counts = [
            found.redacted.len(),
            found.counts[0],
            found.counts[1],
            found.counts[2],
        ];
        let lists = [found.redacted, found.masked, found.allowed, found.ignored];
        let mut wrote = false;
        for ((mut keys, n), meta) in lists.into_iter().zip(counts).zip(meta) {
            if n == 0 {
                continue;
            }
            let mut count = i64::try_from(n).unwrap_or(i64::MAX);
            if self.summary == Summary::Debug && !meta.keys.is_empty() {
                let existing = attributes
                    .iter()
                    .find(|kv| kv.key == meta.keys)
                    .map(|kv| str_of(kv.value.as_ref()).to_owned())
                    .unwrap_or_default();
                if !existing.is_empty() {
                    keys.extend(existing.split(',').map(str::to_owned));
                }
                keys.sort();
                put(
                    attributes,
                    meta.keys,
                    any_value::Value::StringValue(keys.join(",")),
                );
                wrote = true;
            }
            if matches!(self.summary, Summary::Debug | Summary::Info) {
                let existing = attributes
                    .iter()
                    .find(|kv| kv.key == meta.count)
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| match v.value {
                        Some(any_value::Value::IntValue(i)) => Some(i),
                        _ => None,
                    })
                    .unwrap_or(0);
                count = count.saturating_add(existing);
                put(attributes, meta.count, any_value::Value::IntValue(count));
                wrote = true;
            }
        }
        wrote
    }
}

//! Applying actions to an attribute list with pdata's map semantics: a lookup finds the first
//! entry of a key, a new key is appended, removing one key moves the last entry into its
//! place, removing by pattern keeps the order.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use redline_pipeline::ClientMetadata;
use sha2::{Digest, Sha256};

use super::{Action, AttrActions, Op, Source, Target};

impl AttrActions {
    /// Applies every action in order to `attrs` of data `client` sent (its metadata, when
    /// the receiver kept it); whether anything changed.
    pub fn apply(&self, attrs: &mut Vec<KeyValue>, client: Option<&ClientMetadata>) -> bool {
        let mut changed = false;
        for action in &self.actions {
            changed |= action.apply(attrs, client);
        }
        changed
    }
}

fn position(attrs: &[KeyValue], key: &str) -> Option<usize> {
    attrs.iter().position(|kv| kv.key == key)
}

fn value_of(kv: &KeyValue) -> Option<&Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

/// Puts `value` under `key` (in place when the key exists); whether that changed anything.
fn put(attrs: &mut Vec<KeyValue>, key: &str, value: AnyValue) -> bool {
    match position(attrs, key) {
        Some(i) => set(&mut attrs[i], value),
        None => {
            attrs.push(KeyValue {
                key: key.to_owned(),
                value: Some(value),
                ..KeyValue::default()
            });
            true
        }
    }
}

fn set(kv: &mut KeyValue, value: AnyValue) -> bool {
    let unchanged = match &kv.value {
        Some(old) => *old == value,
        None => value.value.is_none(),
    };
    kv.value = Some(value);
    !unchanged
}

impl Source {
    fn resolve(&self, attrs: &[KeyValue], client: Option<&ClientMetadata>) -> Option<AnyValue> {
        if let Some(value) = &self.value {
            return Some(value.clone());
        }
        if let (Some(key), Some(client)) = (&self.from_context, client) {
            let values = client.get(key);
            if !values.is_empty() {
                // Several values of one key become one string, as otelcol joins them.
                return Some(AnyValue {
                    value: Some(Value::StringValue(values.join(";"))),
                });
            }
        }
        if let Some(from) = &self.from_attribute {
            if let Some(i) = position(attrs, from) {
                return Some(attrs[i].value.clone().unwrap_or_default());
            }
        }
        self.default.clone()
    }
}

impl Action {
    fn apply(&self, attrs: &mut Vec<KeyValue>, client: Option<&ClientMetadata>) -> bool {
        let key = self.key.as_str();
        match &self.op {
            Op::Insert(source) => {
                let Some(value) = source.resolve(attrs, client) else {
                    return false;
                };
                if position(attrs, key).is_some() {
                    return false;
                }
                put(attrs, key, value)
            }
            Op::Update(source) => {
                let Some(value) = source.resolve(attrs, client) else {
                    return false;
                };
                match position(attrs, key) {
                    Some(i) => set(&mut attrs[i], value),
                    None => false,
                }
            }
            Op::Upsert(source) => match source.resolve(attrs, client) {
                Some(value) => put(attrs, key, value),
                None => false,
            },
            Op::Delete(pattern) => {
                let mut changed = false;
                if let Some(i) = position(attrs, key) {
                    attrs.swap_remove(i);
                    changed = true;
                }
                if let Some(re) = pattern {
                    let before = attrs.len();
                    attrs.retain(|kv| !re.is_match(&kv.key));
                    changed |= attrs.len() != before;
                }
                changed
            }
            Op::Hash(pattern) => {
                let mut changed = false;
                if let Some(i) = position(attrs, key) {
                    hash(&mut attrs[i]);
                    changed = true;
                }
                // A key the pattern also matches is hashed a second time, as in otelcol.
                if let Some(re) = pattern {
                    for kv in attrs.iter_mut().filter(|kv| re.is_match(&kv.key)) {
                        hash(kv);
                        changed = true;
                    }
                }
                changed
            }
            Op::Extract { regex, names } => {
                let Some(Value::StringValue(text)) =
                    position(attrs, key).and_then(|i| value_of(&attrs[i]))
                else {
                    return false;
                };
                let Some(caps) = regex.captures(text) else {
                    return false;
                };
                let found: Vec<(String, String)> = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let text = caps.get(i + 1).map_or("", |m| m.as_str());
                        (name.clone(), text.to_owned())
                    })
                    .collect();
                let mut changed = false;
                for (name, text) in found {
                    changed |= put(attrs, &name, string(text));
                }
                changed
            }
            Op::Convert(target) => match position(attrs, key) {
                Some(i) => convert(&mut attrs[i], *target),
                None => false,
            },
        }
    }
}

fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s)),
    }
}

/// Replaces the value with the hex SHA-256 of its bytes: a string's UTF-8, a bool as one
/// byte, an int or a double as its 8 little-endian bytes. Other kinds become "" (otelcol
/// v0.161 hashes with SHA-256 unconditionally; its docs still say SHA-1).
fn hash(kv: &mut KeyValue) {
    let digest = match value_of(kv) {
        Some(Value::StringValue(s)) => Sha256::digest(s.as_bytes()),
        Some(Value::BoolValue(b)) => Sha256::digest([u8::from(*b)]),
        Some(Value::IntValue(i)) => Sha256::digest(i.to_le_bytes()),
        Some(Value::DoubleValue(d)) => Sha256::digest(d.to_bits().to_le_bytes()),
        _ => {
            kv.value = Some(string(String::new()));
            return;
        }
    };
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    kv.value = Some(string(hex));
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Converts in place; a value that cannot be converted stays as it is.
fn convert(kv: &mut KeyValue, target: Target) -> bool {
    let current = value_of(kv);
    let new = match (target, current) {
        (Target::Str, Some(Value::StringValue(_))) => None,
        (Target::Str, _) => Some(Value::StringValue(
            redline_pdata_text::as_string(kv.value.as_ref()).into_owned(),
        )),
        (Target::Int, Some(Value::DoubleValue(d))) => Some(Value::IntValue(go_float_to_int(*d))),
        (Target::Int, Some(Value::BoolValue(b))) => Some(Value::IntValue(i64::from(*b))),
        (Target::Int, Some(Value::StringValue(s))) => s.parse::<i64>().ok().map(Value::IntValue),
        (Target::Double, Some(Value::IntValue(i))) => Some(Value::DoubleValue(*i as f64)),
        (Target::Double, Some(Value::BoolValue(b))) => {
            Some(Value::DoubleValue(if *b { 1.0 } else { 0.0 }))
        }
        (Target::Double, Some(Value::StringValue(s))) => go_parse_float(s).map(Value::DoubleValue),
        _ => None,
    };
    match new {
        Some(value) => set(kv, AnyValue { value: Some(value) }),
        None => false,
    }
}

/// Go's `int64(f)` as compiled for amd64: truncation toward zero, and the "integer
/// indefinite" value `i64::MIN` for NaN and values out of range.
pub(super) fn go_float_to_int(f: f64) -> i64 {
    // 2^63 is exactly representable; every finite value below it (and at or above -2^63)
    // truncates into range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input: an out-of-range value is an error
/// there (Rust would give an infinity), an explicit infinity or NaN is accepted.
pub(super) fn go_parse_float(s: &str) -> Option<f64> {
    if s.contains('_') {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() {
        let word = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if word != "inf" && word != "infinity" {
            return None;
        }
    }
    Some(f)
}

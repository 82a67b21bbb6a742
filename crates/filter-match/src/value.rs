//! Attribute values as the config writes them, and the few value operations otelcol's
//! attribute code relies on (equality of structured values, Go's number formatting).

use std::fmt;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A `value:` from the config, typed as YAML typed it (otelcol decodes these keys into Go's
/// `any` and converts with `pcommon.Value.FromRaw`).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// `null` inside a list or map.
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    List(Vec<ConfigValue>),
    Map(Vec<(String, ConfigValue)>),
}

impl ConfigValue {
    /// The OTLP value `FromRaw` makes of it. A map's entries come out sorted by key: Go
    /// iterates the decoded map in random order, so no order is otelcol's.
    pub fn to_any_value(&self) -> AnyValue {
        let value = match self {
            Self::Null => None,
            Self::Str(s) => Some(Value::StringValue(s.clone())),
            Self::Bool(b) => Some(Value::BoolValue(*b)),
            Self::Int(i) => Some(Value::IntValue(*i)),
            Self::Double(d) => Some(Value::DoubleValue(*d)),
            Self::List(items) => Some(Value::ArrayValue(ArrayValue {
                values: items.iter().map(Self::to_any_value).collect(),
            })),
            Self::Map(entries) => {
                let mut values: Vec<KeyValue> = entries
                    .iter()
                    .map(|(k, v)| KeyValue {
                        key: k.clone(),
                        value: Some(v.to_any_value()),
                        ..KeyValue::default()
                    })
                    .collect();
                values.sort_by(|a, b| a.key.cmp(&b.key));
                Some(Value::KvlistValue(KeyValueList { values }))
            }
        };
        AnyValue { value }
    }
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConfigValueVisitor)
    }
}

struct ConfigValueVisitor;

impl<'de> Visitor<'de> for ConfigValueVisitor {
    type Value = ConfigValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number, bool, list or map")
    }

    fn visit_unit<E: de::Error>(self) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Int(v))
    }

    /// Above `i64::MAX` yaml.v3 gives Go a uint64, which `FromRaw` wraps into an int64.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Int(v as i64))
    }

    /// Beyond 64 bits yaml.v3 resolves the number as a float.
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Double(v as f64))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Double(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Double(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Str(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConfigValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<ConfigValue>()? {
            items.push(item);
        }
        Ok(ConfigValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConfigValue, A::Error> {
        let mut entries: Vec<(String, ConfigValue)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, ConfigValue>()? {
            // A later duplicate key replaces the earlier one, as in the Go map.
            entries.retain(|(existing, _)| existing != &k);
            entries.push((k, v));
        }
        Ok(ConfigValue::Map(entries))
    }
}

/// Whether two values are the same for pdatautil's value hash: maps compare by their sorted
/// keys (the first entry of a repeated key), doubles by their bits.
pub fn same_structure(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (
            None | Some(Value::StringValueStrindex(_)),
            None | Some(Value::StringValueStrindex(_)),
        ) => true,
        (Some(Value::StringValue(x)), Some(Value::StringValue(y))) => x == y,
        (Some(Value::BoolValue(x)), Some(Value::BoolValue(y))) => x == y,
        (Some(Value::IntValue(x)), Some(Value::IntValue(y))) => x == y,
        (Some(Value::DoubleValue(x)), Some(Value::DoubleValue(y))) => x.to_bits() == y.to_bits(),
        (Some(Value::BytesValue(x)), Some(Value::BytesValue(y))) => x == y,
        (Some(Value::ArrayValue(x)), Some(Value::ArrayValue(y))) => {
            x.values.len() == y.values.len()
                && x.values
                    .iter()
                    .zip(&y.values)
                    .all(|(p, q)| same_structure(p.value.as_ref(), q.value.as_ref()))
        }
        (Some(Value::KvlistValue(x)), Some(Value::KvlistValue(y))) => {
            fn keys(l: &KeyValueList) -> Vec<&str> {
                let mut k: Vec<&str> = l.values.iter().map(|kv| kv.key.as_str()).collect();
                k.sort_unstable();
                k
            }
            let first = |l: &'_ KeyValueList, key: &str| {
                l.values
                    .iter()
                    .find(|kv| kv.key == key)
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| v.value.clone())
            };
            let (kx, ky) = (keys(x), keys(y));
            kx == ky
                && kx
                    .iter()
                    .all(|k| same_structure(first(x, k).as_ref(), first(y, k).as_ref()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn config_values_become_otlp_values_with_map_keys_sorted() {
        let v = ConfigValue::Map(vec![
            ("b".into(), ConfigValue::Int(2)),
            (
                "a".into(),
                ConfigValue::List(vec![ConfigValue::Bool(true), ConfigValue::Null]),
            ),
        ]);
        let want = AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: vec![
                    kv(
                        "a",
                        Value::ArrayValue(ArrayValue {
                            values: vec![
                                AnyValue {
                                    value: Some(Value::BoolValue(true)),
                                },
                                AnyValue { value: None },
                            ],
                        }),
                    ),
                    kv("b", Value::IntValue(2)),
                ],
            })),
        };
        assert_eq!(v.to_any_value(), want);
    }

    #[test]
    fn structured_equality_ignores_map_order() {
        let m = |entries: Vec<KeyValue>| Value::KvlistValue(KeyValueList { values: entries });
        let ab = m(vec![
            kv("a", Value::IntValue(1)),
            kv("b", Value::StringValue("x".into())),
        ]);
        let ba = m(vec![
            kv("b", Value::StringValue("x".into())),
            kv("a", Value::IntValue(1)),
        ]);
        assert!(same_structure(Some(&ab), Some(&ba)));
        let other = m(vec![kv("a", Value::IntValue(2))]);
        assert!(!same_structure(Some(&ab), Some(&other)));
        assert!(!same_structure(
            Some(&Value::IntValue(1)),
            Some(&Value::DoubleValue(1.0))
        ));
    }
}

//! Attribute lists as pdata's map treats them: a key names its first occurrence; an update
//! rewrites that occurrence in place or appends; a removal moves the last entry into the
//! removed one's place.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// The value of the first attribute named `key`: `Some(None)` when it is present but empty.
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<Option<&'a Value>> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_ref().and_then(|v| v.value.as_ref()))
}

/// The string value of `key`; `None` when absent or not a string.
pub fn get_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key) {
        Some(Some(Value::StringValue(s))) => Some(s),
        _ => None,
    }
}

/// Sets `key` to a string value; answers whether anything changed.
pub fn put_str(attrs: &mut Vec<KeyValue>, key: &str, value: &str) -> bool {
    let new_value = || {
        Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        })
    };
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => {
            if matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                        Some(Value::StringValue(s)) if s == value)
            {
                return false;
            }
            kv.value = new_value();
            true
        }
        None => {
            attrs.push(KeyValue {
                key: key.to_owned(),
                value: new_value(),
                ..Default::default()
            });
            true
        }
    }
}

/// Removes the first attribute named `key`; answers whether there was one.
pub fn remove(attrs: &mut Vec<KeyValue>, key: &str) -> bool {
    match attrs.iter().position(|kv| kv.key == key) {
        Some(at) => {
            attrs.swap_remove(at);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::kv;

    fn keys(attrs: &[KeyValue]) -> Vec<&str> {
        attrs.iter().map(|kv| kv.key.as_str()).collect()
    }

    #[test]
    fn first_occurrence_wins_and_removal_moves_the_last_entry() {
        let mut attrs = vec![
            kv("a", Value::IntValue(1)),
            kv("b", Value::StringValue("x".into())),
            kv("b", Value::StringValue("y".into())),
            kv("c", Value::BoolValue(true)),
        ];
        assert_eq!(get_str(&attrs, "b"), Some("x"));
        assert_eq!(get_str(&attrs, "a"), None);
        assert_eq!(get(&attrs, "a"), Some(Some(&Value::IntValue(1))));
        assert_eq!(get(&attrs, "z"), None);

        assert!(!put_str(&mut attrs, "b", "x"));
        assert!(put_str(&mut attrs, "a", "now a string"));
        assert_eq!(get_str(&attrs, "a"), Some("now a string"));
        assert!(put_str(&mut attrs, "d", "new"));
        assert_eq!(keys(&attrs), ["a", "b", "b", "c", "d"]);

        assert!(remove(&mut attrs, "a"));
        assert_eq!(keys(&attrs), ["d", "b", "b", "c"]);
        assert!(!remove(&mut attrs, "a"));
    }
}

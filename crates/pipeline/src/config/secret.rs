//! A config value that must never be shown: tokens, passwords, private keys (otelcol's
//! `configopaque.String`).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A secret string from the config. `Debug` and `Display` print `[REDACTED]`, and a value of
/// the wrong shape is refused with an error that does not repeat it, so neither logs nor
/// `redline validate` can show the secret. Read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

const REDACTED: &str = "[REDACTED]";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: only for the code that uses it, never for messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For a list of secrets (`#[serde(deserialize_with = "Secret::deserialize_list")]`): a
    /// plain `Vec<Secret>` would quote a scalar given in place of the list in its "invalid
    /// type" error. `null` is an empty list.
    pub fn deserialize_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
        d.deserialize_any(SecretListVisitor)
    }
}

struct SecretListVisitor;

impl<'de> Visitor<'de> for SecretListVisitor {
    type Value = Vec<Secret>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings (secrets: their values are not shown)")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Secret>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(s) = seq.next_element::<Secret>()? {
            out.push(s);
        }
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<Secret>, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Vec<Secret>, E> {
        Ok(Vec::new())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<Secret>, E> {
        Err(not_a_list())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<Secret>, E> {
        Err(not_a_list())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<Secret>, E> {
        Err(not_a_list())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<Secret>, E> {
        Err(not_a_list())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<Secret>, E> {
        Err(not_a_list())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Vec<Secret>, A::Error> {
        Err(not_a_list())
    }
}

fn not_a_list<E: de::Error>() -> E {
    E::custom("expected a list of strings (the value is a secret and is not shown)")
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (a secret: its value is not shown)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    // A token made only of digits reaches here from decoders that type scalars (JSON); the
    // default implementations would quote the value in their "invalid type" error.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(E::custom("expected a string; quote the secret"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(E::custom("expected a string; quote the secret"))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Secret, E> {
        String::from_utf8(v.to_vec())
            .map(Secret)
            .map_err(|_| E::custom("expected a UTF-8 string"))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let s = Secret::from("s3cr3t-token");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        assert_eq!(s.expose(), "s3cr3t-token");
    }

    fn parse(value: &str) -> Result<Secret, String> {
        #[derive(serde::Deserialize)]
        struct C {
            token: Secret,
        }
        let yaml = format!(
            "extensions:\n  bearertokenauth:\n    token: {value}\nservice:\n  pipelines:\n    \
             traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
        );
        let config = super::super::load_str_with_env("t.yaml", &yaml, &|_| None)
            .map_err(|e| e.to_string())?;
        let c: C = config.extensions[0].parse().map_err(|e| e.to_string())?;
        Ok(c.token)
    }

    #[test]
    fn lists_of_secrets_do_not_echo_a_scalar() {
        #[derive(serde::Deserialize)]
        struct C {
            #[serde(default, deserialize_with = "Secret::deserialize_list")]
            tokens: Vec<Secret>,
        }
        let load = |value: &str| -> Result<Vec<Secret>, String> {
            let yaml = format!(
                "extensions:\n  bearertokenauth:\n    tokens: {value}\nservice:\n  pipelines:\n    \
                 traces:\n      receivers: [otlp]\n      exporters: [otlp]\n"
            );
            let config = super::super::load_str_with_env("t.yaml", &yaml, &|_| None)
                .map_err(|e| e.to_string())?;
            let c: C = config.extensions[0].parse().map_err(|e| e.to_string())?;
            Ok(c.tokens)
        };
        let got = load("[a, \"b c\", 123]").expect("a list");
        let got: Vec<&str> = got.iter().map(Secret::expose).collect();
        assert_eq!(got, ["a", "b c", "123"]);
        assert!(load("").expect("null").is_empty());
        for value in ["hidden-1234", "{a: hidden-1234}", "[{a: hidden-1234}]"] {
            let e = load(value).expect_err("refused");
            assert!(!e.contains("1234"), "{e}");
            assert!(e.contains("extensions.bearertokenauth.tokens"), "{e}");
        }
    }

    #[test]
    fn any_scalar_is_a_secret_and_other_shapes_are_not_echoed() {
        assert_eq!(parse("123456789").expect("digits").expose(), "123456789");
        assert_eq!(
            parse("\"quoted 1234\"").expect("quoted").expose(),
            "quoted 1234"
        );
        for value in ["{a: hidden-1234}", "[hidden-1234]"] {
            let e = parse(value).expect_err("refused");
            assert!(!e.contains("1234"), "{e}");
            assert!(e.contains("extensions.bearertokenauth.token"), "{e}");
        }
    }
}

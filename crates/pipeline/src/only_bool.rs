//! A field type for otelcol booleans of which Redline implements only one value.

use serde::de::{self, Deserialize, Deserializer};

/// A boolean otelcol accepts both ways of which Redline implements only `ALLOWED`: a file that
/// spells out the supported value parses, the other value is refused by name (like
/// [`crate::config::Unsupported`] does for whole keys) instead of being silently ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnlyBool<const ALLOWED: bool>;

impl<'de, const ALLOWED: bool> Deserialize<'de> for OnlyBool<ALLOWED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = bool::deserialize(d)?;
        if v == ALLOWED {
            Ok(OnlyBool)
        } else {
            Err(de::Error::custom(format!(
                "`{v}` is an otelcol setting Redline does not support yet (only `{ALLOWED}` is)"
            )))
        }
    }
}

//! A field type for otelcol settings Redline knows but does not implement yet.

use serde::de::{Deserialize, Deserializer, Error};

/// Put `Option<Unsupported>` in a component config for each otelcol key it does not implement:
/// a user then reads "is an otelcol setting Redline does not support yet" instead of
/// "unknown field", and the setting is never silently ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsupported;

pub(crate) const UNSUPPORTED_REASON: &str = "is an otelcol setting Redline does not support yet";

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(UNSUPPORTED_REASON))
    }
}

/// For `#[serde(deserialize_with = ...)]`: a section that turns a feature on when its key is
/// present, even with no value (`tls:`, `exponential:`), as otelcol's optional sections do.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}

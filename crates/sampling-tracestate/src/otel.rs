//! The OpenTelemetry section of a tracestate (the value of `ot=`): `;`-separated `key:value`
//! pairs, of which `th` (threshold) and `rv` (randomness) carry sampling; every other pair
//! is kept, in order, and written back after them.

use crate::{Randomness, SamplingError, Threshold};

/// Longest `ot` value accepted.
const MAX_OTEL_LENGTH: usize = 256;

/// A parsed `ot` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelTraceState {
    /// The R-value as received (either case) and its value.
    randomness: Option<(String, Randomness)>,
    /// The T-value as received or last written, and its value.
    threshold: Option<(String, Threshold)>,
    extra: Vec<(String, String)>,
}

impl OtelTraceState {
    /// Parses an `ot` value. Like otelcol, a bad `th` or `rv` is an error but the rest of the
    /// section is still read (the bad field left out), so the returned state is what otelcol
    /// would write back; an oversized or malformed section yields an empty state.
    pub fn parse(input: &str) -> (OtelTraceState, Option<SamplingError>) {
        let mut state = OtelTraceState::default();
        if input.len() > MAX_OTEL_LENGTH {
            return (state, Some(SamplingError::TraceStateSize));
        }
        if !is_valid_otel_section(input) {
            return (state, Some(SamplingError::Syntax));
        }
        let mut first_error = None;
        for member in input.split(';') {
            let Some((key, value)) = member.split_once(':') else {
                continue;
            };
            let outcome = match key {
                "rv" => Randomness::from_rvalue(value).map(|r| {
                    state.randomness = Some((value.to_owned(), r));
                }),
                "th" => Threshold::from_tvalue(value).map(|t| {
                    state.threshold = Some((value.to_owned(), t));
                }),
                _ => {
                    state.extra.push((key.to_owned(), value.to_owned()));
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                // A later bad value of a field undoes an earlier good one.
                match key {
                    "rv" => state.randomness = None,
                    _ => state.threshold = None,
                }
                first_error.get_or_insert(e);
            }
        }
        (state, first_error)
    }

    /// The R-value text, if any.
    pub fn rvalue(&self) -> Option<&str> {
        self.randomness.as_ref().map(|(text, _)| text.as_str())
    }

    pub fn randomness(&self) -> Option<Randomness> {
        self.randomness.as_ref().map(|(_, r)| *r)
    }

    /// The T-value text, if any.
    pub fn tvalue(&self) -> Option<&str> {
        self.threshold.as_ref().map(|(text, _)| text.as_str())
    }

    pub fn threshold(&self) -> Option<Threshold> {
        self.threshold.as_ref().map(|(_, t)| *t)
    }

    /// Pairs other than `th` and `rv`, in the order received.
    pub fn extra(&self) -> &[(String, String)] {
        &self.extra
    }

    /// 1 / probability of the T-value; 0 without one (no information).
    pub fn adjusted_count(&self) -> f64 {
        self.threshold().map_or(0.0, |t| t.adjusted_count())
    }

    /// Records that the item was sampled again at `sampled`. A threshold can only rise (the
    /// probability only fall): lowering an existing one is [`SamplingError::InconsistentSampling`]
    /// and changes nothing.
    pub fn update_threshold(&mut self, sampled: Threshold) -> Result<(), SamplingError> {
        if self.threshold().is_some_and(|existing| existing > sampled) {
            return Err(SamplingError::InconsistentSampling);
        }
        let text = sampled.tvalue();
        self.threshold = (!text.is_empty()).then_some((text, sampled));
        Ok(())
    }

    pub fn clear_threshold(&mut self) {
        self.threshold = None;
    }

    pub fn set_randomness(&mut self, randomness: Randomness) {
        self.randomness = Some((randomness.rvalue(), randomness));
    }

    pub fn clear_randomness(&mut self) {
        self.randomness = None;
    }

    /// Whether anything would be written.
    pub fn has_any_value(&self) -> bool {
        self.randomness.is_some() || self.threshold.is_some() || !self.extra.is_empty()
    }

    /// Writes the section: `rv` first, then `th`, then the other pairs.
    pub fn write_to(&self, out: &mut String) {
        let mut first = true;
        let mut pair = |out: &mut String, key: &str, value: &str| {
            if !first {
                out.push(';');
            }
            first = false;
            out.push_str(key);
            out.push(':');
            out.push_str(value);
        };
        if let Some(rv) = self.rvalue() {
            pair(out, "rv", rv);
        }
        if let Some(th) = self.tvalue() {
            pair(out, "th", th);
        }
        for (key, value) in &self.extra {
            pair(out, key, value);
        }
    }

    pub fn serialize(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

/// `key:value` pairs joined by `;` (no empty member, no trailing `;`); a key is a lowercase
/// letter then lowercase letters or digits; a value is letters, digits, `.`, `_`, `-`.
fn is_valid_otel_section(input: &str) -> bool {
    if input.is_empty() || input.ends_with(';') {
        return false;
    }
    input.split(';').all(|member| {
        let Some((key, value)) = member.split_once(':') else {
            return false;
        };
        let mut key_bytes = key.bytes();
        key_bytes.next().is_some_and(|b| b.is_ascii_lowercase())
            && key_bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

#[cfg(test)]
#[path = "otel_tests.rs"]
mod tests;

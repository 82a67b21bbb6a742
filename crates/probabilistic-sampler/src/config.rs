//! otelcol's `probabilistic_sampler` keys, their defaults and validation, and the sampler
//! they configure.

use redline_pipeline::{ComponentConfig, ConfigError};
use redline_sampling_tracestate::{Threshold, MIN_SAMPLING_PROBABILITY, NUM_HEX_DIGITS};
use serde::Deserialize;

use crate::sampler::{Sampler, HASH_BUCKETS};

/// otelcol's default `sampling_precision`: 4 hex digits, a little more than the 14 bits
/// the hash_seed mode has.
pub const DEFAULT_PRECISION: i64 = 4;

const TRACE_ID_SOURCE: &str = "traceID";
const RECORD_SOURCE: &str = "record";

/// The processor's settings as written; unset keys take otelcol's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticSamplerConfig {
    /// Percent of items kept; 0 keeps none, 100 or more keeps all. otelcol reads it as a
    /// 32-bit float, and so does every computation here.
    pub sampling_percentage: Option<f32>,
    pub hash_seed: Option<u32>,
    /// `hash_seed` (the default), `proportional` or `equalizing`.
    pub mode: Option<String>,
    /// Drop items whose sampling information is missing or broken (default true).
    pub fail_closed: Option<bool>,
    /// Hex digits of the thresholds written, 1 to 14 (default 4).
    pub sampling_precision: Option<i64>,
    /// Logs: where hash_seed mode takes randomness from: `traceID` (default) or `record`.
    pub attribute_source: Option<String>,
    /// Logs: the record attribute hashed when there is no trace id to use.
    pub from_attribute: Option<String>,
    /// Logs: a record attribute holding a percentage that replaces `sampling_percentage`.
    pub sampling_priority: Option<String>,
}

/// The resolved configuration of one processor.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub sampler: Sampler,
    pub fail_closed: bool,
    /// Hex digits of thresholds computed per item (proportional mode, logs priority).
    pub precision: u32,
    /// Logs: the priority attribute; empty when not configured.
    pub sampling_priority: String,
    /// Logs: the hashed attribute; empty when not configured.
    pub from_attribute: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    HashSeed,
    Equalizing,
    Proportional,
}

impl ProbabilisticSamplerConfig {
    pub fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        self.settings(config).map(|_| ())
    }

    /// Checks every key as otelcol does and resolves the sampler they describe.
    pub fn settings(&self, config: &ComponentConfig) -> Result<Settings, ConfigError> {
        self.resolve()
            .map_err(|(key, reason)| config.invalid(key, reason))
    }

    /// [`settings`](Self::settings) without the config file: errors as (key, reason).
    pub fn resolve(&self) -> Result<Settings, (&'static str, String)> {
        let percentage = self.sampling_percentage.unwrap_or(0.0);
        check_percentage(percentage).map_err(|reason| ("sampling_percentage", reason))?;
        let mode = match self.mode.as_deref().unwrap_or("") {
            // Unset picks the legacy behaviour: otelcol's default mode is hash_seed.
            "" | "hash_seed" => Mode::HashSeed,
            "equalizing" => Mode::Equalizing,
            "proportional" => Mode::Proportional,
            other => return Err(("mode", format!("unsupported sampler mode {other:?}"))),
        };
        // An explicitly empty source is accepted, as otelcol does; it then hashes the record
        // attribute only.
        let source = self.attribute_source.as_deref().unwrap_or(TRACE_ID_SOURCE);
        if !matches!(source, "" | TRACE_ID_SOURCE | RECORD_SOURCE) {
            return Err((
                "attribute_source",
                format!(
                    "invalid attribute source: {source}. Expected: {TRACE_ID_SOURCE} or {RECORD_SOURCE}"
                ),
            ));
        }
        let precision = self.sampling_precision.unwrap_or(DEFAULT_PRECISION);
        let precision = match u32::try_from(precision) {
            Ok(0) => return Err(("sampling_precision", "invalid sampling precision: 0".into())),
            Ok(p) if p as usize <= NUM_HEX_DIGITS => p,
            // otelcol lets a negative precision through to nonsense thresholds (or a
            // panic); Redline refuses it (docs/compatibility.md).
            Err(_) => {
                return Err((
                    "sampling_precision",
                    format!("must be between 1 and {NUM_HEX_DIGITS}, got {precision}"),
                ))
            }
            Ok(_) => {
                return Err((
                    "sampling_precision",
                    format!(
                    "sampling precision is too great, should be <= {NUM_HEX_DIGITS}: {precision}"
                ),
                ))
            }
        };
        let from_attribute = self.from_attribute.clone().unwrap_or_default();
        Ok(Settings {
            sampler: make_sampler(
                percentage,
                mode,
                precision,
                self.hash_seed.unwrap_or(0),
                source == TRACE_ID_SOURCE,
                &from_attribute,
            ),
            fail_closed: self.fail_closed.unwrap_or(true),
            precision,
            sampling_priority: self.sampling_priority.clone().unwrap_or_default(),
            from_attribute,
        })
    }
}

fn check_percentage(percentage: f32) -> Result<(), String> {
    if !percentage.is_finite() {
        let shown = match percentage {
            p if p.is_nan() => "NaN",
            p if p > 0.0 => "+Inf",
            _ => "-Inf",
        };
        return Err(format!("sampling rate is invalid: {shown}%"));
    }
    let ratio = f64::from(percentage) / 100.0;
    if ratio < 0.0 {
        return Err(format!("sampling rate is negative: {percentage:.6}%"));
    }
    if ratio != 0.0 && ratio < MIN_SAMPLING_PROBABILITY {
        return Err(format!("sampling rate is too small: {percentage:e}%"));
    }
    Ok(())
}

/// The sampler of a valid configuration; out-of-range percentages are clamped. A precision
/// of 0 means all 14 digits (otelcol's internal convention; the key refuses it).
pub(crate) fn make_sampler(
    percentage: f32,
    mode: Mode,
    precision: u32,
    seed: u32,
    logs_use_trace_id: bool,
    from_attribute: &str,
) -> Sampler {
    let percentage = percentage.min(100.0);
    if percentage == 0.0 {
        return Sampler::Never;
    }
    // The ratio is computed in 64 bits from the 32-bit percentage, as otelcol does.
    let ratio = (f64::from(percentage) / 100.0).max(MIN_SAMPLING_PROBABILITY);
    match mode {
        Mode::Equalizing => Sampler::Equalizing {
            threshold: Threshold::from_probability_with_precision(ratio, precision)
                .unwrap_or(Threshold::ALWAYS_SAMPLE),
        },
        Mode::Proportional => Sampler::Proportional { ratio, precision },
        Mode::HashSeed => {
            // The legacy scale: 32-bit float arithmetic, truncated, out of 2^14 buckets.
            let scale = HASH_BUCKETS as f32 / 100.0;
            let accepted = (percentage * scale) as u64;
            if accepted == 0 {
                return Sampler::Never;
            }
            let rejected = (HASH_BUCKETS - accepted) << 42;
            Sampler::HashSeed {
                threshold: Threshold::from_unsigned(rejected).unwrap_or(Threshold::ALWAYS_SAMPLE),
                seed,
                logs_use_trace_id,
                logs_attribute: from_attribute.to_owned(),
            }
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

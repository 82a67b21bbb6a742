//! Sampling thresholds and randomness: 56-bit unsigned numbers compared as `T <= R`.
//!
//! A threshold counts how many of the 2^56 randomness values are rejected: 0 keeps
//! everything, 2^56 keeps nothing. Its text form (the T-value, `th:`) is the 14-digit hex
//! number with trailing zeros removed; randomness (the R-value, `rv:`) is always 14 digits.

use crate::SamplingError;

/// 2^56: the number of randomness values, and the largest adjusted count.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;
/// Hex digits of a full-precision threshold or randomness value.
pub const NUM_HEX_DIGITS: usize = 14;
/// The smallest probability a threshold can express: 2^-56.
pub const MIN_SAMPLING_PROBABILITY: f64 = 1.0 / MAX_ADJUSTED_COUNT as f64;

const HEX_BITS: u32 = 4;

/// A rejection threshold in `[0, 2^56]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

/// 56 bits of randomness, in `[0, 2^56)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Randomness(u64);

impl Threshold {
    /// Keeps every item (T-value `0`).
    pub const ALWAYS_SAMPLE: Threshold = Threshold(0);
    /// Keeps nothing; has no T-value.
    pub const NEVER_SAMPLE: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// A threshold from its count of rejected values; 2^56 or more is out of range.
    pub fn from_unsigned(rejected: u64) -> Result<Threshold, SamplingError> {
        if rejected >= MAX_ADJUSTED_COUNT {
            return Err(SamplingError::TValueSize);
        }
        Ok(Threshold(rejected))
    }

    /// Parses a T-value: 1 to 14 hex digits, trailing zeros implied.
    pub fn from_tvalue(tvalue: &str) -> Result<Threshold, SamplingError> {
        if tvalue.len() > NUM_HEX_DIGITS {
            return Err(SamplingError::TValueSize);
        }
        if tvalue.is_empty() {
            return Err(SamplingError::TValueEmpty);
        }
        let digits = parse_hex(tvalue).ok_or(SamplingError::Syntax)?;
        let implied_zeros = (NUM_HEX_DIGITS - tvalue.len()) as u32;
        Ok(Threshold(digits << (HEX_BITS * implied_zeros)))
    }

    /// The threshold of a probability at full precision.
    pub fn from_probability(probability: f64) -> Result<Threshold, SamplingError> {
        Self::from_probability_with_precision(probability, 0)
    }

    /// The threshold of a probability rounded to `precision` significant hex digits (0 means
    /// all 14). Near 0 and 1, where a T-value starts with `0`s or `f`s, one more digit is kept
    /// per such leading digit so the relative error stays small.
    pub fn from_probability_with_precision(
        probability: f64,
        precision: u32,
    ) -> Result<Threshold, SamplingError> {
        let precision = if precision == 0 {
            NUM_HEX_DIGITS as i64
        } else {
            i64::from(precision)
        };
        if !(MIN_SAMPLING_PROBABILITY..=1.0).contains(&probability) {
            return Err(SamplingError::ProbabilityRange);
        }
        if probability == 1.0 {
            return Ok(Self::ALWAYS_SAMPLE);
        }
        // Each power of 16 below 1 of the probability (or of its complement) is one
        // leading `f` (or `0`) digit that carries no information.
        let leading = |x: f64| i64::from(frexp_exponent(x)) / -i64::from(HEX_BITS);
        let precision = (precision + leading(probability).max(leading(1.0 - probability)))
            .min(NUM_HEX_DIGITS as i64);
        let kept = (probability * MAX_ADJUSTED_COUNT as f64).round() as u64;
        let mut rejected = MAX_ADJUSTED_COUNT - kept;
        // `precision` is at least 1 here, so the shift is at most 52.
        let shift = HEX_BITS as i64 * (NUM_HEX_DIGITS as i64 - precision.max(1));
        if shift != 0 {
            let half = 1u64 << (shift - 1);
            rejected = ((rejected + half) >> shift) << shift;
        }
        Ok(Threshold(rejected))
    }

    /// The T-value: `0` for always, empty for never, else up to 14 hex digits without
    /// trailing zeros.
    pub fn tvalue(&self) -> String {
        match *self {
            Self::ALWAYS_SAMPLE => "0".to_owned(),
            Self::NEVER_SAMPLE => String::new(),
            Threshold(rejected) => {
                let mut digits = format!("{rejected:014x}");
                let kept = digits.trim_end_matches('0').len();
                digits.truncate(kept);
                digits
            }
        }
    }

    /// Whether an item with this randomness passes the threshold.
    pub fn should_sample(&self, randomness: Randomness) -> bool {
        self.0 <= randomness.0
    }

    /// How many of the 2^56 randomness values are rejected.
    pub fn unsigned(&self) -> u64 {
        self.0
    }

    /// The sampling probability, in `[0, 1]`.
    pub fn probability(&self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0.min(MAX_ADJUSTED_COUNT)) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// How many items a kept item stands for (1 / probability); 0 for [`Self::NEVER_SAMPLE`].
    pub fn adjusted_count(&self) -> f64 {
        if *self == Self::NEVER_SAMPLE {
            return 0.0;
        }
        1.0 / self.probability()
    }
}

impl Randomness {
    /// Passes every threshold but never: what an item without randomness is given.
    pub const ALL_PROBABILITIES: Randomness = Randomness(MAX_ADJUSTED_COUNT - 1);

    /// The W3C Trace Context level 2 randomness of a trace id: its last 7 bytes.
    pub fn from_trace_id(trace_id: &[u8; 16]) -> Randomness {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        Randomness(u64::from_be_bytes(low) & (MAX_ADJUSTED_COUNT - 1))
    }

    /// Parses an R-value: exactly 14 hex digits.
    pub fn from_rvalue(rvalue: &str) -> Result<Randomness, SamplingError> {
        if rvalue.len() != NUM_HEX_DIGITS {
            return Err(SamplingError::RValueSize);
        }
        parse_hex(rvalue)
            .map(Randomness)
            .ok_or(SamplingError::Syntax)
    }

    /// Randomness from 56 bits; 2^56 or more is out of range.
    pub fn from_unsigned(bits: u64) -> Result<Randomness, SamplingError> {
        if bits >= MAX_ADJUSTED_COUNT {
            return Err(SamplingError::RValueSize);
        }
        Ok(Randomness(bits))
    }

    /// The R-value: 14 lowercase hex digits.
    pub fn rvalue(&self) -> String {
        format!("{:014x}", self.0)
    }

    pub fn unsigned(&self) -> u64 {
        self.0
    }
}

/// Hex digits only (either case): no sign, prefix or separator, at most 16 digits.
fn parse_hex(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The binary exponent `e` of `x = f * 2^e` with `f` in `[0.5, 1)`; 0 for 0, infinities
/// and NaN.
fn frexp_exponent(x: f64) -> i32 {
    if x == 0.0 || !x.is_finite() {
        return 0;
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: the leading zeros of the 52-bit fraction lower the exponent further.
        return -1022 - (bits << 12).leading_zeros() as i32;
    }
    biased - 1022
}

#[cfg(test)]
#[path = "threshold_tests.rs"]
mod tests;

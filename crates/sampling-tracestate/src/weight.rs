//! Whole-number span weights for counters and histogram buckets.
//!
//! Metrics count in integers (Prometheus buckets, OTLP histogram counts), but adjusted counts
//! are fractions for most thresholds (`th:555` keeps 2/3 of the items: 1.5 each). Like
//! otelcol-contrib's spanmetrics connector, a fractional count is rounded up with probability
//! equal to its fraction, so sums stay unbiased. The coin is the caller's `random` word (the
//! span id): unlike otelcol's per-process generator, the same span always weighs the same, so a
//! replayed request or a restarted test counts identically.

use crate::{Threshold, W3cTraceState, MAX_ADJUSTED_COUNT};

/// Largest old-style `p` value (OTEP 168: adjusted count `2^p`; 63 means "zero").
const P_VALUE_ZERO: u32 = 63;

/// The whole-number adjusted count of a span with this tracestate; `None` when it carries no
/// valid sampling information (it counts as 1).
///
/// Reads the threshold `ot=th:` and, without one, the older power-of-two probability
/// `ot=p:` (adjusted count `2^p`, and 0 for `p:63`, which the older specification defines
/// as "not counted"). A threshold that rejects everything gives `None`, as in otelcol.
pub fn integer_adjusted_count(tracestate: &str, random: u64) -> Option<u64> {
    SamplingWeight::parse(tracestate).map(|w| w.draw(random))
}

/// Rounds a multiplier read from a span (Tempo's `span_multiplier_key`) to a whole count the
/// same unbiased way; negative and non-finite values count as 1.
pub fn round_weight(weight: f64, random: u64) -> u64 {
    if !weight.is_finite() || weight < 0.0 {
        return 1;
    }
    if weight >= u64::MAX as f64 {
        return u64::MAX;
    }
    let whole = weight.trunc();
    let fraction = weight - whole;
    let up = fraction > 0.0 && (random >> 11) as f64 * (1.0 / (1u64 << 53) as f64) < fraction;
    whole as u64 + u64::from(up)
}

/// An adjusted count as an exact fraction `MAX_ADJUSTED_COUNT / denominator`, or a power of
/// two from an old `p` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SamplingWeight {
    Fraction {
        quotient: u64,
        remainder: u64,
        denominator: u64,
    },
    Whole(u64),
}

impl SamplingWeight {
    fn parse(tracestate: &str) -> Option<SamplingWeight> {
        if !tracestate.contains("ot=") {
            return None;
        }
        let parsed = W3cTraceState::parse(tracestate).ok()?;
        let otel = parsed.otel();
        if let Some(threshold) = otel.threshold() {
            return Self::from_threshold(threshold);
        }
        let (_, p) = otel.extra().iter().find(|(k, _)| k == "p")?;
        match p.parse::<u32>().ok()? {
            P_VALUE_ZERO => Some(SamplingWeight::Whole(0)),
            p if p < P_VALUE_ZERO => Some(SamplingWeight::Whole(1u64 << p)),
            _ => None,
        }
    }

    fn from_threshold(threshold: Threshold) -> Option<SamplingWeight> {
        let denominator = MAX_ADJUSTED_COUNT.checked_sub(threshold.unsigned())?;
        if denominator == 0 {
            return None;
        }
        Some(SamplingWeight::Fraction {
            quotient: MAX_ADJUSTED_COUNT / denominator,
            remainder: MAX_ADJUSTED_COUNT % denominator,
            denominator,
        })
    }

    fn draw(self, random: u64) -> u64 {
        match self {
            SamplingWeight::Whole(n) => n,
            SamplingWeight::Fraction {
                quotient,
                remainder,
                denominator,
            } => quotient + u64::from(remainder != 0 && random % denominator < remainder),
        }
    }
}

/// Remembers the last tracestate read: the spans of one request mostly share one, so the
/// W3C parse runs once per request rather than once per span.
#[derive(Debug, Default)]
pub struct AdjustedCounts<'a> {
    last: Option<(&'a str, Option<SamplingWeight>)>,
}

impl<'a> AdjustedCounts<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`integer_adjusted_count`], reusing the previous parse when the text is the same.
    pub fn get(&mut self, tracestate: &'a str, random: u64) -> Option<u64> {
        if tracestate.is_empty() {
            return None;
        }
        let weight = match self.last {
            Some((text, weight)) if text == tracestate => weight,
            _ => {
                let weight = SamplingWeight::parse(tracestate);
                self.last = Some((tracestate, weight));
                weight
            }
        };
        weight.map(|w| w.draw(random))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_of_two_thresholds_are_exact() {
        for random in [0, 1, u64::MAX] {
            assert_eq!(integer_adjusted_count("ot=th:e", random), Some(8));
            assert_eq!(integer_adjusted_count("ot=th:8", random), Some(2));
            assert_eq!(integer_adjusted_count("ot=th:c", random), Some(4));
            assert_eq!(integer_adjusted_count("ot=th:0", random), Some(1));
            assert_eq!(
                integer_adjusted_count("x=1,ot=rv:ffffffffffffff;th:f", random),
                Some(16)
            );
        }
    }

    #[test]
    fn no_or_broken_sampling_information_counts_once() {
        for ts in [
            "",
            "vendor=th:8",
            "ot=rv:c0000000000000",
            "ot=th:8,BAD=1",
            "ot=th:g",
        ] {
            assert_eq!(integer_adjusted_count(ts, 7), None, "{ts}");
        }
    }

    #[test]
    fn old_p_values_are_powers_of_two_and_63_is_zero() {
        assert_eq!(integer_adjusted_count("ot=p:3", 0), Some(8));
        assert_eq!(integer_adjusted_count("ot=p:0;r:10", 0), Some(1));
        assert_eq!(integer_adjusted_count("ot=p:63", 0), Some(0));
        assert_eq!(integer_adjusted_count("ot=p:64", 0), None);
        // A threshold wins over an old p value.
        assert_eq!(integer_adjusted_count("ot=p:1;th:c", 0), Some(4));
    }

    #[test]
    fn fractional_counts_round_without_bias() {
        // th:555… keeps 2/3: each span stands for 1.5 items.
        let denominator = MAX_ADJUSTED_COUNT - 0x55_5555_5555_5555;
        let mut total = 0u64;
        let n = 60_000u64;
        for i in 0..n {
            // Evenly spread coins: every residue class is visited in proportion.
            let random = i * (denominator / n);
            let w = integer_adjusted_count("ot=th:55555555555555", random).unwrap_or(0);
            assert!(w == 1 || w == 2, "{w}");
            total += w;
        }
        let mean = total as f64 / n as f64;
        let exact = MAX_ADJUSTED_COUNT as f64 / denominator as f64;
        assert!((mean - exact).abs() < 1e-3, "{mean} vs {exact}");
    }

    #[test]
    fn multipliers_round_the_same_way() {
        assert_eq!(round_weight(4.0, 0), 4);
        assert_eq!(round_weight(2.5, 0), 3);
        assert_eq!(round_weight(2.5, u64::MAX), 2);
        assert_eq!(round_weight(f64::NAN, 0), 1);
        assert_eq!(round_weight(-3.0, 0), 1);
        assert_eq!(round_weight(0.0, 0), 0);
    }

    #[test]
    fn the_cache_answers_as_the_function() {
        let states = ["ot=th:e", "ot=th:e", "", "ot=th:c", "vendor=x", "ot=th:c"];
        let mut cache = AdjustedCounts::new();
        for (i, ts) in states.iter().enumerate() {
            let random = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert_eq!(
                cache.get(ts, random),
                integer_adjusted_count(ts, random),
                "{ts}"
            );
        }
    }
}

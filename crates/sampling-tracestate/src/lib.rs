//! OpenTelemetry consistent-probability sampling information, read and written exactly as
//! otelcol-contrib's `pkg/sampling` does (OTEP 235, W3C Trace Context level 2).
//!
//! A sampler that kept an item with probability `p` records it as a rejection threshold
//! ([`Threshold`], the `th:` T-value) in the span's W3C `tracestate` under the `ot` vendor
//! key, e.g. `ot=th:c` for 25%. The randomness it compared against ([`Randomness`]) is the
//! last 7 bytes of the trace id, or an explicit `rv:` R-value. Consumers weight what they
//! count by the adjusted count, `1 / p` ([`adjusted_count`]).
//!
//! Shared by the `probabilistic_sampler` processor (which writes thresholds) and the
//! components that read them.

mod otel;
mod threshold;
mod w3c;
mod weight;

pub use otel::OtelTraceState;
pub use threshold::{
    Randomness, Threshold, MAX_ADJUSTED_COUNT, MIN_SAMPLING_PROBABILITY, NUM_HEX_DIGITS,
};
pub use w3c::W3cTraceState;
pub use weight::{integer_adjusted_count, round_weight, AdjustedCounts};

/// Why sampling information could not be read or changed; the messages are otelcol's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SamplingError {
    #[error("invalid tracestate size")]
    TraceStateSize,
    #[error("invalid syntax")]
    Syntax,
    #[error("t-value exceeds 14 hex digits")]
    TValueSize,
    #[error("t-value is empty")]
    TValueEmpty,
    #[error("r-value must have 14 hex digits")]
    RValueSize,
    #[error("sampling probability out of the range [1/MaxAdjustedCount, 1]")]
    ProbabilityRange,
    #[error("cannot raise existing sampling probability")]
    InconsistentSampling,
}

/// The sampling threshold recorded in a W3C tracestate (`ot=...th:...`); `None` when there
/// is none, or when the tracestate has any error (otelcol then treats the item as unsampled
/// information, counting it once).
pub fn sampling_threshold(tracestate: &str) -> Option<Threshold> {
    if !tracestate.contains("ot=") {
        return None;
    }
    W3cTraceState::parse(tracestate).ok()?.otel().threshold()
}

/// How many items a span with this tracestate stands for: `1 / p` of its sampling threshold,
/// `None` when it carries no valid one (count it as 1).
pub fn adjusted_count(tracestate: &str) -> Option<f64> {
    sampling_threshold(tracestate).map(|t| t.adjusted_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_counts_from_tracestates() {
        assert_eq!(adjusted_count("ot=th:c"), Some(4.0));
        assert_eq!(
            adjusted_count("vendor=x,ot=rv:c0000000000000;th:8"),
            Some(2.0)
        );
        assert_eq!(adjusted_count("ot=th:0"), Some(1.0));
        assert_eq!(adjusted_count(""), None);
        assert_eq!(adjusted_count("ot=rv:c0000000000000"), None);
        assert_eq!(adjusted_count("vendor=th:8"), None);
        // Any error in the header: no information.
        assert_eq!(adjusted_count("ot=th:8,BAD=1"), None);
        assert_eq!(adjusted_count("ot=th:8;rv:1"), None);
        assert_eq!(
            sampling_threshold("ot=th:fd70a").map(|t| t.unsigned()),
            Some(0xfd70a << 36)
        );
    }
}

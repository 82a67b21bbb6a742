//! The sampling decision for one item, whatever the signal: where its randomness comes
//! from, which threshold applies, what the item records of it.
//!
//! The steps and their order are otelcol's: the signal extracts randomness and the item's
//! sampling state ([`Extracted`]); a problem there, or an arriving threshold the randomness
//! does not pass, makes the item fail open or closed; else the mode's threshold applies; a
//! priority attribute may then override it; a kept item's threshold is raised to the one
//! that kept it.

use std::fmt;

use redline_sampling_tracestate::{Randomness, SamplingError, Threshold};

/// The legacy hash_seed mode hashes into 2^14 buckets.
pub const HASH_BUCKETS: u64 = 1 << 14;

/// A configured sampling mode.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    /// 0%: nothing passes but what a priority forces through.
    Never,
    /// otelcol's original mode: an FNV hash of the trace id (or of a log attribute) with a
    /// seed, compared with a fixed threshold.
    HashSeed {
        threshold: Threshold,
        seed: u32,
        /// Logs: hash the trace id when there is one (`attribute_source: traceID`).
        logs_use_trace_id: bool,
        /// Logs: the attribute hashed otherwise; empty for none.
        logs_attribute: String,
    },
    /// Consistent sampling that raises every item's threshold to at least this one.
    Equalizing { threshold: Threshold },
    /// Consistent sampling that multiplies each item's arriving probability by `ratio`.
    Proportional { ratio: f64, precision: u32 },
}

/// Which rule gave an item its randomness or decision: otelcol's `policy` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    TraceIdHash,
    TraceIdW3c,
    SamplingRandomness,
    SamplingPriority,
    MissingRandomness,
    /// The hashed log attribute; the label is the attribute's name.
    Attribute,
}

impl Policy {
    pub const ALL: [Policy; 6] = [
        Policy::TraceIdHash,
        Policy::TraceIdW3c,
        Policy::SamplingRandomness,
        Policy::SamplingPriority,
        Policy::MissingRandomness,
        Policy::Attribute,
    ];

    /// The label value; `attribute` is the configured `from_attribute`.
    pub fn label<'a>(&self, attribute: &'a str) -> &'a str {
        match self {
            Policy::TraceIdHash => "trace_id_hash",
            Policy::TraceIdW3c => "trace_id_w3c",
            Policy::SamplingRandomness => "sampling_randomness",
            Policy::SamplingPriority => "sampling_priority",
            Policy::MissingRandomness => "missing_randomness",
            Policy::Attribute => attribute,
        }
    }
}

/// An item's randomness and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    pub randomness: Randomness,
    pub policy: Policy,
}

impl Source {
    /// No randomness: passes every threshold but never, and fails the item unless open.
    pub const MISSING: Source = Source {
        randomness: Randomness::ALL_PROBABILITIES,
        policy: Policy::MissingRandomness,
    };

    /// What the 0% sampler gives every item: it is never compared with anything but a
    /// priority's threshold.
    pub const NEVER_MODE: Source = Source {
        randomness: Randomness::ALL_PROBABILITIES,
        policy: Policy::SamplingPriority,
    };
}

/// Why an item fails open or closed; the messages are otelcol's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The item's sampling state does not parse.
    Unreadable(SamplingError),
    MissingRandomness,
    RandomnessInUse,
    ThresholdInUse,
    InconsistentArrivingThreshold,
}

impl Problem {
    /// otelcol logs the ordinary conditions at debug, unreadable state at info.
    fn is_ordinary(&self) -> bool {
        !matches!(self, Problem::Unreadable(_))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(e) => e.fmt(f),
            Problem::MissingRandomness => f.write_str("missing randomness"),
            Problem::RandomnessInUse => f.write_str(
                "item has sampling randomness, equalizing or proportional mode recommended",
            ),
            Problem::ThresholdInUse => f.write_str(
                "item has sampling threshold, equalizing or proportional mode recommended",
            ),
            Problem::InconsistentArrivingThreshold => {
                f.write_str("inconsistent arriving threshold: item should not have been sampled")
            }
        }
    }
}

/// The sampling state an item carries: a span's tracestate, a log record's attributes.
pub trait Carrier {
    fn threshold(&self) -> Option<Threshold>;
    fn clear_threshold(&mut self);
    /// Raises the threshold; lowering it is refused and changes nothing.
    fn update_threshold(&mut self, threshold: Threshold) -> Result<(), SamplingError>;
}

/// What a signal read from one item.
pub struct Extracted<C> {
    pub source: Source,
    /// `None` when the item's state is left alone (unreadable, or in use by another scheme).
    pub carrier: Option<C>,
    pub problem: Option<Problem>,
}

/// An item after the mode's decision, before a priority override.
pub struct Judged<C> {
    pub source: Source,
    pub carrier: Option<C>,
    pub threshold: Threshold,
}

/// The outcome for one item.
pub struct Decision<C> {
    pub sampled: bool,
    pub policy: Policy,
    /// The item's state, updated when it was sampled.
    pub carrier: Option<C>,
}

/// Where log lines about items come from.
#[derive(Clone, Copy, Debug)]
pub struct LogContext<'a> {
    pub processor: &'a str,
    /// otelcol's wording: `traces sampler` or `logs sampler`.
    pub sampler: &'static str,
}

impl Sampler {
    /// Every step up to the priority override.
    pub fn judge<C: Carrier>(
        &self,
        fail_closed: bool,
        item: Extracted<C>,
        log: LogContext<'_>,
    ) -> Judged<C> {
        let Extracted {
            source,
            mut carrier,
            problem,
        } = item;
        let problem = problem.or_else(|| consistency_problem(source, carrier.as_mut()));
        let threshold = match problem {
            Some(problem) => {
                if problem.is_ordinary() {
                    tracing::debug!(processor = log.processor, error = %problem, "{}", log.sampler);
                } else {
                    tracing::info!(processor = log.processor, error = %problem, "{}", log.sampler);
                }
                if fail_closed {
                    Threshold::NEVER_SAMPLE
                } else {
                    Threshold::ALWAYS_SAMPLE
                }
            }
            None => self.threshold_for(carrier.as_ref().and_then(|c| c.threshold())),
        };
        Judged {
            source,
            carrier,
            threshold,
        }
    }

    /// The mode's threshold for an item arriving with `arriving`.
    fn threshold_for(&self, arriving: Option<Threshold>) -> Threshold {
        match self {
            Sampler::Never => Threshold::NEVER_SAMPLE,
            Sampler::HashSeed { threshold, .. } => *threshold,
            Sampler::Equalizing { threshold } => match arriving {
                Some(arriving) if *threshold < arriving => arriving,
                _ => *threshold,
            },
            Sampler::Proportional { ratio, precision } => {
                let incoming = arriving.map_or(1.0, |t| t.probability());
                // Below the smallest expressible probability the item is simply unsampled.
                Threshold::from_probability_with_precision(incoming * ratio, *precision)
                    .unwrap_or(Threshold::NEVER_SAMPLE)
            }
        }
    }
}

impl<C: Carrier> Judged<C> {
    /// Applies a priority's threshold (if any), decides, and records the threshold on a kept
    /// item.
    pub fn finish(self, priority: Option<Threshold>, log: LogContext<'_>) -> Decision<C> {
        let Judged {
            mut source,
            mut carrier,
            mut threshold,
        } = self;
        if let Some(forced) = priority {
            threshold = forced;
            source.policy = Policy::SamplingPriority;
        }
        let sampled = threshold.should_sample(source.randomness);
        if sampled {
            if let Some(Err(e)) = carrier.as_mut().map(|c| c.update_threshold(threshold)) {
                if e == SamplingError::InconsistentSampling {
                    tracing::debug!(processor = log.processor, error = %e, "{}", log.sampler);
                } else {
                    tracing::info!(processor = log.processor, error = %e, "{}", log.sampler);
                }
            }
        }
        Decision {
            sampled,
            policy: source.policy,
            carrier,
        }
    }
}

/// An item without randomness, or whose arriving threshold its randomness does not pass
/// (the threshold is then dropped, as the specification recommends).
fn consistency_problem<C: Carrier>(source: Source, carrier: Option<&mut C>) -> Option<Problem> {
    if source.policy == Policy::MissingRandomness {
        return Some(Problem::MissingRandomness);
    }
    let carrier = carrier?;
    let arriving = carrier.threshold()?;
    if arriving.should_sample(source.randomness) {
        return None;
    }
    carrier.clear_threshold();
    Some(Problem::InconsistentArrivingThreshold)
}

/// The legacy mode's randomness: FNV-1a (32 bit) over the seed (little endian) and `bytes`.
/// The low 14 bits decide; they are laid out so that the specification's `T <= R` test
/// makes the same decision the original `hash < scaled rate` test made.
pub fn hashed_randomness(bytes: &[u8], seed: u32) -> Randomness {
    let hash = fnv1a32(seed.to_le_bytes().iter().chain(bytes));
    let bucket = u64::from(hash) & (HASH_BUCKETS - 1);
    let flipped = HASH_BUCKETS - 1 - bucket;
    let high = u64::from(hash >> 18);
    let mixed = high ^ (high << 10);
    let bits = (flipped << 42) | (mixed << 14) | bucket;
    Randomness::from_unsigned(bits).unwrap_or(Randomness::ALL_PROBABILITIES)
}

fn fnv1a32<'a>(bytes: impl Iterator<Item = &'a u8>) -> u32 {
    bytes.fold(0x811c_9dc5, |hash: u32, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A trace id as its 16 bytes, `None` when absent or all zeros (no randomness).
pub fn trace_id(bytes: &[u8]) -> Option<[u8; 16]> {
    let id: [u8; 16] = bytes.try_into().ok()?;
    (id != [0; 16]).then_some(id)
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;

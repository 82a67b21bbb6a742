//! otelcol's own counters of this processor: items decided, by `policy` (where the
//! randomness or decision came from) and `sampled`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redline_pipeline::telemetry::{CounterDesc, CounterFamily};
use redline_pipeline::Signal;

use crate::sampler::Policy;

// otelcol's descriptions, stability note included, so both serve the same HELP.
pub const TRACES_SAMPLED: CounterDesc = CounterDesc {
    name: "otelcol_processor_probabilistic_sampler_count_traces_sampled",
    description: "Count of traces that were sampled or not [Development]",
    unit: "1",
};

pub const LOGS_SAMPLED: CounterDesc = CounterDesc {
    name: "otelcol_processor_probabilistic_sampler_count_logs_sampled",
    description: "Count of logs that were sampled or not [Development]",
    unit: "1",
};

const SLOTS: usize = Policy::ALL.len() * 2;

fn slot(policy: Policy, sampled: bool) -> usize {
    let index = Policy::ALL.iter().position(|p| *p == policy).unwrap_or(0);
    index * 2 + usize::from(sampled)
}

/// Decisions of one batch, recorded when the batch is committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally([u64; SLOTS]);

impl Tally {
    pub fn add(&mut self, policy: Policy, sampled: bool) {
        self.0[slot(policy, sampled)] += 1;
    }

    pub fn count(&self, policy: Policy, sampled: bool) -> u64 {
        self.0[slot(policy, sampled)]
    }
}

/// One processor's series of the family of its signal.
pub struct Stats {
    counters: [Arc<AtomicU64>; SLOTS],
}

impl Stats {
    /// `attribute` is the configured `from_attribute`, the policy label of hashed records.
    pub fn new(family: &CounterFamily, attribute: &str) -> Stats {
        let counters = std::array::from_fn(|i| {
            let policy = Policy::ALL[i / 2];
            let sampled = if i % 2 == 1 { "true" } else { "false" };
            family.series(&[("policy", policy.label(attribute)), ("sampled", sampled)])
        });
        Stats { counters }
    }

    pub fn record(&self, tally: &Tally) {
        for (counter, n) in self.counters.iter().zip(tally.0) {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// The family a signal's decisions are counted in.
pub fn desc(signal: Signal) -> CounterDesc {
    match signal {
        Signal::Logs => LOGS_SAMPLED,
        _ => TRACES_SAMPLED,
    }
}

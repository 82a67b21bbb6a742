//! Log records: randomness from the trace id, a hashed record attribute (hash_seed mode) or
//! a `sampling.randomness` attribute; sampling state in the `sampling.threshold` and
//! `sampling.randomness` attributes; an optional priority attribute holding a percentage.

use std::mem;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use redline_sampling_tracestate::{Randomness, SamplingError, Threshold};

use crate::attrs;
use crate::config::Settings;
use crate::sampler::{
    hashed_randomness, trace_id, Carrier, Extracted, LogContext, Policy, Problem, Sampler, Source,
};
use crate::stats::Tally;
use crate::Rewrite;

const THRESHOLD_ATTRIBUTE: &str = "sampling.threshold";
const RANDOMNESS_ATTRIBUTE: &str = "sampling.randomness";

/// A record's attributes, held while its decision is made, with the sampling values read
/// from them.
pub(crate) struct RecordState {
    attributes: Vec<KeyValue>,
    threshold: Option<Threshold>,
    randomness: Option<Randomness>,
    changed: bool,
}

impl RecordState {
    /// Reads the string attributes `sampling.threshold` and `sampling.randomness`; a value
    /// that does not parse is an error and is left out.
    fn read(attributes: Vec<KeyValue>) -> (RecordState, Option<SamplingError>) {
        let mut error = None;
        let text = |key| attrs::get_str(&attributes, key).filter(|t| !t.is_empty());
        let threshold = text(THRESHOLD_ATTRIBUTE)
            .and_then(|t| Threshold::from_tvalue(t).map_err(|e| error = Some(e)).ok());
        let randomness = text(RANDOMNESS_ATTRIBUTE)
            .and_then(|r| Randomness::from_rvalue(r).map_err(|e| error = Some(e)).ok());
        let state = RecordState {
            attributes,
            threshold,
            randomness,
            changed: false,
        };
        (state, error)
    }

    fn set_randomness(&mut self, randomness: Randomness) {
        self.randomness = Some(randomness);
        self.changed |= attrs::put_str(
            &mut self.attributes,
            RANDOMNESS_ATTRIBUTE,
            &randomness.rvalue(),
        );
    }
}

impl Carrier for RecordState {
    fn threshold(&self) -> Option<Threshold> {
        self.threshold
    }

    fn clear_threshold(&mut self) {
        self.threshold = None;
        self.changed |= attrs::remove(&mut self.attributes, THRESHOLD_ATTRIBUTE);
    }

    fn update_threshold(&mut self, threshold: Threshold) -> Result<(), SamplingError> {
        if self.threshold.is_some_and(|existing| threshold < existing) {
            return Err(SamplingError::InconsistentSampling);
        }
        self.changed |= attrs::put_str(
            &mut self.attributes,
            THRESHOLD_ATTRIBUTE,
            &threshold.tvalue(),
        );
        Ok(())
    }
}

/// Samples every log record of an encoded `ExportLogsServiceRequest`.
pub(crate) fn sample_request(
    settings: &Settings,
    raw: &[u8],
    log: LogContext<'_>,
    tally: &mut Tally,
) -> Result<Rewrite, prost::DecodeError> {
    let request = ExportLogsServiceRequest::decode(raw)?;
    Ok(Rewrite::retain_items(
        request,
        |q| &mut q.resource_logs,
        |r| &mut r.scope_logs,
        |s| &mut s.log_records,
        |item| sample_record(settings, item, log, tally),
    ))
}

/// Decides one record: `None` to drop it, else whether its attributes changed.
fn sample_record(
    settings: &Settings,
    record: &mut LogRecord,
    log: LogContext<'_>,
    tally: &mut Tally,
) -> Option<bool> {
    let item = extract(settings, record);
    let judged = settings.sampler.judge(settings.fail_closed, item, log);
    let attributes = judged
        .carrier
        .as_ref()
        .map_or(&record.attributes, |state| &state.attributes);
    let priority = priority(settings, attributes);
    let decision = judged.finish(priority, log);
    tally.add(decision.policy, decision.sampled);
    let changed = decision.carrier.map(|state| {
        record.attributes = state.attributes;
        state.changed
    });
    decision.sampled.then_some(changed.unwrap_or(false))
}

/// The record's randomness and sampling state, as each mode reads them. The attributes
/// move into the state while the record is decided, and stay in the record when the state
/// is left alone.
fn extract(settings: &Settings, record: &mut LogRecord) -> Extracted<RecordState> {
    let tid = trace_id(&record.trace_id);
    let (mut state, error) = RecordState::read(mem::take(&mut record.attributes));
    let (source, problem) = match &settings.sampler {
        Sampler::Never => {
            return Extracted {
                source: Source::NEVER_MODE,
                carrier: Some(state),
                problem: error.map(Problem::Unreadable),
            }
        }
        Sampler::HashSeed {
            seed,
            logs_use_trace_id,
            logs_attribute,
            ..
        } => {
            let mut source = match tid {
                Some(t) if *logs_use_trace_id => Source {
                    randomness: hashed_randomness(&t, *seed),
                    policy: Policy::TraceIdHash,
                },
                _ => Source::MISSING,
            };
            if source.policy == Policy::MissingRandomness && !logs_attribute.is_empty() {
                let bytes = hashed_bytes(&state.attributes, logs_attribute);
                if !bytes.is_empty() {
                    source = Source {
                        randomness: hashed_randomness(&bytes, *seed),
                        policy: Policy::Attribute,
                    };
                }
            }
            let problem = if let Some(e) = error {
                Some(Problem::Unreadable(e))
            } else if state.randomness.is_some() {
                Some(Problem::RandomnessInUse)
            } else if state.threshold.is_some() {
                Some(Problem::ThresholdInUse)
            } else {
                if source.policy != Policy::MissingRandomness {
                    state.set_randomness(source.randomness);
                }
                None
            };
            (source, problem)
        }
        Sampler::Equalizing { .. } | Sampler::Proportional { .. } => {
            let source = match (error, state.randomness, tid) {
                (Some(_), _, _) => Source::MISSING,
                (None, Some(r), _) => Source {
                    randomness: r,
                    policy: Policy::SamplingRandomness,
                },
                (None, None, Some(t)) => Source {
                    randomness: Randomness::from_trace_id(&t),
                    policy: Policy::TraceIdW3c,
                },
                (None, None, None) => Source::MISSING,
            };
            (source, error.map(Problem::Unreadable))
        }
    };
    // A problem found while reading leaves the record's state alone.
    let carrier = if problem.is_some() {
        record.attributes = mem::take(&mut state.attributes);
        None
    } else {
        Some(state)
    };
    Extracted {
        source,
        carrier,
        problem,
    }
}

/// What hash_seed mode hashes of an attribute: a bytes value as is, anything else as pdata
/// prints it (`Value.AsString()`).
fn hashed_bytes(attributes: &[KeyValue], key: &str) -> Vec<u8> {
    let Some(kv) = attributes.iter().find(|kv| kv.key == key) else {
        return Vec::new();
    };
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::BytesValue(b)) => b.clone(),
        _ => redline_pdata_text::as_string(kv.value.as_ref())
            .into_owned()
            .into_bytes(),
    }
}

/// The priority attribute's percentage as a threshold; `None` when not configured, absent,
/// not a number, 0, or outside (0, 100].
fn priority(settings: &Settings, attributes: &[KeyValue]) -> Option<Threshold> {
    if settings.sampling_priority.is_empty() {
        return None;
    }
    let probability = match attrs::get(attributes, &settings.sampling_priority) {
        Some(Some(Value::DoubleValue(v))) => v / 100.0,
        Some(Some(Value::IntValue(v))) => *v as f64 / 100.0,
        _ => return None,
    };
    if probability == 0.0 {
        return None;
    }
    Threshold::from_probability_with_precision(probability, settings.precision).ok()
}

#[cfg(test)]
#[path = "logs_tests.rs"]
mod tests;

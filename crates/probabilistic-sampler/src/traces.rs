//! Spans: randomness from the trace id (or the tracestate's `rv`), sampling state in the
//! W3C tracestate, and the `sampling.priority` attribute forcing 0% or 100%.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use redline_sampling_tracestate::{Randomness, SamplingError, Threshold, W3cTraceState};

use crate::attrs;
use crate::config::Settings;
use crate::go_float::{parse_sign, FloatSign};
use crate::sampler::{
    hashed_randomness, trace_id, Carrier, Extracted, LogContext, Policy, Problem, Sampler, Source,
};
use crate::stats::Tally;
use crate::Rewrite;

const PRIORITY_ATTRIBUTE: &str = "sampling.priority";

impl Carrier for W3cTraceState {
    fn threshold(&self) -> Option<Threshold> {
        self.otel().threshold()
    }

    fn clear_threshold(&mut self) {
        self.otel_mut().clear_threshold();
    }

    fn update_threshold(&mut self, threshold: Threshold) -> Result<(), SamplingError> {
        self.otel_mut().update_threshold(threshold)
    }
}

/// Samples every span of an encoded `ExportTraceServiceRequest`.
pub(crate) fn sample_request(
    settings: &Settings,
    raw: &[u8],
    log: LogContext<'_>,
    tally: &mut Tally,
) -> Result<Rewrite, prost::DecodeError> {
    let request = ExportTraceServiceRequest::decode(raw)?;
    Ok(Rewrite::retain_items(
        request,
        |q| &mut q.resource_spans,
        |r| &mut r.scope_spans,
        |s| &mut s.spans,
        |item| sample_span(settings, item, log, tally),
    ))
}

/// Decides one span: `None` to drop it, else whether its tracestate was rewritten.
fn sample_span(
    settings: &Settings,
    span: &mut Span,
    log: LogContext<'_>,
    tally: &mut Tally,
) -> Option<bool> {
    let item = extract(&settings.sampler, span);
    let judged = settings.sampler.judge(settings.fail_closed, item, log);
    let priority = match priority(span) {
        Priority::Defer => None,
        Priority::Drop => Some(Threshold::NEVER_SAMPLE),
        Priority::Keep => Some(Threshold::ALWAYS_SAMPLE),
    };
    let decision = judged.finish(priority, log);
    tally.add(decision.policy, decision.sampled);
    if !decision.sampled {
        return None;
    }
    let Some(state) = decision.carrier else {
        return Some(false);
    };
    let tracestate = state.serialize();
    if tracestate == span.trace_state {
        return Some(false);
    }
    span.trace_state = tracestate;
    Some(true)
}

/// The span's randomness and tracestate, as each mode reads them.
fn extract(sampler: &Sampler, span: &Span) -> Extracted<W3cTraceState> {
    let tid = trace_id(&span.trace_id);
    match sampler {
        Sampler::Never => {
            // Nothing is compared but a priority; the tracestate is read only to be written
            // back (as far as it could be read) if a priority keeps the span.
            let (state, error) = W3cTraceState::parse_partial(&span.trace_state);
            Extracted {
                source: Source::NEVER_MODE,
                carrier: Some(state),
                problem: error.map(Problem::Unreadable),
            }
        }
        Sampler::HashSeed { seed, .. } => {
            let source = tid.map_or(Source::MISSING, |t| Source {
                randomness: hashed_randomness(&t, *seed),
                policy: Policy::TraceIdHash,
            });
            // Consistent-sampling information in the tracestate is left alone: this mode's
            // randomness is not the one it was computed with.
            let (carrier, problem) = match W3cTraceState::parse(&span.trace_state) {
                Err(e) => (None, Some(Problem::Unreadable(e))),
                Ok(state) if state.otel().randomness().is_some() => {
                    (None, Some(Problem::RandomnessInUse))
                }
                Ok(state) if state.otel().threshold().is_some() => {
                    (None, Some(Problem::ThresholdInUse))
                }
                Ok(mut state) => {
                    state.otel_mut().set_randomness(source.randomness);
                    (Some(state), None)
                }
            };
            Extracted {
                source,
                carrier,
                problem,
            }
        }
        Sampler::Equalizing { .. } | Sampler::Proportional { .. } => {
            match W3cTraceState::parse(&span.trace_state) {
                Err(e) => Extracted {
                    source: Source::MISSING,
                    carrier: None,
                    problem: Some(Problem::Unreadable(e)),
                },
                Ok(state) => {
                    let source = match (state.otel().randomness(), tid) {
                        (Some(r), _) => Source {
                            randomness: r,
                            policy: Policy::SamplingRandomness,
                        },
                        (None, Some(t)) => Source {
                            randomness: Randomness::from_trace_id(&t),
                            policy: Policy::TraceIdW3c,
                        },
                        (None, None) => Source::MISSING,
                    };
                    Extracted {
                        source,
                        carrier: Some(state),
                        problem: None,
                    }
                }
            }
        }
    }
}

/// OpenTracing's `sampling.priority` span attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    Defer,
    /// 0: never sampled.
    Drop,
    /// Positive: always sampled.
    Keep,
}

/// Integers, doubles and strings that parse as Go floats count; negative or NaN defers.
fn priority(span: &Span) -> Priority {
    let sign = match attrs::get(&span.attributes, PRIORITY_ATTRIBUTE) {
        Some(Some(Value::IntValue(v))) => match v.signum() {
            0 => FloatSign::Zero,
            1 => FloatSign::Positive,
            _ => FloatSign::Negative,
        },
        Some(Some(Value::DoubleValue(v))) => match v {
            v if *v == 0.0 => FloatSign::Zero,
            v if *v > 0.0 => FloatSign::Positive,
            v if *v < 0.0 => FloatSign::Negative,
            _ => FloatSign::NaN,
        },
        Some(Some(Value::StringValue(s))) => match parse_sign(s) {
            Some(sign) => sign,
            None => return Priority::Defer,
        },
        _ => return Priority::Defer,
    };
    match sign {
        FloatSign::Zero => Priority::Drop,
        FloatSign::Positive => Priority::Keep,
        FloatSign::Negative | FloatSign::NaN => Priority::Defer,
    }
}

#[cfg(test)]
#[path = "traces_tests.rs"]
mod tests;

//! The sampling policies, each deciding on a whole trace as otelcol's evaluators do, quirks
//! included: attribute policies read a value of another type as Go's pdata does (`""`, `0`,
//! `false`), and `latency` stops at the first span where the spread seen so far qualifies.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message;
use redline_ottl::{any_span_matches, ConditionSet, TraceFilters};
use regex::Regex;

/// What a policy, or the processor, decided for a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Sampled,
    NotSampled,
    Dropped,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Sampled, Decision::NotSampled, Decision::Dropped];

    pub fn index(self) -> usize {
        match self {
            Decision::Sampled => 0,
            Decision::NotSampled => 1,
            Decision::Dropped => 2,
        }
    }

    /// otelcol's `sampled` and `decision` labels.
    pub fn labels(self) -> [(&'static str, &'static str); 2] {
        match self {
            Decision::Sampled => [("sampled", "true"), ("decision", "sampled")],
            Decision::NotSampled => [("sampled", "false"), ("decision", "not_sampled")],
            Decision::Dropped => [("sampled", "false"), ("decision", "dropped")],
        }
    }
}

/// A trace as the policies see it: every span received for it so far, grouped as received.
pub struct TraceData {
    pub id: [u8; 16],
    /// Encoded `ResourceSpans`, as they arrived.
    pub batches: Vec<Bytes>,
    /// `batches` decoded, once a policy needs to read them.
    decoded: Option<Vec<ResourceSpans>>,
    pub span_count: i64,
    /// The encoded size of `batches`, counted as they arrived.
    pub size_bytes: u64,
}

impl TraceData {
    pub fn new(id: [u8; 16]) -> TraceData {
        TraceData {
            id,
            batches: Vec::new(),
            decoded: None,
            span_count: 0,
            size_bytes: 0,
        }
    }

    /// The spans decoded: only policies that read them pay for it, once per trace.
    fn decoded(&mut self) -> Result<&mut Vec<ResourceSpans>, EvalError> {
        if self.decoded.is_none() {
            let decoded = self
                .batches
                .iter()
                .map(|b| ResourceSpans::decode(&b[..]))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot decode the held spans: {e}"))?;
            self.decoded = Some(decoded);
        }
        Ok(self.decoded.get_or_insert_with(Vec::new))
    }
}

pub enum StringMatch {
    Exact(hashbrown::HashSet<String>),
    /// Go regexps, unanchored; any one matching is a match.
    Regex(Vec<Regex>),
}

impl StringMatch {
    fn matches(&self, s: &str) -> bool {
        match self {
            StringMatch::Exact(values) => values.contains(s),
            StringMatch::Regex(regexes) => regexes.iter().any(|r| r.is_match(s)),
        }
    }
}

pub enum Policy {
    AlwaysSample,
    Latency {
        threshold_ms: i64,
        upper_threshold_ms: i64,
    },
    NumericAttribute {
        key: String,
        min: i64,
        max: i64,
        invert: bool,
    },
    Probabilistic {
        salt: String,
        threshold: u64,
    },
    /// OTLP status codes: 0 unset, 1 ok, 2 error.
    StatusCode(Vec<i32>),
    StringAttribute {
        key: String,
        matcher: StringMatch,
        invert: bool,
    },
    RateLimiting(Limiter),
    BytesLimiting(Limiter),
    SpanCount {
        min: i64,
        max: i64,
    },
    TraceState {
        key: String,
        values: hashbrown::HashSet<String>,
    },
    BooleanAttribute {
        key: String,
        value: bool,
        invert: bool,
    },
    Ottl {
        span: Option<ConditionSet>,
        span_event: Option<ConditionSet>,
    },
    TraceFlags,
    And(Vec<Policy>),
    Not(Box<Policy>),
    Drop(Vec<Policy>),
    Composite(Composite),
}

/// An evaluation that failed (an OTTL condition in `propagate` mode).
pub type EvalError = String;

const DEFAULT_HASH_SALT: &str = "default-hash-seed";

impl Policy {
    pub fn probabilistic(salt: &str, percentage: f64) -> Policy {
        Policy::Probabilistic {
            salt: if salt.is_empty() {
                DEFAULT_HASH_SALT
            } else {
                salt
            }
            .to_owned(),
            threshold: ratio_of_max_u64(percentage / 100.0),
        }
    }

    pub fn evaluate(&mut self, trace: &mut TraceData) -> Result<Decision, EvalError> {
        use Decision::{NotSampled, Sampled};
        let verdict = |b: bool| if b { Sampled } else { NotSampled };
        Ok(match self {
            Policy::AlwaysSample => Sampled,
            Policy::Latency {
                threshold_ms,
                upper_threshold_ms,
            } => verdict(latency(
                trace.decoded()?,
                *threshold_ms,
                *upper_threshold_ms,
            )),
            Policy::NumericAttribute {
                key,
                min,
                max,
                invert,
            } => {
                let in_range = |attrs: &[KeyValue]| {
                    get(attrs, key).is_some_and(|v| (*min..=*max).contains(&int_of(v)))
                };
                verdict(resource_or_span(trace.decoded()?, in_range, in_range) != *invert)
            }
            Policy::Probabilistic { salt, threshold } => {
                verdict(fnv1a64(salt.as_bytes(), &trace.id) <= *threshold)
            }
            Policy::StatusCode(codes) => verdict(any_span(trace.decoded()?, |s| {
                codes.contains(&s.status.as_ref().map_or(0, |st| st.code))
            })),
            Policy::StringAttribute {
                key,
                matcher,
                invert,
            } => {
                // A span's value counts only when it is a non-empty string; a resource's is
                // compared as read (another type reads as "", which a regex may match).
                let resource_hit = |attrs: &[KeyValue]| {
                    get(attrs, key).is_some_and(|v| matcher.matches(str_of(v)))
                };
                let span_hit = |attrs: &[KeyValue]| {
                    get(attrs, key).is_some_and(|v| {
                        let s = str_of(v);
                        !s.is_empty() && matcher.matches(s)
                    })
                };
                verdict(resource_or_span(trace.decoded()?, resource_hit, span_hit) != *invert)
            }
            Policy::RateLimiting(limiter) => verdict(limiter.allow(trace.span_count)),
            Policy::BytesLimiting(limiter) => verdict(limiter.allow(traces_size(&trace.batches))),
            Policy::SpanCount { min, max } => {
                let n = trace.span_count;
                verdict(n >= *min && (*max == 0 || n <= *max))
            }
            Policy::TraceState { key, values } => verdict(any_span(trace.decoded()?, |s| {
                redline_ottl::tracestate::parse(&s.trace_state).is_some_and(|members| {
                    let value = members
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or("", |(_, v)| *v);
                    values.contains(value)
                })
            })),
            Policy::BooleanAttribute { key, value, invert } => {
                let equal =
                    |attrs: &[KeyValue]| get(attrs, key).is_some_and(|v| bool_of(v) == *value);
                verdict(resource_or_span(trace.decoded()?, equal, equal) != *invert)
            }
            Policy::Ottl { span, span_event } => {
                let filters = TraceFilters {
                    resource: None,
                    span: span.as_ref(),
                    span_event: span_event.as_ref(),
                };
                let mut matched = false;
                for rs in trace.decoded()? {
                    if any_span_matches(filters, rs).map_err(|e| e.to_string())? {
                        matched = true;
                        break;
                    }
                }
                verdict(matched)
            }
            Policy::TraceFlags => verdict(any_span(trace.decoded()?, |s| s.flags & 0x01 != 0)),
            Policy::And(subs) => {
                for sub in subs {
                    if sub.evaluate(trace)? == NotSampled {
                        return Ok(NotSampled);
                    }
                }
                Sampled
            }
            Policy::Not(sub) => match sub.evaluate(trace)? {
                Sampled => NotSampled,
                NotSampled => Sampled,
                other => other,
            },
            Policy::Drop(subs) => {
                for sub in subs {
                    if sub.evaluate(trace)? == NotSampled {
                        return Ok(NotSampled);
                    }
                }
                Decision::Dropped
            }
            Policy::Composite(c) => c.evaluate(trace)?,
        })
    }
}

fn spans(batches: &[ResourceSpans]) -> impl Iterator<Item = &Span> {
    batches
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
}

fn any_span(batches: &[ResourceSpans], check: impl FnMut(&Span) -> bool) -> bool {
    spans(batches).any(check)
}

/// The first value under `key`, as pdata's `Map.Get`.
fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::StringValue(s) => s,
        _ => "",
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::IntValue(i) => *i,
        _ => 0,
    }
}

fn bool_of(v: &Value) -> bool {
    matches!(v, Value::BoolValue(true))
}

/// Whether a resource or a span of the trace matches. otelcol's inverted form
/// (`invertHasResourceOrSpanWithCondition`) samples exactly the traces this says `false` for.
fn resource_or_span(
    batches: &[ResourceSpans],
    resource_hit: impl Fn(&[KeyValue]) -> bool,
    span_hit: impl Fn(&[KeyValue]) -> bool,
) -> bool {
    batches.iter().any(|rs| {
        resource_hit(rs.resource.as_ref().map_or(&[][..], |r| &r.attributes))
            || rs
                .scope_spans
                .iter()
                .flat_map(|ss| &ss.spans)
                .any(|s| span_hit(&s.attributes))
    })
}

/// The spread from the earliest start to the latest end seen so far, checked at each span.
fn latency(batches: &[ResourceSpans], threshold_ms: i64, upper_ms: i64) -> bool {
    let (mut min, mut max) = (0u64, 0u64);
    spans(batches).any(|s| {
        if min == 0 || s.start_time_unix_nano < min {
            min = s.start_time_unix_nano;
        }
        if max == 0 || s.end_time_unix_nano > max {
            max = s.end_time_unix_nano;
        }
        // Go converts to int64 nanoseconds (wrapping) and subtracts with saturation.
        let nanos = i128::from(max as i64) - i128::from(min as i64);
        let nanos = nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        let ms = (nanos / 1_000_000) as i64;
        if upper_ms == 0 {
            ms > threshold_ms
        } else {
            threshold_ms < ms && ms <= upper_ms
        }
    })
}

/// The encoded size of the trace as one `TracesData`, as otelcol's `bytes_limiting` counts it.
fn traces_size(batches: &[Bytes]) -> i64 {
    let total: usize = batches
        .iter()
        .map(|rs| 1 + prost::encoding::encoded_len_varint(rs.len() as u64) + rs.len())
        .sum();
    i64::try_from(total).unwrap_or(i64::MAX)
}

fn fnv1a64(salt: &[u8], id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().chain(id) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `MaxUint64 × ratio` as otelcol computes it with `big.Float` (64-bit mantissa, rounded to
/// nearest even) and converts it with `Uint64` (truncated, saturating).
pub fn ratio_of_max_u64(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }
    // ratio = mantissa × 2^exp, exactly.
    let bits = ratio.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mantissa, exp) = if raw_exp == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), raw_exp - 1075)
    };
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    let width = 128 - product.leading_zeros() as i32;
    // Round the exact product to 64 significant bits, half to even.
    let (mut significand, mut exp) = (product, exp);
    if width > 64 {
        let shift = (width - 64) as u32;
        let kept = product >> shift;
        let rest = product & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        significand = if rest > half || (rest == half && kept & 1 == 1) {
            kept + 1
        } else {
            kept
        };
        exp += shift as i32;
    }
    if exp >= 0 {
        return u64::try_from(significand.checked_shl(exp as u32).unwrap_or(u128::MAX))
            .unwrap_or(u64::MAX);
    }
    let shift = (-exp) as u32;
    if shift >= 128 {
        return 0;
    }
    u64::try_from(significand >> shift).unwrap_or(u64::MAX)
}

/// golang.org/x/time/rate's `Limiter.AllowN`: a bucket of `burst` tokens refilled at `rate`
/// per second, full at first use; a request larger than the bucket never passes.
pub struct Limiter {
    rate: f64,
    burst: i64,
    tokens: f64,
    last: Option<Instant>,
}

impl Limiter {
    pub fn new(rate: i64, burst: i64) -> Limiter {
        Limiter {
            rate: rate as f64,
            burst,
            tokens: 0.0,
            last: None,
        }
    }

    pub fn allow(&mut self, n: i64) -> bool {
        let now = Instant::now();
        let refill = match self.last {
            None if self.rate > 0.0 => f64::INFINITY,
            None => 0.0,
            Some(last) if self.rate > 0.0 => now.duration_since(last).as_secs_f64() * self.rate,
            Some(_) => 0.0,
        };
        let tokens = (self.tokens + refill).min(self.burst as f64) - n as f64;
        let wait_nanos = if tokens < 0.0 {
            if self.rate > 0.0 {
                (1e9 * (-tokens / self.rate)).trunc()
            } else {
                f64::INFINITY
            }
        } else {
            0.0
        };
        let ok = n <= self.burst && wait_nanos <= 0.0;
        if ok {
            self.last = Some(now);
            self.tokens = tokens;
        }
        ok
    }
}

/// `composite`: sub-policies in order, the first that samples a trace keeping it while its
/// share of spans for the current second lasts.
pub struct Composite {
    max_total: i64,
    subs: Vec<SubRate>,
    second: u64,
}

pub struct SubRate {
    policy: Policy,
    allocated: i64,
    sampled: i64,
}

impl SubRate {
    pub fn new(policy: Policy, allocated: i64) -> SubRate {
        SubRate {
            policy,
            allocated,
            sampled: 0,
        }
    }
}

impl Composite {
    pub fn new(max_total: i64, subs: Vec<SubRate>) -> Composite {
        Composite {
            max_total,
            subs,
            second: 0,
        }
    }

    fn evaluate(&mut self, trace: &mut TraceData) -> Result<Decision, EvalError> {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second {
            self.second = second;
            for sub in &mut self.subs {
                sub.sampled = 0;
            }
        }
        for sub in &mut self.subs {
            if sub.policy.evaluate(trace)? == Decision::Sampled {
                let would_be = sub.sampled.saturating_add(trace.span_count);
                // otelcol compares each sub-policy's own count with the total.
                if would_be <= sub.allocated && would_be <= self.max_total {
                    sub.sampled = would_be;
                    return Ok(Decision::Sampled);
                }
                return Ok(Decision::NotSampled);
            }
        }
        Ok(Decision::NotSampled)
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

//! The processor's settings as otelcol's `tailsamplingprocessor.Config` names them, and their
//! compilation into policies. otelcol finds a bad policy only when the collector starts;
//! here every problem of the section is reported by `validate`, each with its key path.

use std::time::Duration;

use redline_ottl::{ConditionSet, ContextKind, ErrorMode};
use redline_pipeline::config::Unsupported;
use serde::Deserialize;

use crate::policy::{Composite, Limiter, Policy, StringMatch, SubRate};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailSamplingConfig {
    /// How long after its first span a trace is decided.
    #[serde(
        default = "default_decision_wait",
        deserialize_with = "redline_pipeline::duration::deserialize"
    )]
    pub decision_wait: Duration,
    /// When set, a trace whose root span arrived is decided this long after it, if sooner.
    #[serde(default, deserialize_with = "redline_pipeline::duration::deserialize")]
    pub decision_wait_after_root_received: Duration,
    /// The most traces held at once; a new trace beyond it evicts the oldest.
    #[serde(default = "default_num_traces")]
    pub num_traces: u64,
    /// Waiting for room instead of evicting: not supported (`true` is refused).
    #[serde(default)]
    pub block_on_overflow: bool,
    /// A sizing hint in otelcol; accepted, Redline's store grows as needed.
    #[serde(default)]
    pub expected_new_traces_per_sec: u64,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    #[serde(default)]
    pub decision_cache: DecisionCacheConfig,
    #[serde(default)]
    pub tail_storage: Option<Unsupported>,
    #[serde(default)]
    pub sample_on_first_match: bool,
    #[serde(default = "default_strategy")]
    pub sampling_strategy: String,
    #[serde(default)]
    pub drop_pending_traces_on_shutdown: bool,
    /// A trace that grows past this many bytes is not sampled (0: no limit).
    #[serde(default)]
    pub maximum_trace_size_bytes: u64,
    #[serde(default = "default_num_shards")]
    pub num_shards: u32,
}

fn default_decision_wait() -> Duration {
    Duration::from_secs(30)
}

fn default_num_traces() -> u64 {
    50_000
}

fn default_strategy() -> String {
    TRACE_COMPLETE.to_owned()
}

fn default_num_shards() -> u32 {
    1
}

const TRACE_COMPLETE: &str = "trace-complete";
const SPAN_INGEST: &str = "span-ingest";
const MAX_SHARDS: u32 = 256;

/// Sizes of the caches that remember decided trace ids (0: none).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionCacheConfig {
    #[serde(default)]
    pub sampled_cache_size: usize,
    #[serde(default)]
    pub non_sampled_cache_size: usize,
}

/// One policy. otelcol decodes every type's section whatever `type` says and reads only the
/// one `type` names; so does this.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub latency: LatencyConfig,
    #[serde(default)]
    pub numeric_attribute: NumericAttributeConfig,
    #[serde(default)]
    pub probabilistic: ProbabilisticConfig,
    #[serde(default)]
    pub status_code: StatusCodeConfig,
    #[serde(default)]
    pub string_attribute: StringAttributeConfig,
    #[serde(default)]
    pub rate_limiting: RateLimitingConfig,
    #[serde(default)]
    pub bytes_limiting: BytesLimitingConfig,
    #[serde(default)]
    pub span_count: SpanCountConfig,
    #[serde(default)]
    pub trace_state: TraceStateConfig,
    #[serde(default)]
    pub boolean_attribute: BooleanAttributeConfig,
    #[serde(default)]
    pub ottl_condition: OttlConditionConfig,
    #[serde(default)]
    pub composite: CompositeConfig,
    #[serde(default)]
    pub and: AndConfig,
    #[serde(default)]
    pub not: NotConfig,
    #[serde(default)]
    pub drop: DropConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyConfig {
    #[serde(default)]
    pub threshold_ms: i64,
    #[serde(default)]
    pub upper_threshold_ms: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericAttributeConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub min_value: i64,
    #[serde(default)]
    pub max_value: i64,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbabilisticConfig {
    #[serde(default)]
    pub hash_salt: String,
    #[serde(default)]
    pub sampling_percentage: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCodeConfig {
    #[serde(default)]
    pub status_codes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringAttributeConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub enabled_regex_matching: bool,
    /// The size of otelcol's cache of regex results; Redline matches without one.
    #[serde(default)]
    pub cache_max_size: i64,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitingConfig {
    #[serde(default)]
    pub spans_per_second: i64,
    #[serde(default)]
    pub burst_capacity: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BytesLimitingConfig {
    #[serde(default)]
    pub bytes_per_second: i64,
    #[serde(default)]
    pub burst_capacity: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanCountConfig {
    #[serde(default)]
    pub min_spans: i32,
    #[serde(default)]
    pub max_spans: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceStateConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooleanAttributeConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: bool,
    #[serde(default)]
    pub invert_match: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OttlConditionConfig {
    /// otelcol leaves it empty by default, which neither propagates nor logs an error.
    #[serde(default)]
    pub error_mode: Option<ErrorMode>,
    #[serde(default)]
    pub span: Vec<String>,
    #[serde(default)]
    pub spanevent: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeConfig {
    #[serde(default)]
    pub max_total_spans_per_second: i64,
    /// Read by no version of otelcol; accepted.
    #[serde(default)]
    pub policy_order: Vec<String>,
    #[serde(default)]
    pub composite_sub_policy: Vec<PolicyConfig>,
    #[serde(default)]
    pub rate_allocation: Vec<RateAllocationConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateAllocationConfig {
    #[serde(default)]
    pub policy: String,
    #[serde(default)]
    pub percent: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AndConfig {
    #[serde(default)]
    pub and_sub_policy: Vec<PolicyConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotConfig {
    #[serde(default)]
    pub not_sub_policy: Option<Box<PolicyConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    #[serde(default)]
    pub drop_sub_policy: Vec<PolicyConfig>,
}

/// A problem with the section: the key path it is at and why.
pub type Problem = (String, String);

/// A top-level policy ready to run.
pub struct NamedPolicy {
    pub name: String,
    pub policy: Policy,
    pub is_drop: bool,
}

/// What may nest where: otelcol builds each level with its own helper.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Top,
    /// Under `and` or `drop`: `not` or a plain policy.
    AndSub,
    /// Under `composite`: `and` or a plain policy.
    CompositeSub,
    /// Under `not`: a plain policy.
    NotSub,
}

impl TailSamplingConfig {
    /// Settings otelcol's `Validate` checks, and those Redline does not take.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        if self.sampling_strategy != TRACE_COMPLETE {
            let reason = if self.sampling_strategy == SPAN_INGEST {
                format!("\"{SPAN_INGEST}\" is an otelcol setting Redline does not support yet")
            } else {
                format!(
                    "invalid sampling_strategy {:?}, expected one of \"{TRACE_COMPLETE}\" or \"{SPAN_INGEST}\"",
                    self.sampling_strategy
                )
            };
            problems.push(("sampling_strategy".into(), reason));
        }
        if self.block_on_overflow {
            problems.push((
                "block_on_overflow".into(),
                "is an otelcol setting Redline does not support yet".into(),
            ));
        }
        if self.num_shards > MAX_SHARDS {
            problems.push((
                "num_shards".into(),
                format!(
                    "num_shards ({}) must not exceed {MAX_SHARDS}",
                    self.num_shards
                ),
            ));
        }
    }

    /// The policies, drop policies first as otelcol orders them.
    pub fn compile_policies(&self, problems: &mut Vec<Problem>) -> Vec<NamedPolicy> {
        let mut names: Vec<&str> = Vec::new();
        let mut drops = Vec::new();
        let mut others = Vec::new();
        for (i, cfg) in self.policies.iter().enumerate() {
            let path = format!("policies[{i}]");
            if cfg.name.is_empty() {
                problems.push((format!("{path}.name"), "policy name cannot be empty".into()));
            } else if names.contains(&cfg.name.as_str()) {
                problems.push((
                    format!("{path}.name"),
                    format!("duplicate policy name {:?}", cfg.name),
                ));
            }
            names.push(&cfg.name);
            let Some(policy) = compile(cfg, &path, Level::Top, problems) else {
                continue;
            };
            let named = NamedPolicy {
                name: cfg.name.clone(),
                policy,
                is_drop: cfg.kind == "drop",
            };
            if named.is_drop {
                drops.push(named);
            } else {
                others.push(named);
            }
        }
        drops.extend(others);
        drops
    }
}

fn compile(
    cfg: &PolicyConfig,
    path: &str,
    level: Level,
    problems: &mut Vec<Problem>,
) -> Option<Policy> {
    let at = |key: &str| format!("{path}.{key}");
    let nested = |list: &[PolicyConfig], key: &str, sub: Level, problems: &mut Vec<Problem>| {
        let compiled: Vec<Option<Policy>> = list
            .iter()
            .enumerate()
            .map(|(i, c)| compile(c, &format!("{path}.{key}[{i}]"), sub, problems))
            .collect();
        compiled.into_iter().collect::<Option<Vec<Policy>>>()
    };
    match (cfg.kind.as_str(), level) {
        ("composite", Level::Top) => {
            let c = &cfg.composite;
            let subs = nested(
                &c.composite_sub_policy,
                "composite.composite_sub_policy",
                Level::CompositeSub,
                problems,
            )?;
            let count = c.composite_sub_policy.len() as f64;
            let total = c.max_total_spans_per_second as f64;
            let rates = c
                .composite_sub_policy
                .iter()
                .zip(subs)
                .map(|(sub, policy)| {
                    let percent = c
                        .rate_allocation
                        .iter()
                        .rev()
                        .find(|r| r.policy == sub.name)
                        .map_or(0, |r| r.percent);
                    let allocated = if percent > 0 {
                        percent as f64 / 100.0 * total
                    } else {
                        total / count
                    };
                    SubRate::new(policy, allocated as i64)
                })
                .collect();
            Some(Policy::Composite(Composite::new(
                c.max_total_spans_per_second,
                rates,
            )))
        }
        ("and", Level::Top | Level::CompositeSub) => Some(Policy::And(nested(
            &cfg.and.and_sub_policy,
            "and.and_sub_policy",
            Level::AndSub,
            problems,
        )?)),
        ("drop", Level::Top) => Some(Policy::Drop(nested(
            &cfg.drop.drop_sub_policy,
            "drop.drop_sub_policy",
            Level::AndSub,
            problems,
        )?)),
        ("not", Level::Top | Level::AndSub) => {
            let default = PolicyConfig::default();
            let sub = cfg.not.not_sub_policy.as_deref().unwrap_or(&default);
            let inner = compile(sub, &at("not.not_sub_policy"), Level::NotSub, problems)?;
            Some(Policy::Not(Box::new(inner)))
        }
        (kind, _) => plain(cfg, kind, path, problems),
    }
}

/// The policies every level takes (otelcol's `getSharedPolicyEvaluator`).
fn plain(
    cfg: &PolicyConfig,
    kind: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Policy> {
    let at = |key: &str| format!("{path}.{key}");
    let mut fail = |key: String, reason: String| {
        problems.push((key, reason));
        None
    };
    match kind {
        "always_sample" => Some(Policy::AlwaysSample),
        "latency" => Some(Policy::Latency {
            threshold_ms: cfg.latency.threshold_ms,
            upper_threshold_ms: cfg.latency.upper_threshold_ms,
        }),
        "numeric_attribute" => {
            let n = &cfg.numeric_attribute;
            if n.min_value == 0 && n.max_value == 0 {
                // otelcol builds no evaluator here and crashes on the first trace.
                return fail(
                    at("numeric_attribute"),
                    "at least one of min_value or max_value must be set (and not 0)".into(),
                );
            }
            Some(Policy::NumericAttribute {
                key: n.key.clone(),
                min: if n.min_value == 0 {
                    i64::MIN
                } else {
                    n.min_value
                },
                max: if n.max_value == 0 {
                    i64::MAX
                } else {
                    n.max_value
                },
                invert: n.invert_match,
            })
        }
        "probabilistic" => Some(Policy::probabilistic(
            &cfg.probabilistic.hash_salt,
            cfg.probabilistic.sampling_percentage,
        )),
        "status_code" => {
            let codes = &cfg.status_code.status_codes;
            if codes.is_empty() {
                return fail(
                    at("status_code.status_codes"),
                    "expected at least one status code to filter on".into(),
                );
            }
            let mut parsed = Vec::new();
            for (i, code) in codes.iter().enumerate() {
                match code.as_str() {
                    "UNSET" => parsed.push(0),
                    "OK" => parsed.push(1),
                    "ERROR" => parsed.push(2),
                    other => {
                        return fail(
                            at(&format!("status_code.status_codes[{i}]")),
                            format!("unknown status code {other:?}, supported: OK, ERROR, UNSET"),
                        )
                    }
                }
            }
            Some(Policy::StatusCode(parsed))
        }
        "string_attribute" => {
            let s = &cfg.string_attribute;
            let matcher = if s.enabled_regex_matching {
                let mut regexes = Vec::new();
                for (i, value) in s.values.iter().enumerate() {
                    match redline_go_regex::compile(value) {
                        Ok(r) => regexes.push(r),
                        Err(e) => {
                            return fail(
                                at(&format!("string_attribute.values[{i}]")),
                                format!("invalid regex `{value}`: {e}"),
                            )
                        }
                    }
                }
                StringMatch::Regex(regexes)
            } else {
                StringMatch::Exact(s.values.iter().filter(|v| !v.is_empty()).cloned().collect())
            };
            Some(Policy::StringAttribute {
                key: s.key.clone(),
                matcher,
                invert: s.invert_match,
            })
        }
        "rate_limiting" => Some(Policy::RateLimiting(limiter(
            cfg.rate_limiting.spans_per_second,
            cfg.rate_limiting.burst_capacity,
        ))),
        "bytes_limiting" => Some(Policy::BytesLimiting(limiter(
            cfg.bytes_limiting.bytes_per_second,
            cfg.bytes_limiting.burst_capacity,
        ))),
        "span_count" => Some(Policy::SpanCount {
            min: i64::from(cfg.span_count.min_spans),
            max: i64::from(cfg.span_count.max_spans),
        }),
        "trace_state" => {
            let t = &cfg.trace_state;
            let values = t
                .values
                .iter()
                .filter(|v| !v.is_empty() && t.key.len() + v.len() < 256)
                .cloned()
                .collect();
            Some(Policy::TraceState {
                key: t.key.clone(),
                values,
            })
        }
        "boolean_attribute" => Some(Policy::BooleanAttribute {
            key: cfg.boolean_attribute.key.clone(),
            value: cfg.boolean_attribute.value,
            invert: cfg.boolean_attribute.invert_match,
        }),
        "ottl_condition" => ottl(&cfg.ottl_condition, &at("ottl_condition"), problems),
        "trace_flags" => Some(Policy::TraceFlags),
        other => fail(at("type"), format!("unknown sampling policy type {other}")),
    }
}

/// A token bucket of `rate` per second; an unset burst is two seconds' worth, as otelcol's.
fn limiter(rate: i64, burst_capacity: i64) -> Limiter {
    let burst = if burst_capacity > 0 {
        burst_capacity
    } else {
        rate.saturating_mul(2)
    };
    Limiter::new(rate, burst)
}

fn ottl(cfg: &OttlConditionConfig, path: &str, problems: &mut Vec<Problem>) -> Option<Policy> {
    if cfg.span.is_empty() && cfg.spanevent.is_empty() {
        problems.push((
            path.to_owned(),
            "expected at least one OTTL condition to filter on (span or spanevent)".into(),
        ));
        return None;
    }
    let mode = cfg.error_mode.unwrap_or(ErrorMode::Silent);
    let mut compile = |key: &str, context: ContextKind, conditions: &[String]| {
        if conditions.is_empty() {
            return Some(None);
        }
        match ConditionSet::compile(context, conditions, mode) {
            Ok(set) => Some(Some(set)),
            Err(errors) => {
                for e in errors {
                    problems.push((format!("{path}.{key}"), e.to_string()));
                }
                None
            }
        }
    };
    let span = compile("span", ContextKind::Span, &cfg.span);
    let span_event = compile("spanevent", ContextKind::SpanEvent, &cfg.spanevent);
    Some(Policy::Ottl {
        span: span?,
        span_event: span_event?,
    })
}

//! otelcol's `memory_limiter` keys and their validation.

use std::time::Duration;

use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

use super::{Settings, MIB};

/// otelcol's memory_limiter processor settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub check_interval: Option<Duration>,
    pub limit_mib: Option<u64>,
    pub spike_limit_mib: Option<u64>,
    pub limit_percentage: Option<u64>,
    pub spike_limit_percentage: Option<u64>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub min_gc_interval_when_soft_limited: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub min_gc_interval_when_hard_limited: Option<Duration>,
    /// Newer otelcol backs its GC off up to these when a GC frees little; a release here
    /// costs little, so they are accepted and have no effect.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub max_gc_interval_when_soft_limited: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub max_gc_interval_when_hard_limited: Option<Duration>,
}

impl MemoryLimiterConfig {
    pub fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        match self.check_interval {
            Some(d) if !d.is_zero() => {}
            _ => return Err(config.invalid("check_interval", "must be set and greater than 0")),
        }
        match (self.limit_mib, self.limit_percentage) {
            (Some(_), Some(_)) => {
                return Err(config.invalid(
                    "limit_percentage",
                    "set either limit_mib or limit_percentage, not both",
                ))
            }
            (None, None) => {
                return Err(config.invalid(
                    "limit_mib",
                    "one of limit_mib or limit_percentage is required",
                ))
            }
            (Some(0), None) => return Err(config.invalid("limit_mib", "must be greater than 0")),
            (Some(limit), None) => {
                if self.spike_limit_percentage.is_some() {
                    return Err(config.invalid(
                        "spike_limit_percentage",
                        "goes with limit_percentage; use spike_limit_mib with limit_mib",
                    ));
                }
                if let Some(spike) = self.spike_limit_mib {
                    if spike >= limit {
                        return Err(config.invalid(
                            "spike_limit_mib",
                            format!("must be less than limit_mib ({limit})"),
                        ));
                    }
                }
            }
            (None, Some(pct)) => {
                if pct == 0 || pct > 100 {
                    return Err(config.invalid("limit_percentage", "must be between 1 and 100"));
                }
                if self.spike_limit_mib.is_some() {
                    return Err(config.invalid(
                        "spike_limit_mib",
                        "goes with limit_mib; use spike_limit_percentage with limit_percentage",
                    ));
                }
                if let Some(spike) = self.spike_limit_percentage {
                    if spike >= pct {
                        return Err(config.invalid(
                            "spike_limit_percentage",
                            format!("must be less than limit_percentage ({pct})"),
                        ));
                    }
                }
            }
        }
        let (soft, hard) = self.release_intervals();
        if soft < hard {
            return Err(config.invalid(
                "min_gc_interval_when_soft_limited",
                format!("must not be less than min_gc_interval_when_hard_limited ({hard:?})"),
            ));
        }
        Ok(())
    }

    /// Least time between two releases of freed memory (soft, hard). otelcol paces its GC
    /// at 10 s when soft limited because a Go GC is expensive; a release only returns free
    /// pages, so by default it runs at every check while over the soft limit, which lets the
    /// gate reopen as soon as the queues drain.
    pub fn release_intervals(&self) -> (Duration, Duration) {
        let hard = self.min_gc_interval_when_hard_limited.unwrap_or_default();
        let soft = self.min_gc_interval_when_soft_limited.unwrap_or(hard);
        (soft, hard)
    }

    /// The resolved settings; `total` is the memory available to the process, only read for
    /// the percentage form.
    pub fn settings(&self, total: impl FnOnce() -> Option<u64>) -> Result<Settings, String> {
        let (limit, spike) = self.limits(total)?;
        let (release_interval_soft, release_interval_hard) = self.release_intervals();
        Ok(Settings {
            limit,
            spike,
            // validate() guarantees it is set and non-zero.
            check_interval: self.check_interval.unwrap_or(Duration::from_secs(1)),
            release_interval_soft,
            release_interval_hard,
        })
    }

    /// (limit, spike) in bytes; `total` is the memory available to the process, only read
    /// for the percentage form.
    pub fn limits(&self, total: impl FnOnce() -> Option<u64>) -> Result<(u64, u64), String> {
        let (limit, spike) = match (self.limit_mib, self.limit_percentage) {
            (Some(limit), _) => {
                let limit = limit.saturating_mul(MIB);
                (limit, self.spike_limit_mib.map(|s| s.saturating_mul(MIB)))
            }
            (None, Some(pct)) => {
                let total = total().ok_or("cannot read total memory (cgroup limit or MemTotal)")?;
                let of = |p: u64| total / 100 * p;
                (of(pct), self.spike_limit_percentage.map(of))
            }
            (None, None) => return Err("no limit configured".into()),
        };
        // otelcol's default spike allowance: a fifth of the limit.
        Ok((limit, spike.unwrap_or(limit / 5)))
    }
}

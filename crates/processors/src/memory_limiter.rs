//! `memory_limiter`: refuses new batches while the process is close to its memory budget.
//!
//! A background task samples the resident set size every `check_interval`. While it is at or
//! above the soft limit (`limit − spike`), or a batch would take it there, `reserve` refuses
//! and the receiver answers gRPC UNAVAILABLE / HTTP 503 with `retry_after = check_interval`.
//! Refusing in `reserve` (before anything is counted or queued) keeps accepted = counted =
//! forwarded. The Go collector's GC knobs (`min_gc_interval_when_*`) are accepted and have no
//! effect: there is no garbage collector to nudge, memory is freed when batches are sent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ProcessorFactory, Refused, Reservation,
    RunningComponent, ShutdownError, Signal, TracesBatch, TracesConsumer,
};
use serde::Deserialize;

const MIB: u64 = 1024 * 1024;

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
        Ok(())
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

/// Where the limiter reads the process's memory use; injectable for tests.
pub trait RssReader: Send + Sync + 'static {
    /// Resident set size in bytes, `None` when it cannot be read.
    fn rss_bytes(&self) -> Option<u64>;
}

/// Reads VmRSS from /proc/self/status (in kB, so no page size is needed).
pub struct ProcRss;

impl RssReader for ProcRss {
    fn rss_bytes(&self) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/self/status").ok()?;
        status_kb(&text, "VmRSS:").map(|kb| kb.saturating_mul(1024))
    }
}

fn status_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Memory available to this process: the cgroup v2 limit when one is set, else MemTotal.
pub fn total_memory_bytes() -> Option<u64> {
    if let Ok(max) = std::fs::read_to_string("/sys/fs/cgroup/memory.max") {
        if let Ok(bytes) = max.trim().parse::<u64>() {
            return Some(bytes);
        }
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    status_kb(&info, "MemTotal:").map(|kb| kb.saturating_mul(1024))
}

/// The limiter state shared by the consumer and its sampling task.
pub struct MemoryLimiter {
    id: String,
    next: Arc<dyn TracesConsumer>,
    reader: Arc<dyn RssReader>,
    rss: AtomicU64,
    refusing: AtomicBool,
    soft_limit: u64,
    limit: u64,
    check_interval: Duration,
}

impl MemoryLimiter {
    pub fn new(
        id: String,
        next: Arc<dyn TracesConsumer>,
        reader: Arc<dyn RssReader>,
        limit: u64,
        spike: u64,
        check_interval: Duration,
    ) -> Self {
        let limiter = Self {
            id,
            next,
            reader,
            rss: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            soft_limit: limit.saturating_sub(spike),
            limit,
            check_interval,
        };
        limiter.check();
        limiter
    }

    /// Samples memory use once; logs when refusing starts or ends.
    pub fn check(&self) {
        // An unreadable value keeps the last sample rather than opening or closing the gate.
        let Some(rss) = self.reader.rss_bytes() else {
            return;
        };
        self.rss.store(rss, Ordering::Relaxed);
        let over = rss >= self.soft_limit;
        if self.refusing.swap(over, Ordering::Relaxed) != over {
            if over {
                tracing::warn!(
                    processor = %self.id, rss_bytes = rss, soft_limit_bytes = self.soft_limit,
                    limit_bytes = self.limit, "memory_limiter: over the soft limit, refusing data"
                );
            } else {
                tracing::info!(
                    processor = %self.id, rss_bytes = rss, soft_limit_bytes = self.soft_limit,
                    "memory_limiter: below the soft limit, accepting data again"
                );
            }
        }
    }

    fn refuse(&self, reason: String) -> Refused {
        Refused {
            component: self.id.clone(),
            reason,
            retry_after: self.check_interval,
        }
    }
}

impl TracesConsumer for MemoryLimiter {
    fn reserve(&self, batch: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        let rss = self.rss.load(Ordering::Relaxed);
        if rss >= self.soft_limit {
            return Err(self.refuse(format!(
                "memory use {rss} bytes is at or above the soft limit {} bytes",
                self.soft_limit
            )));
        }
        let len = batch.byte_len() as u64;
        if rss.saturating_add(len) > self.soft_limit {
            return Err(self.refuse(format!(
                "a {len}-byte batch would take memory use ({rss} bytes) over the soft limit {} bytes",
                self.soft_limit
            )));
        }
        self.next.reserve(batch)
    }
}

struct Sampler {
    task: tokio::task::JoinHandle<()>,
}

impl RunningComponent for Sampler {
    fn shutdown(
        self: Box<Self>,
        _: std::time::Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        self.task.abort();
        Box::pin(async { Ok(()) })
    }
}

pub struct MemoryLimiterFactory;

impl FactoryInfo for MemoryLimiterFactory {
    fn type_name(&self) -> &'static str {
        "memory_limiter"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<MemoryLimiterConfig>()?.validate(config)
    }
}

impl ProcessorFactory for MemoryLimiterFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }

    fn build_traces(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
        next: Arc<dyn TracesConsumer>,
    ) -> BuildResult<(Arc<dyn TracesConsumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = config
            .parse::<MemoryLimiterConfig>()
            .and_then(|c| c.validate(config).map(|()| c));
        Box::pin(async move {
            let cfg = parsed.map_err(|e| BuildError::new(&id, e))?;
            let (limit, spike) = cfg
                .limits(total_memory_bytes)
                .map_err(|e| BuildError::new(&id, e))?;
            // validate() guarantees it is set and non-zero.
            let interval = cfg.check_interval.unwrap_or(Duration::from_secs(1));
            let limiter = Arc::new(MemoryLimiter::new(
                id.to_string(),
                next,
                Arc::new(ProcRss),
                limit,
                spike,
                interval,
            ));
            tracing::info!(
                processor = %id, limit_bytes = limit, spike_bytes = spike,
                check_interval_ms = interval.as_millis() as u64, "memory_limiter: started"
            );
            let sampler = limiter.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    sampler.check();
                }
            });
            let running: Box<dyn RunningComponent> = Box::new(Sampler { task });
            let consumer: Arc<dyn TracesConsumer> = limiter;
            Ok((consumer, running))
        })
    }
}

#[cfg(test)]
#[path = "memory_limiter_tests.rs"]
mod tests;

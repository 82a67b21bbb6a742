//! `memory_limiter`: refuses new batches while the process is close to its memory budget.
//!
//! A background task samples the resident set size every `check_interval`. While it is at or
//! above the soft limit (`limit − spike`), or a batch would take it there (counting what was
//! admitted since the sample), `reserve` refuses and the receiver answers gRPC UNAVAILABLE /
//! HTTP 503 with `retry_after = check_interval`. Refusing in `reserve` (before anything is
//! counted or queued) keeps accepted = counted = forwarded. Over the soft limit the sampler
//! first gives freed memory back to the OS ([`gauge`]), at most once per
//! `min_gc_interval_when_soft_limited` (or `_hard_limited` over the limit), the keys the Go
//! collector uses to pace its forced GC; then it decides.

mod config;
mod counters;
mod gauge;

pub use config::MemoryLimiterConfig;
pub use counters::LimiterCounters;
pub use gauge::{total_memory_bytes, MemoryGauge, ProcessMemory};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redline_pipeline::component::{BackgroundTask, BuildResult, FactoryInfo};
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentConfig, ConfigError, Consumer, ProcessorFactory,
    Refused, Reservation, RunningComponent, Signal, SpanTap, TapId,
};

const MIB: u64 = 1024 * 1024;

/// The limiter's resolved settings, in bytes and durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub limit: u64,
    pub spike: u64,
    pub check_interval: Duration,
    /// Least time between two releases while over the soft limit.
    pub release_interval_soft: Duration,
    /// Least time between two releases while over the (hard) limit.
    pub release_interval_hard: Duration,
}

impl Settings {
    fn soft_limit(&self) -> u64 {
        self.limit.saturating_sub(self.spike)
    }
}

/// The limiter state shared by the consumer and its sampling task.
pub struct MemoryLimiter {
    id: String,
    next: Arc<dyn Consumer>,
    gauge: Arc<dyn MemoryGauge>,
    settings: Settings,
    rss: AtomicU64,
    /// Bytes admitted since `rss` was sampled: intake between two samples counts against the
    /// budget before the next sample can see it.
    admitted: AtomicU64,
    refusing: AtomicBool,
    last_release: Mutex<Option<Instant>>,
    counters: Option<LimiterCounters>,
}

impl MemoryLimiter {
    pub fn new(
        id: String,
        next: Arc<dyn Consumer>,
        gauge: Arc<dyn MemoryGauge>,
        settings: Settings,
    ) -> Self {
        let limiter = Self {
            id,
            next,
            gauge,
            settings,
            rss: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            last_release: Mutex::new(None),
            counters: None,
        };
        limiter.check();
        limiter
    }

    /// Counts what the limiter lets through and refuses, as otelcol's does.
    pub fn with_counters(mut self, counters: LimiterCounters) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Samples memory use once, releasing freed memory first when over the soft limit; logs
    /// when refusing starts or ends. Blocks for as long as the release takes.
    pub fn check(&self) {
        // An unreadable value keeps the last sample rather than opening or closing the gate.
        let Some(mut rss) = self.gauge.resident_bytes() else {
            return;
        };
        if rss >= self.soft_limit() && self.release_due(rss) {
            let started = Instant::now();
            self.gauge.release_free_memory();
            if let Some(after) = self.gauge.resident_bytes() {
                tracing::debug!(
                    processor = %self.id, rss_before_bytes = rss, rss_after_bytes = after,
                    took_us = started.elapsed().as_micros() as u64,
                    "memory_limiter: released freed memory"
                );
                rss = after;
            }
        }
        self.rss.store(rss, Ordering::Relaxed);
        self.admitted.store(0, Ordering::Relaxed);
        let over = rss >= self.soft_limit();
        if self.refusing.swap(over, Ordering::Relaxed) != over {
            if over {
                tracing::warn!(
                    processor = %self.id, rss_bytes = rss, soft_limit_bytes = self.soft_limit(),
                    limit_bytes = self.settings.limit,
                    "memory_limiter: over the soft limit, refusing data"
                );
            } else {
                tracing::info!(
                    processor = %self.id, rss_bytes = rss, soft_limit_bytes = self.soft_limit(),
                    "memory_limiter: below the soft limit, accepting data again"
                );
            }
        }
    }

    /// Whether enough time has passed since the last release, and records this one if so.
    fn release_due(&self, rss: u64) -> bool {
        let min_gap = if rss >= self.settings.limit {
            self.settings.release_interval_hard
        } else {
            self.settings.release_interval_soft
        };
        let mut last = self.last_release.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.saturating_duration_since(t) < min_gap) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn soft_limit(&self) -> u64 {
        self.settings.soft_limit()
    }

    fn refuse(&self, reason: String) -> Refused {
        Refused {
            component: self.id.clone(),
            reason,
            retry_after: self.settings.check_interval,
            permanent: false,
        }
    }
}

impl MemoryLimiter {
    /// Admits `batch` against the budget, or says why not.
    fn admit(&self, batch: &Batch) -> Result<u64, Refused> {
        let rss = self.rss.load(Ordering::Relaxed);
        if rss >= self.soft_limit() {
            return Err(self.refuse(format!(
                "memory use {rss} bytes is at or above the soft limit {} bytes",
                self.soft_limit()
            )));
        }
        // The client's gzip frame, when the batch carries one, stays alive with it.
        let len = batch.held_bytes() as u64;
        let before = self.admitted.fetch_add(len, Ordering::Relaxed);
        let projected = rss.saturating_add(before);
        if projected.saturating_add(len) > self.soft_limit() {
            self.admitted.fetch_sub(len, Ordering::Relaxed);
            return Err(self.refuse(format!(
                "a {len}-byte batch would take memory use ({projected} bytes) over the soft limit {} bytes",
                self.soft_limit()
            )));
        }
        Ok(len)
    }
}

impl Consumer for MemoryLimiter {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let len = match self.admit(batch) {
            Ok(len) => len,
            Err(refused) => {
                if let Some(c) = &self.counters {
                    c.refused(batch.items);
                }
                return Err(refused);
            }
        };
        if let Some(c) = &self.counters {
            c.accepted(batch.items);
        }
        let next = self.next.reserve(batch).inspect_err(|_| {
            self.admitted.fetch_sub(len, Ordering::Relaxed);
        })?;
        Ok(match &self.counters {
            Some(c) => c.counting(next),
            None => next,
        })
    }

    /// The limiter passes requests on as they came, so the taps after it read them during
    /// the receiver's walk.
    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        self.next.span_taps(taps);
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
        &Signal::ALL
    }

    fn edits_data(&self) -> bool {
        false
    }

    /// The spike allowance: the room kept between the soft and the hard limit is what
    /// request bodies in flight may take.
    fn body_budget(&self, config: &ComponentConfig) -> Option<u64> {
        let cfg = config.parse::<MemoryLimiterConfig>().ok()?;
        cfg.limits(total_memory_bytes).ok().map(|(_, spike)| spike)
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = config
            .parse::<MemoryLimiterConfig>()
            .and_then(|c| c.validate(config).map(|()| c));
        let counters = LimiterCounters::new(&ctx.telemetry, &id.to_string(), signal);
        Box::pin(async move {
            let cfg = parsed.map_err(|e| BuildError::new(&id, e))?;
            let settings = cfg
                .settings(total_memory_bytes)
                .map_err(|e| BuildError::new(&id, e))?;
            let limiter = Arc::new(
                MemoryLimiter::new(id.to_string(), next, Arc::new(ProcessMemory), settings)
                    .with_counters(counters),
            );
            tracing::info!(
                processor = %id, limit_bytes = settings.limit, spike_bytes = settings.spike,
                check_interval_ms = settings.check_interval.as_millis() as u64,
                "memory_limiter: started"
            );
            let sampler = limiter.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(settings.check_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // A release walks the allocator's arenas: off the async workers.
                    let sampler = sampler.clone();
                    if tokio::task::spawn_blocking(move || sampler.check())
                        .await
                        .is_err()
                    {
                        tracing::error!(processor = %id, "memory_limiter: sampling failed");
                    }
                }
            });
            let running: Box<dyn RunningComponent> = Box::new(BackgroundTask(task));
            let consumer: Arc<dyn Consumer> = limiter;
            Ok((consumer, running))
        })
    }
}

#[cfg(test)]
mod tests;

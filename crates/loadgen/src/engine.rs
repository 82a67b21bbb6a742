//! The send loops. Open loop (`--rate`): request k is due at `start + k / rate`, and its
//! latency is measured from that intended time, so a stalled collector shows up in every
//! request that should have been sent during the stall, not only in the one that hit it
//! (no coordinated omission). Closed loop (full speed): `concurrency` requests in flight per
//! connection, latency measured from the actual send.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::encode::Template;
use crate::send::{Outcome, Sender};

/// When to stop sending.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Requests per second for the open loop; `None` for full speed.
    pub rate_rps: Option<f64>,
    pub stop: Stop,
    pub connections: usize,
    /// Closed loop: requests in flight per connection. Open loop: the most in flight per
    /// connection before the scheduler waits (the waiting still counts as latency).
    pub concurrency: usize,
    pub retry: Retry,
    pub pacing: Pacing,
}

/// What wakes the open loop when a request is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// Tokio's timer. It fires on the first millisecond tick after the deadline (its driver
    /// waits in whole milliseconds), so requests leave up to ~1 ms late, and latency, measured
    /// from the intended time, counts that lateness as the collector's. For tests on tokio's
    /// paused clock.
    Timer,
    /// A thread of its own sleeping on the kernel's high-resolution timer, handing each due
    /// request to the runtime: late by the thread's wake-up, tens of microseconds.
    Thread,
}

/// What to do after a definite, retryable refusal (UNAVAILABLE, RESOURCE_EXHAUSTED, HTTP
/// 429/502/503/504), as an OTLP exporter would.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Retry {
    /// Resend the same request (same ids) up to this many times.
    pub retries: u32,
    /// Wait before each resend, doubling each time (capped at 5 s). With full speed, a
    /// worker whose request ends refused also waits this long before its next request, so
    /// that refusals do not turn into a busy loop against the collector.
    pub backoff: Duration,
}

/// The open-loop schedule: intended send times as offsets from the start.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    interval_ns: f64,
}

impl Schedule {
    pub fn new(rate_rps: f64) -> Self {
        Self {
            interval_ns: 1e9 / rate_rps.max(1e-9),
        }
    }

    /// When request `k` is due.
    pub fn intended(&self, k: u64) -> Duration {
        Duration::from_nanos((k as f64 * self.interval_ns).min(u64::MAX as f64 / 2.0) as u64)
    }
}

/// Counters shared with the progress bar and the report.
pub struct Live {
    pub requests_sent: AtomicU64,
    pub spans_sent: AtomicU64,
    pub requests_accepted: AtomicU64,
    pub spans_accepted: AtomicU64,
    pub rejected_spans: AtomicU64,
    pub requests_refused: AtomicU64,
    pub spans_refused: AtomicU64,
    pub uncertain_requests: AtomicU64,
    /// Resends after retryable refusals (not counted in `requests_sent`).
    pub retries: AtomicU64,
    /// Status → (requests, spans).
    pub refused_by_status: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Microseconds.
    pub latency: Mutex<Histogram<u64>>,
    /// Accepted sends per template (what the tally multiplies).
    pub accepted_per_template: Vec<AtomicU64>,
    /// Open loop: the furthest the scheduler fell behind the intended time, in µs.
    pub max_dispatch_lag_us: AtomicU64,
}

impl Live {
    pub fn new(templates: usize) -> Self {
        Self {
            requests_sent: AtomicU64::new(0),
            spans_sent: AtomicU64::new(0),
            requests_accepted: AtomicU64::new(0),
            spans_accepted: AtomicU64::new(0),
            rejected_spans: AtomicU64::new(0),
            requests_refused: AtomicU64::new(0),
            spans_refused: AtomicU64::new(0),
            uncertain_requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            refused_by_status: Mutex::new(BTreeMap::new()),
            latency: Mutex::new(new_histogram()),
            accepted_per_template: (0..templates).map(|_| AtomicU64::new(0)).collect(),
            max_dispatch_lag_us: AtomicU64::new(0),
        }
    }

    /// Records the end of one request of template `t` with `spans` spans.
    pub fn finish(&self, t: usize, spans: u64, outcome: Outcome, latency: Duration) {
        if let Ok(mut h) = self.latency.lock() {
            h.saturating_record((latency.as_micros() as u64).max(1));
        }
        match outcome {
            Outcome::Accepted { rejected_spans } => {
                self.requests_accepted.fetch_add(1, Relaxed);
                self.spans_accepted.fetch_add(spans, Relaxed);
                self.rejected_spans.fetch_add(rejected_spans, Relaxed);
                if let Some(c) = self.accepted_per_template.get(t) {
                    c.fetch_add(1, Relaxed);
                }
            }
            Outcome::Refused { status, uncertain } => {
                self.requests_refused.fetch_add(1, Relaxed);
                self.spans_refused.fetch_add(spans, Relaxed);
                if uncertain {
                    self.uncertain_requests.fetch_add(1, Relaxed);
                }
                if let Ok(mut m) = self.refused_by_status.lock() {
                    let e = m.entry(status).or_default();
                    e.0 += 1;
                    e.1 += spans;
                }
            }
        }
    }

    pub fn latency_snapshot(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| new_histogram())
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// 1 µs to 1 h at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

struct Ctx {
    retry: Retry,
    /// Full speed: pause a worker after a refusal.
    pause_after_refusal: bool,
    templates: Arc<Vec<Template>>,
    live: Arc<Live>,
    /// The time the templates' timestamps were generated at.
    base_time_ns: u64,
}

impl Ctx {
    async fn send_one<S: Sender>(&self, sender: &S, seq: u64, intended: Option<Instant>) {
        let n = self.templates.len().max(1) as u64;
        let ti = (seq % n) as usize;
        let Some(t) = self.templates.get(ti) else {
            return;
        };
        let shift = unix_now_ns().saturating_sub(self.base_time_ns);
        let body = t.instantiate(seq, shift);
        let spans = t.items() as u64;
        self.live.requests_sent.fetch_add(1, Relaxed);
        self.live.spans_sent.fetch_add(spans, Relaxed);
        let sent_at = Instant::now();
        let mut backoff = self.retry.backoff;
        let mut attempt = 0;
        let outcome = loop {
            let outcome = sender.send(body.clone()).await;
            if attempt >= self.retry.retries || !outcome.is_retryable() {
                break outcome;
            }
            attempt += 1;
            self.live.retries.fetch_add(1, Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        };
        let latency = Instant::now().saturating_duration_since(intended.unwrap_or(sent_at));
        let pause = self.pause_after_refusal && outcome.is_retryable();
        self.live.finish(ti, spans, outcome, latency);
        if pause && !self.retry.backoff.is_zero() {
            tokio::time::sleep(self.retry.backoff).await;
        }
    }
}

/// Runs the plan; returns the time from the first send to the last response.
pub async fn run<S: Sender>(
    plan: Plan,
    templates: Arc<Vec<Template>>,
    senders: Vec<S>,
    live: Arc<Live>,
    base_time_ns: u64,
) -> Duration {
    let ctx = Arc::new(Ctx {
        retry: plan.retry,
        pause_after_refusal: plan.rate_rps.is_none(),
        templates,
        live,
        base_time_ns,
    });
    if senders.is_empty() || ctx.templates.is_empty() {
        return Duration::ZERO;
    }
    let start = Instant::now();
    match plan.rate_rps {
        Some(rate) => open_loop(plan, rate, ctx, senders, start).await,
        None => closed_loop(plan, ctx, senders, start).await,
    }
    start.elapsed()
}

async fn closed_loop<S: Sender>(plan: Plan, ctx: Arc<Ctx>, senders: Vec<S>, start: Instant) {
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for sender in &senders {
        for _ in 0..plan.concurrency.max(1) {
            let (ctx, sender, next) = (ctx.clone(), sender.clone(), next.clone());
            workers.spawn(async move {
                loop {
                    if let Stop::After(d) = plan.stop {
                        if start.elapsed() >= d {
                            break;
                        }
                    }
                    let seq = next.fetch_add(1, Relaxed);
                    if let Stop::Requests(n) = plan.stop {
                        if seq >= n {
                            break;
                        }
                    }
                    ctx.send_one(&sender, seq, None).await;
                }
            });
        }
    }
    while workers.join_next().await.is_some() {}
}

async fn open_loop<S: Sender>(
    plan: Plan,
    rate: f64,
    ctx: Arc<Ctx>,
    senders: Vec<S>,
    start: Instant,
) {
    let max_in_flight = (plan.connections.max(1) * plan.concurrency.max(1)).min(1 << 20);
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticks = Ticks::new(plan, Due::new(plan.stop, rate, start));
    while let Some((k, intended)) = ticks.next().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let lag = Instant::now().saturating_duration_since(intended);
        ctx.live
            .max_dispatch_lag_us
            .fetch_max(lag.as_micros() as u64, Relaxed);
        let sender = senders[(k as usize) % senders.len()].clone();
        let ctx = ctx.clone();
        tasks.spawn(async move {
            ctx.send_one(&sender, k, Some(intended)).await;
            drop(permit);
        });
        // Reap finished tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// The open loop's schedule with its end.
#[derive(Clone, Copy)]
struct Due {
    schedule: Schedule,
    stop: Stop,
    start: Instant,
}

impl Due {
    fn new(stop: Stop, rate: f64, start: Instant) -> Self {
        Self {
            schedule: Schedule::new(rate),
            stop,
            start,
        }
    }

    /// When request `k` is due; `None` once the plan has ended.
    fn at(&self, k: u64) -> Option<Instant> {
        let offset = self.schedule.intended(k);
        match self.stop {
            Stop::After(d) if offset >= d => None,
            Stop::Requests(n) if k >= n => None,
            _ => Some(self.start + offset),
        }
    }
}

/// The due requests, in order, each as it falls due, as (k, intended time).
enum Ticks {
    Timer { due: Due, k: u64 },
    Thread(tokio::sync::mpsc::Receiver<(u64, Instant)>),
}

impl Ticks {
    fn new(plan: Plan, due: Due) -> Self {
        match plan.pacing {
            Pacing::Timer => Self::Timer { due, k: 0 },
            Pacing::Thread => {
                // When the open loop falls behind (every request in flight), the pacer waits
                // for room here, and each request's lateness still counts from its own
                // intended time.
                let (tx, rx) = tokio::sync::mpsc::channel(1024);
                let paced = std::thread::Builder::new()
                    .name("loadgen-pacer".into())
                    .spawn(move || pace(due, &tx));
                match paced {
                    Ok(_) => Self::Thread(rx),
                    Err(e) => {
                        eprintln!("loadgen: no pacer thread ({e}); pacing with tokio's timer");
                        Self::Timer { due, k: 0 }
                    }
                }
            }
        }
    }

    async fn next(&mut self) -> Option<(u64, Instant)> {
        match self {
            Self::Timer { due, k } => {
                let intended = due.at(*k)?;
                if intended > Instant::now() {
                    tokio::time::sleep_until(intended).await;
                }
                *k += 1;
                Some((*k - 1, intended))
            }
            Self::Thread(rx) => rx.recv().await,
        }
    }
}

/// The pacer thread: sleeps until each request is due and hands it over, until the plan
/// ends or the open loop stops listening.
fn pace(due: Due, tx: &tokio::sync::mpsc::Sender<(u64, Instant)>) {
    for k in 0.. {
        let Some(intended) = due.at(k) else {
            return;
        };
        let wait = intended
            .into_std()
            .saturating_duration_since(std::time::Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if tx.blocking_send((k, intended)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

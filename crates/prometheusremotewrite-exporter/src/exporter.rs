//! The running exporter: a collector task that walks the sources into a push every
//! interval, a translator task that turns committed OTLP batches into pushes (see
//! [`crate::batches`]), a bounded queue of pushes, and a sender that delivers them in order
//! with retries. At shutdown the collector makes one last push, the translator finishes the
//! batches already committed, and the sender drains the queue until the deadline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt as _;
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{ClientMetadata, Consumer, MetricsSource, RunningComponent, ShutdownError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::batches::{self, BatchConsumer, BatchDone, Slot};
use crate::client::{HttpClient, Outcome};
use crate::config::DEFAULT_PUSH_INTERVAL;
use crate::encode::{encode, Request};
use crate::settings::Settings;

/// How long before the shutdown deadline the senders stop trying.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(50);

/// What the exporter did, for tests and operators.
#[derive(Debug, Default)]
pub struct Stats {
    /// Collections turned into a push.
    pub pushes: AtomicU64,
    /// Requests the endpoint accepted (2xx).
    pub requests_sent: AtomicU64,
    /// Requests given up on: refused (4xx), retries exhausted, or cut off at shutdown.
    pub requests_failed: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
    pub timeseries_sent: AtomicU64,
    pub timeseries_failed: AtomicU64,
    /// Pushes dropped unsent because the queue was full (the oldest go first).
    pub pushes_dropped: AtomicU64,
    /// OTLP batches translated into a push.
    pub batches: AtomicU64,
    /// OTLP batches of which some metrics could not be translated (the rest was sent), as
    /// otelcol's `translation_failures` counts them.
    pub translation_failures: AtomicU64,
}

/// One collection or one OTLP batch: its requests and when it was made.
pub(crate) struct Push {
    pub(crate) timestamp_ms: i64,
    pub(crate) requests: Vec<Request>,
    pub(crate) bytes: u64,
    /// The batch it came from, counted sent or failed when the push is done with.
    pub(crate) batch: Option<BatchDone>,
    /// The metadata of the client that sent that batch, for the credentials.
    pub(crate) client: Option<ClientMetadata>,
}

#[derive(Default)]
struct Queue {
    pushes: VecDeque<Push>,
    bytes: u64,
    /// Queue places taken by OTLP batches committed or reserved but not yet queued (or, with
    /// the queue off, not yet sent).
    reserved: usize,
    reserved_bytes: u64,
}

pub(crate) struct Inner {
    pub(crate) component: String,
    pub(crate) settings: Settings,
    sources: Arc<[Arc<dyn MetricsSource>]>,
    client: HttpClient,
    pub(crate) stats: Arc<Stats>,
    queue: Mutex<Queue>,
    pub(crate) wake: Notify,
    /// Set when shutdown starts: retries and waits end by then.
    deadline: Mutex<Option<Instant>>,
    last_timestamp_ms: AtomicI64,
    /// The collector has handed over its final push: the sender may stop once idle.
    final_enqueued: AtomicBool,
    /// The translator has queued every batch committed before the stop.
    pub(crate) translator_done: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind: keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn deadline(&self) -> Option<Instant> {
        *lock(&self.deadline)
    }

    /// Collection time in ms, strictly after the previous push's: Prometheus refuses a second
    /// sample of a series at the same timestamp with another value.
    fn next_timestamp(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut last = self.last_timestamp_ms.load(Ordering::Relaxed);
        loop {
            let ts = now.max(last + 1);
            match self.last_timestamp_ms.compare_exchange(
                last,
                ts,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return ts,
                Err(actual) => last = actual,
            }
        }
    }

    /// Walks every source into a push (on a blocking thread: 100k series take a while).
    async fn collect(self: &Arc<Self>) -> Option<Push> {
        let timestamp_ms = self.next_timestamp();
        let me = self.clone();
        let job = tokio::task::spawn_blocking(move || {
            encode(&me.sources, &me.settings.encode, timestamp_ms)
        });
        let encoded = match job.await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(component = %self.component, error = %e, "collecting metrics failed; push skipped");
                return None;
            }
        };
        if encoded.duplicates > 0 {
            tracing::warn!(component = %self.component, duplicates = encoded.duplicates, "series exported twice with the same labels; the later ones were left out");
        }
        self.stats.pushes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            component = %self.component,
            timestamp_ms,
            timeseries = encoded.timeseries,
            requests = encoded.requests.len(),
            uncompressed_bytes = encoded.uncompressed_bytes,
            "collected a push"
        );
        let bytes = encoded.requests.iter().map(|r| r.body.len() as u64).sum();
        Some(Push {
            timestamp_ms,
            requests: encoded.requests,
            bytes,
            batch: None,
            client: None,
        })
    }

    /// Takes a queue place for an OTLP batch of `bytes`, or none when the queue is full (with
    /// the queue off: while another batch is being sent), so the client is told to retry
    /// instead of the exporter dropping what it accepted.
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Slot> {
        let cfg = &self.settings.queue;
        let mut q = lock(&self.queue);
        let fits = if cfg.enabled {
            let max_pushes = usize::try_from(cfg.queue_size).unwrap_or(usize::MAX).max(1);
            let empty = q.pushes.is_empty() && q.reserved == 0;
            q.pushes.len() + q.reserved < max_pushes
                // One batch larger than the byte bound still goes when nothing waits.
                && (empty || q.bytes + q.reserved_bytes + bytes <= cfg.queue_size_bytes)
        } else {
            q.reserved == 0
        };
        if !fits {
            return None;
        }
        q.reserved += 1;
        q.reserved_bytes += bytes;
        Some(Slot {
            inner: Some(self.clone()),
            bytes,
        })
    }

    pub(crate) fn release(&self, bytes: u64) {
        let mut q = lock(&self.queue);
        q.reserved = q.reserved.saturating_sub(1);
        q.reserved_bytes = q.reserved_bytes.saturating_sub(bytes);
    }

    /// Queues a batch's push in the place its reservation took; it never displaces another.
    pub(crate) fn enqueue_reserved(&self, push: Push, mut slot: Slot) {
        slot.inner = None;
        let mut q = lock(&self.queue);
        q.reserved = q.reserved.saturating_sub(1);
        q.reserved_bytes = q.reserved_bytes.saturating_sub(slot.bytes);
        q.bytes += push.bytes;
        q.pushes.push_back(push);
        drop(q);
        self.wake.notify_one();
    }

    fn enqueue(&self, push: Push) {
        let cfg = &self.settings.queue;
        let max_pushes = usize::try_from(cfg.queue_size).unwrap_or(usize::MAX).max(1);
        let mut q = lock(&self.queue);
        // Values are cumulative: the newest push supersedes the oldest, so drop from the front.
        while !q.pushes.is_empty()
            && (q.pushes.len() >= max_pushes || q.bytes + push.bytes > cfg.queue_size_bytes)
        {
            if let Some(old) = q.pushes.pop_front() {
                q.bytes -= old.bytes;
                let ts: usize = old.requests.iter().map(|r| r.timeseries).sum();
                self.stats.pushes_dropped.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .timeseries_failed
                    .fetch_add(ts as u64, Ordering::Relaxed);
                tracing::warn!(component = %self.component, timestamp_ms = old.timestamp_ms, timeseries = ts, "remote-write queue full; dropped the oldest push");
            }
        }
        q.bytes += push.bytes;
        q.pushes.push_back(push);
        drop(q);
        self.wake.notify_one();
    }

    fn dequeue(&self) -> Option<Push> {
        let mut q = lock(&self.queue);
        let p = q.pushes.pop_front()?;
        q.bytes -= p.bytes;
        Some(p)
    }

    /// Sends every request of a push, `parallelism` at a time (they hold distinct series).
    pub(crate) async fn send_push(&self, push: Push, stop: &watch::Receiver<bool>) {
        let parallel = self.settings.parallelism.max(1);
        let Push {
            requests,
            batch,
            client,
            ..
        } = push;
        let client = client.as_ref();
        let delivered = futures::stream::iter(requests)
            .map(|r| {
                let stop = stop.clone();
                async move { self.send_request(r, stop, client).await }
            })
            .buffer_unordered(parallel)
            .fold(true, |all, ok| async move { all && ok })
            .await;
        if let Some(mut b) = batch {
            b.delivered = delivered;
        }
    }

    /// Sends one request, retrying per `retry_on_failure`. Returns whether it was delivered.
    async fn send_request(
        &self,
        req: Request,
        mut stop: watch::Receiver<bool>,
        client: Option<&ClientMetadata>,
    ) -> bool {
        let retry = &self.settings.retry;
        let started = Instant::now();
        let mut backoff = retry.backoff();
        loop {
            // Shutting down, an attempt must end a little before the deadline: the shutdown
            // waits for the senders only until then, and one still sending at that instant
            // turns a clean give-up into "dropped at the deadline".
            let timeout = match (self.settings.timeout, self.deadline()) {
                (t, Some(d)) => Some(
                    t.map_or(Duration::MAX, |t| t).min(
                        d.saturating_duration_since(Instant::now())
                            .saturating_sub(SHUTDOWN_MARGIN),
                    ),
                ),
                (t, None) => t,
            };
            let (reason, after) = match self.client.send(req.body.clone(), timeout, client).await {
                Outcome::Sent => {
                    self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .timeseries_sent
                        .fetch_add(req.timeseries as u64, Ordering::Relaxed);
                    return true;
                }
                Outcome::Permanent { status, body } => {
                    tracing::warn!(component = %self.component, status = %status, response = %body, timeseries = req.timeseries, "remote-write endpoint refused the request; dropped");
                    return self.failed(&req);
                }
                Outcome::NoCredentials(reason) => {
                    tracing::warn!(component = %self.component, %reason, timeseries = req.timeseries, "the authenticator gave no credentials; request dropped");
                    return self.failed(&req);
                }
                Outcome::Retry { reason, after } => (reason, after),
            };
            if !retry.enabled {
                tracing::warn!(component = %self.component, reason = %reason, timeseries = req.timeseries, "remote write failed and retry_on_failure is off; dropped");
                return self.failed(&req);
            }
            let mut wait = backoff.next_delay();
            if let Some(after) = after {
                wait = wait.max(after);
            }
            let elapsed_limit = !retry.max_elapsed_time.is_zero()
                && started.elapsed() + wait > retry.max_elapsed_time;
            let past_deadline = self
                .deadline()
                .is_some_and(|d| Instant::now() + wait + SHUTDOWN_MARGIN >= d);
            if elapsed_limit || past_deadline {
                tracing::warn!(component = %self.component, reason = %reason, timeseries = req.timeseries,
                    elapsed = ?started.elapsed(), shutting_down = past_deadline, "remote write failed; giving up on the request");
                return self.failed(&req);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(component = %self.component, reason = %reason, wait = ?wait, "remote write failed; retrying");
            // Shutdown starting cuts a wait short (the deadline check above then decides);
            // once it has started, waits run in full so a dead endpoint is not hammered.
            if *stop.borrow() {
                tokio::time::sleep(wait).await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            }
        }
    }

    fn failed(&self, req: &Request) -> bool {
        self.stats.requests_failed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .timeseries_failed
            .fetch_add(req.timeseries as u64, Ordering::Relaxed);
        false
    }
}

/// The started exporter.
pub struct Running {
    inner: Arc<Inner>,
    interval: Duration,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    consumer: Arc<BatchConsumer>,
}

impl Running {
    pub(crate) fn start(
        component: String,
        settings: Settings,
        sources: Vec<Arc<dyn MetricsSource>>,
        client: HttpClient,
        counters: Arc<ExporterCounters>,
    ) -> Self {
        // otelcol pushes whenever the connector flushes: take the shortest flush interval of
        // the sources unless `push_interval` says otherwise.
        let interval = settings
            .push_interval
            .or_else(|| sources.iter().filter_map(|s| s.flush_interval()).min())
            .unwrap_or(DEFAULT_PUSH_INTERVAL)
            .max(Duration::from_millis(1));
        let queued = settings.queue.enabled;
        let inner = Arc::new(Inner {
            component,
            settings,
            sources: sources.into(),
            client,
            stats: Arc::new(Stats::default()),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            deadline: Mutex::new(None),
            last_timestamp_ms: AtomicI64::new(0),
            final_enqueued: AtomicBool::new(false),
            translator_done: AtomicBool::new(false),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (jobs, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = vec![
            tokio::spawn(collector(inner.clone(), interval, stop_rx.clone())),
            tokio::spawn(batches::translator(inner.clone(), jobs_rx, stop_rx.clone())),
        ];
        if queued {
            tasks.push(tokio::spawn(sender(inner.clone(), stop_rx)));
        }
        tracing::info!(
            component = %inner.component,
            endpoint = %redacted(&inner.settings.url),
            interval = ?interval,
            queue = queued,
            "pushing metrics by Prometheus remote write"
        );
        let consumer = Arc::new(BatchConsumer::new(inner.clone(), jobs, counters));
        Self {
            inner,
            interval,
            stop,
            tasks,
            consumer,
        }
    }

    /// Takes the OTLP metrics batches of the pipelines the exporter is in.
    pub fn consumer(&self) -> Arc<dyn Consumer> {
        self.consumer.clone()
    }

    /// Counters of what was sent and dropped.
    pub fn stats(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// The interval pushes are made at.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// The URL without its query (which may carry a token).
fn redacted(url: &http::Uri) -> String {
    format!(
        "{}://{}{}",
        url.scheme_str().unwrap_or(""),
        url.authority().map_or("", |a| a.as_str()),
        url.path()
    )
}

async fn collector(inner: Arc<Inner>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let queued = inner.settings.queue.enabled;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // Without a queue a slow send delays the next collection; ticks missed meanwhile are
    // skipped rather than bunched up.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        // An exporter fed by OTLP batches only has nothing to collect.
        if inner.sources.is_empty() {
            continue;
        }
        if let Some(push) = inner.collect().await {
            if queued {
                inner.enqueue(push);
            } else {
                inner.send_push(push, &stop).await;
            }
        }
    }
    // The final push, so the last values (spans received just before the stop) arrive.
    let last = if inner.sources.is_empty() {
        None
    } else {
        inner.collect().await
    };
    if let Some(push) = last {
        if queued {
            inner.enqueue(push);
        } else {
            inner.send_push(push, &stop).await;
        }
    }
    inner.final_enqueued.store(true, Ordering::Release);
    inner.wake.notify_one();
}

async fn sender(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Some(push) = inner.dequeue() {
            inner.send_push(push, &stop).await;
            continue;
        }
        if inner.final_enqueued.load(Ordering::Acquire)
            && inner.translator_done.load(Ordering::Acquire)
        {
            break;
        }
        // The collector wakes us for every push, the final one included.
        let stopping = *stop.borrow();
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = stop.wait_for(|s| *s), if !stopping => {}
        }
    }
}

impl RunningComponent for Running {
    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async move {
            let Running {
                inner,
                stop,
                tasks,
                consumer,
                ..
            } = *self;
            consumer.close();
            *lock(&inner.deadline) = Some(deadline);
            let _ = stop.send(true);
            let mut handles = tasks;
            let joined = tokio::time::timeout_at(
                tokio::time::Instant::from_std(deadline),
                futures::future::join_all(handles.iter_mut()),
            )
            .await;
            if joined.is_ok() {
                let failed = inner.stats.requests_failed.load(Ordering::Relaxed);
                tracing::info!(component = %inner.component,
                    sent = inner.stats.requests_sent.load(Ordering::Relaxed), failed,
                    "remote-write exporter stopped");
                return Ok(());
            }
            for h in &handles {
                h.abort();
            }
            let left: usize = lock(&inner.queue)
                .pushes
                .iter()
                .map(|p| p.requests.len())
                .sum();
            Err(ShutdownError {
                component: inner.component.clone(),
                reason: format!(
                    "pushes still unsent at the shutdown deadline were dropped ({left} queued request(s) and those in flight)"
                ),
            })
        })
    }
}

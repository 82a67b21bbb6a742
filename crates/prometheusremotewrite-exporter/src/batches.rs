//! OTLP metrics batches: each committed batch is translated on its own, as otelcol's
//! exporter translates each request it is given (points keep their timestamps; nothing is
//! accumulated across batches), and becomes one push through the same queue, retries and
//! `max_batch_size_bytes` splitting as the collected pushes.
//!
//! `reserve` takes a queue place (refusing when the queue is full, so the client retries
//! instead of the exporter dropping what it accepted); `commit` hands the batch to the
//! translator task, which keeps commit order, so samples of one series reach the endpoint in
//! the order the client sent them. Counters follow otelcol's exporterhelper: a batch's points
//! are `sent` when every request of its push was accepted, `send_failed` otherwise, and
//! `enqueue_failed` when the queue refused them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{Batch, Consumer, Refused, Reservation};
use tokio::sync::{mpsc, watch};

use crate::encode::encode_with;
use crate::exporter::{Inner, Push};

/// A queue place taken by one batch; dropping it gives the place back.
pub(crate) struct Slot {
    /// `None` once the place has been handed to the queued push.
    pub(crate) inner: Option<Arc<Inner>>,
    pub(crate) bytes: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.release(self.bytes);
        }
    }
}

/// The points of one batch, counted when its push is done with: sent if every request was
/// delivered, failed otherwise (also when the push is dropped unsent, e.g. at shutdown).
pub(crate) struct BatchDone {
    items: u64,
    counters: Arc<ExporterCounters>,
    pub(crate) delivered: bool,
}

impl Drop for BatchDone {
    fn drop(&mut self) {
        let counter = if self.delivered {
            &self.counters.sent
        } else {
            &self.counters.send_failed
        };
        counter.fetch_add(self.items, Ordering::Relaxed);
    }
}

pub(crate) struct Job {
    batch: Batch,
    slot: Slot,
    done: BatchDone,
}

/// The exporter's side of the metrics pipelines it is in.
pub(crate) struct BatchConsumer {
    inner: Arc<Inner>,
    jobs: mpsc::UnboundedSender<Job>,
    counters: Arc<ExporterCounters>,
    closed: AtomicBool,
}

impl BatchConsumer {
    pub(crate) fn new(
        inner: Arc<Inner>,
        jobs: mpsc::UnboundedSender<Job>,
        counters: Arc<ExporterCounters>,
    ) -> Self {
        Self {
            inner,
            jobs,
            counters,
            closed: AtomicBool::new(false),
        }
    }

    /// Refuses batches from now on (shutdown has started).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn refuse(&self, batch: &Batch, reason: &str) -> Refused {
        self.counters
            .enqueue_failed
            .fetch_add(batch.items as u64, Ordering::Relaxed);
        Refused {
            component: self.inner.component.clone(),
            reason: reason.to_owned(),
            retry_after: Duration::from_secs(1),
            permanent: false,
        }
    }
}

struct Commit {
    slot: Slot,
    jobs: mpsc::UnboundedSender<Job>,
    counters: Arc<ExporterCounters>,
}

impl Reservation for Commit {
    fn commit(self: Box<Self>, mut batch: Batch) {
        // Translation reads the request; a client's gzip frame would only hold memory.
        batch.drop_gzip_frame();
        let done = BatchDone {
            items: batch.items as u64,
            counters: self.counters,
            delivered: false,
        };
        // The translator only ends after shutdown; a batch committed that late is counted
        // failed by `done` as the job drops.
        let _ = self.jobs.send(Job {
            batch,
            slot: self.slot,
            done,
        });
    }
}

impl Consumer for BatchConsumer {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if self.closed.load(Ordering::Acquire) {
            return Err(self.refuse(batch, "exporter is shutting down"));
        }
        match self.inner.try_reserve(batch.byte_len() as u64) {
            Some(slot) => Ok(Box::new(Commit {
                slot,
                jobs: self.jobs.clone(),
                counters: self.counters.clone(),
            })),
            None => Err(self.refuse(batch, "sending queue is full")),
        }
    }
}

/// Translates committed batches in commit order until the stop, then those committed before
/// it, and queues (or, without a queue, sends) their pushes.
pub(crate) async fn translator(
    inner: Arc<Inner>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let job = tokio::select! {
            biased;
            job = jobs.recv() => job,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(job) = job else { break };
        handle(&inner, job, &stop).await;
    }
    while let Ok(job) = jobs.try_recv() {
        handle(&inner, job, &stop).await;
    }
    inner.translator_done.store(true, Ordering::Release);
    inner.wake.notify_one();
}

async fn handle(inner: &Arc<Inner>, job: Job, stop: &watch::Receiver<bool>) {
    let Job {
        batch,
        slot,
        mut done,
    } = job;
    let timestamp_ms = now_ms();
    let client = batch.client().cloned();
    let me = inner.clone();
    // Translation is CPU work proportional to the batch: off the async workers.
    let encoded = tokio::task::spawn_blocking(move || {
        let mut result = Ok(Default::default());
        let encoded = encode_with(&me.settings.encode, timestamp_ms, |sink| {
            result =
                redline_prometheus_translate::translate(&batch.raw, &me.settings.translate, sink);
        });
        (encoded, result)
    })
    .await;
    let (encoded, result) = match encoded {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(component = %inner.component, error = %e, "translating a metrics batch failed; dropped");
            return;
        }
    };
    inner.stats.batches.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(t) if t.dropped_not_cumulative > 0 || encoded.skipped_points > 0 => {
            inner
                .stats
                .translation_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(component = %inner.component, not_cumulative = t.dropped_not_cumulative,
                skipped = encoded.skipped_points, "some metrics could not be translated; exporting the rest");
        }
        Ok(_) => {}
        Err(e) => {
            // The receiver decoded the batch already, so this is not expected; nothing of it
            // can be sent.
            inner
                .stats
                .translation_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(component = %inner.component, error = %e, "metrics batch could not be translated; dropped");
            return;
        }
    }
    if encoded.requests.is_empty() {
        // Nothing to send is a success in otelcol.
        done.delivered = true;
        return;
    }
    let bytes = encoded.requests.iter().map(|r| r.body.len() as u64).sum();
    let push = Push {
        timestamp_ms,
        requests: encoded.requests,
        bytes,
        batch: Some(done),
        client,
    };
    if inner.settings.queue.enabled {
        inner.enqueue_reserved(push, slot);
    } else {
        inner.send_push(push, stop).await;
        drop(slot);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

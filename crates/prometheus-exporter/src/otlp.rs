//! OTLP metrics batches into the exporter: each committed batch is accumulated (last value
//! per series, as otelcol's accumulator keeps it) and served at scrape time next to the
//! connectors' state.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{Batch, Consumer, Refused, Reservation};
use redline_prometheus_translate::Accumulator;

/// otelcol's `metric_expiration` default.
pub(crate) const DEFAULT_METRIC_EXPIRATION: Duration = Duration::from_secs(5 * 60);
/// Expired series are dropped at least this often when nobody scrapes (a scrape drops them
/// too), so memory does not keep series nobody sends any more.
const CLEANUP_EVERY_AT_MOST: Duration = Duration::from_secs(60);

/// The exporter's consumer of OTLP metrics batches.
pub(crate) struct OtlpConsumer {
    inner: Arc<Inner>,
}

struct Inner {
    component: String,
    accumulator: Arc<Accumulator>,
    counters: Arc<ExporterCounters>,
}

impl OtlpConsumer {
    pub(crate) fn new(
        component: String,
        accumulator: Arc<Accumulator>,
        counters: Arc<ExporterCounters>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                component,
                accumulator,
                counters,
            }),
        }
    }
}

impl Consumer for OtlpConsumer {
    /// Never refuses: otelcol's exporter has no queue by default and accumulating is a
    /// bounded amount of CPU work per batch, done in `commit`.
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        Ok(Box::new(Commit(self.inner.clone())))
    }
}

struct Commit(Arc<Inner>);

impl Reservation for Commit {
    fn commit(self: Box<Self>, batch: Batch) {
        let inner = &self.0;
        let items = batch.items as u64;
        match inner.accumulator.accumulate(&batch.raw) {
            // otelcol counts every point of a request it consumed as sent, also those the
            // accumulator drops (out of order, delta non-monotonic, …).
            Ok(_) => {
                inner.counters.sent.fetch_add(items, Ordering::Relaxed);
            }
            Err(e) => {
                inner
                    .counters
                    .send_failed
                    .fetch_add(items, Ordering::Relaxed);
                tracing::error!(component = %inner.component, error = %e, "OTLP metrics batch dropped");
            }
        }
    }
}

/// Drops expired series on a timer, as otelcol does between scrapes. Ends once the
/// accumulator is gone (the exporter and its pipelines dropped).
pub(crate) fn spawn_cleanup(accumulator: &Arc<Accumulator>, expiration: Duration) {
    let weak: Weak<Accumulator> = Arc::downgrade(accumulator);
    let every = expiration.clamp(Duration::from_secs(1), CLEANUP_EVERY_AT_MOST);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(acc) = weak.upgrade() else {
                return;
            };
            acc.cleanup_expired(Instant::now());
        }
    });
}

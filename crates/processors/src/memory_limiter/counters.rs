//! What the memory limiter counts, under otelcol's names: the items it let through and the
//! items it refused (`otelcol_processor_memory_limiter_accepted_spans`, `..._refused_spans`
//! and their metric-point and log-record twins), and the items every otelcol processor counts
//! in and out (`otelcol_processor_incoming_items`, `..._outgoing_items`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redline_pipeline::telemetry::{self, CounterDesc, ProcessorCounters, Telemetry};
use redline_pipeline::{Batch, Reservation, Signal};

pub struct LimiterCounters {
    accepted: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    items: Arc<ProcessorCounters>,
}

impl LimiterCounters {
    pub fn new(telemetry: &Telemetry, processor: &str, signal: Signal) -> Self {
        // otelcol's descriptions, stability tag included (both serve the same HELP), which
        // speak of the next component although the limiter decides alone.
        let [(accepted, accepted_help), (refused, refused_help)] = match signal {
            Signal::Traces => [
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_ACCEPTED_SPANS,
                    "Number of spans successfully pushed into the next component in the pipeline. [Alpha]",
                ),
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_REFUSED_SPANS,
                    "Number of spans that were rejected by the next component in the pipeline. [Alpha]",
                ),
            ],
            Signal::Metrics => [
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_ACCEPTED_METRIC_POINTS,
                    "Number of metric points successfully pushed into the next component in the pipeline. [Alpha]",
                ),
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_REFUSED_METRIC_POINTS,
                    "Number of metric points that were rejected by the next component in the pipeline. [Alpha]",
                ),
            ],
            Signal::Logs => [
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_ACCEPTED_LOG_RECORDS,
                    "Number of log records successfully pushed into the next component in the pipeline. [Alpha]",
                ),
                (
                    telemetry::PROCESSOR_MEMORY_LIMITER_REFUSED_LOG_RECORDS,
                    "Number of log records that were rejected by the next component in the pipeline. [Alpha]",
                ),
            ],
        };
        let unit = match signal {
            Signal::Traces => "{span}",
            Signal::Metrics => "{datapoint}",
            Signal::Logs => "{record}",
        };
        let series = |name, description| {
            telemetry
                .counter_family(CounterDesc {
                    name,
                    description,
                    unit,
                })
                .series(&[("processor", processor)])
        };
        Self {
            accepted: series(accepted, accepted_help),
            refused: series(refused, refused_help),
            items: telemetry.processor(processor, signal),
        }
    }

    /// The limiter let `items` through, whatever the next component then does with them (as
    /// otelcol counts).
    pub(super) fn accepted(&self, items: usize) {
        self.accepted.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub(super) fn refused(&self, items: usize) {
        self.refused.fetch_add(items as u64, Ordering::Relaxed);
    }

    /// The next component's reservation, counting the batch in and out when it is committed.
    pub(super) fn counting(&self, next: Box<dyn Reservation>) -> Box<dyn Reservation> {
        Box::new(Counted {
            next,
            items: self.items.clone(),
        })
    }
}

struct Counted {
    next: Box<dyn Reservation>,
    items: Arc<ProcessorCounters>,
}

impl Reservation for Counted {
    fn commit(self: Box<Self>, batch: Batch) {
        let n = batch.items as u64;
        self.items.incoming.fetch_add(n, Ordering::Relaxed);
        self.items.outgoing.fetch_add(n, Ordering::Relaxed);
        self.next.commit(batch);
    }
}

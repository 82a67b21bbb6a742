//! Histograms a component defines itself (otelcol's component-specific histograms, such as
//! the groupbyattrs processor's group counts), without labels and shared by name, served once
//! something was recorded, as an OTel SDK histogram is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::CounterDesc;
use crate::metrics::{FamilyDesc, HistogramPoint, MetricKind, MetricsSink};

/// The OTel SDK's default explicit bucket bounds, which otelcol's histograms use unless
/// their metadata names others.
pub const DEFAULT_BOUNDS: &[f64] = &[
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

#[derive(Clone)]
pub struct HistogramFamily {
    pub(super) inner: Arc<HistogramState>,
}

pub(super) struct HistogramState {
    pub desc: CounterDesc,
    bounds: &'static [f64],
    /// Per bucket, `bounds.len() + 1` of them (the last for +Inf), and the sum, together so a
    /// scrape never sees a count without its sum.
    recorded: Mutex<Recorded>,
    count: AtomicU64,
}

struct Recorded {
    buckets: Vec<u64>,
    sum: f64,
}

impl HistogramState {
    pub fn new(desc: CounterDesc, bounds: &'static [f64]) -> Self {
        Self {
            desc,
            bounds,
            recorded: Mutex::new(Recorded {
                buckets: vec![0; bounds.len() + 1],
                sum: 0.0,
            }),
            count: AtomicU64::new(0),
        }
    }

    pub fn collect(&self, sink: &mut dyn MetricsSink, start_time_unix_nano: u64) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (buckets, sum) = {
            let r = self.recorded.lock();
            (r.buckets.clone(), r.sum)
        };
        sink.family(&FamilyDesc {
            name: self.desc.name,
            description: self.desc.description,
            unit: self.desc.unit,
            kind: MetricKind::Histogram,
        });
        sink.histogram(
            &[],
            &HistogramPoint {
                bounds: self.bounds,
                bucket_counts: &buckets,
                sum,
                count: buckets.iter().sum(),
                start_time_unix_nano,
                time_unix_nano: 0,
                exemplars: &[],
            },
        );
    }
}

impl HistogramFamily {
    /// Records one value: in the first bucket whose upper bound is at least the value.
    pub fn record(&self, value: f64) {
        let state = &self.inner;
        let bucket = state
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(state.bounds.len());
        {
            let mut r = state.recorded.lock();
            if let Some(b) = r.buckets.get_mut(bucket) {
                *b += 1;
            }
            r.sum += value;
        }
        state.count.fetch_add(1, Ordering::Relaxed);
    }
}

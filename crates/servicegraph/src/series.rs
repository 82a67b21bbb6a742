//! The edge metrics: one series per label set (client, server, connection type, failed,
//! dimensions, virtual node label), sharded by the hash of that set with one lock per shard,
//! like spanmetrics' series map. A completed request takes one shard lock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashMap};
use parking_lot::Mutex;
use redline_pipeline::Exemplar;

use crate::edge::{ConnType, VirtualNode};

/// The labels of one series (otelcol's metric key, plus the `virtual_node` label).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SeriesKey {
    pub client: Arc<str>,
    pub server: Arc<str>,
    pub conn: ConnType,
    pub failed: bool,
    /// As [`crate::edge::Edge::dims`].
    pub dims: Box<[Option<Box<str>>]>,
    pub virtual_node: VirtualNode,
}

/// A latency histogram in seconds; counts are weighted.
#[derive(Clone, Debug)]
pub(crate) struct Hist {
    pub counts: Box<[u64]>,
    pub sum: f64,
    pub count: u64,
    /// The most recent request's trace and span.
    pub exemplar: Option<Exemplar>,
}

impl Hist {
    fn new(n_buckets: usize) -> Self {
        Self {
            counts: vec![0; n_buckets + 1].into_boxed_slice(),
            sum: 0.0,
            count: 0,
            exemplar: None,
        }
    }

    fn observe(&mut self, bounds: &[f64], value: f64, weight: u64, exemplar: Option<Exemplar>) {
        // Upper-inclusive: the first bound >= the value (Go's sort.SearchFloat64s).
        let i = bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(weight);
        }
        self.count = self.count.saturating_add(weight);
        self.sum += value * weight as f64;
        if exemplar.is_some() {
            self.exemplar = exemplar;
        }
    }
}

/// One series' values.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub total: u64,
    pub server: Hist,
    pub client: Hist,
    pub last_ms: u64,
}

/// One completed request, as recorded.
pub(crate) struct Observation {
    pub weight: u64,
    pub server_s: f64,
    pub client_s: f64,
    pub server_exemplar: Option<Exemplar>,
    pub client_exemplar: Option<Exemplar>,
    pub now_ms: u64,
}

#[repr(align(128))]
struct Padded(Mutex<HashMap<SeriesKey, Series>>);

pub(crate) struct SeriesMap {
    shards: Box<[Padded]>,
    mask: usize,
    hasher: DefaultHashBuilder,
    bounds: Vec<f64>,
    count: AtomicUsize,
}

impl SeriesMap {
    pub(crate) fn new(bounds: Vec<f64>) -> Self {
        let n = 16;
        Self {
            shards: (0..n).map(|_| Padded(Mutex::new(HashMap::new()))).collect(),
            mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            bounds,
            count: AtomicUsize::new(0),
        }
    }

    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, key: SeriesKey, obs: &Observation) {
        let idx = (self.hasher.hash_one(&key) >> 32) as usize & self.mask;
        let Some(shard) = self.shards.get(idx) else {
            return;
        };
        let mut shard = shard.0.lock();
        let n = self.bounds.len();
        let series = shard.entry(key).or_insert_with(|| {
            self.count.fetch_add(1, Ordering::Relaxed);
            Series {
                total: 0,
                server: Hist::new(n),
                client: Hist::new(n),
                last_ms: 0,
            }
        });
        series.total = series.total.saturating_add(obs.weight);
        series
            .server
            .observe(&self.bounds, obs.server_s, obs.weight, obs.server_exemplar);
        series
            .client
            .observe(&self.bounds, obs.client_s, obs.weight, obs.client_exemplar);
        series.last_ms = obs.now_ms;
    }

    /// Removes series not updated for `idle_ms` (otelcol's cache cleaning). Returns how many.
    pub(crate) fn remove_idle(&self, now_ms: u64, idle_ms: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            let before = shard.len();
            shard.retain(|_, s| now_ms.saturating_sub(s.last_ms) < idle_ms);
            removed += before - shard.len();
        }
        if removed > 0 {
            self.count.fetch_sub(removed, Ordering::Relaxed);
        }
        removed
    }

    /// A copy of every series, one shard lock at a time, so a scrape renders without holding
    /// any lock.
    pub(crate) fn snapshot(&self) -> Vec<(SeriesKey, Series)> {
        let mut out = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            let shard = shard.0.lock();
            out.extend(shard.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }
}

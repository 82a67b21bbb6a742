//! The pairing store: edges waiting for their other span, sharded by the hash of their key
//! (trace id + the client span's id) with one lock per shard, so spans of different requests
//! rarely meet on a lock. `store.max_items` bounds all shards together through one atomic
//! admission count; nothing takes a global lock.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashbrown::{DefaultHashBuilder, HashMap};
use parking_lot::Mutex;

use crate::edge::{Edge, PairKey};

/// What became of a span's upsert.
pub(crate) enum Upsert {
    /// The edge has both sides now (or was a database call, complete at once); it left the
    /// store. `new`: it was created by this span (otelcol counts it in `total_edges`).
    Completed { edge: Edge, new: bool },
    /// The edge waits for its other span; `new` as above.
    Stored { new: bool },
    /// The store is full: the span was dropped.
    Dropped,
}

struct Shard {
    edges: HashMap<PairKey, Edge>,
    /// No edge of the shard expires before this (it may be lower than the true minimum after
    /// removals; a sweep then recomputes it). Spares a full shard a scan per dropped span.
    oldest_ms: u64,
}

/// Keeps each shard's lock on its own cache lines.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

pub(crate) struct Store {
    shards: Box<[Padded]>,
    mask: usize,
    hasher: DefaultHashBuilder,
    items: AtomicUsize,
    max_items: usize,
    ttl_ms: u64,
    /// No edge of any shard expires before this (see [`Shard::oldest_ms`]): tells a full
    /// store whether sweeping every shard can make room. A sweep racing an insert may leave it
    /// too high; the periodic expiry corrects it within `store_expiration_loop`.
    next_expiry_ms: AtomicU64,
}

impl Store {
    pub(crate) fn new(max_items: usize, ttl_ms: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = (cores * 4).next_power_of_two().clamp(16, 256);
        Self {
            shards: (0..n)
                .map(|_| {
                    Padded(Mutex::new(Shard {
                        edges: HashMap::new(),
                        oldest_ms: u64::MAX,
                    }))
                })
                .collect(),
            mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            items: AtomicUsize::new(0),
            max_items,
            ttl_ms,
            next_expiry_ms: AtomicU64::new(u64::MAX),
        }
    }

    /// Edges held now, all shards together.
    pub(crate) fn len(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    fn admit(&self) -> bool {
        self.items
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_items).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        if n > 0 {
            self.items.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Finds or creates the edge of `key` and applies `update` to it, as otelcol's
    /// `UpsertEdge`. When the store is full, expired edges are swept first (into `expired`,
    /// for the caller to handle as otelcol's `onExpire`) to make room: the shard's own, then,
    /// if some shard holds one, every shard's.
    pub(crate) fn upsert(
        &self,
        key: PairKey,
        now_ms: u64,
        n_dims: usize,
        update: impl FnOnce(&mut Edge),
        expired: &mut Vec<(PairKey, Edge)>,
    ) -> Upsert {
        let idx = (self.hasher.hash_one(key) >> 32) as usize & self.mask;
        let Some(shard) = self.shards.get(idx) else {
            return Upsert::Dropped;
        };
        let mut shard = shard.0.lock();
        if let Some(edge) = shard.edges.get_mut(&key) {
            update(edge);
            if !edge.is_complete() {
                return Upsert::Stored { new: false };
            }
            let Some(edge) = shard.edges.remove(&key) else {
                return Upsert::Stored { new: false };
            };
            self.release(1);
            return Upsert::Completed { edge, new: false };
        }

        let mut edge = Edge::new(&key, now_ms.saturating_add(self.ttl_ms), n_dims);
        update(&mut edge);
        if edge.is_complete() {
            return Upsert::Completed { edge, new: true };
        }
        if !self.admit() {
            if now_ms > shard.oldest_ms {
                let swept = sweep(&mut shard, now_ms, expired);
                self.release(swept);
            }
            if !self.admit() {
                if now_ms <= self.next_expiry_ms.load(Ordering::Relaxed) {
                    return Upsert::Dropped;
                }
                // The other shards' locks are taken one at a time, never two together.
                drop(shard);
                self.expire(now_ms, expired);
                if !self.admit() {
                    return Upsert::Dropped;
                }
                shard = match self.shards.get(idx) {
                    Some(s) => s.0.lock(),
                    None => return Upsert::Dropped,
                };
                if shard.edges.contains_key(&key) {
                    // Another span of this edge came in meanwhile: this one is dropped
                    // rather than overwrite it.
                    self.release(1);
                    return Upsert::Dropped;
                }
            }
        }
        shard.oldest_ms = shard.oldest_ms.min(edge.expires_ms);
        self.next_expiry_ms
            .fetch_min(edge.expires_ms, Ordering::Relaxed);
        shard.edges.insert(key, edge);
        Upsert::Stored { new: true }
    }

    /// Takes every edge past its expiry out of the store, shard by shard.
    pub(crate) fn expire(&self, now_ms: u64, out: &mut Vec<(PairKey, Edge)>) {
        let mut next = u64::MAX;
        for shard in self.shards.iter() {
            let mut shard = shard.0.lock();
            if now_ms > shard.oldest_ms {
                let swept = sweep(&mut shard, now_ms, out);
                self.release(swept);
            }
            next = next.min(shard.oldest_ms);
        }
        self.next_expiry_ms.store(next, Ordering::Relaxed);
    }
}

/// Moves the shard's expired edges (expiry strictly before `now_ms`, as otelcol's
/// `time.Now().After(expiration)`) to `out` and recomputes its oldest expiry.
fn sweep(shard: &mut Shard, now_ms: u64, out: &mut Vec<(PairKey, Edge)>) -> usize {
    let before = out.len();
    let mut oldest = u64::MAX;
    for (key, edge) in shard.edges.extract_if(|_, e| now_ms > e.expires_ms) {
        out.push((key, edge));
    }
    for edge in shard.edges.values() {
        oldest = oldest.min(edge.expires_ms);
    }
    shard.oldest_ms = oldest;
    out.len() - before
}

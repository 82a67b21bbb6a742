//! Counting one span: into its series (found or created under the shard lock), or into the
//! overflow series beyond the cardinality limit.

use std::sync::atomic::Ordering;

use super::key::{Key, StoredKey};
use super::SpanMetrics;
use crate::series::{
    words_at, words_mut, Interner, Shard, CHUNK_SLOTS, NONE_ID, W_CREATED, W_IDS, W_META,
};

/// One span's measurement, owning what it keeps, so a request's observations can sit in a
/// buffer reused across requests.
pub(super) struct Observation {
    pub(super) duration: f64,
    /// How many spans it stands for (its sampling adjusted count, 1 without one): every
    /// count and the sum grow by this much.
    pub(super) weight: u64,
    pub(super) is_error: bool,
    /// Present only when valid (16 bytes, not all zero): the exemplar to keep.
    pub(super) trace_id: Option<[u8; 16]>,
    /// Zeros when the span's id is not 8 bytes.
    pub(super) span_id: [u8; 8],
}

/// The time a request is counted at, read once for all its spans.
#[derive(Clone, Copy, Debug)]
pub(super) struct Now {
    /// Since the connector started: when a series was last seen, for expiry.
    pub(super) ms: u64,
    /// Wall clock: exemplar timestamps and a new series' start time.
    pub(super) unix_nano: u64,
}

impl SpanMetrics {
    fn record(&self, words: &mut [u64], obs: &Observation, now: Now) {
        let l = &self.layout;
        if let Some(w) = words.get_mut(W_META) {
            *w = (*w & 0xffff) | (now.ms << 16);
        }
        if let Some(at) = l.expo {
            // The header word comes after the counts, so one split borrows both.
            let (before, from_header) = words.split_at_mut(at.min(words.len()));
            if let (Some(counts), Some(header)) = (
                before.get_mut(l.counts..l.counts + l.n_counts),
                from_header.first_mut(),
            ) {
                crate::series::expo::record(header, counts, obs.duration, obs.weight);
            }
        } else {
            let bucket = match &self.settings.histogram {
                // Upper-inclusive bounds: the first bound >= the value.
                Some(bounds) => bounds.partition_point(|b| *b < obs.duration),
                None => 0,
            };
            if let Some(c) = words.get_mut(l.counts + bucket) {
                *c = c.wrapping_add(obs.weight);
            }
        }
        if let Some(w) = l.sum.and_then(|s| words.get_mut(s)) {
            *w = (f64::from_bits(*w) + obs.duration * obs.weight as f64).to_bits();
        }
        if obs.is_error {
            if let Some(w) = l.errors.and_then(|s| words.get_mut(s)) {
                *w = w.wrapping_add(obs.weight);
            }
        }
        if let (Some(at), Some(trace)) = (l.exemplar, obs.trace_id) {
            if let Some(ex) = words.get_mut(at..at + 5) {
                let t = trace;
                let s = obs.span_id;
                let mut lo = [0u8; 8];
                let mut hi = [0u8; 8];
                lo.copy_from_slice(&t[..8]);
                hi.copy_from_slice(&t[8..]);
                ex[0] = u64::from_le_bytes(lo);
                ex[1] = u64::from_le_bytes(hi);
                ex[2] = u64::from_le_bytes(s);
                ex[3] = obs.duration.to_bits();
                ex[4] = now.unix_nano.max(1);
            }
        }
    }

    /// Records the spans `observations` of one series (`key`, hashed to `group`/`hash` by
    /// [`hash_key`](Self::hash_key)): one lock and one lookup for all of them. A series the
    /// cardinality limit leaves no room for goes to the overflow series, span by span.
    pub(super) fn observe_series<'o>(
        &self,
        group: u64,
        hash: u64,
        key: &impl Key,
        mut observations: impl Iterator<Item = &'o Observation>,
        now: Now,
    ) {
        let Some(first) = observations.next() else {
            return;
        };
        // Bits 32.. pick the shard; hashbrown uses the low bits and the top 7 of the full hash.
        let idx = ((group >> 32) as usize) & self.shard_mask;
        let Some(shard) = self.shards.get(idx) else {
            return;
        };
        let mut guard = shard.0.lock();
        let stride = self.layout.stride;
        let found = {
            let chunks_ref: &[Box<[u64]>] = &guard.chunks;
            let strings_ref: &Interner = &guard.strings;
            guard
                .table
                .find(hash, |slot| {
                    let stored = StoredKey {
                        words: words_at(chunks_ref, stride, *slot),
                        strings: strings_ref,
                        layout: &self.layout,
                    };
                    self.key_eq(&stored, key)
                })
                .copied()
        };
        let slot = match found {
            Some(slot) => slot,
            None if self.admit() => self.insert_series(&mut guard, hash, key, now.unix_nano),
            None => {
                drop(guard);
                for obs in std::iter::once(first).chain(observations) {
                    self.observe_overflow(obs, now);
                }
                return;
            }
        };
        guard.version += 1;
        let words = words_mut(&mut guard.chunks, stride, slot);
        for obs in std::iter::once(first).chain(observations) {
            self.record(words, obs, now);
        }
    }

    /// Adds a series for `key` (not yet in `shard`; its place already admitted) created at
    /// `created_unix_nano`, with nothing counted. Returns its slot.
    pub(crate) fn insert_series(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &impl Key,
        created_unix_nano: u64,
    ) -> u32 {
        let Shard {
            table,
            chunks,
            free,
            next_slot,
            strings,
            ..
        } = shard;
        let stride = self.layout.stride;
        let inc = self.settings.include;
        let mut intern = |s: Option<&str>, on: bool| match s {
            Some(s) if on => strings.intern(&self.hasher, s),
            _ => NONE_ID,
        };
        let service = intern(key.service(), inc[0]);
        let name = intern(key.name(), inc[1]);
        let mut dim_ids = smallvec::SmallVec::<[u32; 8]>::new();
        for i in 0..self.layout.n_dims {
            dim_ids.push(intern(key.dim(i), true));
        }
        let slot = match free.pop() {
            Some(s) => s,
            None => {
                let s = *next_slot;
                *next_slot = next_slot.saturating_add(1);
                if (s as usize) / CHUNK_SLOTS >= chunks.len() {
                    chunks.push(vec![0u64; CHUNK_SLOTS * stride].into_boxed_slice());
                }
                s
            }
        };
        let words = words_mut(chunks, stride, slot);
        words.fill(0);
        if let Some(w) = words.get_mut(W_IDS) {
            *w = u64::from(service) | (u64::from(name) << 32);
        }
        let kind = if inc[2] { key.kind() } else { 0 };
        let status = if inc[3] { key.status() } else { 0 };
        if let Some(w) = words.get_mut(W_META) {
            *w = u64::from(kind) | (u64::from(status) << 8);
        }
        if let Some(w) = words.get_mut(W_CREATED) {
            *w = created_unix_nano;
        }
        for (i, id) in dim_ids.iter().enumerate() {
            self.layout.set_dim_id(words, i, *id);
        }

        let chunks_ref: &[Box<[u64]>] = chunks;
        let strings_ref: &Interner = strings;
        table.insert_unique(hash, slot, |slot| {
            let stored = StoredKey {
                words: words_at(chunks_ref, stride, *slot),
                strings: strings_ref,
                layout: &self.layout,
            };
            self.hash_key(&stored).1
        });
        slot
    }

    /// Takes a place for a new series under the cardinality limit.
    pub(crate) fn admit(&self) -> bool {
        let limit = self.settings.cardinality_limit;
        if limit == 0 {
            self.series.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.series
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    fn observe_overflow(&self, obs: &Observation, now: Now) {
        self.overflow_spans.fetch_add(1, Ordering::Relaxed);
        let mut o = self.overflow.lock();
        if !o.active {
            o.active = true;
            o.errors = 0;
            o.words.fill(0);
            if let Some(w) = o.words.get_mut(W_CREATED) {
                *w = now.unix_nano;
            }
            tracing::warn!(
                limit = self.settings.cardinality_limit,
                "spanmetrics: aggregation_cardinality_limit reached; new label sets are folded \
                 into the otel.metric.overflow=\"true\" series"
            );
        }
        o.version += 1;
        if obs.is_error {
            o.errors = o.errors.wrapping_add(obs.weight);
        }
        let mut words = std::mem::take(&mut o.words);
        self.record(&mut words, obs, now);
        o.words = words;
    }
}

//! The traces held while they wait for a decision, when each is due, and what is remembered
//! of decided ones.
//!
//! Time runs in ticks of one second, as otelcol's: a trace first seen before tick `t + 1` is
//! decided at tick `t + 1 + n`, `n` being `decision_wait` in whole seconds (at least 1). A
//! decided trace stays in the store, and its late spans follow its decision, until a new
//! trace needs its room; with a decision cache it leaves at once and the cache answers.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use hashbrown::HashMap;

use crate::policy::{Decision, TraceData};

pub type TraceId = [u8; 16];

/// The spans of one trace from one resource of one request, grouped as otelcol groups them:
/// an encoded `ResourceSpans`.
pub struct TraceGroup {
    pub id: TraceId,
    pub spans: Bytes,
    pub span_count: i64,
    pub size_bytes: u64,
    pub has_root: bool,
}

pub struct Held {
    generation: u64,
    pub data: TraceData,
    due: u64,
    pub decision: Option<Decision>,
}

/// What became of a group the store took.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Held until the trace is decided.
    Held { new_trace: bool },
    /// The trace was sampled already: the spans go on now.
    Forward { from_cache: bool },
    /// The trace was not sampled (or dropped): the spans end here.
    Discard { from_cache: bool },
    /// The trace grew past `maximum_trace_size_bytes`: it is not sampled.
    TooLarge,
}

pub struct Limits {
    /// `decision_wait` in ticks.
    pub wait_ticks: u64,
    /// `decision_wait_after_root_received` in ticks, when set.
    pub root_wait_ticks: Option<u64>,
    pub num_traces: usize,
    pub max_trace_bytes: u64,
}

pub struct Store {
    traces: HashMap<TraceId, Held>,
    /// Trace ids by the tick they are due at, with the generation they were held under.
    due: BTreeMap<u64, Vec<(TraceId, u64)>>,
    /// Held traces oldest first, for eviction; entries of traces gone since are skipped.
    arrival: VecDeque<(TraceId, u64)>,
    next_generation: u64,
    /// Ticks run so far.
    tick: u64,
    pub sampled: Lru,
    pub not_sampled: Lru,
    limits: Limits,
}

impl Store {
    pub fn new(limits: Limits, sampled_cache: usize, not_sampled_cache: usize) -> Store {
        Store {
            traces: HashMap::new(),
            due: BTreeMap::new(),
            arrival: VecDeque::new(),
            next_generation: 0,
            tick: 0,
            sampled: Lru::new(sampled_cache),
            not_sampled: Lru::new(not_sampled_cache),
            limits,
        }
    }

    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether spans of `id` arriving now would go on at once.
    pub fn is_sampled(&self, id: &TraceId) -> bool {
        self.sampled.contains(id)
            || self
                .traces
                .get(id)
                .is_some_and(|t| t.decision == Some(Decision::Sampled))
    }

    /// Takes one group. The caller forwards or discards the spans as the outcome says; held
    /// spans stay here.
    pub fn add(&mut self, group: TraceGroup) -> (Added, Option<TraceGroup>) {
        if self.sampled.get(&group.id) {
            return (Added::Forward { from_cache: true }, Some(group));
        }
        if self.not_sampled.get(&group.id) {
            return (Added::Discard { from_cache: true }, None);
        }
        let new_trace = !self.traces.contains_key(&group.id);
        if new_trace {
            self.make_room();
            let generation = self.next_generation;
            self.next_generation += 1;
            let due = self.tick + 1 + self.limits.wait_ticks;
            self.traces.insert(
                group.id,
                Held {
                    generation,
                    data: TraceData::new(group.id),
                    due,
                    decision: None,
                },
            );
            self.due
                .entry(due)
                .or_default()
                .push((group.id, generation));
            self.arrival.push_back((group.id, generation));
        }
        let tick = self.tick;
        let root_wait = self.limits.root_wait_ticks;
        let max_bytes = self.limits.max_trace_bytes;
        let Some(held) = self.traces.get_mut(&group.id) else {
            return (Added::Discard { from_cache: false }, None);
        };
        held.data.span_count += group.span_count;
        held.data.size_bytes += group.size_bytes;
        match held.decision {
            Some(Decision::Sampled) => return (Added::Forward { from_cache: false }, Some(group)),
            Some(_) => return (Added::Discard { from_cache: false }, None),
            None => {}
        }
        if max_bytes > 0 && held.data.size_bytes > max_bytes {
            held.data.batches = Vec::new();
            let id = group.id;
            self.decided(id, Decision::NotSampled);
            return (Added::TooLarge, None);
        }
        if let (true, Some(wait)) = (group.has_root, root_wait) {
            let sooner = tick + 1 + wait;
            if sooner < held.due {
                held.due = sooner;
                let generation = held.generation;
                self.due
                    .entry(sooner)
                    .or_default()
                    .push((group.id, generation));
            }
        }
        held.data.batches.push(group.spans);
        (Added::Held { new_trace }, None)
    }

    /// Counts spans that went on at once because their trace was sampled; whether the
    /// sampled cache said so.
    pub fn count_forwarded(&mut self, group: &TraceGroup) -> bool {
        if self.sampled.get(&group.id) {
            return true;
        }
        if let Some(held) = self.traces.get_mut(&group.id) {
            held.data.span_count += group.span_count;
            held.data.size_bytes += group.size_bytes;
        }
        false
    }

    /// Evicts the oldest held trace, decided or not, when the store is full.
    fn make_room(&mut self) {
        while self.traces.len() >= self.limits.num_traces.max(1) {
            let Some((id, generation)) = self.arrival.pop_front() else {
                return;
            };
            if self
                .traces
                .get(&id)
                .is_some_and(|t| t.generation == generation)
            {
                self.traces.remove(&id);
            }
        }
    }

    /// Starts the next tick: the traces due now, and how many of those due were evicted before
    /// their time.
    pub fn next_tick(&mut self) -> (Vec<TraceId>, u64) {
        self.tick += 1;
        self.take_due(self.tick)
    }

    /// Every trace still waiting, as if all were due (shutting down).
    pub fn take_all(&mut self) -> (Vec<TraceId>, u64) {
        self.take_due(u64::MAX)
    }

    fn take_due(&mut self, tick: u64) -> (Vec<TraceId>, u64) {
        let mut ready = Vec::new();
        let mut evicted = 0;
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() > tick {
                break;
            }
            let (at, ids) = entry.remove_entry();
            for (id, generation) in ids {
                match self.traces.get(&id) {
                    Some(t) if t.generation == generation => {
                        // Moved sooner by its root span: only the entry it is due at counts.
                        if t.due == at && t.decision.is_none() {
                            ready.push(id);
                        }
                    }
                    _ => evicted += 1,
                }
            }
        }
        (ready, evicted)
    }

    pub fn get_mut(&mut self, id: &TraceId) -> Option<&mut Held> {
        self.traces.get_mut(id)
    }

    /// Records a decision: the trace goes to the cache for it, and leaves the store if that
    /// cache keeps it.
    pub fn decided(&mut self, id: TraceId, decision: Decision) {
        let cache = match decision {
            Decision::Sampled => &mut self.sampled,
            Decision::NotSampled | Decision::Dropped => &mut self.not_sampled,
        };
        if cache.put(id) {
            self.traces.remove(&id);
            self.compact_arrival();
        } else if let Some(held) = self.traces.get_mut(&id) {
            held.decision = Some(decision);
            held.data.batches = Vec::new();
        }
    }

    /// Drops eviction entries of traces that left by the cache, once they outnumber the rest.
    fn compact_arrival(&mut self) {
        if self.arrival.len() > 2 * self.traces.len() + 1024 {
            let traces = &self.traces;
            self.arrival
                .retain(|(id, g)| traces.get(id).is_some_and(|t| t.generation == *g));
        }
    }
}

/// A least-recently-used set of trace ids (otelcol's decision caches); size 0 keeps nothing.
pub struct Lru {
    capacity: usize,
    stamps: HashMap<TraceId, u64>,
    order: BTreeMap<u64, TraceId>,
    clock: u64,
}

impl Lru {
    pub fn new(capacity: usize) -> Lru {
        Lru {
            capacity,
            stamps: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    pub fn contains(&self, id: &TraceId) -> bool {
        self.stamps.contains_key(id)
    }

    /// Whether `id` is cached; a hit makes it the most recently used.
    pub fn get(&mut self, id: &TraceId) -> bool {
        if !self.stamps.contains_key(id) {
            return false;
        }
        self.touch(*id);
        true
    }

    /// Caches `id`, evicting the least recently used beyond capacity; whether it is cached.
    pub fn put(&mut self, id: TraceId) -> bool {
        if self.capacity == 0 {
            return false;
        }
        self.touch(id);
        while self.stamps.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.stamps.remove(&oldest);
        }
        true
    }

    fn touch(&mut self, id: TraceId) {
        self.clock += 1;
        if let Some(old) = self.stamps.insert(id, self.clock) {
            self.order.remove(&old);
        }
        self.order.insert(self.clock, id);
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

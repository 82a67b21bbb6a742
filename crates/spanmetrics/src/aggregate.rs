//! The series map: sharded, lock-per-shard, allocation-free for spans of existing series.
//!
//! Layout, chosen for the ≤256 bytes/series budget (DESIGN.md §7):
//! - A series is a fixed number of `u64` words in a per-shard arena of fixed-size chunks (no
//!   per-series heap allocation, no pointer per series). Words: `[service id | name id]`,
//!   `[kind | status | last seen ms]`, created time, dimension value ids (two per word), the
//!   bucket counts (or one count when the histogram is off), the sum, an errors count only when
//!   `status.code` is excluded, and one exemplar (5 words) when exemplars are on.
//! - The shard's hash table stores only the `u32` slot; hashes are recomputed from the stored
//!   key when the table grows, so each entry costs ~5 bytes.
//! - Label strings are interned per shard (`Arc<str>`, reference counted), so a series holds
//!   4-byte ids. Lookups compare the borrowed span bytes with the interned strings in place.
//! - The shard is chosen by the hash of the key *without* `status.code`, so every status of one
//!   label group lives in one shard and the errors family is computed shard by shard.

use std::cmp::Ordering as CmpOrdering;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::Mutex;

use crate::config::{Config, Invalid, Settings};
use redline_otlp_wire::{
    self as wire, KeyValueView, ResourceView, SpanView, TraceVisitor, WireError,
};

/// Marks an absent dimension (or an excluded default dimension) in a series' id words.
pub(crate) const NONE_ID: u32 = u32::MAX;
/// Series per arena chunk: small, so the unused tail of the last chunk of each shard stays
/// negligible next to the series themselves.
const CHUNK_SLOTS: usize = 64;
/// Byte that never occurs in UTF-8, used to separate key parts while hashing.
const SEP: u8 = 0xff;
const ABSENT: u8 = 0xfe;

pub(crate) const STATUS_ERROR: u8 = 2;

pub(crate) const KIND_NAMES: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
pub(crate) const STATUS_NAMES: [&str; 3] =
    ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// Word offsets of a series record.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub stride: usize,
    pub dims: usize,
    pub n_dims: usize,
    pub counts: usize,
    pub n_counts: usize,
    pub sum: Option<usize>,
    pub errors: Option<usize>,
    pub exemplar: Option<usize>,
}

pub(crate) const W_IDS: usize = 0;
pub(crate) const W_META: usize = 1;
pub(crate) const W_CREATED: usize = 2;

impl Layout {
    fn new(s: &Settings) -> Self {
        let n_dims = s.dimensions.len();
        let dims = 3;
        let counts = dims + n_dims.div_ceil(2);
        let n_counts = s.histogram.as_ref().map_or(1, |b| b.len() + 1);
        let mut next = counts + n_counts;
        let mut slot = |n: usize| {
            let at = next;
            next += n;
            at
        };
        let sum = s.histogram.is_some().then(|| slot(1));
        let errors = (!s.include[3]).then(|| slot(1));
        let exemplar = s.exemplars.then(|| slot(5));
        Self {
            stride: next,
            dims,
            n_dims,
            counts,
            n_counts,
            sum,
            errors,
            exemplar,
        }
    }

    pub fn dim_id(&self, words: &[u64], i: usize) -> u32 {
        let w = words.get(self.dims + i / 2).copied().unwrap_or(u64::MAX);
        (w >> ((i % 2) * 32)) as u32
    }

    fn set_dim_id(&self, words: &mut [u64], i: usize, id: u32) {
        if let Some(w) = words.get_mut(self.dims + i / 2) {
            let shift = (i % 2) * 32;
            *w = (*w & !(0xffff_ffffu64 << shift)) | (u64::from(id) << shift);
        }
    }

    pub fn calls(&self, words: &[u64]) -> u64 {
        words
            .get(self.counts..self.counts + self.n_counts)
            .map_or(0, |c| c.iter().fold(0u64, |a, b| a.wrapping_add(*b)))
    }
}

pub(crate) fn ids(words: &[u64]) -> (u32, u32) {
    let w = words.first().copied().unwrap_or(u64::MAX);
    (w as u32, (w >> 32) as u32)
}
pub(crate) fn kind(words: &[u64]) -> u8 {
    words.get(W_META).map_or(0, |w| *w as u8)
}
pub(crate) fn status(words: &[u64]) -> u8 {
    words.get(W_META).map_or(0, |w| (*w >> 8) as u8)
}
fn last_seen_ms(words: &[u64]) -> u64 {
    words.get(W_META).map_or(0, |w| *w >> 16)
}

/// Per-shard string interner with reference counts, so expired series release their labels.
#[derive(Default)]
pub(crate) struct Interner {
    pub entries: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl Interner {
    pub fn get(&self, id: u32) -> Option<&str> {
        match self.entries.get(id as usize) {
            Some(Some((s, _))) => Some(s),
            _ => None,
        }
    }

    fn hash(hb: &DefaultHashBuilder, s: &str) -> u64 {
        hb.hash_one(s)
    }

    fn intern(&mut self, hb: &DefaultHashBuilder, s: &str) -> u32 {
        let h = Self::hash(hb, s);
        let entries = &mut self.entries;
        if let Some(id) = self.index.find(
            h,
            |id| matches!(entries.get(*id as usize), Some(Some((e, _))) if **e == *s),
        ) {
            if let Some(Some((_, refs))) = entries.get_mut(*id as usize) {
                *refs = refs.saturating_add(1);
            }
            return *id;
        }
        let entry = Some((Arc::<str>::from(s), 1));
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(e) = entries.get_mut(id as usize) {
                    *e = entry;
                }
                id
            }
            None => {
                entries.push(entry);
                (entries.len() - 1) as u32
            }
        };
        self.index
            .insert_unique(h, id, |id| match entries.get(*id as usize) {
                Some(Some((e, _))) => hb.hash_one(&**e),
                _ => 0,
            });
        id
    }

    fn release(&mut self, hb: &DefaultHashBuilder, id: u32) {
        let Some(slot) = self.entries.get_mut(id as usize) else {
            return;
        };
        let Some((s, refs)) = slot else { return };
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return;
        }
        let h = Self::hash(hb, s);
        if let Ok(e) = self.index.find_entry(h, |x| *x == id) {
            e.remove();
        }
        *slot = None;
        self.free.push(id);
    }

    fn heap_bytes(&self) -> usize {
        let strings: usize = self
            .entries
            .iter()
            .flatten()
            // Arc header (two counters) plus the bytes.
            .map(|(s, _)| 16 + s.len())
            .sum();
        self.entries.capacity() * std::mem::size_of::<Option<(Arc<str>, u32)>>()
            + self.free.capacity() * 4
            + table_bytes(&self.index)
            + strings
    }
}

fn table_bytes(t: &HashTable<u32>) -> usize {
    // hashbrown: one u32 and one control byte per bucket, plus a group of trailing control
    // bytes; capacity() is 7/8 of the buckets.
    let buckets = if t.capacity() == 0 {
        0
    } else {
        (t.capacity() * 8 / 7).next_power_of_two()
    };
    buckets * 5 + if buckets > 0 { 16 } else { 0 }
}

pub(crate) struct Shard {
    pub table: HashTable<u32>,
    pub chunks: Vec<Box<[u64]>>,
    pub free: Vec<u32>,
    pub next_slot: u32,
    pub strings: Interner,
}

impl Shard {
    fn new() -> Self {
        Self {
            table: HashTable::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            next_slot: 0,
            strings: Interner::default(),
        }
    }

    pub fn words(&self, stride: usize, slot: u32) -> &[u64] {
        let slot = slot as usize;
        let off = (slot % CHUNK_SLOTS) * stride;
        self.chunks
            .get(slot / CHUNK_SLOTS)
            .and_then(|c| c.get(off..off + stride))
            .unwrap_or(&[])
    }
}

fn words_mut(chunks: &mut [Box<[u64]>], stride: usize, slot: u32) -> &mut [u64] {
    let slot = slot as usize;
    let off = (slot % CHUNK_SLOTS) * stride;
    chunks
        .get_mut(slot / CHUNK_SLOTS)
        .and_then(|c| c.get_mut(off..off + stride))
        .unwrap_or(&mut [])
}

/// Keeps each shard's lock on its own cache lines, so threads on different shards do not
/// invalidate each other.
#[repr(align(128))]
pub(crate) struct Padded(pub Mutex<Shard>);

/// The single series that label sets beyond the cardinality limit fold into.
pub(crate) struct Overflow {
    pub words: Vec<u64>,
    pub active: bool,
    /// Spans with status ERROR folded into it: its key has no status, so errors are kept apart.
    pub errors: u64,
}

/// The spanmetrics aggregation state, usable without any pipeline (benches, tests).
pub struct SpanMetrics {
    pub(crate) settings: Settings,
    pub(crate) layout: Layout,
    pub(crate) shards: Box<[Padded]>,
    shard_mask: usize,
    pub(crate) hasher: DefaultHashBuilder,
    series: AtomicUsize,
    pub(crate) overflow: Mutex<Overflow>,
    /// Spans ever folded into the overflow series (self-telemetry; never reset by expiry).
    overflow_spans: AtomicU64,
    base: Instant,
    base_unix_nano: u64,
    /// Added to the monotonic clock: lets tests move time forward.
    clock_offset_ms: AtomicU64,
    pub(crate) names: Names,
}

/// Family names with the namespace applied, built once.
pub(crate) struct Names {
    pub calls: String,
    pub errors: String,
    pub duration: String,
}

fn metric_name(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

/// Something that exposes a series key: the borrowed key of a span, or a stored series.
trait Key {
    fn service(&self) -> Option<&str>;
    fn name(&self) -> Option<&str>;
    fn kind(&self) -> u8;
    fn status(&self) -> u8;
    fn dim(&self, i: usize) -> Option<&str>;
}

struct StoredKey<'s> {
    words: &'s [u64],
    strings: &'s Interner,
    layout: &'s Layout,
}

impl Key for StoredKey<'_> {
    fn service(&self) -> Option<&str> {
        self.strings.get(ids(self.words).0)
    }
    fn name(&self) -> Option<&str> {
        self.strings.get(ids(self.words).1)
    }
    fn kind(&self) -> u8 {
        kind(self.words)
    }
    fn status(&self) -> u8 {
        status(self.words)
    }
    fn dim(&self, i: usize) -> Option<&str> {
        self.strings.get(self.layout.dim_id(self.words, i))
    }
}

/// Where a span's dimension value comes from; resolved to a `&str` only once all scratch
/// buffers are written.
#[derive(Clone, Copy, Debug)]
enum DimSrc<'a> {
    Absent,
    Borrowed(&'a str),
    Scratch,
    Resource,
    Default,
}

struct SpanKey<'k> {
    service: Option<&'k str>,
    name: Option<&'k str>,
    kind: u8,
    status: u8,
    srcs: &'k [DimSrc<'k>],
    scratch: &'k [String],
    resource: &'k [String],
    settings: &'k Settings,
}

impl Key for SpanKey<'_> {
    fn service(&self) -> Option<&str> {
        self.service
    }
    fn name(&self) -> Option<&str> {
        self.name
    }
    fn kind(&self) -> u8 {
        self.kind
    }
    fn status(&self) -> u8 {
        self.status
    }
    fn dim(&self, i: usize) -> Option<&str> {
        match self.srcs.get(i)? {
            DimSrc::Absent => None,
            DimSrc::Borrowed(s) => Some(s),
            DimSrc::Scratch => self.scratch.get(i).map(String::as_str),
            DimSrc::Resource => self.resource.get(i).map(String::as_str),
            DimSrc::Default => self.settings.dimensions.get(i)?.default.as_deref(),
        }
    }
}

fn write_part(h: &mut impl Hasher, s: Option<&str>) {
    match s {
        Some(s) => {
            h.write(s.as_bytes());
            h.write_u8(SEP);
        }
        None => h.write_u8(ABSENT),
    }
}

/// One span's measurement.
struct Observation<'a> {
    duration: f64,
    is_error: bool,
    trace_id: Option<&'a [u8]>,
    span_id: &'a [u8],
    now_ms: u64,
    now_unix_nano: u64,
}

impl SpanMetrics {
    /// Builds the state from a config; the error names the offending key.
    pub fn new(config: &Config) -> Result<Self, Invalid> {
        Ok(Self::from_settings(config.settings()?))
    }

    pub(crate) fn from_settings(settings: Settings) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // At least 64 shards: contention stays low even when most spans share a few series.
        let n = (cores * 4).next_power_of_two().clamp(64, 1024);
        let shards: Box<[Padded]> = (0..n).map(|_| Padded(Mutex::new(Shard::new()))).collect();
        let layout = Layout::new(&settings);
        let names = Names {
            calls: metric_name(&settings.namespace, "calls"),
            errors: metric_name(&settings.namespace, "errors"),
            duration: metric_name(&settings.namespace, "duration"),
        };
        Self {
            overflow_spans: AtomicU64::new(0),
            overflow: Mutex::new(Overflow {
                words: vec![0; layout.stride],
                active: false,
                errors: 0,
            }),
            layout,
            shards,
            shard_mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            series: AtomicUsize::new(0),
            base: Instant::now(),
            base_unix_nano: redline_pipeline::telemetry::now_unix_nano(),
            clock_offset_ms: AtomicU64::new(0),
            names,
            settings,
        }
    }

    /// Number of label sets currently held (the overflow series not included).
    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
    }

    /// Spans folded into the overflow series since start (for self-telemetry).
    pub fn overflow_spans(&self) -> u64 {
        self.overflow_spans.load(Ordering::Relaxed)
    }

    /// Whether spans have been folded into the overflow series.
    pub fn overflow_active(&self) -> bool {
        self.overflow.lock().active
    }

    /// Bytes held by the series map (arena, tables, interned strings), for self-telemetry and
    /// the memory bench. Locks one shard at a time.
    pub fn heap_bytes(&self) -> usize {
        let mut total = self.shards.len() * std::mem::size_of::<Padded>();
        for shard in self.shards.iter() {
            let s = shard.0.lock();
            total += s.chunks.len() * (CHUNK_SLOTS * self.layout.stride * 8 + 16)
                + s.chunks.capacity() * 16
                + s.free.capacity() * 4
                + table_bytes(&s.table)
                + s.strings.heap_bytes();
        }
        total
    }

    /// Aggregates one encoded `ExportTraceServiceRequest`. The request is checked first, so a
    /// malformed one is refused with nothing counted. Returns the number of spans counted
    /// (spans whose resource has no `service.name` are not).
    pub fn aggregate(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Aggregator::new(self);
        wire::walk(raw, &mut v)?;
        Ok(v.counted)
    }

    /// Like [`aggregate`](Self::aggregate) for input already validated (the receiver
    /// validates every batch with `redline_otlp_wire::validate`): reads only what it needs
    /// and does not check the request again (`redline_otlp_wire::walk_validated`). On
    /// malformed input it never panics: the spans before a structural fault are counted and
    /// the error returned, and faults in parts it does not read go unnoticed.
    pub fn aggregate_validated(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Aggregator::new(self);
        wire::walk_validated(raw, &mut v)?;
        Ok(v.counted)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn now_unix_nano(&self, now_ms: u64) -> u64 {
        self.base_unix_nano
            .saturating_add(now_ms.saturating_mul(1_000_000))
    }

    /// Moves this instance's clock forward (tests of expiration).
    #[doc(hidden)]
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    fn hash_key(&self, k: &impl Key) -> (u64, u64) {
        let inc = self.settings.include;
        let mut h = self.hasher.build_hasher();
        if inc[0] {
            write_part(&mut h, k.service());
        }
        if inc[1] {
            write_part(&mut h, k.name());
        }
        if inc[2] {
            h.write_u8(k.kind());
        }
        for i in 0..self.layout.n_dims {
            write_part(&mut h, k.dim(i));
        }
        let group = h.clone().finish();
        if inc[3] {
            h.write_u8(k.status());
        }
        (group, h.finish())
    }

    fn key_eq(&self, a: &impl Key, b: &impl Key) -> bool {
        let inc = self.settings.include;
        (!inc[0] || a.service() == b.service())
            && (!inc[1] || a.name() == b.name())
            && (!inc[2] || a.kind() == b.kind())
            && (!inc[3] || a.status() == b.status())
            && (0..self.layout.n_dims).all(|i| a.dim(i) == b.dim(i))
    }

    fn record(&self, words: &mut [u64], obs: &Observation<'_>) {
        let l = &self.layout;
        if let Some(w) = words.get_mut(W_META) {
            *w = (*w & 0xffff) | (obs.now_ms << 16);
        }
        let bucket = match &self.settings.histogram {
            // Upper-inclusive bounds: the first bound >= the value.
            Some(bounds) => bounds.partition_point(|b| *b < obs.duration),
            None => 0,
        };
        if let Some(c) = words.get_mut(l.counts + bucket) {
            *c = c.wrapping_add(1);
        }
        if let Some(w) = l.sum.and_then(|s| words.get_mut(s)) {
            *w = (f64::from_bits(*w) + obs.duration).to_bits();
        }
        if obs.is_error {
            if let Some(w) = l.errors.and_then(|s| words.get_mut(s)) {
                *w = w.wrapping_add(1);
            }
        }
        if let (Some(at), Some(trace)) = (l.exemplar, obs.trace_id) {
            if let Some(ex) = words.get_mut(at..at + 5) {
                let mut t = [0u8; 16];
                t.copy_from_slice(trace);
                let mut s = [0u8; 8];
                if obs.span_id.len() == 8 {
                    s.copy_from_slice(obs.span_id);
                }
                let mut lo = [0u8; 8];
                let mut hi = [0u8; 8];
                lo.copy_from_slice(&t[..8]);
                hi.copy_from_slice(&t[8..]);
                ex[0] = u64::from_le_bytes(lo);
                ex[1] = u64::from_le_bytes(hi);
                ex[2] = u64::from_le_bytes(s);
                ex[3] = obs.duration.to_bits();
                ex[4] = obs.now_unix_nano.max(1);
            }
        }
    }

    fn observe(&self, key: &SpanKey<'_>, obs: &Observation<'_>) {
        let (group, hash) = self.hash_key(key);
        // Bits 32.. pick the shard; hashbrown uses the low bits and the top 7 of the full hash.
        let idx = ((group >> 32) as usize) & self.shard_mask;
        let Some(shard) = self.shards.get(idx) else {
            return;
        };
        let mut guard = shard.0.lock();
        let Shard {
            table,
            chunks,
            free,
            next_slot,
            strings,
        } = &mut *guard;
        let stride = self.layout.stride;

        let found = {
            let chunks_ref: &[Box<[u64]>] = chunks;
            let strings_ref: &Interner = strings;
            table
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
        if let Some(slot) = found {
            self.record(words_mut(chunks, stride, slot), obs);
            return;
        }

        if !self.admit() {
            drop(guard);
            self.observe_overflow(obs);
            return;
        }

        // A new series: intern its labels and take a slot.
        let inc = self.settings.include;
        let mut intern = |s: Option<&str>, on: bool| match s {
            Some(s) if on => strings.intern(&self.hasher, s),
            _ => NONE_ID,
        };
        let service = intern(key.service, inc[0]);
        let name = intern(key.name, inc[1]);
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
        let kind = if inc[2] { key.kind } else { 0 };
        let status = if inc[3] { key.status } else { 0 };
        if let Some(w) = words.get_mut(W_META) {
            *w = u64::from(kind) | (u64::from(status) << 8);
        }
        if let Some(w) = words.get_mut(W_CREATED) {
            *w = obs.now_unix_nano;
        }
        for (i, id) in dim_ids.iter().enumerate() {
            self.layout.set_dim_id(words, i, *id);
        }
        self.record(words, obs);

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
    }

    /// Takes a place for a new series under the cardinality limit.
    fn admit(&self) -> bool {
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

    fn observe_overflow(&self, obs: &Observation<'_>) {
        self.overflow_spans.fetch_add(1, Ordering::Relaxed);
        let mut o = self.overflow.lock();
        if !o.active {
            o.active = true;
            o.errors = 0;
            o.words.fill(0);
            if let Some(w) = o.words.get_mut(W_CREATED) {
                *w = obs.now_unix_nano;
            }
            tracing::warn!(
                limit = self.settings.cardinality_limit,
                "spanmetrics: aggregation_cardinality_limit reached; new label sets are folded \
                 into the otel.metric.overflow=\"true\" series"
            );
        }
        if obs.is_error {
            o.errors = o.errors.wrapping_add(1);
        }
        let mut words = std::mem::take(&mut o.words);
        self.record(&mut words, obs);
        o.words = words;
    }

    /// Removes series idle for at least `metrics_expiration`. Returns how many were removed.
    pub fn expire_idle(&self) -> usize {
        let Some(exp) = self.settings.expiration else {
            return 0;
        };
        let now = self.now_ms();
        let mut removed = 0;
        for shard in self.shards.iter() {
            removed += self.expire_shard(&mut shard.0.lock(), now, exp);
        }
        let mut o = self.overflow.lock();
        if o.active && now.saturating_sub(last_seen_ms(&o.words)) >= exp.as_millis() as u64 {
            o.active = false;
        }
        removed
    }

    pub(crate) fn expire_shard(&self, shard: &mut Shard, now_ms: u64, exp: Duration) -> usize {
        let exp_ms = exp.as_millis() as u64;
        let stride = self.layout.stride;
        let Shard {
            table,
            chunks,
            free,
            strings,
            ..
        } = shard;
        let mut removed = 0usize;
        table.retain(|slot| {
            let words = words_at(chunks, stride, *slot);
            if now_ms.saturating_sub(last_seen_ms(words)) < exp_ms {
                return true;
            }
            let (service, name) = ids(words);
            for id in [service, name] {
                if id != NONE_ID {
                    strings.release(&self.hasher, id);
                }
            }
            for i in 0..self.layout.n_dims {
                let id = self.layout.dim_id(words, i);
                if id != NONE_ID {
                    strings.release(&self.hasher, id);
                }
            }
            free.push(*slot);
            removed += 1;
            false
        });
        if removed > 0 {
            self.series.fetch_sub(removed, Ordering::Relaxed);
        }
        removed
    }
}

fn words_at(chunks: &[Box<[u64]>], stride: usize, slot: u32) -> &[u64] {
    let slot = slot as usize;
    let off = (slot % CHUNK_SLOTS) * stride;
    chunks
        .get(slot / CHUNK_SLOTS)
        .and_then(|c| c.get(off..off + stride))
        .unwrap_or(&[])
}

/// Orders two stored series by their key without `status.code` (the errors family groups).
pub(crate) fn group_cmp(layout: &Layout, a: &[u64], b: &[u64]) -> CmpOrdering {
    let ka = (
        a.first(),
        a.get(W_META).map(|w| w & 0xff),
        a.get(layout.dims..layout.counts),
    );
    let kb = (
        b.first(),
        b.get(W_META).map(|w| w & 0xff),
        b.get(layout.dims..layout.counts),
    );
    ka.cmp(&kb)
}

/// The visitor that turns spans into observations. Its buffers live for one request, so
/// spans whose labels are strings allocate nothing.
struct Aggregator<'m, 'a> {
    m: &'m SpanMetrics,
    /// `None` while the current resource has no `service.name`: its spans are not counted.
    service: Option<&'a str>,
    /// Dimension values found in the current resource's attributes (`resource_has`), kept
    /// as strings so they are converted once per resource, not per span.
    resource_dims: Vec<String>,
    resource_has: Vec<bool>,
    srcs: Vec<DimSrc<'a>>,
    scratch: Vec<String>,
    now_ms: u64,
    now_unix_nano: u64,
    counted: usize,
}

impl<'m, 'a> Aggregator<'m, 'a> {
    fn new(m: &'m SpanMetrics) -> Self {
        let n = m.layout.n_dims;
        let now_ms = m.now_ms();
        Self {
            m,
            service: None,
            resource_dims: vec![String::new(); n],
            resource_has: vec![false; n],
            srcs: Vec::with_capacity(n),
            scratch: vec![String::new(); n],
            now_ms,
            now_unix_nano: m.now_unix_nano(now_ms),
            counted: 0,
        }
    }

    fn dim_index(&self, kv: &KeyValueView<'_>) -> Option<usize> {
        self.m
            .settings
            .dimensions
            .iter()
            .position(|d| d.name == kv.key)
    }
}

impl<'a> TraceVisitor<'a> for Aggregator<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        // pdata's first match wins; a non-string value reads as "" (Go's `Str()`).
        self.service = resource.service_name();
        self.resource_has.fill(false);
        if self.m.layout.n_dims == 0 {
            return;
        }
        for kv in resource.attributes() {
            if let Some(i) = self.dim_index(&kv) {
                if let (Some(has), Some(buf)) =
                    (self.resource_has.get_mut(i), self.resource_dims.get_mut(i))
                {
                    if !*has {
                        *has = true;
                        buf.clear();
                        kv.value.write_as_string(buf);
                    }
                }
            }
        }
    }

    fn span(&mut self, span: &SpanView<'a>) {
        let Some(service) = self.service else {
            return;
        };
        let n = self.m.layout.n_dims;
        self.srcs.clear();
        self.srcs.resize(n, DimSrc::Absent);
        if n > 0 {
            let mut set = 0usize;
            // Keys are compared as bytes and only the values of configured dimensions are
            // decoded: a span has ~10 attributes and typically one or two dimensions.
            for kv in span.attributes().lazy() {
                let key = kv.key_bytes();
                let Some(i) = self
                    .m
                    .settings
                    .dimensions
                    .iter()
                    .position(|d| d.name.as_bytes() == key)
                else {
                    continue;
                };
                let Some(src) = self.srcs.get_mut(i) else {
                    continue;
                };
                if !matches!(src, DimSrc::Absent) {
                    continue; // the first occurrence of a key wins, as in pdata
                }
                let value = kv.value();
                *src = match value.as_str() {
                    Some(s) => DimSrc::Borrowed(s),
                    None => {
                        if let Some(buf) = self.scratch.get_mut(i) {
                            buf.clear();
                            value.write_as_string(buf);
                        }
                        DimSrc::Scratch
                    }
                };
                set += 1;
                if set == n {
                    break;
                }
            }
            for (i, src) in self.srcs.iter_mut().enumerate() {
                if matches!(src, DimSrc::Absent) {
                    if self.resource_has.get(i).copied().unwrap_or(false) {
                        *src = DimSrc::Resource;
                    } else if matches!(self.m.settings.dimensions.get(i), Some(d) if d.default.is_some())
                    {
                        *src = DimSrc::Default;
                    }
                }
            }
        }

        let name = span.name();
        let kind = u8::try_from(span.kind())
            .ok()
            .filter(|k| *k <= 5)
            .unwrap_or(0);
        let status = u8::try_from(span.status_code())
            .ok()
            .filter(|s| *s <= 2)
            .unwrap_or(0);
        let nanos = span
            .end_time_unix_nano()
            .saturating_sub(span.start_time_unix_nano());
        let duration = nanos as f64 / self.m.settings.unit.nanos_per_unit();
        let trace_id = span.trace_id();
        // Like Go: no exemplar for spans without a (non-zero) trace id.
        let trace_id =
            (trace_id.len() == 16 && trace_id.iter().any(|b| *b != 0)).then_some(trace_id);

        let key = SpanKey {
            service: Some(service),
            name: Some(name),
            kind,
            status,
            srcs: &self.srcs,
            scratch: &self.scratch,
            resource: &self.resource_dims,
            settings: &self.m.settings,
        };
        let obs = Observation {
            duration,
            is_error: status == STATUS_ERROR,
            trace_id,
            span_id: span.span_id(),
            now_ms: self.now_ms,
            now_unix_nano: self.now_unix_nano,
        };
        self.m.observe(&key, &obs);
        self.counted += 1;
    }
}

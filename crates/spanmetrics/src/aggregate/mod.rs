//! The series map: sharded, lock-per-shard, allocation-free for spans of existing series.
//!
//! Series records, slot tables and interned strings are in [`crate::series`]. The shard is
//! chosen by the hash of the key *without* `status.code`, so every status of one label group
//! lives in one shard and the errors family is computed shard by shard.

mod events;
pub(crate) mod key;
mod local;
mod observe;
mod visitor;

use redline_pipeline::CheckAll;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hashbrown::DefaultHashBuilder;
use parking_lot::Mutex;

use crate::config::{Config, Invalid, Settings};
use crate::series::{ids, last_seen_ms, words_at, Layout, Padded, Shard, NONE_ID};
use redline_otlp_wire::{self as wire, SpanKeys, WireError};
use redline_pipeline::{SpanTap, TapWalk};
pub(crate) use visitor::Aggregator;

/// The single series that label sets beyond the cardinality limit fold into.
pub(crate) struct Overflow {
    pub words: Vec<u64>,
    pub active: bool,
    /// Spans with status ERROR folded into it: its key has no status, so errors are kept apart.
    pub errors: u64,
    /// As [`Shard::version`].
    pub version: u64,
}

/// A receiver's validating walk hands each request's spans over as it meets them; nothing
/// counts until the walk is committed.
impl SpanTap for SpanMetrics {
    fn begin<'a>(&'a self, request_len: usize) -> Box<dyn TapWalk<'a> + 'a> {
        Box::new(Aggregator::new(self, request_len))
    }

    fn span_keys(&self) -> &SpanKeys {
        &self.span_keys
    }
}

impl<'a> TapWalk<'a> for Aggregator<'a, 'a> {
    fn commit(self: Box<Self>) {
        self.finish();
    }
}

/// The spanmetrics aggregation state, usable without any pipeline (benches, tests).
pub struct SpanMetrics {
    pub(crate) settings: Settings,
    pub(crate) layout: Layout,
    pub(crate) shards: Box<[Padded]>,
    pub(crate) shard_mask: usize,
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
    /// The span attributes every span is looked up by: the attribute dimensions and the
    /// multiplier key, noted by the walk that reads the span.
    pub(crate) span_keys: SpanKeys,
    /// The checkpoint on disk while it still holds every value a reader has seen.
    pub(crate) persisted: Mutex<Option<crate::checkpoint::Persisted>>,
    /// The events family's store (`events.enabled`): a counter per span labels and event
    /// dimensions, on the same clock.
    pub(crate) events: Option<Box<SpanMetrics>>,
    /// The duration family's store, when `calls_dimensions` or `histogram.dimensions` give it
    /// labels of its own: it keeps the histogram, this store the calls.
    pub(crate) duration: Option<Box<SpanMetrics>>,
}

/// Family names with the namespace applied, built once.
pub(crate) struct Names {
    pub calls: String,
    pub errors: String,
    pub duration: String,
    /// `tempo_red_table`'s seconds histogram: its name and the duration buckets in seconds.
    pub latency: Option<(String, Vec<f64>)>,
}

fn metric_name(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
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
            latency: settings
                .histogram
                .as_ref()
                .filter(|_| settings.tempo_red_table)
                .map(|bounds| {
                    // Multiply, then divide: 1400 ms is exactly 1.4 s this way, not 1.4000000000000001.
                    let nanos = settings.unit.nanos_per_unit();
                    let seconds = bounds.iter().map(|b| b * nanos / 1e9).collect();
                    (metric_name(&settings.namespace, "latency"), seconds)
                }),
        };
        // Each store's attribute dimensions are looked up in every span: a span's value of
        // any of them is a lookup of what the walk noted.
        let span_keys = SpanKeys::new(
            [
                Some(&settings),
                settings.events.as_deref(),
                settings.duration.as_deref(),
            ]
            .into_iter()
            .flatten()
            .flat_map(Settings::attribute_dimensions)
            .map(|d| d.name.as_bytes())
            .chain(settings.span_multiplier_key.as_deref().map(str::as_bytes)),
        );
        let base = Instant::now();
        let base_unix_nano = redline_pipeline::telemetry::now_unix_nano();
        // Stores of the same connector share its clock.
        let companion = |s: &Settings| {
            let mut store = Self::from_settings(s.clone());
            store.base = base;
            store.base_unix_nano = base_unix_nano;
            Box::new(store)
        };
        let events = settings.events.as_deref().map(|e| {
            let mut store = companion(e);
            store.names.calls = metric_name(&e.namespace, "events");
            store
        });
        let duration = settings.duration.as_deref().map(companion);
        Self {
            events,
            duration,
            span_keys,
            overflow_spans: AtomicU64::new(0),
            overflow: Mutex::new(Overflow {
                words: vec![0; layout.stride],
                active: false,
                errors: 0,
                version: 0,
            }),
            layout,
            shards,
            shard_mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            series: AtomicUsize::new(0),
            base,
            base_unix_nano,
            clock_offset_ms: AtomicU64::new(0),
            names,
            settings,
            persisted: Mutex::new(None),
        }
    }

    /// The stores of the families with labels of their own (events, duration), which this
    /// one feeds.
    fn companions(&self) -> impl Iterator<Item = &SpanMetrics> {
        self.events.iter().chain(&self.duration).map(|s| &**s)
    }

    /// Number of label sets currently held, those of the other stores included (the overflow
    /// series not).
    pub fn series_count(&self) -> usize {
        self.series.load(Ordering::Relaxed)
            + self
                .companions()
                .map(SpanMetrics::series_count)
                .sum::<usize>()
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
            total += shard.0.lock().heap_bytes(self.layout.stride);
        }
        total
            + self
                .companions()
                .map(SpanMetrics::heap_bytes)
                .sum::<usize>()
    }

    /// Aggregates one encoded `ExportTraceServiceRequest`. The request is checked first, so a
    /// malformed one is refused with nothing counted. Returns the number of spans counted
    /// (spans whose resource has no `service.name` are not).
    pub fn aggregate(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Aggregator::new(self, raw.len());
        wire::walk(raw, &mut v)?;
        Ok(v.finish())
    }

    /// Like [`aggregate`](Self::aggregate) for input already validated (the receiver
    /// validates every batch with `redline_otlp_wire::validate`): reads only what it needs
    /// and does not check the request again (`redline_otlp_wire::walk_validated`). On
    /// malformed input it never panics: the spans before a structural fault are counted and
    /// the error returned, and faults in parts it does not read go unnoticed.
    pub fn aggregate_validated(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Aggregator::new(self, raw.len());
        let walked = wire::walk_validated(raw, &mut v);
        let counted = v.finish();
        walked.map(|_| counted)
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
        for store in self.companions() {
            store.advance_clock(by);
        }
    }

    /// Removes series idle for at least `metrics_expiration`. Returns how many were removed.
    pub fn expire_idle(&self) -> usize {
        let Some(exp) = self.settings.expiration else {
            return 0;
        };
        let companions: usize = self.companions().map(SpanMetrics::expire_idle).sum();
        let now = self.now_ms();
        let mut removed = 0;
        for shard in self.shards.iter() {
            removed += self.expire_shard(&mut shard.0.lock(), now, exp);
        }
        self.expire_overflow(now, exp);
        removed + companions
    }

    /// Retires the overflow series once it has been idle for `exp`.
    pub(crate) fn expire_overflow(&self, now_ms: u64, exp: Duration) {
        let mut o = self.overflow.lock();
        if o.active && now_ms.saturating_sub(last_seen_ms(&o.words)) >= exp.as_millis() as u64 {
            o.active = false;
        }
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

//! Walking the series into a `MetricsSink` at scrape time.
//!
//! A scrape copies each shard once, under its lock (records and string handles), and emits
//! every family from those copies: a series' `calls` and its histogram's count are the same
//! word of the same copy, so no scrape ever shows them apart (when `calls_dimensions` or
//! `histogram.dimensions` give them different labels they are two stores, and there is no
//! one series to show apart). Rendering (the exporter's work) happens after the locks are
//! released, so ingestion waits at most for one shard's memcpy.

use std::sync::Arc;

use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource,
};

use crate::aggregate::SpanMetrics;
use crate::config::{SERVICE_NAME, SPAN_KIND, SPAN_NAME, STATUS_CODE, TEMPO_SERVICE};
use crate::series::expo;
use crate::series::{
    group_cmp, ids, kind, status, Shard, KIND_NAMES, NONE_ID, STATUS_ERROR, STATUS_NAMES, W_CREATED,
};
use crate::OVERFLOW_LABEL;

const CALLS_HELP: &str = "Number of spans, per label set.";
const ERRORS_HELP: &str =
    "Number of spans with status ERROR, per label set without status.code (Redline addition).";
const DURATION_HELP: &str = "Span durations (end time minus start time).";
const EVENTS_HELP: &str =
    "Number of span events, per label set of the span and the event dimensions.";
const LATENCY_HELP: &str =
    "Span durations in seconds, for the Grafana Tempo data source's RED table (tempo_red_table).";

/// A copy of one shard, taken under its lock.
#[derive(Default)]
pub(crate) struct Snapshot {
    strings: Vec<Option<Arc<str>>>,
    pub(crate) rows: Vec<u64>,
    /// The shard's version when copied.
    pub(crate) version: u64,
}

impl Snapshot {
    fn fill(&mut self, shard: &Shard, stride: usize) {
        self.strings.clear();
        self.strings.extend(
            shard
                .strings
                .entries
                .iter()
                .map(|e| e.as_ref().map(|(s, _)| s.clone())),
        );
        self.version = shard.version;
        self.rows.clear();
        self.rows.reserve(shard.table.len() * stride);
        for slot in shard.table.iter() {
            self.rows.extend_from_slice(shard.words(stride, *slot));
        }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        if id == NONE_ID {
            return None;
        }
        self.strings.get(id as usize)?.as_deref()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Calls,
    Errors,
    Duration,
    /// The duration histogram again, in seconds (`tempo_red_table`).
    Latency,
}

impl SpanMetrics {
    fn labels<'s>(
        &'s self,
        snap: &'s Snapshot,
        words: &[u64],
        with_status: bool,
        out: &mut Vec<(&'s str, &'s str)>,
    ) {
        out.clear();
        let inc = self.settings.include;
        let (service, name) = ids(words);
        if inc[0] {
            let service = snap.get(service).unwrap_or("");
            out.push((SERVICE_NAME, service));
            if self.settings.tempo_red_table {
                out.push((TEMPO_SERVICE, service));
            }
        }
        if inc[1] {
            out.push((SPAN_NAME, snap.get(name).unwrap_or("")));
        }
        if inc[2] {
            let k = KIND_NAMES.get(kind(words) as usize).copied();
            out.push((SPAN_KIND, k.unwrap_or("")));
        }
        if inc[3] && with_status {
            let s = STATUS_NAMES.get(status(words) as usize).copied();
            out.push((STATUS_CODE, s.unwrap_or("")));
        }
        for (i, d) in self.settings.dimensions.iter().enumerate() {
            let Some(v) = snap.get(self.layout.dim_id(words, i)) else {
                continue;
            };
            if Some(i) == self.settings.glob_dim {
                out.extend(crate::glob_labels::decode(v));
            } else {
                out.push((d.name.as_str(), v));
            }
        }
    }

    fn exemplar(&self, words: &[u64], counter: bool) -> Option<Exemplar> {
        self.exemplar_scaled(words, counter, 1.0)
    }

    /// The exemplar with a histogram value multiplied by `scale` (to seconds for `latency`).
    fn exemplar_scaled(&self, words: &[u64], counter: bool, scale: f64) -> Option<Exemplar> {
        let at = self.layout.exemplar?;
        let ex = words.get(at..at + 5)?;
        if ex[4] == 0 {
            return None;
        }
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&ex[0].to_le_bytes());
        trace_id[8..].copy_from_slice(&ex[1].to_le_bytes());
        Some(Exemplar {
            // The pipeline's contract: 1 for counters, the measured duration for histograms.
            value: if counter {
                1.0
            } else {
                f64::from_bits(ex[3]) * scale
            },
            time_unix_nano: ex[4],
            trace_id,
            span_id: ex[2].to_le_bytes(),
        })
    }

    fn emit_row(
        &self,
        family: Family,
        words: &[u64],
        labels: &[(&str, &str)],
        sink: &mut dyn MetricsSink,
    ) {
        let created = words.get(W_CREATED).copied().unwrap_or(0);
        match family {
            Family::Calls => {
                let ex = self.exemplar(words, true);
                sink.counter(labels, self.layout.calls(words), created, ex.as_ref());
            }
            Family::Duration | Family::Latency => {
                let l = &self.layout;
                if let Some(at) = l.expo {
                    self.emit_exponential(words, at, labels, created, sink);
                    return;
                }
                let (bounds, scale) = match family {
                    Family::Latency => match &self.names.latency {
                        Some((_, seconds)) => (
                            seconds.as_slice(),
                            self.settings.unit.nanos_per_unit() / 1e9,
                        ),
                        None => return,
                    },
                    _ => match self.settings.histogram.as_deref() {
                        Some(bounds) => (bounds, 1.0),
                        None => return,
                    },
                };
                let counts = words.get(l.counts..l.counts + l.n_counts).unwrap_or(&[]);
                let sum = l
                    .sum
                    .and_then(|s| words.get(s))
                    .map_or(0.0, |w| f64::from_bits(*w));
                let ex = self.exemplar_scaled(words, false, scale);
                let point = HistogramPoint {
                    bounds,
                    bucket_counts: counts,
                    sum: sum * scale,
                    count: l.calls(words),
                    start_time_unix_nano: created,
                    time_unix_nano: 0,
                    exemplars: ex.as_slice(),
                };
                sink.histogram(labels, &point);
            }
            Family::Errors => {}
        }
    }

    fn emit_exponential(
        &self,
        words: &[u64],
        header_at: usize,
        labels: &[(&str, &str)],
        created: u64,
        sink: &mut dyn MetricsSink,
    ) {
        let l = &self.layout;
        let header = expo::Header::decode(words.get(header_at).copied().unwrap_or(0));
        let counts = words.get(l.counts..l.counts + l.n_counts).unwrap_or(&[]);
        let (zero, buckets) = counts.split_first().unwrap_or((&0, &[]));
        let used = buckets.get(..header.len as usize).unwrap_or(buckets);
        let sum = l
            .sum
            .and_then(|s| words.get(s))
            .map_or(0.0, |w| f64::from_bits(*w));
        let ex = self.exemplar(words, false);
        sink.exponential_histogram(
            labels,
            &ExponentialHistogramPoint {
                scale: header.scale,
                count: l.calls(words),
                sum: Some(sum),
                zero_count: *zero,
                zero_threshold: 0.0,
                positive_offset: header.start,
                positive_counts: used,
                negative_offset: 0,
                negative_counts: &[],
                start_time_unix_nano: created,
                time_unix_nano: 0,
                exemplars: ex.as_slice(),
            },
        );
    }

    /// One copy of every shard and of the overflow series, taken shard by shard.
    pub(crate) fn snapshot(&self, now_ms: u64) -> (Vec<Snapshot>, Overflowed) {
        let stride = self.layout.stride;
        let shards = self
            .shards
            .iter()
            .map(|shard| {
                let mut guard = shard.0.lock();
                // Expire at scrape time too, so an idle series is never served stale.
                if let Some(exp) = self.settings.expiration {
                    self.expire_shard(&mut guard, now_ms, exp);
                }
                let mut snap = Snapshot::default();
                snap.fill(&guard, stride);
                snap
            })
            .collect();
        let o = self.overflow.lock();
        let overflow = Overflowed {
            active: o.active,
            words: if o.active {
                o.words.clone()
            } else {
                Vec::new()
            },
            errors: o.errors,
            version: o.version,
        };
        (shards, overflow)
    }

    fn emit_family(
        &self,
        family: Family,
        snaps: &[Snapshot],
        overflow: &Overflowed,
        sink: &mut dyn MetricsSink,
    ) {
        let stride = self.layout.stride;
        let mut order: Vec<usize> = Vec::new();
        for snap in snaps {
            if stride == 0 {
                continue;
            }
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(4 + self.layout.n_dims);
            let rows: Vec<&[u64]> = snap.rows.chunks_exact(stride).collect();
            if family != Family::Errors {
                for words in &rows {
                    self.labels(snap, words, true, &mut labels);
                    self.emit_row(family, words, &labels, sink);
                }
                continue;
            }
            if let Some(e) = self.layout.errors {
                // status.code is excluded: each series counted its own errors.
                for words in &rows {
                    self.labels(snap, words, false, &mut labels);
                    let created = words.get(W_CREATED).copied().unwrap_or(0);
                    let n = words.get(e).copied().unwrap_or(0);
                    sink.counter(&labels, n, created, None);
                }
                continue;
            }
            // One point per label group without status; 0 when the group has no ERROR series.
            order.clear();
            order.extend(0..rows.len());
            order.sort_unstable_by(|a, b| group_cmp(&self.layout, rows[*a], rows[*b]));
            let mut i = 0;
            while i < order.len() {
                let first = rows[order[i]];
                let mut errors = 0u64;
                let mut created = u64::MAX;
                let mut ex = None;
                let mut j = i;
                while j < order.len() && group_cmp(&self.layout, first, rows[order[j]]).is_eq() {
                    let words = rows[order[j]];
                    created = created.min(words.get(W_CREATED).copied().unwrap_or(0));
                    if status(words) == STATUS_ERROR {
                        errors = errors.wrapping_add(self.layout.calls(words));
                        ex = self.exemplar(words, true);
                    }
                    j += 1;
                }
                self.labels(snap, first, false, &mut labels);
                sink.counter(&labels, errors, created, ex.as_ref());
                i = j;
            }
        }

        if overflow.active {
            let labels = [(OVERFLOW_LABEL, "true")];
            match family {
                Family::Errors => {
                    let created = overflow.words.get(W_CREATED).copied().unwrap_or(0);
                    sink.counter(&labels, overflow.errors, created, None);
                }
                _ => self.emit_row(family, &overflow.words, &labels, sink),
            }
        }
    }
}

/// The overflow series as a scrape copied it.
pub(crate) struct Overflowed {
    pub(crate) active: bool,
    pub(crate) words: Vec<u64>,
    pub(crate) errors: u64,
    pub(crate) version: u64,
}

impl MetricsSource for SpanMetrics {
    fn flush_interval(&self) -> Option<std::time::Duration> {
        Some(self.settings.flush_interval)
    }

    fn collect(&self, sink: &mut dyn MetricsSink) {
        let (snaps, overflow) = self.snapshot_now();
        self.note_read(snaps.iter().map(|s| s.version), overflow.version);
        if self.settings.serves_calls {
            sink.family(&FamilyDesc {
                name: &self.names.calls,
                description: CALLS_HELP,
                unit: "1",
                kind: MetricKind::Counter,
            });
            self.emit_family(Family::Calls, &snaps, &overflow, sink);
            sink.family(&FamilyDesc {
                name: &self.names.errors,
                description: ERRORS_HELP,
                unit: "1",
                kind: MetricKind::Counter,
            });
            self.emit_family(Family::Errors, &snaps, &overflow, sink);
        }
        if self.settings.has_duration() {
            let kind = if self.layout.expo.is_some() {
                MetricKind::ExponentialHistogram
            } else {
                MetricKind::Histogram
            };
            sink.family(&FamilyDesc {
                name: &self.names.duration,
                description: DURATION_HELP,
                unit: self.settings.unit.as_str(),
                kind,
            });
            self.emit_family(Family::Duration, &snaps, &overflow, sink);
        }
        if let Some((name, _)) = &self.names.latency {
            // No unit: Tempo's name carries none, and with `s` Prometheus would name it
            // `latency_seconds`, which the RED table does not query.
            sink.family(&FamilyDesc {
                name,
                description: LATENCY_HELP,
                unit: "",
                kind: MetricKind::Histogram,
            });
            self.emit_family(Family::Latency, &snaps, &overflow, sink);
        }
        if let Some(duration) = &self.duration {
            duration.collect(sink);
        }
        if let Some(events) = &self.events {
            events.collect_events(sink);
        }
    }
}

impl SpanMetrics {
    /// A copy of the store as of now, what has gone idle expired first, so that a scrape
    /// never serves a stale series.
    fn snapshot_now(&self) -> (Vec<Snapshot>, Overflowed) {
        let now_ms = self.now_ms();
        if let Some(exp) = self.settings.expiration {
            self.expire_overflow(now_ms, exp);
        }
        self.snapshot(now_ms)
    }

    /// The events store's one family (`events.enabled`): its counts, read as `calls` is.
    fn collect_events(&self, sink: &mut dyn MetricsSink) {
        let (snaps, overflow) = self.snapshot_now();
        sink.family(&FamilyDesc {
            name: &self.names.calls,
            description: EVENTS_HELP,
            unit: "1",
            kind: MetricKind::Counter,
        });
        self.emit_family(Family::Calls, &snaps, &overflow, sink);
    }
}

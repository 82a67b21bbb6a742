//! Turning the pipeline's metric sources into remote-write requests.
//!
//! The encoder is the [`MetricsSink`] the sources write into. Names and labels are translated
//! exactly as the `prometheus` exporter translates them (`redline_pipeline::prom_names`), so a
//! series has the same name and labels whether Prometheus scrapes it or receives it by remote
//! write. Histograms become classic series (`_bucket{le}` cumulative, `_sum`, `_count`),
//! counters keep their `_total`. Points a source holds live (time 0) carry the push's
//! timestamp; points with their own time (OTLP) keep it, as otelcol's translator does, and
//! their summaries, exponential histograms and exemplars follow that translator (see
//! [`pushed`]).
//!
//! Requests are cut at `max_request_bytes` of uncompressed protobuf, at series boundaries,
//! and snappy-compressed (block format) as they fill, so a push holds its series compressed.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use redline_pipeline::prom_names;
use redline_pipeline::{Exemplar, MetricKind, MetricsSink, MetricsSource};

use crate::proto::{self, MetricMetadata};
use crate::wire;

mod pushed;
mod sink;

/// Translation and batching settings, fixed for the exporter's lifetime.
#[derive(Clone, Debug)]
pub struct EncodeOptions {
    /// Already cleaned up (`prom_names::clean_up`); empty for none.
    pub namespace: String,
    pub add_metric_suffixes: bool,
    /// `(Prometheus label name, value)`, added to every series that has no label of that name.
    pub external_labels: Vec<(String, String)>,
    /// Send one `MetricMetadata` per family (type, help, unit).
    pub send_metadata: bool,
    /// Largest uncompressed `WriteRequest`; a single series larger than this goes alone.
    pub max_request_bytes: usize,
    /// `export_created_metric`: a `_created` series (the point's start time, in ms, as
    /// otelcol writes it) beside every counter and histogram, so a restart is a reset the
    /// receiving side can see even when the new count has already passed the old one.
    pub export_created: bool,
}

/// One snappy-compressed `WriteRequest`.
#[derive(Clone, Debug)]
pub struct Request {
    pub body: Bytes,
    /// Time series in it.
    pub timeseries: usize,
}

/// One push, ready to send.
#[derive(Debug, Default)]
pub struct Encoded {
    /// In order; metadata (if sent) is in the last ones.
    pub requests: Vec<Request>,
    /// Time series written (a histogram series is `buckets + 3` of them).
    pub timeseries: usize,
    /// Uncompressed protobuf bytes over all requests.
    pub uncompressed_bytes: usize,
    /// Series left out because an earlier one in the same push had the same name and labels
    /// (two sources exporting one metric): Prometheus refuses a whole request holding a
    /// duplicate sample.
    pub duplicates: usize,
    /// Families left out: no valid name, or a name already used with another type.
    pub skipped_families: usize,
    /// Points that have no remote-write form (an exponential histogram coarser than scale −4),
    /// left out as otelcol leaves them out.
    pub skipped_points: usize,
}

/// Walks every source into remote-write requests stamped `timestamp_ms`.
pub fn encode(
    sources: &[Arc<dyn MetricsSource>],
    options: &EncodeOptions,
    timestamp_ms: i64,
) -> Encoded {
    let mut enc = Encoder::new(options, timestamp_ms);
    for source in sources {
        source.collect(&mut enc);
    }
    enc.finish()
}

/// Lets `write` walk its points into a sink and encodes them; points without a time of
/// their own are stamped `timestamp_ms`.
pub(crate) fn encode_with(
    options: &EncodeOptions,
    timestamp_ms: i64,
    write: impl FnOnce(&mut dyn MetricsSink),
) -> Encoded {
    let mut enc = Encoder::new(options, timestamp_ms);
    write(&mut enc);
    enc.finish()
}

/// Where a label of the series being written comes from.
#[derive(Clone, Copy)]
enum Slot {
    /// Index into `Encoder::entries`.
    Entry(usize),
    MetricName,
    /// `le` of a bucket or `quantile` of a summary series.
    Extra,
}

/// A translated label: byte ranges into `Encoder::text`.
#[derive(Clone, Copy)]
struct Entry {
    name: (usize, usize),
    value: (usize, usize),
}

struct Family {
    kind: MetricKind,
    /// `name` for counters and gauges; `name_bucket`, `name_sum`, `name_count` for histograms.
    sample: Vec<u8>,
    bucket: Vec<u8>,
    sum: Vec<u8>,
    count: Vec<u8>,
    /// otelcol's `_created` name: the sample name plus `_created` (so `…_total_created` for a
    /// counter with suffixes), the base name plus `_created` for a histogram.
    created: Vec<u8>,
}

struct Encoder<'a> {
    opts: &'a EncodeOptions,
    timestamp_ms: i64,
    out: Encoded,
    /// The uncompressed request being filled, and how many time series it holds.
    batch: Vec<u8>,
    batch_series: usize,
    current: Option<Family>,
    /// Every family name written in this push and its type, for conflicts and metadata.
    kinds: HashMap<String, MetricKind>,
    metadata: Vec<MetricMetadata>,
    /// Hashes of (family, label set) already written in this push.
    seen: HashSet<u64>,
    /// Scratch for the series being written.
    text: Vec<u8>,
    entries: Vec<Entry>,
    order: Vec<Slot>,
    /// The order with the extra label (`le`, `quantile`) slotted in.
    order_le: Vec<Slot>,
    /// Name of the extra label of the series being written.
    extra_name: &'static [u8],
    /// `le` (or `quantile`) values of the last bounds seen (formatted once per push, not
    /// per series).
    le_bounds: Vec<f64>,
    le_values: Vec<String>,
}

/// What a time series carries besides its labels.
#[derive(Clone, Copy)]
enum Body<'a> {
    Sample(f64),
    Native(&'a proto::Histogram),
}

/// An exemplar ready to write: hex ids (absent when all zero) and a time in ms.
struct ExOut {
    value: f64,
    timestamp_ms: i64,
    trace: Option<[u8; 32]>,
    span: Option<[u8; 16]>,
}

impl ExOut {
    fn new(e: &Exemplar, timestamp_ms: i64) -> Self {
        Self {
            value: e.value,
            timestamp_ms,
            trace: (e.trace_id != [0; 16]).then(|| {
                let mut h = [0; 32];
                hex_into(&e.trace_id, &mut h);
                h
            }),
            span: (e.span_id != [0; 8]).then(|| {
                let mut h = [0; 16];
                hex_into(&e.span_id, &mut h);
                h
            }),
        }
    }

    /// The scrape exporter's rules for live state: an exemplar with neither id links nowhere
    /// and is dropped; one without a time takes the sample's.
    fn live(e: Option<&Exemplar>, sample_ms: i64) -> Option<Self> {
        let e = e.filter(|e| e.trace_id != [0; 16] || e.span_id != [0; 8])?;
        let ts = if e.time_unix_nano != 0 {
            nanos_to_ms(e.time_unix_nano)
        } else {
            sample_ms
        };
        Some(Self::new(e, ts))
    }
}

/// A label's name and value as written.
type LabelRef<'a> = (&'a [u8], &'a [u8]);

/// The labels of an exemplar: `trace_id` then `span_id`, as otelcol orders them.
fn ex_labels(e: &ExOut) -> ([LabelRef<'_>; 2], usize) {
    let mut l: [LabelRef<'_>; 2] = [(b"", b""); 2];
    let mut n = 0;
    if let Some(t) = &e.trace {
        l[n] = (b"trace_id", &t[..]);
        n += 1;
    }
    if let Some(s) = &e.span {
        l[n] = (b"span_id", &s[..]);
        n += 1;
    }
    (l, n)
}

/// OTLP nanoseconds to Prometheus milliseconds, truncating as otelcol does.
fn nanos_to_ms(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

const METRIC_NAME: &[u8] = b"__name__";
const LE: &[u8] = b"le";

impl<'a> Encoder<'a> {
    fn new(opts: &'a EncodeOptions, timestamp_ms: i64) -> Self {
        Self {
            opts,
            timestamp_ms,
            out: Encoded::default(),
            batch: Vec::with_capacity(opts.max_request_bytes.min(4 << 20)),
            batch_series: 0,
            current: None,
            kinds: HashMap::new(),
            metadata: Vec::new(),
            seen: HashSet::new(),
            text: Vec::with_capacity(256),
            entries: Vec::with_capacity(16),
            order: Vec::with_capacity(16),
            order_le: Vec::with_capacity(16),
            extra_name: LE,
            le_bounds: Vec::new(),
            le_values: Vec::new(),
        }
    }

    fn finish(mut self) -> Encoded {
        let metadata = std::mem::take(&mut self.metadata);
        for m in &metadata {
            let len = m.encoded_len();
            self.make_room(wire::header_len(3, len) + len);
            wire::put_header(&mut self.batch, 3, len);
            m.encode_raw(&mut self.batch);
        }
        self.flush();
        self.out
    }

    /// Sends the current request off if `next` more bytes would take it past the limit.
    fn make_room(&mut self, next: usize) {
        if !self.batch.is_empty() && self.batch.len() + next > self.opts.max_request_bytes {
            self.flush();
        }
    }

    fn flush(&mut self) {
        flush(&mut self.batch, &mut self.batch_series, &mut self.out);
    }

    /// Translates a series' labels into `entries` (sorted by name), adds the external labels
    /// and orders `__name__` (and the `extra` label: `le` for histograms, `quantile` for
    /// summaries) among them. Returns false when this push already holds a series of this
    /// family with the same labels (and, for a point with its own time, the same time: two
    /// points of one series in one OTLP request are two samples, not a duplicate).
    fn begin_series(
        &mut self,
        labels: &[(&str, &str)],
        extra: Option<&'static [u8]>,
        point_ms: Option<i64>,
    ) -> bool {
        let histogram = extra.is_some();
        let extra_name = extra.unwrap_or(LE);
        self.extra_name = extra_name;
        self.text.clear();
        self.entries.clear();
        for (key, value) in labels {
            // An empty value is no label in Prometheus.
            if value.is_empty() {
                continue;
            }
            let start = self.text.len();
            if !prom_names::push_label_name(&mut self.text, key) {
                continue;
            }
            let name = (start, self.text.len());
            let n = &self.text[start..];
            // `__name__` and the extra label belong to the exporter.
            if n == METRIC_NAME || (histogram && n == extra_name) {
                self.text.truncate(start);
                continue;
            }
            let existing = self
                .entries
                .iter()
                .position(|e| self.text[e.name.0..e.name.1] == *n);
            match existing {
                None => {
                    self.text.extend_from_slice(value.as_bytes());
                    self.entries.push(Entry {
                        name,
                        value: (name.1, self.text.len()),
                    });
                }
                Some(i) => {
                    self.text.truncate(start);
                    // Live state: the first of two keys translating to one name wins, as in
                    // the scrape exporter. Pushed points follow otelcol's translator.
                    if point_ms.is_some() {
                        self.merge_pushed(i, key, value);
                    }
                }
            }
        }
        for (key, value) in &self.opts.external_labels {
            let taken = self
                .entries
                .iter()
                .any(|e| self.text[e.name.0..e.name.1] == *key.as_bytes());
            if taken || (histogram && key.as_bytes() == extra_name) {
                continue;
            }
            let start = self.text.len();
            self.text.extend_from_slice(key.as_bytes());
            let mid = self.text.len();
            self.text.extend_from_slice(value.as_bytes());
            self.entries.push(Entry {
                name: (start, mid),
                value: (mid, self.text.len()),
            });
        }
        let text = &self.text;
        self.entries
            .sort_unstable_by(|a, b| text[a.name.0..a.name.1].cmp(&text[b.name.0..b.name.1]));

        let mut h = DefaultHasher::new();
        if let Some(f) = &self.current {
            f.sample.hash(&mut h);
        }
        for e in &self.entries {
            text[e.name.0..e.name.1].hash(&mut h);
            text[e.value.0..e.value.1].hash(&mut h);
        }
        point_ms.hash(&mut h);
        if !self.seen.insert(h.finish()) {
            self.out.duplicates += 1;
            return false;
        }

        let name_at = self
            .entries
            .partition_point(|e| text[e.name.0..e.name.1] < *METRIC_NAME);
        let le_at = self
            .entries
            .partition_point(|e| text[e.name.0..e.name.1] < *extra_name);
        fill_order(&mut self.order, self.entries.len(), name_at, None);
        if histogram {
            fill_order(&mut self.order_le, self.entries.len(), name_at, Some(le_at));
        }
        true
    }

    /// A label of a pushed point whose name is already taken (see `translate`'s label
    /// order): `job`, `instance` and scope labels replace what came before them; point
    /// attributes that sanitize to one name have their values joined with `;`, a value equal
    /// to the current one left out, as otelcol's `createAttributes` does.
    fn merge_pushed(&mut self, i: usize, key: &str, value: &str) {
        let Some(entry) = self.entries.get(i).copied() else {
            return;
        };
        let replaces = key == "job" || key == "instance" || key.starts_with("otel_scope_");
        let start = self.text.len();
        if replaces {
            self.text.extend_from_slice(value.as_bytes());
        } else {
            if self.text[entry.value.0..entry.value.1] == *value.as_bytes() {
                return;
            }
            self.text.extend_from_within(entry.value.0..entry.value.1);
            self.text.push(b';');
            self.text.extend_from_slice(value.as_bytes());
        }
        if let Some(e) = self.entries.get_mut(i) {
            e.value = (start, self.text.len());
        }
    }

    /// Writes one time series of the current series' labels.
    fn put_series(
        &mut self,
        which: Which,
        le: Option<usize>,
        body: Body<'_>,
        ts: i64,
        exemplars: &[ExOut],
    ) {
        let Some(family) = &self.current else { return };
        let metric_name: &[u8] = match which {
            Which::Sample => &family.sample,
            Which::Bucket => &family.bucket,
            Which::Sum => &family.sum,
            Which::Count => &family.count,
            Which::Created => &family.created,
            Which::Quantile => &family.sample,
        };
        let le_value: &[u8] = le
            .and_then(|i| self.le_values.get(i))
            .map_or(b"+Inf", |s| s.as_bytes());
        let order = if matches!(which, Which::Bucket | Which::Quantile) {
            &self.order_le
        } else {
            &self.order
        };
        let text = &self.text;
        let entries = &self.entries;
        let extra_name = self.extra_name;
        let resolve = |slot: &Slot| -> (&[u8], &[u8]) {
            match *slot {
                Slot::Entry(i) => {
                    let e = entries[i];
                    (&text[e.name.0..e.name.1], &text[e.value.0..e.value.1])
                }
                Slot::MetricName => (METRIC_NAME, metric_name),
                Slot::Extra => (extra_name, le_value),
            }
        };
        let mut payload: usize = order
            .iter()
            .map(|s| {
                let (n, v) = resolve(s);
                wire::label_field_len(1, n, v)
            })
            .sum();
        payload += match body {
            Body::Sample(_) => wire::sample_field_len(ts),
            Body::Native(h) => {
                let l = h.encoded_len();
                wire::header_len(4, l) + l
            }
        };
        for e in exemplars {
            let (l, n) = ex_labels(e);
            let len = wire::exemplar_payload_len(&l[..n], e.timestamp_ms);
            payload += wire::header_len(3, len) + len;
        }
        let total = wire::header_len(1, payload) + payload;
        if !self.batch.is_empty() && self.batch.len() + total > self.opts.max_request_bytes {
            flush(&mut self.batch, &mut self.batch_series, &mut self.out);
        }
        let out = &mut self.batch;
        wire::put_header(out, 1, payload);
        for s in order {
            let (n, v) = resolve(s);
            wire::put_label_field(out, 1, n, v);
        }
        match body {
            Body::Sample(value) => wire::put_sample_field(out, value, ts),
            Body::Native(h) => {
                wire::put_header(out, 4, h.encoded_len());
                h.encode_raw(out);
            }
        }
        for e in exemplars {
            let (l, n) = ex_labels(e);
            wire::put_exemplar_field(out, &l[..n], e.value, e.timestamp_ms);
        }
        self.out.timeseries += 1;
        self.batch_series += 1;
    }

    /// The `_created` series of the current one, when asked for and its start time is known.
    fn put_created(&mut self, start_time_unix_nano: u64, ts: i64) {
        if self.opts.export_created && start_time_unix_nano != 0 {
            let start_ms = start_time_unix_nano / 1_000_000;
            self.put_series(Which::Created, None, Body::Sample(start_ms as f64), ts, &[]);
        }
    }

    /// Makes `le_values` hold the `le` label values of `bounds` (Go's `FormatFloat(b, 'f', -1)`,
    /// which is what otelcol writes).
    fn prepare_le(&mut self, bounds: &[f64]) {
        let same = self.le_bounds.len() == bounds.len()
            && self
                .le_bounds
                .iter()
                .zip(bounds)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if same && self.le_values.len() == bounds.len() {
            return;
        }
        self.le_bounds.clear();
        self.le_bounds.extend_from_slice(bounds);
        self.le_values.clear();
        self.le_values.extend(bounds.iter().map(|b| format_le(*b)));
    }

    fn accepts(&self, kind: MetricKind) -> bool {
        matches!(&self.current, Some(f) if f.kind == kind)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Sample,
    Bucket,
    Sum,
    Count,
    Created,
    /// A summary's `name{quantile}` series.
    Quantile,
}

/// Compresses the filled request into `out` and empties it.
fn flush(batch: &mut Vec<u8>, series: &mut usize, out: &mut Encoded) {
    if batch.is_empty() {
        return;
    }
    out.uncompressed_bytes += batch.len();
    match snap::raw::Encoder::new().compress_vec(batch) {
        Ok(compressed) => out.requests.push(Request {
            body: Bytes::from(compressed),
            timeseries: *series,
        }),
        // Only inputs near 4 GiB fail; max_request_bytes is far below that.
        Err(e) => {
            tracing::error!(error = %e, bytes = batch.len(), timeseries = *series, "snappy compression failed; request dropped")
        }
    }
    batch.clear();
    *series = 0;
}

/// The label order of a series: its sorted entries with `__name__` (and `le`) slotted in.
fn fill_order(order: &mut Vec<Slot>, n: usize, name_at: usize, le_at: Option<usize>) {
    order.clear();
    for i in 0..=n {
        // `__name__` sorts before `le` (`_` < `l`), so at equal positions it goes first.
        if i == name_at {
            order.push(Slot::MetricName);
        }
        if le_at == Some(i) {
            order.push(Slot::Extra);
        }
        if i < n {
            order.push(Slot::Entry(i));
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` (shortest round-trip digits, no exponent), with
/// Prometheus' spelling of infinities.
pub(crate) fn format_le(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's Display is the shortest round-trip representation without an exponent.
        format!("{v}")
    }
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if let Some(pair) = out.get_mut(2 * i..2 * i + 2) {
            pair[0] = DIGITS[(b >> 4) as usize];
            pair[1] = DIGITS[(b & 0xf) as usize];
        }
    }
}

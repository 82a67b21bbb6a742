//! Rendering metric sources into the Prometheus text format 0.0.4 or OpenMetrics 1.0.
//!
//! The renderer is the [`MetricsSink`] the sources write into: it streams straight into the
//! output buffer with no intermediate data model. Per family it translates the names once;
//! per series it renders the label block once into a scratch buffer and copies it into every
//! line of the series (a histogram has 16 buckets + `+Inf` + `_sum` + `_count`), so a series
//! costs a few memcpys and number conversions and no allocation.

use std::fmt;
use std::sync::Arc;

use redline_pipeline::{
    Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
};

use crate::escape::{push_escaped, push_label_value};
use crate::exemplar::push_exemplar;
use crate::labels::LabelBlock;
use crate::names::{self, FamilyNames};
use crate::numfmt::{push_go_float, push_om_float, push_text_count, push_u64};

mod kinds;
pub(crate) use kinds::{is_target_info, now_unix_nano};

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4: no exemplars, counters typed under their `_total` name.
    Text,
    /// OpenMetrics 1.0 text: exemplars, `# UNIT`, counter families without `_total`, `# EOF`.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Prometheus may still ask for the pre-1.0 OpenMetrics version; the body is the same.
pub const OPENMETRICS_001_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=0.0.1; charset=utf-8";

/// A const label or namespace that has no valid Prometheus form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("namespace `{0}` has no valid Prometheus form (it needs a letter or digit)")]
    Namespace(String),
    #[error("label name `{0}` has no valid Prometheus form")]
    LabelName(String),
    #[error("label name `{0}` appears twice after translation (as `{1}`)")]
    DuplicateLabel(String, String),
}

/// Settings of the translation, fixed for the exporter's lifetime.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    namespace: String,
    /// Const labels as `(prometheus key, value)`, for collision checks.
    const_keys: Vec<String>,
    /// The const labels' values, unescaped, in the order of `const_keys` (protobuf labels).
    const_values: Vec<String>,
    /// `,key="escaped value"` for every const label, appended to every series.
    const_fragment: Vec<u8>,
    add_metric_suffixes: bool,
    /// otelcol's `send_timestamps`: every sample carries its point's time.
    send_timestamps: bool,
}

impl RenderOptions {
    /// `namespace` prefixes every family (`<namespace>_`), `const_labels` are added to every
    /// series (keys translated like OTel attribute keys), `add_metric_suffixes` appends unit
    /// and `_total` suffixes as otelcol does by default.
    pub fn new<'a>(
        namespace: Option<&str>,
        const_labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        add_metric_suffixes: bool,
    ) -> Result<Self, OptionsError> {
        let namespace = match namespace {
            Some(ns) if !ns.is_empty() => {
                let cleaned = names::clean_up(ns);
                if cleaned.is_empty() {
                    return Err(OptionsError::Namespace(ns.to_owned()));
                }
                cleaned
            }
            _ => String::new(),
        };
        let mut const_keys: Vec<String> = Vec::new();
        let mut const_values: Vec<String> = Vec::new();
        let mut const_fragment = Vec::new();
        for (key, value) in const_labels {
            let prom = names::label_name(key).ok_or_else(|| OptionsError::LabelName(key.into()))?;
            if const_keys.contains(&prom) {
                return Err(OptionsError::DuplicateLabel(key.into(), prom));
            }
            const_fragment.push(b',');
            const_fragment.extend_from_slice(prom.as_bytes());
            const_fragment.extend_from_slice(b"=\"");
            push_label_value(&mut const_fragment, value);
            const_fragment.push(b'"');
            const_keys.push(prom);
            const_values.push(value.to_owned());
        }
        Ok(Self {
            namespace,
            const_keys,
            const_values,
            const_fragment,
            add_metric_suffixes,
            send_timestamps: false,
        })
    }

    /// Writes each point's time (in milliseconds) after every sample, as otelcol's
    /// `send_timestamps: true` does; points without a time get the scrape's.
    pub fn with_send_timestamps(mut self, send: bool) -> Self {
        self.send_timestamps = send;
        self
    }

    pub(crate) fn add_metric_suffixes(&self) -> bool {
        self.add_metric_suffixes
    }

    pub(crate) fn send_timestamps(&self) -> bool {
        self.send_timestamps
    }

    /// The const labels as `(prometheus key, raw value)`.
    pub(crate) fn const_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.const_keys
            .iter()
            .map(String::as_str)
            .zip(self.const_values.iter().map(String::as_str))
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The translated const label names, in order.
    pub(crate) fn const_keys(&self) -> &[String] {
        &self.const_keys
    }

    /// `,key="escaped value"` for every const label.
    pub(crate) fn const_fragment(&self) -> &[u8] {
        &self.const_fragment
    }
}

/// Renders every source into `out` (appending). Families without points are left out, so
/// every family written has its `# HELP` and `# TYPE` and at least one sample. A family name
/// that appears again later (two sources exporting the same metric) is merged into the first
/// one, as the Go client's registry does: the formats require a family's lines to be contiguous.
pub fn render(
    sources: &[Arc<dyn MetricsSource>],
    format: Format,
    options: &RenderOptions,
    out: &mut Vec<u8>,
) {
    let mut r = Renderer::new(format, options, out);
    for source in sources {
        source.collect(&mut r);
    }
    r.finish();
}

/// The clock `send_timestamps` falls back to, in milliseconds.
#[cfg(test)]
pub(crate) fn kinds_now_ms() -> u64 {
    kinds::now_unix_nano() / 1_000_000
}

/// Why [`render_streaming`] could not produce the exposition.
#[derive(Debug)]
pub(crate) enum StreamError {
    /// The chunk consumer failed (e.g. the compressor).
    Io(std::io::Error),
    /// A family reappeared after part of the output was already handed out, so its lines
    /// cannot be made contiguous: the caller renders again with [`render`].
    NeedsMerge,
}

/// Where [`render_streaming`] hands the output.
pub(crate) type ChunkConsumer<'a> = dyn FnMut(&[u8]) -> std::io::Result<()> + 'a;

/// Bytes handed to the consumer at a time: big enough that the consumer's per-call cost
/// vanishes, small enough to stay in cache and never touch fresh pages.
pub(crate) const STREAM_CHUNK: usize = 1 << 20;

/// Like [`render`], but hands the output to `consume` in ~1 MB pieces instead of building it
/// in one buffer, so a scrape of 100k series never holds (or page-faults) hundreds of
/// megabytes. The concatenated pieces are exactly what [`render`] writes, except in the one
/// case streaming cannot do: a family name that reappears later (two sources exporting the
/// same metric) after output was handed out, which returns [`StreamError::NeedsMerge`].
pub(crate) fn render_streaming(
    sources: &[Arc<dyn MetricsSource>],
    format: Format,
    options: &RenderOptions,
    consume: &mut ChunkConsumer<'_>,
) -> Result<(), StreamError> {
    let mut out = Vec::with_capacity(STREAM_CHUNK + STREAM_CHUNK / 4);
    let mut r = Renderer::new(format, options, &mut out);
    r.spill = Some(&mut *consume);
    for source in sources {
        source.collect(&mut r);
        if let Some(e) = r.spill_error.take() {
            return Err(StreamError::Io(e));
        }
    }
    if r.spilled > 0 && r.written.iter().any(|w| !w.extra.is_empty()) {
        return Err(StreamError::NeedsMerge);
    }
    r.finish();
    consume(&out).map_err(StreamError::Io)
}

/// One family already written to the output (or being written).
struct Written {
    /// The translated family name (without `_bucket`/`_total` handling), the merge key.
    name: String,
    kind: MetricKind,
    /// Where its lines start in the output.
    start: usize,
    /// Lines of later families of the same name, spliced in after this one at the end.
    extra: Vec<u8>,
}

/// State of the family currently receiving points.
struct Current {
    /// The translated name (`Written::name` once written).
    name: String,
    kind: MetricKind,
    /// `# HELP …\n# TYPE …\n[# UNIT …\n]`, written before the first point.
    header: Vec<u8>,
    /// Index in `written` once the header is out (or when merging into an earlier family).
    target: Option<usize>,
    /// `name` / `name_total` for counters and gauges, `name_bucket` for histograms.
    line_name: Vec<u8>,
    sum_name: Vec<u8>,
    count_name: Vec<u8>,
    /// OpenMetrics allows exemplars on counters only when typed `counter` (name has `_total`).
    exemplars: bool,
    /// The family could not be rendered (no valid name, or a kind conflict): drop its points.
    skip: bool,
}

struct Renderer<'a> {
    format: Format,
    opts: &'a RenderOptions,
    out: &'a mut Vec<u8>,
    /// Offset in `out` where this render started (the buffer may hold earlier content).
    base: usize,
    written: Vec<Written>,
    current: Option<Current>,
    /// The label block of the current series, and the key translations behind it.
    labels: LabelBlock,
    /// `le="…"} ` fragments of the last bounds seen, with their offsets; bounds rarely change
    /// within a family, so each is formatted once per scrape instead of once per series.
    le_bounds: Vec<f64>,
    le_frags: Vec<u8>,
    le_offsets: Vec<usize>,
    /// Scratch: exemplar index per bucket.
    bucket_exemplar: Vec<Option<usize>>,
    /// Scratch: `name_bucket{labels,` of the current histogram series, the start of each of
    /// its bucket lines.
    bucket_head: Vec<u8>,
    /// Streaming: where full chunks of `out` go ([`render_streaming`]).
    spill: Option<&'a mut ChunkConsumer<'a>>,
    /// Streaming: bytes already handed to `spill`.
    spilled: usize,
    /// Streaming: the first error of `spill`; later output is dropped.
    spill_error: Option<std::io::Error>,
    /// ` <timestamp>` of the current point with `send_timestamps`, empty otherwise.
    stamp: Vec<u8>,
    /// The scrape's time, for points that carry none (a connector's live state).
    now_unix_nano: u64,
    /// The current family never carries timestamps (`target_info`).
    unstamped: bool,
    /// A refused series of the current family was logged.
    warned_collision: bool,
    /// Scratch: a summary point's quantiles, sorted.
    quantiles: Vec<(f64, f64)>,
}

impl<'a> Renderer<'a> {
    fn new(format: Format, opts: &'a RenderOptions, out: &'a mut Vec<u8>) -> Self {
        let base = out.len();
        Self {
            format,
            opts,
            out,
            base,
            written: Vec::new(),
            current: None,
            labels: LabelBlock::new(),
            le_bounds: Vec::new(),
            le_frags: Vec::new(),
            le_offsets: Vec::new(),
            bucket_exemplar: Vec::new(),
            bucket_head: Vec::with_capacity(256),
            spill: None,
            spilled: 0,
            spill_error: None,
            stamp: Vec::new(),
            now_unix_nano: if opts.send_timestamps {
                kinds::now_unix_nano()
            } else {
                0
            },
            quantiles: Vec::new(),
            unstamped: false,
            warned_collision: false,
        }
    }

    /// Streaming: hands the output over once a chunk is full. Only between series, and only
    /// bytes of `out` (lines going to an earlier family's `extra` stay until the end).
    #[inline]
    fn maybe_spill(&mut self) {
        if self.out.len() - self.base < STREAM_CHUNK {
            return;
        }
        let Some(consume) = self.spill.as_mut() else {
            return;
        };
        let chunk = self.out.get(self.base..).unwrap_or_default();
        if self.spill_error.is_none() {
            if let Err(e) = consume(chunk) {
                self.spill_error = Some(e);
            }
        }
        self.spilled += chunk.len();
        self.out.truncate(self.base);
    }

    fn finish(self) {
        let Renderer {
            format,
            out,
            base,
            written,
            ..
        } = self;
        if written.iter().any(|w| !w.extra.is_empty()) {
            // Rare (duplicate family names across sources): rebuild once with the merged
            // families contiguous.
            let mut merged = Vec::with_capacity(out.len() - base);
            for (i, w) in written.iter().enumerate() {
                let end = written.get(i + 1).map_or(out.len(), |n| n.start);
                merged.extend_from_slice(&out[w.start..end]);
                merged.extend_from_slice(&w.extra);
            }
            out.truncate(base);
            out.extend_from_slice(&merged);
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
    }

    /// Makes `le_frags` hold the fragments for `bounds`.
    fn prepare_le(&mut self, bounds: &[f64]) {
        let same = self.le_bounds.len() == bounds.len()
            && self
                .le_bounds
                .iter()
                .zip(bounds)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if same && !self.le_offsets.is_empty() {
            return;
        }
        self.le_bounds.clear();
        self.le_bounds.extend_from_slice(bounds);
        self.le_frags.clear();
        self.le_offsets.clear();
        self.le_offsets.push(0);
        for &b in bounds.iter().chain(std::iter::once(&f64::INFINITY)) {
            self.le_frags.extend_from_slice(b"le=\"");
            match self.format {
                Format::Text => push_go_float(&mut self.le_frags, b),
                Format::OpenMetrics => push_om_float(&mut self.le_frags, b),
            }
            self.le_frags.extend_from_slice(b"\"} ");
            self.le_offsets.push(self.le_frags.len());
        }
    }
}

/// The Prometheus type of a kind: explicit and exponential histograms of one name are one
/// histogram family to the Go client's registry, which merges them.
pub(crate) fn prom_type(kind: MetricKind) -> MetricKind {
    match kind {
        MetricKind::ExponentialHistogram => MetricKind::Histogram,
        k => k,
    }
}

/// Writes `name{labels} ` (or `name ` without labels).
#[inline]
fn push_series_start(out: &mut Vec<u8>, name: &[u8], labels: &[u8]) {
    out.extend_from_slice(name);
    if !labels.is_empty() {
        out.extend_from_slice(labels);
        out.push(b'}');
    }
    out.push(b' ');
}

impl MetricsSink for Renderer<'_> {
    fn number(&mut self, labels: &[(&str, &str)], point: &redline_pipeline::NumberPoint<'_>) {
        self.number_point(labels, point);
    }

    fn summary(&mut self, labels: &[(&str, &str)], point: &redline_pipeline::SummaryPoint<'_>) {
        self.summary_point(labels, point);
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        point: &redline_pipeline::ExponentialHistogramPoint<'_>,
    ) {
        self.native_histogram_point(labels, point);
    }

    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.unstamped = kinds::is_target_info(desc);
        self.warned_collision = false;
        let opts = self.opts;
        let Some(FamilyNames { sample, unit }) = names::family_names(
            desc.name,
            desc.unit,
            desc.kind,
            &opts.namespace,
            opts.add_metric_suffixes,
        ) else {
            tracing::warn!(
                metric = desc.name,
                "metric name has no valid Prometheus form; skipped"
            );
            self.current = Some(Current::skipped(desc.kind));
            return;
        };

        // Same name already written: merge (same kind) or drop (conflicting kind).
        let existing = self.written.iter().position(|w| w.name == sample);
        if let Some(i) = existing {
            if prom_type(self.written[i].kind) != prom_type(desc.kind) {
                tracing::warn!(
                    metric = %sample,
                    "metric family exported twice with different types; the second is skipped"
                );
                self.current = Some(Current::skipped(desc.kind));
                return;
            }
        }

        let om = self.format == Format::OpenMetrics;
        // OpenMetrics names a counter family without `_total`; a counter without it is typed
        // `unknown` (as the Go client does), which may not carry exemplars.
        let (family_name, type_word, exemplars) = match desc.kind {
            MetricKind::Counter if om => match sample.strip_suffix("_total") {
                Some(base) => (base, "counter", true),
                None => (sample.as_str(), "unknown", false),
            },
            MetricKind::Counter => (sample.as_str(), "counter", false),
            MetricKind::Gauge => (sample.as_str(), "gauge", false),
            MetricKind::Histogram => (sample.as_str(), "histogram", om),
            MetricKind::Summary => (sample.as_str(), "summary", false),
            // The Go client gives a native histogram's exemplars to the native part only, so
            // the classic `+Inf` bucket the text formats show never carries one.
            MetricKind::ExponentialHistogram => (sample.as_str(), "histogram", false),
        };
        let mut header = Vec::with_capacity(64 + desc.description.len() + 2 * sample.len());
        header.extend_from_slice(b"# HELP ");
        header.extend_from_slice(family_name.as_bytes());
        header.push(b' ');
        // Text escapes `\` and newline in HELP; OpenMetrics escapes `"` as well.
        push_escaped(&mut header, desc.description.as_bytes(), om);
        header.extend_from_slice(b"\n# TYPE ");
        header.extend_from_slice(family_name.as_bytes());
        header.push(b' ');
        header.extend_from_slice(type_word.as_bytes());
        header.push(b'\n');
        if om && !unit.is_empty() && family_name.ends_with(unit.as_str()) {
            header.extend_from_slice(b"# UNIT ");
            header.extend_from_slice(family_name.as_bytes());
            header.push(b' ');
            header.extend_from_slice(unit.as_bytes());
            header.push(b'\n');
        }
        let suffixed = |s: &str| {
            let mut v = Vec::with_capacity(sample.len() + s.len());
            v.extend_from_slice(sample.as_bytes());
            v.extend_from_slice(s.as_bytes());
            v
        };
        let line_name = match desc.kind {
            MetricKind::Histogram | MetricKind::ExponentialHistogram => suffixed("_bucket"),
            _ => sample.as_bytes().to_vec(),
        };
        self.current = Some(Current {
            name: sample.clone(),
            kind: desc.kind,
            header,
            target: existing,
            line_name,
            sum_name: suffixed("_sum"),
            count_name: suffixed("_count"),
            exemplars,
            skip: false,
        });
    }

    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        value: u64,
        _start_time_unix_nano: u64,
        exemplar: Option<&Exemplar>,
    ) {
        if !self.accepts(MetricKind::Counter) {
            return;
        }
        if !self.series_labels(labels) {
            return;
        }
        self.set_stamp(0);
        let text = self.format == Format::Text;
        let Renderer {
            out,
            written,
            current,
            labels,
            stamp,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        push_series_start(out, &cur.line_name, labels.as_bytes());
        if text {
            push_text_count(out, value);
        } else {
            push_u64(out, value);
        }
        out.extend_from_slice(stamp);
        if let (true, Some(e)) = (cur.exemplars, exemplar) {
            push_exemplar(out, e);
        }
        out.push(b'\n');
        self.maybe_spill();
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        if !self.accepts(MetricKind::Gauge) {
            return;
        }
        if !self.series_labels(labels) {
            return;
        }
        self.set_stamp(0);
        let om = self.format == Format::OpenMetrics;
        let Renderer {
            out,
            written,
            current,
            labels,
            stamp,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        push_series_start(out, &cur.line_name, labels.as_bytes());
        if om {
            push_om_float(out, value);
        } else {
            push_go_float(out, value);
        }
        out.extend_from_slice(stamp);
        out.push(b'\n');
        self.maybe_spill();
    }

    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        if !self.accepts(MetricKind::Histogram) {
            return;
        }
        if !self.series_labels(labels) {
            return;
        }
        self.prepare_le(point.bounds);
        self.set_stamp(point.time_unix_nano);
        let om = self.format == Format::OpenMetrics;
        let n = point.bounds.len();
        let Renderer {
            out,
            written,
            current,
            labels: label_block,
            le_frags,
            le_offsets,
            bucket_exemplar,
            bucket_head,
            stamp,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        let label_block = label_block.as_bytes();

        // Each exemplar goes to the bucket its value falls in (bounds are upper-inclusive);
        // a later exemplar for the same bucket replaces an earlier one, as in the Go client.
        let with_exemplars = cur.exemplars && !point.exemplars.is_empty();
        if with_exemplars {
            bucket_exemplar.clear();
            bucket_exemplar.resize(n + 1, None);
            for (i, e) in point.exemplars.iter().enumerate() {
                if e.value.is_nan() {
                    continue;
                }
                let b = point.bounds.partition_point(|&bound| bound < e.value);
                if let Some(slot) = bucket_exemplar.get_mut(b) {
                    *slot = Some(i);
                }
            }
        }

        bucket_head.clear();
        bucket_head.extend_from_slice(&cur.line_name);
        if label_block.is_empty() {
            bucket_head.push(b'{');
        } else {
            bucket_head.extend_from_slice(label_block);
            bucket_head.push(b',');
        }
        let mut cumulative: u64 = 0;
        for i in 0..=n {
            if i == n {
                // The +Inf bucket is the point's count, as the Go client writes it.
                cumulative = point.count;
            } else {
                cumulative =
                    cumulative.saturating_add(point.bucket_counts.get(i).copied().unwrap_or(0));
            }
            out.extend_from_slice(bucket_head);
            let frag = le_offsets
                .get(i)
                .zip(le_offsets.get(i + 1))
                .and_then(|(&s, &e)| le_frags.get(s..e))
                .unwrap_or(b"le=\"+Inf\"} ");
            out.extend_from_slice(frag);
            if om {
                push_u64(out, cumulative);
            } else {
                push_text_count(out, cumulative);
            }
            out.extend_from_slice(stamp);
            if with_exemplars {
                if let Some(e) = bucket_exemplar
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|j| point.exemplars.get(j))
                {
                    push_exemplar(out, e);
                }
            }
            out.push(b'\n');
        }
        push_series_start(out, &cur.sum_name, label_block);
        if om {
            push_om_float(out, point.sum);
        } else {
            push_go_float(out, point.sum);
        }
        out.extend_from_slice(stamp);
        out.push(b'\n');
        push_series_start(out, &cur.count_name, label_block);
        if om {
            push_u64(out, point.count);
        } else {
            push_text_count(out, point.count);
        }
        out.extend_from_slice(stamp);
        out.push(b'\n');
        self.maybe_spill();
    }
}

impl Renderer<'_> {
    /// Whether a point of `kind` belongs to the current family (a source that sends a point
    /// of another kind, or before any family, is ignored rather than corrupting the output).
    fn accepts(&self, kind: MetricKind) -> bool {
        // Once the streaming consumer failed nothing more is wanted: skip the work.
        self.spill_error.is_none() && matches!(&self.current, Some(c) if c.kind == kind && !c.skip)
    }
}

/// The buffer the current family's lines go to, writing its header on first use: the output
/// itself for the family being written, or the `extra` of an earlier family of the same name.
fn target_buf<'b>(
    out: &'b mut Vec<u8>,
    written: &'b mut Vec<Written>,
    current: &'b mut Option<Current>,
) -> Option<(&'b Current, &'b mut Vec<u8>)> {
    let cur = current.as_mut()?;
    if cur.skip {
        return None;
    }
    let idx = match cur.target {
        Some(i) => i,
        None => {
            let i = written.len();
            written.push(Written {
                name: cur.name.clone(),
                kind: cur.kind,
                start: out.len(),
                extra: Vec::new(),
            });
            out.extend_from_slice(&cur.header);
            cur.target = Some(i);
            i
        }
    };
    let buf = if idx + 1 == written.len() {
        out
    } else {
        &mut written.get_mut(idx)?.extra
    };
    Some((&*cur, buf))
}

impl Current {
    fn skipped(kind: MetricKind) -> Self {
        Self {
            name: String::new(),
            kind,
            header: Vec::new(),
            target: None,
            line_name: Vec::new(),
            sum_name: Vec::new(),
            count_name: Vec::new(),
            exemplars: false,
            skip: true,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Text => "text 0.0.4",
            Format::OpenMetrics => "OpenMetrics 1.0.0",
        })
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use redline_pipeline::Exemplar;

    /// `n` series in a counter family and in a histogram family (names given), large
    /// enough for several chunks.
    struct Big(usize, &'static str, &'static str);

    impl MetricsSource for Big {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            let ex = [Exemplar {
                value: 3.0,
                time_unix_nano: 1_700_000_000_000_000_000,
                trace_id: [7; 16],
                span_id: [9; 8],
            }];
            sink.family(&FamilyDesc {
                name: self.1,
                description: "Calls.",
                unit: "1",
                kind: MetricKind::Counter,
            });
            for i in 0..self.0 {
                let name = format!("GET /items/{i}");
                sink.counter(&[("span.name", &name)], i as u64, 1, ex.first());
            }
            sink.family(&FamilyDesc {
                name: self.2,
                description: "Durations.",
                unit: "ms",
                kind: MetricKind::Histogram,
            });
            for i in 0..self.0 {
                let name = format!("GET /items/{i}");
                sink.histogram(
                    &[("span.name", &name), ("q", "a\"b\\c\nd")],
                    &HistogramPoint {
                        bounds: &[2.0, 4.0, 1400.0],
                        bucket_counts: &[1, 2, 3, i as u64],
                        sum: 12.5 + i as f64,
                        count: 6 + i as u64,
                        start_time_unix_nano: 1,
                        time_unix_nano: 0,
                        exemplars: &ex,
                    },
                );
            }
        }
    }

    fn streamed(
        sources: &[Arc<dyn MetricsSource>],
        format: Format,
        o: &RenderOptions,
    ) -> (Result<(), StreamError>, Vec<u8>, usize) {
        let mut out = Vec::new();
        let mut calls = 0;
        let r = render_streaming(sources, format, o, &mut |chunk| {
            calls += 1;
            out.extend_from_slice(chunk);
            Ok(())
        });
        (r, out, calls)
    }

    #[test]
    fn streaming_output_is_byte_identical() {
        let o = RenderOptions::new(Some("ns"), [("env", "prod")], true).expect("valid");
        for n in [0, 3, 20_000] {
            let sources: Vec<Arc<dyn MetricsSource>> = vec![
                Arc::new(Big(n, "calls", "duration")),
                Arc::new(Big(n / 2, "other", "latency")),
            ];
            for format in [Format::Text, Format::OpenMetrics] {
                let mut whole = Vec::new();
                render(&sources, format, &o, &mut whole);
                let (r, out, calls) = streamed(&sources, format, &o);
                assert!(r.is_ok(), "{n} {format}: {r:?}");
                assert!(out == whole, "{n} {format}: streamed output differs");
                if n == 20_000 {
                    assert!(calls > 3, "{calls} chunks for {} bytes", whole.len());
                }
            }
        }
    }

    #[test]
    fn a_family_repeated_after_output_left_asks_for_a_full_render() {
        let o = RenderOptions::new(None, [], true).expect("valid");
        // Small: nothing is handed out before the end, so the merge works while streaming.
        let small: Vec<Arc<dyn MetricsSource>> = vec![
            Arc::new(Big(3, "calls", "duration")),
            Arc::new(Big(2, "calls", "latency")),
        ];
        let mut whole = Vec::new();
        render(&small, Format::Text, &o, &mut whole);
        let (r, out, _) = streamed(&small, Format::Text, &o);
        assert!(r.is_ok(), "{r:?}");
        assert!(out == whole);
        // Large: the first family was already handed out when its name comes back.
        let large: Vec<Arc<dyn MetricsSource>> = vec![
            Arc::new(Big(20_000, "calls", "duration")),
            Arc::new(Big(2, "calls", "latency")),
        ];
        let (r, _, _) = streamed(&large, Format::Text, &o);
        assert!(matches!(r, Err(StreamError::NeedsMerge)), "{r:?}");
    }

    #[test]
    fn consumer_errors_are_returned() {
        let o = RenderOptions::new(None, [], true).expect("valid");
        let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Big(20_000, "calls", "duration"))];
        let r = render_streaming(&sources, Format::Text, &o, &mut |_| {
            Err(std::io::Error::other("sink closed"))
        });
        assert!(matches!(r, Err(StreamError::Io(_))), "{r:?}");
    }
}

//! The protobuf exposition: varint-delimited `io.prometheus.client.MetricFamily` messages,
//! with each point shaped as client_golang's const metrics shape otelcol's: counters with a
//! created timestamp when the start time is known, classic histograms with cumulative
//! buckets and their exemplars, exponential histograms as native histograms.
//!
//! A family is one length-prefixed message, so its metrics are encoded into a buffer and the
//! family goes out when the next one starts. When merging (two sources with one family name)
//! every family waits until the end instead.

use std::collections::HashMap;
use std::sync::Arc;

use prost::Message as _;
use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint,
};

use crate::names::{self, FamilyNames};
use crate::native;
use crate::numfmt::push_hex;
use crate::proto::{self, LabelPair, Metric, MetricType, Timestamp};
use crate::render::{prom_type, ChunkConsumer, RenderOptions, StreamError, STREAM_CHUNK};

/// Renders every source as delimited `MetricFamily` messages, handing ~1 MiB pieces to
/// `consume`. With `merge`, families that share a name are merged (everything is held until
/// the end); without it, a family name that comes back after its family went out returns
/// [`StreamError::NeedsMerge`].
pub(crate) fn render_protobuf(
    sources: &[Arc<dyn MetricsSource>],
    options: &RenderOptions,
    merge: bool,
    consume: &mut ChunkConsumer<'_>,
) -> Result<(), StreamError> {
    let mut r = ProtoRenderer {
        opts: options,
        merge,
        now_unix_nano: crate::render::now_unix_nano(),
        unstamped: false,
        warned_collision: false,
        pending: Vec::new(),
        current: None,
        sent: HashMap::new(),
        resent: false,
        keys: HashMap::new(),
        out: Vec::with_capacity(STREAM_CHUNK + STREAM_CHUNK / 4),
        consume,
        error: None,
    };
    for source in sources {
        source.collect(&mut r);
        if let Some(e) = r.error.take() {
            return Err(e);
        }
    }
    r.flush_pending();
    if let Some(e) = r.error.take() {
        return Err(e);
    }
    let ProtoRenderer { out, consume, .. } = r;
    consume(&out).map_err(StreamError::Io)
}

struct Family {
    name: String,
    kind: MetricKind,
    help: String,
    /// Encoded `Metric`s, each as field 4 of the family.
    metrics: Vec<u8>,
}

struct ProtoRenderer<'a, 'c, 'd> {
    opts: &'a RenderOptions,
    merge: bool,
    now_unix_nano: u64,
    /// The current family never carries timestamps (`target_info`).
    unstamped: bool,
    /// A refused series of the current family was logged.
    warned_collision: bool,
    /// Families not written yet: only the current one when streaming.
    pending: Vec<Family>,
    /// Index in `pending` of the family receiving points, and the kind its points have;
    /// `None` skips them.
    current: Option<(usize, MetricKind)>,
    /// Families already written, by name, with their kind.
    sent: HashMap<String, MetricKind>,
    /// The current family was already written: a point for it cannot be served streaming.
    resent: bool,
    /// Attribute key → Prometheus label name (`None`: no valid form), cached per scrape.
    keys: HashMap<String, Option<String>>,
    out: Vec<u8>,
    consume: &'c mut ChunkConsumer<'d>,
    error: Option<StreamError>,
}

fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Summary => MetricType::Summary,
        MetricKind::Histogram | MetricKind::ExponentialHistogram => MetricType::Histogram,
    }
}

/// client_golang's `Unix() > 0` test for a start time worth a created timestamp.
fn created(start_time_unix_nano: u64) -> Option<Timestamp> {
    (start_time_unix_nano >= 1_000_000_000 && i64::try_from(start_time_unix_nano).is_ok())
        .then(|| Timestamp::from_unix_nanos(start_time_unix_nano))
}

fn exemplar(e: &Exemplar) -> proto::Exemplar {
    let mut label = Vec::with_capacity(2);
    for (name, id) in [("trace_id", &e.trace_id[..]), ("span_id", &e.span_id[..])] {
        if id.iter().any(|&b| b != 0) {
            let mut hex = Vec::with_capacity(32);
            push_hex(&mut hex, id);
            label.push(LabelPair {
                name: Some(name.to_owned()),
                value: Some(String::from_utf8_lossy(&hex).into_owned()),
            });
        }
    }
    proto::Exemplar {
        label,
        value: Some(e.value),
        // otelcol passes the OTLP time through; 0 is the Unix epoch there, not "now".
        timestamp: Some(Timestamp::from_unix_nanos(e.time_unix_nano)),
    }
}

impl ProtoRenderer<'_, '_, '_> {
    fn flush_pending(&mut self) {
        for fam in std::mem::take(&mut self.pending) {
            if fam.metrics.is_empty() {
                continue;
            }
            let header = proto::MetricFamily {
                name: Some(fam.name.clone()),
                help: Some(fam.help),
                r#type: Some(metric_type(fam.kind) as i32),
                metric: Vec::new(),
            };
            let len = header.encoded_len() + fam.metrics.len();
            prost::encoding::encode_varint(len as u64, &mut self.out);
            // Encoding into a Vec cannot run out of room.
            let _ = header.encode(&mut self.out);
            self.out.extend_from_slice(&fam.metrics);
            self.sent.insert(fam.name, fam.kind);
            if self.out.len() >= STREAM_CHUNK && self.error.is_none() {
                if let Err(e) = (self.consume)(&self.out) {
                    self.error = Some(StreamError::Io(e));
                }
                self.out.clear();
            }
        }
        self.current = None;
    }

    /// The label pairs of a series, or `None` when client_golang would refuse it (a label
    /// name repeated after translation, or a const label's name).
    fn labels(&mut self, labels: &[(&str, &str)]) -> Option<Vec<LabelPair>> {
        let mut pairs: Vec<LabelPair> = Vec::with_capacity(labels.len() + 4);
        for &(key, value) in labels {
            if !self.keys.contains_key(key) {
                self.keys.insert(key.to_owned(), names::label_name(key));
            }
            let Some(Some(name)) = self.keys.get(key) else {
                continue;
            };
            if pairs.iter().any(|p| p.name.as_deref() == Some(name))
                || self.opts.const_labels().any(|(k, _)| k == name)
            {
                if !self.warned_collision {
                    self.warned_collision = true;
                    tracing::warn!(
                        label = %name,
                        "series with a label name repeated after translation left out (as otelcol does)"
                    );
                }
                return None;
            }
            pairs.push(LabelPair {
                name: Some(name.clone()),
                value: Some(value.to_owned()),
            });
        }
        for (key, value) in self.opts.const_labels() {
            pairs.push(LabelPair {
                name: Some(key.to_owned()),
                value: Some(value.to_owned()),
            });
        }
        // client_golang sorts a metric's label pairs by name.
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        Some(pairs)
    }

    fn timestamp_ms(&self, time_unix_nano: u64) -> Option<i64> {
        (self.opts.send_timestamps() && !self.unstamped).then(|| {
            let t = if time_unix_nano == 0 {
                self.now_unix_nano
            } else {
                time_unix_nano
            };
            (t / 1_000_000) as i64
        })
    }

    /// The family receiving a point of one of `kinds`, and the kind of the family's points.
    fn target(&mut self, kinds: &[MetricKind]) -> Option<(usize, MetricKind)> {
        if self.error.is_some() {
            return None;
        }
        if self.resent {
            self.error = Some(StreamError::NeedsMerge);
            return None;
        }
        self.current.filter(|(_, k)| kinds.contains(k))
    }

    fn push(&mut self, i: usize, metric: &Metric) {
        if let Some(fam) = self.pending.get_mut(i) {
            prost::encoding::message::encode(4, metric, &mut fam.metrics);
        }
    }
}

impl MetricsSink for ProtoRenderer<'_, '_, '_> {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.current = None;
        self.resent = false;
        self.unstamped = crate::render::is_target_info(desc);
        self.warned_collision = false;
        let opts = self.opts;
        let Some(FamilyNames { sample, .. }) = names::family_names(
            desc.name,
            desc.unit,
            desc.kind,
            opts.namespace(),
            opts.add_metric_suffixes(),
        ) else {
            tracing::warn!(
                metric = desc.name,
                "metric name has no valid Prometheus form; skipped"
            );
            return;
        };
        let kind_clash = |kind: MetricKind| {
            let same = prom_type(kind) == prom_type(desc.kind);
            if !same {
                tracing::warn!(metric = %sample, "metric family exported twice with different types; the second is skipped");
            }
            same
        };
        if let Some(i) = self.pending.iter().position(|f| f.name == sample) {
            if kind_clash(self.pending[i].kind) {
                self.current = Some((i, desc.kind));
            }
            return;
        }
        if let Some(&kind) = self.sent.get(&sample) {
            // Only its points make it a problem: a repeat without any is harmless.
            self.resent = kind_clash(kind);
            return;
        }
        if !self.merge {
            self.flush_pending();
        }
        self.pending.push(Family {
            name: sample,
            kind: desc.kind,
            help: desc.description.to_owned(),
            metrics: Vec::new(),
        });
        self.current = Some((self.pending.len() - 1, desc.kind));
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64, start: u64, e: Option<&Exemplar>) {
        let Some((i, _)) = self.target(&[MetricKind::Counter]) else {
            return;
        };
        let Some(label) = self.labels(labels) else {
            return;
        };
        let metric = Metric {
            label,
            counter: Some(proto::Counter {
                value: Some(value as f64),
                exemplar: e.map(exemplar),
                created_timestamp: created(start),
            }),
            timestamp_ms: self.timestamp_ms(0),
            ..Metric::default()
        };
        self.push(i, &metric);
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        let Some((i, _)) = self.target(&[MetricKind::Gauge]) else {
            return;
        };
        let Some(label) = self.labels(labels) else {
            return;
        };
        let metric = Metric {
            label,
            gauge: Some(proto::Gauge { value: Some(value) }),
            timestamp_ms: self.timestamp_ms(0),
            ..Metric::default()
        };
        self.push(i, &metric);
    }

    fn number(&mut self, labels: &[(&str, &str)], p: &NumberPoint<'_>) {
        let Some((i, kind)) = self.target(&[MetricKind::Counter, MetricKind::Gauge]) else {
            return;
        };
        let Some(label) = self.labels(labels) else {
            return;
        };
        let mut metric = Metric {
            label,
            timestamp_ms: self.timestamp_ms(p.time_unix_nano),
            ..Metric::default()
        };
        if kind == MetricKind::Counter {
            metric.counter = Some(proto::Counter {
                value: Some(p.value),
                // client_golang keeps a counter's last exemplar.
                exemplar: p.exemplars.last().map(exemplar),
                created_timestamp: created(p.start_time_unix_nano),
            });
        } else {
            metric.gauge = Some(proto::Gauge {
                value: Some(p.value),
            });
        }
        self.push(i, &metric);
    }

    fn histogram(&mut self, labels: &[(&str, &str)], p: &HistogramPoint<'_>) {
        let Some((i, _)) = self.target(&[MetricKind::Histogram]) else {
            return;
        };
        let Some(label) = self.labels(labels) else {
            return;
        };
        let metric = Metric {
            label,
            timestamp_ms: self.timestamp_ms(p.time_unix_nano),
            histogram: Some(classic_histogram(p)),
            ..Metric::default()
        };
        self.push(i, &metric);
    }

    fn summary(&mut self, labels: &[(&str, &str)], p: &SummaryPoint<'_>) {
        let Some((i, _)) = self.target(&[MetricKind::Summary]) else {
            return;
        };
        let mut quantiles: Vec<(f64, f64)> = Vec::with_capacity(p.quantiles.len());
        for &(q, v) in p.quantiles {
            match quantiles.iter_mut().find(|(k, _)| *k == q) {
                Some(slot) => slot.1 = v,
                None => quantiles.push((q, v)),
            }
        }
        quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some(label) = self.labels(labels) else {
            return;
        };
        let metric = Metric {
            label,
            summary: Some(proto::Summary {
                sample_count: Some(p.count),
                sample_sum: Some(p.sum),
                quantile: quantiles
                    .into_iter()
                    .map(|(q, v)| proto::Quantile {
                        quantile: Some(q),
                        value: Some(v),
                    })
                    .collect(),
                created_timestamp: created(p.start_time_unix_nano),
            }),
            timestamp_ms: self.timestamp_ms(p.time_unix_nano),
            ..Metric::default()
        };
        self.push(i, &metric);
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        p: &ExponentialHistogramPoint<'_>,
    ) {
        let Some((i, _)) = self.target(&[MetricKind::ExponentialHistogram]) else {
            return;
        };
        let histogram = match native_histogram(p) {
            Ok(h) => h,
            Err(e) => {
                let metric = self.pending.get(i).map_or("", |f| f.name.as_str());
                tracing::warn!(metric, error = %e, "exponential histogram point skipped");
                return;
            }
        };
        let Some(label) = self.labels(labels) else {
            return;
        };
        let metric = Metric {
            label,
            timestamp_ms: self.timestamp_ms(p.time_unix_nano),
            histogram: Some(histogram),
            ..Metric::default()
        };
        self.push(i, &metric);
    }
}

/// otelcol's `convertDoubleHistogram` + client_golang's const histogram: bounds deduplicated
/// (the first of equal bounds keeps its count) and sorted, cumulative counts, no `+Inf` bucket
/// unless an exemplar needs one; each exemplar goes to the first bucket whose bound is at
/// least its value, a later one replacing an earlier one.
pub(crate) fn classic_histogram(p: &HistogramPoint<'_>) -> proto::Histogram {
    let mut order: Vec<(f64, usize)> = Vec::with_capacity(p.bounds.len());
    for (i, &b) in p.bounds.iter().enumerate() {
        if !order.iter().any(|&(seen, _)| seen == b) {
            order.push((b, i));
        }
    }
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cumulative = 0u64;
    let mut bucket: Vec<proto::Bucket> = order
        .iter()
        .map(|&(bound, i)| {
            cumulative = cumulative.wrapping_add(p.bucket_counts.get(i).copied().unwrap_or(0));
            proto::Bucket {
                cumulative_count: Some(cumulative),
                upper_bound: Some(bound),
                exemplar: None,
            }
        })
        .collect();
    for e in p.exemplars {
        // Go's `sort.Search(…, bound >= value)`: a NaN value matches no bucket.
        let at = bucket.partition_point(|b| {
            matches!(
                b.upper_bound.unwrap_or(f64::INFINITY).partial_cmp(&e.value),
                Some(std::cmp::Ordering::Less) | None
            )
        });
        match bucket.get_mut(at) {
            Some(b) => b.exemplar = Some(exemplar(e)),
            None => bucket.push(proto::Bucket {
                cumulative_count: Some(p.count),
                upper_bound: Some(f64::INFINITY),
                exemplar: Some(exemplar(e)),
            }),
        }
    }
    proto::Histogram {
        sample_count: Some(p.count),
        sample_sum: Some(p.sum),
        bucket,
        created_timestamp: created(p.start_time_unix_nano),
        ..proto::Histogram::default()
    }
}

/// otelcol's `convertExponentialHistogram` + client_golang's `NewConstNativeHistogram` (and
/// `NewMetricWithExemplars`, which gives every exemplar to the native part).
pub(crate) fn native_histogram(
    p: &ExponentialHistogramPoint<'_>,
) -> Result<proto::Histogram, native::NativeError> {
    let n = native::check(p)?;
    let span = |s: native::Span| proto::BucketSpan {
        offset: Some(s.offset),
        length: Some(s.length),
    };
    let (pos_spans, positive_delta) =
        native::spans(p.positive_offset, p.positive_counts, n.scale_down);
    let (neg_spans, negative_delta) =
        native::spans(p.negative_offset, p.negative_counts, n.scale_down);
    let mut positive_span: Vec<proto::BucketSpan> = pos_spans.into_iter().map(span).collect();
    let negative_span: Vec<proto::BucketSpan> = neg_spans.into_iter().map(span).collect();
    // client_golang marks an empty histogram as native with one empty span (reachable only
    // with a zero threshold of 0, which otelcol replaces, but kept for the same shape).
    if n.zero_threshold == 0.0
        && p.zero_count == 0
        && positive_span.is_empty()
        && negative_span.is_empty()
    {
        positive_span.push(proto::BucketSpan {
            offset: Some(0),
            length: Some(0),
        });
    }
    Ok(proto::Histogram {
        sample_count: Some(p.count),
        sample_sum: Some(n.sum),
        schema: Some(n.schema),
        zero_threshold: Some(n.zero_threshold),
        zero_count: Some(p.zero_count),
        negative_span,
        negative_delta,
        positive_span,
        positive_delta,
        created_timestamp: Some(created(p.start_time_unix_nano).unwrap_or(Timestamp::GO_ZERO_TIME)),
        exemplars: p.exemplars.iter().map(exemplar).collect(),
        ..proto::Histogram::default()
    })
}

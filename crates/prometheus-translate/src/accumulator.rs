//! The scrape exporter's state: the last value of every series, as otelcol's
//! `lastValueAccumulator` keeps it, sharded so that ingestion never waits on a global lock.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashMap};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, number_data_point, AggregationTemporality,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric,
};
use parking_lot::Mutex;
use redline_pipeline::metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint,
};
use redline_pipeline::prom_names::family_names;

use crate::{
    attr_string, decode, exemplars, instance, is_identifying, is_reserved_scope_attribute, job,
    point_attributes, Settings, TranslateError, NO_RECORDED_VALUE, TARGET_INFO,
    TARGET_INFO_DESCRIPTION,
};

const SHARDS: usize = 32;

/// What one [`Accumulator::accumulate`] call did with the points of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accumulated {
    /// Points stored, counted as otelcol counts them: a metric that ends in a
    /// no-recorded-value point counts none of its points, even those stored before it.
    pub points: usize,
    /// Sums with unspecified temporality, and histograms with it once their series exists.
    pub dropped_unspecified_temporality: usize,
    /// Non-monotonic sums with delta temporality (otelcol refuses them).
    pub dropped_delta_non_monotonic: usize,
    /// Points older than the one already stored.
    pub dropped_out_of_order: usize,
    /// Delta histogram points that start before the stored point ends.
    pub dropped_misaligned: usize,
    /// Points flagged "no recorded value": each deletes its series and ends its metric.
    pub deleted_no_recorded_value: usize,
    /// Metrics without data (no type).
    pub dropped_untyped: usize,
}

/// The last value of every series of the OTLP metrics it was given, for the Prometheus
/// scrape exporter; otelcol-contrib's `prometheus` exporter accumulator and collector.
///
/// A series is identified as otelcol identifies it: metric name and type, scope (name,
/// version, schema url, attributes), point attributes (with the resource's when
/// [`Settings::resource_to_telemetry`]), `job` and `instance`. Other resource attributes are
/// not part of it: the resource of the newest point is the one `target_info` reports.
///
/// Labels of a series, in order: point attributes as received; with scope labels on,
/// `otel_scope_<key>` for every scope attribute but `name`, `version` and `schema_url`, then
/// `otel_scope_name`, `otel_scope_version`, `otel_scope_schema_url` (even when empty); `job`
/// when the resource has `service.name`; `instance` when it has `service.instance.id`.
/// otelcol refuses a series (logs and skips it) whose labels repeat a name after
/// translation: sinks must do the same.
///
/// Families: otelcol keeps the type of the first series of a Prometheus name and drops
/// series of another type under the same name, until the name has not been seen for the
/// expiration time; the first description seen wins the same way. This runs here on the name
/// otelcol's default naming (suffixes on, no namespace) gives the family, so a counter and a
/// gauge of the same OTel name are both kept (`_total` separates them), a gauge and a
/// histogram are not. Two OTel names that only meet after translation under other naming
/// settings (`a.b` and `a_b`, or a counter and a gauge without suffixes) come as distinct
/// families; a sink that merges them must drop the conflicting kinds itself. Families are
/// written sorted by OTel name, unit and kind; an explicit-bucket and an exponential
/// histogram of the same name are two families (otelcol serves them as one).
pub struct Accumulator {
    settings: Settings,
    expiration: Duration,
    hasher: DefaultHashBuilder,
    shards: Box<[Mutex<Shard>]>,
    families: Mutex<HashMap<String, Registered>>,
}

/// Series by signature (see [`Accumulator`]).
type Shard = HashMap<Box<[u8]>, Entry>;

struct Registered {
    class: u8,
    description: Arc<str>,
    last_seen: Instant,
}

struct FamilyMeta {
    name: String,
    description: String,
    unit: String,
    kind: MetricKind,
}

struct ResourceMeta {
    attrs: Vec<(String, String)>,
    job: Option<String>,
    instance: Option<String>,
}

/// Label pairs in one buffer: `k0 v0 k1 v1 …`, `ends` the end of each string.
struct Labels {
    buf: String,
    ends: Box<[u32]>,
}

impl Labels {
    fn new<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Labels {
        let mut buf = String::new();
        let mut ends = Vec::new();
        for (k, v) in pairs {
            buf.push_str(k);
            ends.push(buf.len() as u32);
            buf.push_str(v);
            ends.push(buf.len() as u32);
        }
        Labels {
            buf,
            ends: ends.into_boxed_slice(),
        }
    }

    fn fill<'a>(&'a self, out: &mut Vec<(&'a str, &'a str)>) {
        out.clear();
        let mut start = 0usize;
        for pair in self.ends.chunks_exact(2) {
            let (k_end, v_end) = (pair[0] as usize, pair[1] as usize);
            let k = self.buf.get(start..k_end).unwrap_or("");
            let v = self.buf.get(k_end..v_end).unwrap_or("");
            out.push((k, v));
            start = v_end;
        }
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    fn from_otlp(v: Option<&number_data_point::Value>) -> Num {
        match v {
            Some(number_data_point::Value::AsInt(i)) => Num::Int(*i),
            Some(number_data_point::Value::AsDouble(d)) => Num::Double(*d),
            None => Num::Double(0.0),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Double(d) => d,
        }
    }

    /// otelcol adds in the new point's type, reading the old value in that type (0 when the
    /// old one was of the other type).
    fn add(self, prev: Num) -> Num {
        match (self, prev) {
            (Num::Int(a), Num::Int(b)) => Num::Int(a.wrapping_add(b)),
            (Num::Int(a), Num::Double(_)) => Num::Int(a),
            (Num::Double(a), Num::Double(b)) => Num::Double(a + b),
            (Num::Double(a), Num::Int(_)) => Num::Double(a),
        }
    }
}

#[derive(Clone)]
struct Hist {
    start: u64,
    time: u64,
    count: u64,
    sum: f64,
    bounds: Vec<f64>,
    counts: Vec<u64>,
    exemplars: Box<[Exemplar]>,
}

#[derive(Clone)]
struct ExpHist {
    start: u64,
    time: u64,
    scale: i32,
    count: u64,
    sum: Option<f64>,
    zero_count: u64,
    zero_threshold: f64,
    pos_offset: i32,
    pos: Vec<u64>,
    neg_offset: i32,
    neg: Vec<u64>,
    exemplars: Box<[Exemplar]>,
}

#[derive(Clone)]
enum Stored {
    Number {
        value: Num,
        start: u64,
        time: u64,
        exemplars: Box<[Exemplar]>,
    },
    Histogram(Hist),
    Exponential(ExpHist),
    Summary {
        start: u64,
        time: u64,
        count: u64,
        sum: f64,
        quantiles: Box<[(f64, f64)]>,
    },
}

impl Stored {
    fn time(&self) -> u64 {
        match self {
            Stored::Number { time, .. } | Stored::Summary { time, .. } => *time,
            Stored::Histogram(h) => h.time,
            Stored::Exponential(h) => h.time,
        }
    }
}

struct Entry {
    family: Arc<FamilyMeta>,
    labels: Arc<Labels>,
    resource: Arc<ResourceMeta>,
    point: Stored,
    updated: Instant,
}

/// What the rules decide for an incoming point.
enum Decision {
    Store(Stored),
    Skip(fn(&mut Accumulated)),
}

/// Per-scope and per-metric state shared by the points of a metric.
struct MetricCtx<'a, 'r> {
    key_prefix: &'a [u8],
    key_suffix: &'a [u8],
    resource_attrs: Option<&'r [KeyValue]>,
    family: Arc<FamilyMeta>,
    resource: &'a Arc<ResourceMeta>,
    scope_labels: &'a [(String, String)],
    now: Instant,
}

fn push_field(key: &mut Vec<u8>, s: &str) {
    key.extend_from_slice(&(s.len() as u32).to_le_bytes());
    key.extend_from_slice(s.as_bytes());
}

impl Accumulator {
    pub fn new(settings: Settings, metric_expiration: Duration) -> Self {
        Accumulator {
            settings,
            expiration: metric_expiration,
            hasher: DefaultHashBuilder::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            families: Mutex::new(HashMap::new()),
        }
    }

    /// Adds one encoded request (validated OTLP protobuf). Returns how many data points it took.
    pub fn accumulate(&self, request: &[u8]) -> Result<Accumulated, TranslateError> {
        self.accumulate_at(request, Instant::now())
    }

    /// [`Accumulator::accumulate`] with the time the series count as updated at.
    pub fn accumulate_at(
        &self,
        request: &[u8],
        now: Instant,
    ) -> Result<Accumulated, TranslateError> {
        let request = decode(request)?;
        let mut acc = Accumulated::default();
        let mut key_prefix = Vec::new();
        let mut key = Vec::new();
        let mut attrs = Vec::new();
        for rm in &request.resource_metrics {
            let resource_attrs: &[KeyValue] = rm
                .resource
                .as_ref()
                .map_or(&[], |r| r.attributes.as_slice());
            let resource = Arc::new(ResourceMeta {
                attrs: resource_attrs
                    .iter()
                    .map(|kv| (kv.key.clone(), attr_string(kv).into_owned()))
                    .collect(),
                job: job(resource_attrs),
                instance: instance(resource_attrs),
            });
            let mut key_suffix = Vec::new();
            for (tag, v) in [(1u8, &resource.job), (2u8, &resource.instance)] {
                if let Some(v) = v {
                    key_suffix.push(tag);
                    push_field(&mut key_suffix, v);
                }
            }
            let merged = self
                .settings
                .resource_to_telemetry
                .then_some(resource_attrs);
            for sm in &rm.scope_metrics {
                let (scope_name, scope_version, scope_attrs): (&str, &str, &[KeyValue]) =
                    match &sm.scope {
                        Some(s) => (&s.name, &s.version, &s.attributes),
                        None => ("", "", &[]),
                    };
                let mut sorted: Vec<(&str, Cow<str>)> = scope_attrs
                    .iter()
                    .map(|kv| (kv.key.as_str(), attr_string(kv)))
                    .collect();
                let mut scope_labels: Vec<(String, String)> = Vec::new();
                if self.settings.scope_labels {
                    for (k, v) in &sorted {
                        if !is_reserved_scope_attribute(k) {
                            scope_labels.push((format!("otel_scope_{k}"), v.to_string()));
                        }
                    }
                    scope_labels.push(("otel_scope_name".into(), scope_name.into()));
                    scope_labels.push(("otel_scope_version".into(), scope_version.into()));
                    scope_labels.push(("otel_scope_schema_url".into(), sm.schema_url.clone()));
                }
                sorted.sort();
                key_prefix.clear();
                push_field(&mut key_prefix, scope_name);
                push_field(&mut key_prefix, scope_version);
                push_field(&mut key_prefix, &sm.schema_url);
                key_prefix.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
                for (k, v) in &sorted {
                    push_field(&mut key_prefix, k);
                    push_field(&mut key_prefix, v);
                }
                for m in &sm.metrics {
                    let ctx_prefix = {
                        key.clear();
                        push_field(&mut key, &m.name);
                        key.extend_from_slice(&key_prefix);
                        std::mem::take(&mut key)
                    };
                    self.add_metric(
                        m,
                        &ctx_prefix,
                        &key_suffix,
                        merged,
                        &resource,
                        &scope_labels,
                        now,
                        &mut attrs,
                        &mut key,
                        &mut acc,
                    );
                }
            }
        }
        Ok(acc)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_metric<'a>(
        &self,
        m: &'a Metric,
        key_prefix: &[u8],
        key_suffix: &[u8],
        resource_attrs: Option<&'a [KeyValue]>,
        resource: &Arc<ResourceMeta>,
        scope_labels: &[(String, String)],
        now: Instant,
        attrs: &mut Vec<(&'a str, Cow<'a, str>)>,
        key: &mut Vec<u8>,
        acc: &mut Accumulated,
    ) {
        let Some(data) = &m.data else {
            acc.dropped_untyped += 1;
            return;
        };
        let (kind, type_tag) = match data {
            metric::Data::Gauge(_) => (MetricKind::Gauge, 1u8),
            metric::Data::Sum(s) if s.is_monotonic => (MetricKind::Counter, 2),
            metric::Data::Sum(_) => (MetricKind::Gauge, 2),
            metric::Data::Histogram(_) => (MetricKind::Histogram, 3),
            metric::Data::ExponentialHistogram(_) => (MetricKind::ExponentialHistogram, 4),
            metric::Data::Summary(_) => (MetricKind::Summary, 5),
        };
        let family = Arc::new(FamilyMeta {
            name: m.name.clone(),
            description: m.description.clone(),
            unit: m.unit.clone(),
            kind,
        });
        let mut full_prefix = Vec::with_capacity(key_prefix.len() + 1);
        full_prefix.extend_from_slice(key_prefix);
        full_prefix.push(type_tag);
        let ctx = MetricCtx {
            key_prefix: &full_prefix,
            key_suffix,
            resource_attrs,
            family,
            resource,
            scope_labels,
            now,
        };
        let n = match data {
            metric::Data::Gauge(g) => self.points(
                &ctx,
                &g.data_points,
                attrs,
                key,
                acc,
                |p| (&p.attributes, p.flags),
                |p, prev| {
                    let incoming = Stored::Number {
                        value: Num::from_otlp(p.value.as_ref()),
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        exemplars: Box::default(),
                    };
                    match prev {
                        Some(prev) if p.time_unix_nano < prev.time() => {
                            Decision::Skip(|a| a.dropped_out_of_order += 1)
                        }
                        _ => Decision::Store(incoming),
                    }
                },
            ),
            metric::Data::Sum(s) => {
                let temporality = s.aggregation_temporality;
                if temporality == AggregationTemporality::Unspecified as i32 {
                    acc.dropped_unspecified_temporality += s.data_points.len();
                    return;
                }
                let delta = temporality == AggregationTemporality::Delta as i32;
                if delta && !s.is_monotonic {
                    acc.dropped_delta_non_monotonic += s.data_points.len();
                    return;
                }
                let counter = s.is_monotonic;
                self.points(
                    &ctx,
                    &s.data_points,
                    attrs,
                    key,
                    acc,
                    |p| (&p.attributes, p.flags),
                    |p, prev| {
                        let mut value = Num::from_otlp(p.value.as_ref());
                        let mut start = p.start_time_unix_nano;
                        if let Some(prev) = prev {
                            if p.time_unix_nano < prev.time() {
                                return Decision::Skip(|a| a.dropped_out_of_order += 1);
                            }
                            if let Stored::Number {
                                value: pv,
                                start: ps,
                                time: pt,
                                ..
                            } = prev
                            {
                                if delta && p.start_time_unix_nano == *pt {
                                    start = *ps;
                                    value = value.add(*pv);
                                }
                            }
                        }
                        Decision::Store(Stored::Number {
                            value,
                            start,
                            time: p.time_unix_nano,
                            exemplars: if counter {
                                exemplars(&p.exemplars).into_boxed_slice()
                            } else {
                                Box::default()
                            },
                        })
                    },
                )
            }
            metric::Data::Histogram(h) => {
                let temporality = h.aggregation_temporality;
                self.points(
                    &ctx,
                    &h.data_points,
                    attrs,
                    key,
                    acc,
                    |p| (&p.attributes, p.flags),
                    |p, prev| histogram_rule(temporality, p, prev),
                )
            }
            metric::Data::ExponentialHistogram(h) => {
                let temporality = h.aggregation_temporality;
                self.points(
                    &ctx,
                    &h.data_points,
                    attrs,
                    key,
                    acc,
                    |p| (&p.attributes, p.flags),
                    |p, prev| exponential_rule(temporality, p, prev),
                )
            }
            metric::Data::Summary(s) => self.points(
                &ctx,
                &s.data_points,
                attrs,
                key,
                acc,
                |p| (&p.attributes, p.flags),
                |p, prev| match prev {
                    Some(prev) if p.time_unix_nano < prev.time() => {
                        Decision::Skip(|a| a.dropped_out_of_order += 1)
                    }
                    _ => Decision::Store(Stored::Summary {
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        quantiles: p
                            .quantile_values
                            .iter()
                            .map(|q| (q.quantile, q.value))
                            .collect(),
                    }),
                },
            ),
        };
        acc.points += n;
    }

    /// Runs `rule` on every point of a metric against its stored series. Returns the points
    /// stored, or 0 when a no-recorded-value point ended the metric (otelcol returns early).
    #[allow(clippy::too_many_arguments)]
    fn points<'a, P>(
        &self,
        ctx: &MetricCtx<'_, 'a>,
        points: &'a [P],
        attrs: &mut Vec<(&'a str, Cow<'a, str>)>,
        key: &mut Vec<u8>,
        acc: &mut Accumulated,
        parts: impl Fn(&'a P) -> (&'a Vec<KeyValue>, u32),
        rule: impl Fn(&'a P, Option<&Stored>) -> Decision,
    ) -> usize
    where
        P: 'a,
    {
        let mut n = 0;
        let mut order: Vec<usize> = Vec::new();
        for p in points {
            let (point_attrs, flags) = parts(p);
            point_attributes(point_attrs, ctx.resource_attrs, attrs);
            key.clear();
            key.extend_from_slice(ctx.key_prefix);
            order.clear();
            order.extend(0..attrs.len());
            order.sort_by(|&a, &b| attrs[a].cmp(&attrs[b]));
            key.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
            for &i in &order {
                push_field(key, attrs[i].0);
                push_field(key, &attrs[i].1);
            }
            key.extend_from_slice(ctx.key_suffix);
            let shard = &self.shards[(self.hasher.hash_one(&key[..]) as usize) % SHARDS];
            let mut map = shard.lock();
            if flags & NO_RECORDED_VALUE != 0 {
                map.remove(&key[..]);
                acc.deleted_no_recorded_value += 1;
                return 0;
            }
            match map.get_mut(&key[..]) {
                Some(entry) => match rule(p, Some(&entry.point)) {
                    Decision::Store(point) => {
                        entry.point = point;
                        entry.family = ctx.family.clone();
                        entry.resource = ctx.resource.clone();
                        entry.updated = ctx.now;
                        n += 1;
                    }
                    Decision::Skip(count) => count(acc),
                },
                None => match rule(p, None) {
                    Decision::Store(point) => {
                        let labels = self.labels(ctx, attrs);
                        map.insert(
                            key.as_slice().into(),
                            Entry {
                                family: ctx.family.clone(),
                                labels: Arc::new(labels),
                                resource: ctx.resource.clone(),
                                point,
                                updated: ctx.now,
                            },
                        );
                        n += 1;
                    }
                    Decision::Skip(count) => count(acc),
                },
            }
        }
        n
    }

    fn labels(&self, ctx: &MetricCtx<'_, '_>, attrs: &[(&str, Cow<'_, str>)]) -> Labels {
        let point = attrs.iter().map(|(k, v)| (*k, v.as_ref()));
        let scope = ctx
            .scope_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let job = ctx.resource.job.as_deref().map(|j| ("job", j));
        let instance = ctx.resource.instance.as_deref().map(|i| ("instance", i));
        Labels::new(point.chain(scope).chain(job).chain(instance))
    }

    /// Series currently held (expired ones included until the next collect).
    pub fn series_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Drops series not updated for the expiration time, as otelcol also does on a timer
    /// when nobody scrapes.
    pub fn cleanup_expired(&self, now: Instant) {
        if let Some(cutoff) = now.checked_sub(self.expiration) {
            for shard in self.shards.iter() {
                shard.lock().retain(|_, e| e.updated >= cutoff);
            }
        }
    }

    /// [`MetricsSource::collect`] at a given time, for expiration.
    pub fn collect_at(&self, now: Instant, sink: &mut dyn MetricsSink) {
        let cutoff = now.checked_sub(self.expiration);
        let mut snaps: Vec<Snap> = Vec::new();
        for shard in self.shards.iter() {
            let mut map = shard.lock();
            if let Some(cutoff) = cutoff {
                map.retain(|_, e| e.updated >= cutoff);
            }
            snaps.extend(map.values().map(|e| Snap {
                family: e.family.clone(),
                labels: e.labels.clone(),
                resource: e.resource.clone(),
                point: e.point.clone(),
            }));
        }
        if self.settings.target_info {
            write_target_info(&snaps, sink);
        }
        snaps.sort_by(|a, b| {
            (&a.family.name, &a.family.unit, kind_order(a.family.kind)).cmp(&(
                &b.family.name,
                &b.family.unit,
                kind_order(b.family.kind),
            ))
        });
        // Decide every family first so no lock is held while the sink runs.
        let mut groups: Vec<(usize, usize, Option<Arc<str>>)> = Vec::new();
        {
            let mut families = self.families.lock();
            let mut start = 0;
            while start < snaps.len() {
                let f = &snaps[start].family;
                let mut end = start + 1;
                while end < snaps.len() && {
                    let g = &snaps[end].family;
                    g.name == f.name && g.unit == f.unit && g.kind == f.kind
                } {
                    end += 1;
                }
                let conflict_key = family_names(&f.name, &f.unit, f.kind, "", true)
                    .map_or_else(|| f.name.clone(), |n| n.sample);
                let class = kind_class(f.kind);
                let reg = families.entry(conflict_key).or_insert_with(|| Registered {
                    class,
                    description: f.description.as_str().into(),
                    last_seen: now,
                });
                let description = (reg.class == class).then(|| {
                    reg.last_seen = now;
                    reg.description.clone()
                });
                groups.push((start, end, description));
                start = end;
            }
            if let Some(cutoff) = cutoff {
                families.retain(|_, r| r.last_seen >= cutoff);
            }
        }
        let mut labels = Vec::new();
        let mut bounds = Vec::new();
        let mut counts = Vec::new();
        let mut quantiles = Vec::new();
        for (start, end, description) in groups {
            let Some(description) = description else {
                continue;
            };
            let f = &snaps[start].family;
            sink.family(&FamilyDesc {
                name: &f.name,
                description: &description,
                unit: &f.unit,
                kind: f.kind,
            });
            for snap in &snaps[start..end] {
                snap.labels.fill(&mut labels);
                write_point(
                    snap,
                    &labels,
                    sink,
                    &mut bounds,
                    &mut counts,
                    &mut quantiles,
                );
            }
        }
    }
}

struct Snap {
    family: Arc<FamilyMeta>,
    labels: Arc<Labels>,
    resource: Arc<ResourceMeta>,
    point: Stored,
}

fn kind_order(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
        MetricKind::ExponentialHistogram => 3,
        MetricKind::Summary => 4,
    }
}

/// The Prometheus metric type otelcol registers a family under.
fn kind_class(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram | MetricKind::ExponentialHistogram => 2,
        MetricKind::Summary => 3,
    }
}

/// One `target_info` per distinct `job`/`instance`, from the resources of live series;
/// resources without both (non-empty) are skipped, as otelcol's `resourceSignature` does.
fn write_target_info(snaps: &[Snap], sink: &mut dyn MetricsSink) {
    let mut seen: hashbrown::HashSet<(&str, &str)> = hashbrown::HashSet::new();
    let mut first = true;
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for snap in snaps {
        let r = &*snap.resource;
        let (Some(job), Some(instance)) = (r.job.as_deref(), r.instance.as_deref()) else {
            continue;
        };
        if job.is_empty() || instance.is_empty() || !seen.insert((job, instance)) {
            continue;
        }
        if first {
            sink.family(&FamilyDesc {
                name: TARGET_INFO,
                description: TARGET_INFO_DESCRIPTION,
                unit: "",
                kind: MetricKind::Gauge,
            });
            first = false;
        }
        labels.clear();
        labels.extend(
            r.attrs
                .iter()
                .filter(|(k, _)| !is_identifying(k))
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        labels.push(("job", job));
        labels.push(("instance", instance));
        sink.number(
            &labels,
            &NumberPoint {
                value: 1.0,
                start_time_unix_nano: 0,
                time_unix_nano: 0,
                exemplars: &[],
            },
        );
    }
}

fn write_point(
    snap: &Snap,
    labels: &[(&str, &str)],
    sink: &mut dyn MetricsSink,
    bounds: &mut Vec<f64>,
    counts: &mut Vec<u64>,
    quantiles: &mut Vec<(f64, f64)>,
) {
    match &snap.point {
        Stored::Number {
            value,
            start,
            time,
            exemplars,
        } => sink.number(
            labels,
            &NumberPoint {
                value: value.as_f64(),
                start_time_unix_nano: *start,
                time_unix_nano: *time,
                exemplars,
            },
        ),
        Stored::Histogram(h) => {
            prepare_buckets(h, bounds, counts);
            sink.histogram(
                labels,
                &HistogramPoint {
                    bounds,
                    bucket_counts: counts,
                    sum: h.sum,
                    count: h.count,
                    start_time_unix_nano: h.start,
                    time_unix_nano: h.time,
                    exemplars: &h.exemplars,
                },
            );
        }
        Stored::Exponential(h) => sink.exponential_histogram(
            labels,
            &ExponentialHistogramPoint {
                scale: h.scale,
                count: h.count,
                sum: h.sum,
                zero_count: h.zero_count,
                zero_threshold: h.zero_threshold,
                positive_offset: h.pos_offset,
                positive_counts: &h.pos,
                negative_offset: h.neg_offset,
                negative_counts: &h.neg,
                start_time_unix_nano: h.start,
                time_unix_nano: h.time,
                exemplars: &h.exemplars,
            },
        ),
        Stored::Summary {
            start,
            time,
            count,
            sum,
            quantiles: q,
        } => {
            // otelcol goes through a map (the last value of a repeated quantile wins) and
            // client_golang sorts the quantiles.
            quantiles.clear();
            for &(quantile, value) in q.iter() {
                match quantiles.iter_mut().find(|(k, _)| *k == quantile) {
                    Some(slot) => slot.1 = value,
                    None => quantiles.push((quantile, value)),
                }
            }
            quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
            sink.summary(
                labels,
                &SummaryPoint {
                    count: *count,
                    sum: *sum,
                    quantiles,
                    start_time_unix_nano: *start,
                    time_unix_nano: *time,
                },
            );
        }
    }
}

/// otelcol's scrape exporter takes the first of repeated bounds, sorts them, and reads the
/// count at the bound's original index (0 past the end of the counts); `+Inf` is the point's
/// count. A `+Inf` among the bounds folds into the last bucket.
fn prepare_buckets(h: &Hist, bounds: &mut Vec<f64>, counts: &mut Vec<u64>) {
    let mut indexed: Vec<(f64, usize)> = Vec::with_capacity(h.bounds.len());
    for (i, &b) in h.bounds.iter().enumerate() {
        if !indexed.iter().any(|&(seen, _)| seen == b) {
            indexed.push((b, i));
        }
    }
    // Go's sort.Float64s puts NaN first.
    indexed.sort_by(|a, b| match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.0.total_cmp(&b.0),
    });
    bounds.clear();
    counts.clear();
    let mut total: u64 = 0;
    for (b, i) in indexed {
        let c = h.counts.get(i).copied().unwrap_or(0);
        total = total.saturating_add(c);
        if b == f64::INFINITY {
            // Counted into the final bucket below.
            continue;
        }
        bounds.push(b);
        counts.push(c);
    }
    let finite: u64 = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
    let inf_bound = h.bounds.contains(&f64::INFINITY);
    counts.push(if inf_bound {
        total.saturating_sub(finite)
    } else {
        h.count.saturating_sub(finite)
    });
}

fn histogram_rule(temporality: i32, p: &HistogramDataPoint, prev: Option<&Stored>) -> Decision {
    let incoming = || Hist {
        start: p.start_time_unix_nano,
        time: p.time_unix_nano,
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        bounds: p.explicit_bounds.clone(),
        counts: p.bucket_counts.clone(),
        exemplars: exemplars(&p.exemplars).into_boxed_slice(),
    };
    let Some(prev) = prev else {
        return Decision::Store(Stored::Histogram(incoming()));
    };
    if temporality == AggregationTemporality::Delta as i32 {
        let Stored::Histogram(pp) = prev else {
            return Decision::Store(Stored::Histogram(incoming()));
        };
        if p.start_time_unix_nano != pp.time {
            if p.start_time_unix_nano <= pp.time {
                return Decision::Skip(|a| a.dropped_misaligned += 1);
            }
            return Decision::Store(Stored::Histogram(incoming()));
        }
        Decision::Store(Stored::Histogram(merge_histograms(pp, &incoming())))
    } else if temporality == AggregationTemporality::Cumulative as i32 {
        if p.time_unix_nano < prev.time() {
            return Decision::Skip(|a| a.dropped_out_of_order += 1);
        }
        Decision::Store(Stored::Histogram(incoming()))
    } else {
        Decision::Skip(|a| a.dropped_unspecified_temporality += 1)
    }
}

/// otelcol's `accumulateHistogramValues`: counts add up when the bounds match, else the
/// newer point wins; exemplars are not carried over.
fn merge_histograms(prev: &Hist, cur: &Hist) -> Hist {
    let (older, newer) = if cur.time < prev.time {
        (cur, prev)
    } else {
        (prev, cur)
    };
    let (count, sum, counts) = if older.bounds == newer.bounds {
        (
            newer.count.wrapping_add(older.count),
            newer.sum + older.sum,
            newer
                .counts
                .iter()
                .enumerate()
                .map(|(i, &c)| c.wrapping_add(older.counts.get(i).copied().unwrap_or(0)))
                .collect(),
        )
    } else {
        (newer.count, newer.sum, newer.counts.clone())
    };
    Hist {
        start: prev.start,
        time: newer.time,
        count,
        sum,
        bounds: newer.bounds.clone(),
        counts,
        exemplars: Box::default(),
    }
}

fn buckets(b: Option<&Buckets>) -> (i32, Vec<u64>) {
    b.map_or((0, Vec::new()), |b| (b.offset, b.bucket_counts.clone()))
}

fn exponential_rule(
    temporality: i32,
    p: &ExponentialHistogramDataPoint,
    prev: Option<&Stored>,
) -> Decision {
    let incoming = || {
        let (pos_offset, pos) = buckets(p.positive.as_ref());
        let (neg_offset, neg) = buckets(p.negative.as_ref());
        ExpHist {
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            scale: p.scale,
            count: p.count,
            sum: p.sum,
            zero_count: p.zero_count,
            zero_threshold: p.zero_threshold,
            pos_offset,
            pos,
            neg_offset,
            neg,
            exemplars: exemplars(&p.exemplars).into_boxed_slice(),
        }
    };
    let Some(prev) = prev else {
        return Decision::Store(Stored::Exponential(incoming()));
    };
    if temporality == AggregationTemporality::Delta as i32 {
        let Stored::Exponential(pp) = prev else {
            return Decision::Store(Stored::Exponential(incoming()));
        };
        if p.start_time_unix_nano != pp.time {
            if p.start_time_unix_nano <= pp.time {
                return Decision::Skip(|a| a.dropped_misaligned += 1);
            }
            return Decision::Store(Stored::Exponential(incoming()));
        }
        Decision::Store(Stored::Exponential(merge_exponential(pp, &incoming())))
    } else if temporality == AggregationTemporality::Cumulative as i32 {
        if p.time_unix_nano < prev.time() {
            return Decision::Skip(|a| a.dropped_out_of_order += 1);
        }
        Decision::Store(Stored::Exponential(incoming()))
    } else {
        Decision::Skip(|a| a.dropped_unspecified_temporality += 1)
    }
}

/// otelcol's `accumulateExponentialHistogramValues` (a delta point added to the stored one at
/// the coarser of their scales, under the larger zero threshold), without its two mistakes
/// (docs/compatibility.md): otelcol's in-place downscale counts the first bucket twice when
/// the range does not start on a merged bucket's boundary (the buckets then add up to more
/// than the count), and its zero-threshold filter uses `2^(scale+index+1)` as a bucket's upper
/// bound and looks only at positive buckets. Here buckets are merged exactly and the filter
/// uses the bucket's true bound on both sides.
fn merge_exponential(prev: &ExpHist, cur: &ExpHist) -> ExpHist {
    let (start, time) = if cur.time < prev.time {
        (cur.start, prev.time)
    } else {
        (prev.start, cur.time)
    };
    let scale = cur.scale.min(prev.scale);
    let zero_threshold = prev.zero_threshold.max(cur.zero_threshold);
    let (mut p_pos_off, mut p_pos) =
        downscale(prev.pos_offset, prev.pos.clone(), prev.scale, scale);
    let (mut p_neg_off, mut p_neg) =
        downscale(prev.neg_offset, prev.neg.clone(), prev.scale, scale);
    let (mut c_pos_off, mut c_pos) = downscale(cur.pos_offset, cur.pos.clone(), cur.scale, scale);
    let (mut c_neg_off, mut c_neg) = downscale(cur.neg_offset, cur.neg.clone(), cur.scale, scale);
    let mut extra_zero: u64 = 0;
    if zero_threshold > prev.zero_threshold {
        let (z1, z2);
        (p_pos_off, p_pos, z1) = filter_zero(p_pos_off, p_pos, scale, zero_threshold);
        (p_neg_off, p_neg, z2) = filter_zero(p_neg_off, p_neg, scale, zero_threshold);
        extra_zero = extra_zero.wrapping_add(z1).wrapping_add(z2);
    }
    if zero_threshold > cur.zero_threshold {
        let (z1, z2);
        (c_pos_off, c_pos, z1) = filter_zero(c_pos_off, c_pos, scale, zero_threshold);
        (c_neg_off, c_neg, z2) = filter_zero(c_neg_off, c_neg, scale, zero_threshold);
        extra_zero = extra_zero.wrapping_add(z1).wrapping_add(z2);
    }
    let (pos_offset, pos) = merge_buckets(p_pos_off, p_pos, c_pos_off, c_pos);
    let (neg_offset, neg) = merge_buckets(p_neg_off, p_neg, c_neg_off, c_neg);
    ExpHist {
        start,
        time,
        scale,
        count: prev.count.wrapping_add(cur.count),
        sum: match (prev.sum, cur.sum) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        },
        zero_count: prev
            .zero_count
            .wrapping_add(cur.zero_count)
            .wrapping_add(extra_zero),
        zero_threshold,
        pos_offset,
        pos,
        neg_offset,
        neg,
        exemplars: Box::default(),
    }
}

/// The buckets of `(offset, counts)` at scale `from`, merged into scale `to` (coarser):
/// bucket `k` becomes bucket `floor(k / 2^(from - to))`.
fn downscale(offset: i32, counts: Vec<u64>, from: i32, to: i32) -> (i32, Vec<u64>) {
    if counts.is_empty() || from <= to {
        return (offset, counts);
    }
    let shift = (from - to).min(62) as u32;
    let merged = |k: i64| k >> shift;
    let first = i64::from(offset);
    let new_offset = merged(first);
    let new_last = merged(first + counts.len() as i64 - 1);
    let mut out = vec![0u64; (new_last - new_offset + 1) as usize];
    for (i, c) in counts.iter().enumerate() {
        let slot = (merged(first + i as i64) - new_offset) as usize;
        if let Some(o) = out.get_mut(slot) {
            *o = o.wrapping_add(*c);
        }
    }
    (new_offset as i32, out)
}

/// Moves the buckets that lie entirely within `threshold` of zero into the zero count.
/// Bucket `k` at `scale` ends at `2^((k + 1) * 2^-scale)`.
fn filter_zero(offset: i32, counts: Vec<u64>, scale: i32, threshold: f64) -> (i32, Vec<u64>, u64) {
    if counts.is_empty() || threshold <= 0.0 {
        return (offset, counts, 0);
    }
    let upper = |k: i64| 2f64.powf((k + 1) as f64 * 2f64.powi(-scale));
    let below = counts
        .iter()
        .enumerate()
        .take_while(|(i, _)| upper(i64::from(offset) + *i as i64) <= threshold)
        .count();
    if below == counts.len() {
        return (
            0,
            Vec::new(),
            counts.iter().fold(0u64, |a, c| a.wrapping_add(*c)),
        );
    }
    let extra = counts[..below].iter().fold(0u64, |a, c| a.wrapping_add(*c));
    (
        offset.wrapping_add(below as i32),
        counts[below..].to_vec(),
        extra,
    )
}

fn merge_buckets(off_a: i32, a: Vec<u64>, off_b: i32, b: Vec<u64>) -> (i32, Vec<u64>) {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return (0, Vec::new()),
        (true, false) => return (off_b, b),
        (false, true) => return (off_a, a),
        _ => {}
    }
    // i64 so that offsets at the ends of i32 cannot overflow.
    let (oa, ob) = (i64::from(off_a), i64::from(off_b));
    let min = oa.min(ob);
    let last = (oa + a.len() as i64 - 1).max(ob + b.len() as i64 - 1);
    let mut out = vec![0u64; (last - min + 1) as usize];
    for (base, counts) in [(oa, &a), (ob, &b)] {
        for (i, c) in counts.iter().enumerate() {
            let slot = (base + i as i64 - min) as usize;
            out[slot] = out[slot].wrapping_add(*c);
        }
    }
    (min as i32, out)
}

impl MetricsSource for Accumulator {
    /// `target_info` first, then the families, each contiguous.
    fn collect(&self, sink: &mut dyn MetricsSink) {
        self.collect_at(Instant::now(), sink);
    }
}

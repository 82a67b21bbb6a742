//! The scrape exporter's state: the last value of every series, as otelcol's
//! `lastValueAccumulator` keeps it, sharded so that ingestion never waits on a global lock.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashMap};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality, Metric};
use parking_lot::Mutex;
use redline_pipeline::metrics::MetricKind;

use crate::{
    attr_string, decode, exemplars, instance, is_reserved_scope_attribute, job, point_attributes,
    Settings, TranslateError, NO_RECORDED_VALUE,
};

mod collect;
mod rules;

use rules::{exponential_rule, histogram_rule, Num, Stored};

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
/// [`Settings::resource_labels`]), `job` and `instance`. Other resource attributes are
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
        // Before the label buffer, which borrows from them.
        let selections = crate::resource_selections(&request, &self.settings);
        let mut attrs = Vec::new();
        for (rm, selected) in request.resource_metrics.iter().zip(&selections) {
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
            let merged = selected.as_deref();
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
}

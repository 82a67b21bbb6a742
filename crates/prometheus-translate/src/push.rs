//! Stateless translation of one request for remote write: otelcol-contrib's
//! `prometheusremotewrite` translator (`FromMetrics`, remote write 1.0) with the exporter's
//! default settings.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric, AggregationTemporality, Metric};
use redline_pipeline::metrics::{
    ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, NumberPoint,
    SummaryPoint, STALE_NAN,
};

use crate::{
    attr_string, decode, exemplars, get, is_identifying, is_reserved_scope_attribute, number_value,
    point_attributes, Settings, TranslateError, NO_RECORDED_VALUE, SERVICE_INSTANCE_ID,
    SERVICE_NAME, SERVICE_NAMESPACE, TARGET_INFO, TARGET_INFO_DESCRIPTION,
};

/// What one [`translate`] call handed to the sink and what it left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Translated {
    /// Points written (`target_info` included).
    pub points: usize,
    /// Of those, points flagged "no recorded value", written as stale markers.
    pub stale: usize,
    /// `target_info` points written.
    pub target_info: usize,
    /// Points of sums and histograms that are not cumulative (delta or unspecified): the
    /// remote-write translator refuses those metrics whole.
    pub dropped_not_cumulative: usize,
    /// Metrics without data points or without a type.
    pub dropped_empty_metrics: usize,
}

/// Stateless push translation (remote write): one request's series with their own timestamps.
///
/// As otelcol's remote-write translator:
///
/// - sums, histograms and exponential histograms must be cumulative, or the metric is
///   dropped (delta is not converted); a monotonic sum is a counter, any other a gauge;
/// - a point flagged "no recorded value" keeps its series with Prometheus' stale marker:
///   [`STALE_NAN`] as the value of numbers, as the `sum` of histograms, summaries and
///   exponential histograms (the sink then writes the marker for every sample of the
///   point: buckets, count, sum, quantiles);
/// - histograms: buckets up to the shorter of bounds and counts, bounds in the order
///   received; `+Inf` is the count (the last bucket count makes up the difference);
/// - exemplars only on counters, histograms and exponential histograms;
/// - families are walked in request order, so a name can come back in another resource or
///   scope: the sink merges;
/// - `target_info` after the metrics of each resource, with the newest timestamp of its
///   points (dropped metrics count too), when that is not 0, when the resource has an
///   attribute besides `service.name`, `service.namespace` and `service.instance.id`, and
///   when `job` or `instance` ends up among its labels.
///
/// Labels, in the order a sink must apply them to reproduce otelcol's precedence:
///
/// 1. point attributes (the resource's merged in as [`Settings::resource_labels`] selects),
///    those with an empty value left out, sorted by key: otelcol joins the values of keys
///    that translate to the same label name with `;` (a repeated value once);
/// 2. `job` (when `service.name` is not empty) and `instance` (when
///    `service.instance.id` is not empty), replacing a point attribute of that name;
/// 3. (the exporter's `external_labels` go here, only where no label of that name exists);
/// 4. with [`Settings::scope_labels`]: `otel_scope_name` and `otel_scope_version` when not
///    empty, `otel_scope_<key>` for scope attributes but `name`, `version`, `schema_url`;
///    these replace anything before them.
pub fn translate(
    request: &[u8],
    settings: &Settings,
    sink: &mut dyn MetricsSink,
) -> Result<Translated, TranslateError> {
    let request = decode(request)?;
    let mut out = Translated::default();
    // Before the label buffer, which borrows from them.
    let selections = crate::resource_selections(&request, settings);
    let mut attrs: Vec<(&str, Cow<str>)> = Vec::new();
    let mut labels_buf: Vec<(&str, &str)> = Vec::new();
    let mut bounds: Vec<f64> = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    let mut quantiles: Vec<(f64, f64)> = Vec::new();
    for (rm, selected) in request.resource_metrics.iter().zip(&selections) {
        let resource: &[KeyValue] = match &rm.resource {
            Some(r) => &r.attributes,
            None => &[],
        };
        let job = remote_write_job(resource);
        let instance = get(resource, SERVICE_INSTANCE_ID)
            .map(attr_string)
            .filter(|v| !v.is_empty());
        let identity: Vec<(&str, &str)> = job
            .as_deref()
            .map(|j| ("job", j))
            .into_iter()
            .chain(instance.as_deref().map(|i| ("instance", i)))
            .collect();
        let merged = selected.as_deref();
        let mut most_recent: u64 = 0;
        for sm in &rm.scope_metrics {
            let mut scope: Vec<(Cow<str>, Cow<str>)> = Vec::new();
            if settings.scope_labels {
                if let Some(s) = &sm.scope {
                    if !s.name.is_empty() {
                        scope.push(("otel_scope_name".into(), s.name.as_str().into()));
                    }
                    if !s.version.is_empty() {
                        scope.push(("otel_scope_version".into(), s.version.as_str().into()));
                    }
                    for kv in &s.attributes {
                        if !is_reserved_scope_attribute(&kv.key) {
                            scope.push((format!("otel_scope_{}", kv.key).into(), attr_string(kv)));
                        }
                    }
                }
            }
            for m in &sm.metrics {
                most_recent = most_recent.max(newest_time(m));
                let Some(data) = &m.data else {
                    out.dropped_empty_metrics += 1;
                    continue;
                };
                let (kind, len, cumulative) = match data {
                    metric::Data::Gauge(g) => (MetricKind::Gauge, g.data_points.len(), true),
                    metric::Data::Sum(s) => (
                        if s.is_monotonic {
                            MetricKind::Counter
                        } else {
                            MetricKind::Gauge
                        },
                        s.data_points.len(),
                        is_cumulative(s.aggregation_temporality),
                    ),
                    metric::Data::Histogram(h) => (
                        MetricKind::Histogram,
                        h.data_points.len(),
                        is_cumulative(h.aggregation_temporality),
                    ),
                    metric::Data::ExponentialHistogram(h) => (
                        MetricKind::ExponentialHistogram,
                        h.data_points.len(),
                        is_cumulative(h.aggregation_temporality),
                    ),
                    metric::Data::Summary(s) => (MetricKind::Summary, s.data_points.len(), true),
                };
                if !cumulative {
                    out.dropped_not_cumulative += len;
                    continue;
                }
                if len == 0 {
                    out.dropped_empty_metrics += 1;
                    continue;
                }
                sink.family(&FamilyDesc {
                    name: &m.name,
                    description: &m.description,
                    unit: &m.unit,
                    kind,
                });
                macro_rules! labels {
                    ($point:expr, $labels:ident) => {
                        point_labels(&$point.attributes, merged, &mut attrs);
                        let mut $labels = recycle(std::mem::take(&mut labels_buf));
                        $labels.extend(attrs.iter().map(|(k, v)| (*k, v.as_ref())));
                        $labels.extend(identity.iter().copied());
                        $labels.extend(scope.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
                    };
                }
                match data {
                    metric::Data::Gauge(g) => {
                        for p in &g.data_points {
                            labels!(p, labels);
                            let stale = p.flags & NO_RECORDED_VALUE != 0;
                            out.stale += usize::from(stale);
                            sink.number(
                                &labels,
                                &NumberPoint {
                                    value: if stale {
                                        STALE_NAN
                                    } else {
                                        number_value(p.value.as_ref())
                                    },
                                    start_time_unix_nano: p.start_time_unix_nano,
                                    time_unix_nano: p.time_unix_nano,
                                    exemplars: &[],
                                },
                            );
                            labels_buf = recycle(labels);
                        }
                    }
                    metric::Data::Sum(s) => {
                        for p in &s.data_points {
                            labels!(p, labels);
                            let stale = p.flags & NO_RECORDED_VALUE != 0;
                            out.stale += usize::from(stale);
                            let ex = if s.is_monotonic {
                                exemplars(&p.exemplars)
                            } else {
                                Vec::new()
                            };
                            sink.number(
                                &labels,
                                &NumberPoint {
                                    value: if stale {
                                        STALE_NAN
                                    } else {
                                        number_value(p.value.as_ref())
                                    },
                                    start_time_unix_nano: p.start_time_unix_nano,
                                    time_unix_nano: p.time_unix_nano,
                                    exemplars: &ex,
                                },
                            );
                            labels_buf = recycle(labels);
                        }
                    }
                    metric::Data::Histogram(h) => {
                        for p in &h.data_points {
                            labels!(p, labels);
                            let stale = p.flags & NO_RECORDED_VALUE != 0;
                            out.stale += usize::from(stale);
                            let n = p.explicit_bounds.len().min(p.bucket_counts.len());
                            bounds.clear();
                            bounds.extend_from_slice(&p.explicit_bounds[..n]);
                            counts.clear();
                            counts.extend_from_slice(&p.bucket_counts[..n]);
                            let finite = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
                            counts.push(p.count.saturating_sub(finite));
                            if stale {
                                counts.iter_mut().for_each(|c| *c = 0);
                            }
                            let ex = exemplars(&p.exemplars);
                            sink.histogram(
                                &labels,
                                &HistogramPoint {
                                    bounds: &bounds,
                                    bucket_counts: &counts,
                                    sum: if stale {
                                        STALE_NAN
                                    } else {
                                        p.sum.unwrap_or(0.0)
                                    },
                                    count: if stale { 0 } else { p.count },
                                    start_time_unix_nano: p.start_time_unix_nano,
                                    time_unix_nano: p.time_unix_nano,
                                    exemplars: &ex,
                                },
                            );
                            labels_buf = recycle(labels);
                        }
                    }
                    metric::Data::ExponentialHistogram(h) => {
                        for p in &h.data_points {
                            labels!(p, labels);
                            let stale = p.flags & NO_RECORDED_VALUE != 0;
                            out.stale += usize::from(stale);
                            let (pos_off, pos) = p
                                .positive
                                .as_ref()
                                .map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()));
                            let (neg_off, neg) = p
                                .negative
                                .as_ref()
                                .map_or((0, &[][..]), |b| (b.offset, b.bucket_counts.as_slice()));
                            let ex = exemplars(&p.exemplars);
                            sink.exponential_histogram(
                                &labels,
                                &ExponentialHistogramPoint {
                                    scale: p.scale,
                                    count: p.count,
                                    sum: if stale { Some(STALE_NAN) } else { p.sum },
                                    zero_count: p.zero_count,
                                    zero_threshold: p.zero_threshold,
                                    positive_offset: pos_off,
                                    positive_counts: pos,
                                    negative_offset: neg_off,
                                    negative_counts: neg,
                                    start_time_unix_nano: p.start_time_unix_nano,
                                    time_unix_nano: p.time_unix_nano,
                                    exemplars: &ex,
                                },
                            );
                            labels_buf = recycle(labels);
                        }
                    }
                    metric::Data::Summary(s) => {
                        for p in &s.data_points {
                            labels!(p, labels);
                            let stale = p.flags & NO_RECORDED_VALUE != 0;
                            out.stale += usize::from(stale);
                            quantiles.clear();
                            quantiles
                                .extend(p.quantile_values.iter().map(|q| (q.quantile, q.value)));
                            sink.summary(
                                &labels,
                                &SummaryPoint {
                                    count: p.count,
                                    sum: if stale { STALE_NAN } else { p.sum },
                                    quantiles: &quantiles,
                                    start_time_unix_nano: p.start_time_unix_nano,
                                    time_unix_nano: p.time_unix_nano,
                                },
                            );
                            labels_buf = recycle(labels);
                        }
                    }
                }
                out.points += len;
            }
        }
        if settings.target_info && most_recent != 0 {
            let non_identifying = resource.len()
                - [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID]
                    .iter()
                    .filter(|k| get(resource, k).is_some())
                    .count();
            if non_identifying == 0 {
                continue;
            }
            attrs.clear();
            attrs.extend(
                resource
                    .iter()
                    .filter(|kv| !is_identifying(&kv.key))
                    .map(|kv| (kv.key.as_str(), attr_string(kv)))
                    .filter(|(_, v)| !v.is_empty()),
            );
            attrs.sort_by(|a, b| a.0.cmp(b.0));
            let has_identifier =
                !identity.is_empty() || attrs.iter().any(|(k, _)| *k == "job" || *k == "instance");
            if !has_identifier {
                continue;
            }
            let mut labels = recycle(std::mem::take(&mut labels_buf));
            labels.extend(attrs.iter().map(|(k, v)| (*k, v.as_ref())));
            labels.extend(identity.iter().copied());
            sink.family(&FamilyDesc {
                name: TARGET_INFO,
                description: TARGET_INFO_DESCRIPTION,
                unit: "",
                kind: MetricKind::Gauge,
            });
            sink.number(
                &labels,
                &NumberPoint {
                    value: 1.0,
                    start_time_unix_nano: 0,
                    time_unix_nano: most_recent,
                    exemplars: &[],
                },
            );
            out.points += 1;
            out.target_info += 1;
        }
    }
    Ok(out)
}

/// Empties a label buffer and hands its allocation to labels of another lifetime.
fn recycle<'b>(mut v: Vec<(&str, &str)>) -> Vec<(&'b str, &'b str)> {
    v.clear();
    v.into_iter().map(|_| ("", "")).collect()
}

/// Point attributes as remote write labels them: empty values left out, sorted by key.
fn point_labels<'a>(
    point: &'a [KeyValue],
    merged: Option<&'a [KeyValue]>,
    attrs: &mut Vec<(&'a str, Cow<'a, str>)>,
) {
    point_attributes(point, merged, attrs);
    attrs.retain(|(_, v)| !v.is_empty());
    attrs.sort_by(|a, b| a.0.cmp(b.0));
}

fn is_cumulative(temporality: i32) -> bool {
    temporality == AggregationTemporality::Cumulative as i32
}

/// Remote write maps `service.name` to `job` only when it is not empty.
fn remote_write_job(resource: &[KeyValue]) -> Option<String> {
    let name = attr_string(get(resource, SERVICE_NAME)?);
    if name.is_empty() {
        return None;
    }
    Some(match get(resource, SERVICE_NAMESPACE) {
        Some(ns) => format!("{}/{}", attr_string(ns), name),
        None => name.into_owned(),
    })
}

fn newest_time(m: &Metric) -> u64 {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).max(),
        Some(metric::Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).max(),
        Some(metric::Data::Histogram(h)) => h.data_points.iter().map(|p| p.time_unix_nano).max(),
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).max()
        }
        Some(metric::Data::Summary(s)) => s.data_points.iter().map(|p| p.time_unix_nano).max(),
        None => None,
    }
    .unwrap_or(0)
}

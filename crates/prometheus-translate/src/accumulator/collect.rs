//! Walking the accumulated series into a sink: `target_info` first, then each family
//! contiguous, one shard locked at a time and no lock held while the sink works.

use std::sync::Arc;
use std::time::Instant;

use redline_pipeline::metrics::{
    ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
    NumberPoint, SummaryPoint,
};
use redline_pipeline::prom_names::family_names;

use super::rules::{Hist, Stored};
use super::{Accumulator, FamilyMeta, Labels, Registered, ResourceMeta};
use crate::{is_identifying, TARGET_INFO, TARGET_INFO_DESCRIPTION};

impl Accumulator {
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

pub(super) struct Snap {
    pub(super) family: Arc<FamilyMeta>,
    pub(super) labels: Arc<Labels>,
    pub(super) resource: Arc<ResourceMeta>,
    pub(super) point: Stored,
}

pub(super) fn kind_order(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
        MetricKind::ExponentialHistogram => 3,
        MetricKind::Summary => 4,
    }
}

/// The Prometheus metric type otelcol registers a family under.
pub(super) fn kind_class(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram | MetricKind::ExponentialHistogram => 2,
        MetricKind::Summary => 3,
    }
}

/// One `target_info` per distinct `job`/`instance`, from the resources of live series;
/// resources without both (non-empty) are skipped, as otelcol's `resourceSignature` does.
pub(super) fn write_target_info(snaps: &[Snap], sink: &mut dyn MetricsSink) {
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

pub(super) fn write_point(
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
pub(super) fn prepare_buckets(h: &Hist, bounds: &mut Vec<f64>, counts: &mut Vec<u64>) {
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

impl MetricsSource for Accumulator {
    /// `target_info` first, then the families, each contiguous.
    fn collect(&self, sink: &mut dyn MetricsSink) {
        self.collect_at(Instant::now(), sink);
    }
}

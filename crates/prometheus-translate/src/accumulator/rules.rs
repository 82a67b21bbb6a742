//! The value each kind of series keeps, and otelcol's rules for what a new point does to it
//! (keep the newest, fold deltas into cumulative, reset on a gap).

use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, number_data_point, AggregationTemporality,
    ExponentialHistogramDataPoint, HistogramDataPoint,
};
use redline_pipeline::metrics::Exemplar;

use super::Decision;
use crate::exemplars;

#[derive(Clone, Copy)]
pub(super) enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    pub(super) fn from_otlp(v: Option<&number_data_point::Value>) -> Num {
        match v {
            Some(number_data_point::Value::AsInt(i)) => Num::Int(*i),
            Some(number_data_point::Value::AsDouble(d)) => Num::Double(*d),
            None => Num::Double(0.0),
        }
    }

    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Double(d) => d,
        }
    }

    /// otelcol adds in the new point's type, reading the old value in that type (0 when the
    /// old one was of the other type).
    pub(super) fn add(self, prev: Num) -> Num {
        match (self, prev) {
            (Num::Int(a), Num::Int(b)) => Num::Int(a.wrapping_add(b)),
            (Num::Int(a), Num::Double(_)) => Num::Int(a),
            (Num::Double(a), Num::Double(b)) => Num::Double(a + b),
            (Num::Double(a), Num::Int(_)) => Num::Double(a),
        }
    }
}

#[derive(Clone)]
pub(super) struct Hist {
    pub(super) start: u64,
    pub(super) time: u64,
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) bounds: Vec<f64>,
    pub(super) counts: Vec<u64>,
    pub(super) exemplars: Box<[Exemplar]>,
}

#[derive(Clone)]
pub(super) struct ExpHist {
    pub(super) start: u64,
    pub(super) time: u64,
    pub(super) scale: i32,
    pub(super) count: u64,
    pub(super) sum: Option<f64>,
    pub(super) zero_count: u64,
    pub(super) zero_threshold: f64,
    pub(super) pos_offset: i32,
    pub(super) pos: Vec<u64>,
    pub(super) neg_offset: i32,
    pub(super) neg: Vec<u64>,
    pub(super) exemplars: Box<[Exemplar]>,
}

#[derive(Clone)]
pub(super) enum Stored {
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
    pub(super) fn time(&self) -> u64 {
        match self {
            Stored::Number { time, .. } | Stored::Summary { time, .. } => *time,
            Stored::Histogram(h) => h.time,
            Stored::Exponential(h) => h.time,
        }
    }
}

pub(super) fn histogram_rule(
    temporality: i32,
    p: &HistogramDataPoint,
    prev: Option<&Stored>,
) -> Decision {
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
pub(super) fn merge_histograms(prev: &Hist, cur: &Hist) -> Hist {
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

pub(super) fn buckets(b: Option<&Buckets>) -> (i32, Vec<u64>) {
    b.map_or((0, Vec::new()), |b| (b.offset, b.bucket_counts.clone()))
}

pub(super) fn exponential_rule(
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
pub(super) fn merge_exponential(prev: &ExpHist, cur: &ExpHist) -> ExpHist {
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
pub(super) fn downscale(offset: i32, counts: Vec<u64>, from: i32, to: i32) -> (i32, Vec<u64>) {
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
pub(super) fn filter_zero(
    offset: i32,
    counts: Vec<u64>,
    scale: i32,
    threshold: f64,
) -> (i32, Vec<u64>, u64) {
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

pub(super) fn merge_buckets(off_a: i32, a: Vec<u64>, off_b: i32, b: Vec<u64>) -> (i32, Vec<u64>) {
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

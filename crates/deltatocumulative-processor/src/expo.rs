//! Exponential histogram buckets merged the way otelcol's `deltatocumulative` merges them:
//! the finer histogram downscaled to the coarser one's scale, both to at most 160 buckets, the
//! narrower zero bucket widened to the wider one's threshold, then counts added bucket by
//! bucket. The shapes it leaves (a collapsed bucket list keeps its length, zeros at its end)
//! are kept too, so what Redline forwards matches otelcol's bytes for bytes' sake.

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint;

/// The most buckets a merged side may span.
pub(crate) const MAX_BUCKETS: i64 = 160;

/// The count of bucket `at` (an absolute index), 0 outside the list.
fn count_at(b: &Buckets, at: i64) -> u64 {
    let i = at - i64::from(b.offset);
    usize::try_from(i)
        .ok()
        .and_then(|i| b.bucket_counts.get(i).copied())
        .unwrap_or(0)
}

fn lower(b: &Buckets) -> i64 {
    i64::from(b.offset)
}

fn upper(b: &Buckets) -> i64 {
    i64::from(b.offset) + b.bucket_counts.len() as i64
}

/// The absolute range of `a` and `b` together, without empty buckets at either end (one is
/// kept if all are empty).
fn span(a: &Buckets, b: &Buckets) -> (i64, i64) {
    let mut lo = lower(a).min(lower(b));
    let mut up = upper(a).max(upper(b));
    while lo < up && count_at(a, lo) == 0 && count_at(b, lo) == 0 {
        lo += 1;
    }
    while lo < up - 1 && count_at(a, up - 1) == 0 && count_at(b, up - 1) == 0 {
        up -= 1;
    }
    (lo, up)
}

/// Halves the resolution once: each pair of buckets becomes one. The list keeps its length,
/// its tail zeroed.
fn collapse(b: &mut Buckets) {
    let len = b.bucket_counts.len();
    let offset_was_odd = b.offset % 2 != 0;
    let shift: i64 = if offset_was_odd { -1 } else { 0 };
    let size = len / 2 + usize::from(!len.is_multiple_of(2) || offset_was_odd);
    if offset_was_odd {
        b.offset -= 1;
    }
    b.offset /= 2;
    if len == 0 {
        return;
    }
    let counts = &mut b.bucket_counts;
    for i in 0..size.min(len) {
        let k = i as i64 * 2 + shift;
        if k < 0 {
            // The first bucket pairs with one below the list: it stands alone.
            continue;
        }
        let k = k as usize;
        let mut sum = counts[k];
        if k + 1 < len {
            sum = sum.wrapping_add(counts[k + 1]);
        }
        counts[i] = sum;
    }
    for c in counts.iter_mut().skip(size) {
        *c = 0;
    }
}

/// Collapses after which any bucket list stays as it is: i32 offsets reach 0 or -1 within 32
/// halvings, and a list in memory spans fewer than 2^64 buckets. A client's scale of
/// `i32::MAX` against `i32::MIN` then costs 128 collapses, not four billion.
const COLLAPSES_TO_FIXED_POINT: i64 = 128;

/// Lowers both bucket lists of `dp` from scale `from` to `to` (`to <= from`).
fn downscale(dp: &mut ExponentialHistogramDataPoint, from: i32, to: i32) {
    let steps = (i64::from(from) - i64::from(to)).clamp(0, COLLAPSES_TO_FIXED_POINT);
    for _ in 0..steps {
        if let Some(b) = dp.positive.as_mut() {
            collapse(b);
        }
        if let Some(b) = dp.negative.as_mut() {
            collapse(b);
        }
    }
    dp.scale = dp.scale.min(to);
}

/// The scale at which `a` and `b` together fit in [`MAX_BUCKETS`], starting from `scale`.
fn limit(scale: i32, a: &Buckets, b: &Buckets) -> i32 {
    let (mut lo, mut up) = span(a, b);
    let mut scale = scale;
    while up - lo > MAX_BUCKETS {
        lo /= 2;
        up /= 2;
        scale -= 1;
    }
    scale
}

/// `b`'s counts added into `a`, `a` resized to the range both cover.
fn merge(a: &mut Buckets, b: &Buckets) {
    if b.bucket_counts.is_empty() {
        return;
    }
    if a.bucket_counts.is_empty() {
        a.clone_from(b);
        return;
    }
    let (lo, up) = span(a, b);
    let counts = (lo..up)
        .map(|at| count_at(a, at).wrapping_add(count_at(b, at)))
        .collect();
    a.offset = lo as i32;
    a.bucket_counts = counts;
}

/// The largest bucket index at `scale` whose range ends at or below `v`.
fn index(scale: i32, v: f64) -> i64 {
    let (frac, exp) = frexp(v);
    if frac == 0.5 {
        return ((i64::from(exp) - 1) << scale) - 1;
    }
    let factor = std::f64::consts::LOG2_E * 2f64.powi(scale);
    (v.ln() * factor).floor() as i64
}

/// The upper bound of bucket `index` at `scale`.
fn upper_bound(scale: i32, index: i64) -> f64 {
    let inverse = std::f64::consts::LN_2 * 2f64.powi(-scale);
    ((index + 1) as f64 * inverse).exp()
}

/// Go's `math.Frexp`: `v = frac × 2^exp` with `|frac|` in [0.5, 1).
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || !v.is_finite() {
        return (v, 0);
    }
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i32;
    let mut v = v;
    let mut adjust = 0;
    if exp == 0 {
        // Subnormal: normalise first.
        v *= 2f64.powi(52);
        adjust = -52;
        exp = ((v.to_bits() >> 52) & 0x7ff) as i32;
    }
    let frac_bits = (v.to_bits() & !(0x7ff << 52)) | (1022 << 52);
    (f64::from_bits(frac_bits), exp - 1022 + adjust)
}

/// Moves every bucket of `dp` at or below `width` into its zero bucket and makes the zero
/// threshold the upper bound of the last bucket moved.
fn widen_zero(dp: &mut ExponentialHistogramDataPoint, width: f64) {
    if width <= dp.zero_threshold {
        return;
    }
    let zero = index(dp.scale, width);
    let mut moved = 0u64;
    for b in [dp.positive.as_mut(), dp.negative.as_mut()]
        .into_iter()
        .flatten()
    {
        // Only buckets in the list hold counts: the loop stays as short as the list.
        for at in lower(b)..=zero.min(upper(b) - 1) {
            moved = moved.wrapping_add(count_at(b, at));
        }
        let from = (zero + 1).clamp(lower(b), upper(b));
        let first = (from - lower(b)) as usize;
        b.bucket_counts.drain(..first);
        b.offset = from as i32;
    }
    dp.zero_count = dp.zero_count.wrapping_add(moved);
    dp.zero_threshold = upper_bound(dp.scale, zero);
}

/// Merges `dp` into `state`: scales, zero buckets and bucket counts (not the totals).
pub(crate) fn merge_buckets(
    state: &mut ExponentialHistogramDataPoint,
    dp: &mut ExponentialHistogramDataPoint,
) {
    if state.scale != dp.scale {
        let (hi, to) = if state.scale < dp.scale {
            (&mut *dp, state.scale)
        } else {
            (&mut *state, dp.scale)
        };
        let from = hi.scale;
        downscale(hi, from, to);
    }
    let from = state.scale;
    let empty = Buckets::default();
    let to = limit(
        from,
        state.positive.as_ref().unwrap_or(&empty),
        dp.positive.as_ref().unwrap_or(&empty),
    )
    .min(limit(
        from,
        state.negative.as_ref().unwrap_or(&empty),
        dp.negative.as_ref().unwrap_or(&empty),
    ));
    if from != to {
        downscale(state, from, to);
        downscale(dp, from, to);
    }
    if state.zero_threshold != dp.zero_threshold {
        if state.zero_threshold < dp.zero_threshold {
            widen_zero(state, dp.zero_threshold);
        } else {
            widen_zero(dp, state.zero_threshold);
        }
    }
    for (a, b) in [
        (&mut state.positive, &dp.positive),
        (&mut state.negative, &dp.negative),
    ] {
        if let Some(b) = b {
            merge(a.get_or_insert_with(Buckets::default), b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(offset: i32, counts: &[u64]) -> Buckets {
        Buckets {
            offset,
            bucket_counts: counts.to_vec(),
        }
    }

    #[test]
    fn collapse_pairs_buckets_and_keeps_the_length() {
        let mut b = buckets(0, &[1, 2, 3, 4, 5]);
        collapse(&mut b);
        assert_eq!(b, buckets(0, &[3, 7, 5, 0, 0]));
        // An odd offset pairs its first bucket with the one below the list.
        let mut b = buckets(3, &[1, 2, 3]);
        collapse(&mut b);
        assert_eq!(b, buckets(1, &[1, 5, 0]));
        let mut b = buckets(-3, &[1, 2, 3, 4]);
        collapse(&mut b);
        assert_eq!(b, buckets(-2, &[1, 5, 4, 0]));
    }

    #[test]
    fn a_huge_scale_difference_ends_at_the_fixed_point() {
        let mut dp = ExponentialHistogramDataPoint {
            scale: i32::MAX,
            positive: Some(buckets(i32::MAX - 3, &[1, 2, 3])),
            negative: Some(buckets(i32::MIN, &[4, 5])),
            ..ExponentialHistogramDataPoint::default()
        };
        downscale(&mut dp, i32::MAX, i32::MIN);
        assert_eq!(dp.scale, i32::MIN);
        assert_eq!(dp.positive, Some(buckets(0, &[6, 0, 0])));
        assert_eq!(dp.negative, Some(buckets(-1, &[9, 0])));
    }

    #[test]
    fn merge_covers_both_ranges_without_empty_ends() {
        let mut a = buckets(2, &[0, 1, 1]);
        merge(&mut a, &buckets(5, &[2, 0, 0]));
        assert_eq!(a, buckets(3, &[1, 1, 2]));
        let mut a = buckets(0, &[]);
        merge(&mut a, &buckets(5, &[2, 0]));
        assert_eq!(a, buckets(5, &[2, 0]));
    }

    #[test]
    fn limit_lowers_the_scale_until_160_buckets_span_both() {
        let a = buckets(0, &[1]);
        let b = buckets(200, &[1]);
        assert_eq!(limit(3, &a, &b), 2);
        assert_eq!(limit(3, &a, &buckets(100, &[1])), 3);
    }

    #[test]
    fn index_and_bounds_are_gos() {
        assert_eq!(index(0, 4.0), 1);
        assert_eq!(index(0, 5.0), 2);
        assert_eq!(index(1, 2.0), 1);
        assert_eq!(upper_bound(0, 1), 4.0);
        assert_eq!(frexp(8.0), (0.5, 4));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn widening_the_zero_bucket_moves_the_counts_below_it() {
        let mut dp = ExponentialHistogramDataPoint {
            scale: 0,
            zero_count: 1,
            zero_threshold: 0.5,
            positive: Some(buckets(0, &[2, 3, 4])),
            negative: Some(buckets(1, &[5])),
            ..ExponentialHistogramDataPoint::default()
        };
        widen_zero(&mut dp, 4.0);
        assert_eq!(dp.zero_count, 1 + 2 + 3 + 5);
        assert_eq!(dp.zero_threshold, 4.0);
        assert_eq!(dp.positive, Some(buckets(2, &[4])));
        assert_eq!(dp.negative, Some(buckets(2, &[])));
    }
}

//! OpenTelemetry exponential histograms as Prometheus native histograms, the way otelcol's
//! remote-write translator converts them (`exponentialToNativeHistogram`), so a receiver
//! stores the same buckets whichever collector sent them.
//!
//! Both are base-2 exponential with `schema == scale`; Prometheus only knows schemas −4..=8.
//! Finer scales are merged down to 8 (2^(scale−8) OTel buckets per Prometheus bucket); coarser
//! than −4 cannot be represented and the point is refused. Counts stay integers (OTLP's are).

use redline_pipeline::{ExponentialHistogramPoint, STALE_NAN};

use crate::proto::histogram::{Count, ResetHint, ZeroCount};
use crate::proto::{BucketSpan, Histogram};

/// Prometheus' finest native-histogram schema.
const MAX_SCALE: i32 = 8;
/// Prometheus' coarsest native-histogram schema.
const MIN_SCALE: i32 = -4;
/// What otelcol writes when a point's zero threshold is 0: Prometheus' client default, so
/// exact zeros still have a bucket of non-zero width.
const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NativeError {
    #[error("cannot convert exponential to native histogram: scale must be >= -4, was {0}")]
    ScaleTooSmall(i32),
}

/// Converts one point; `timestamp_ms` is the point's time in milliseconds.
pub(crate) fn to_native(
    p: &ExponentialHistogramPoint<'_>,
    timestamp_ms: i64,
) -> Result<Histogram, NativeError> {
    if p.scale < MIN_SCALE {
        return Err(NativeError::ScaleTooSmall(p.scale));
    }
    let scale_down = (p.scale - MAX_SCALE).max(0) as u32;
    let (positive_spans, positive_deltas) =
        buckets_layout(p.positive_offset, p.positive_counts, scale_down);
    let (negative_spans, negative_deltas) =
        buckets_layout(p.negative_offset, p.negative_counts, scale_down);
    // The sink carries OTLP's "no recorded value" flag as a stale-marker sum; otelcol then
    // also puts the marker's bits into the integer count.
    let stale = p.sum.is_some_and(|s| s.to_bits() == STALE_NAN.to_bits());
    let (sum, count) = if stale {
        (STALE_NAN, STALE_NAN.to_bits())
    } else {
        (p.sum.unwrap_or(0.0), p.count)
    };
    Ok(Histogram {
        count: Some(Count::CountInt(count)),
        sum,
        schema: p.scale.min(MAX_SCALE),
        zero_threshold: if p.zero_threshold != 0.0 {
            p.zero_threshold
        } else {
            DEFAULT_ZERO_THRESHOLD
        },
        zero_count: Some(ZeroCount::ZeroCountInt(p.zero_count)),
        negative_spans,
        negative_deltas,
        negative_counts: Vec::new(),
        positive_spans,
        positive_deltas,
        positive_counts: Vec::new(),
        // otelcol cannot guarantee Prometheus' own reset detection would agree with a NO,
        // and a wrong NO corrupts the stored chunk; UNKNOWN makes Prometheus check.
        reset_hint: ResetHint::Unknown as i32,
        timestamp: timestamp_ms,
        custom_values: Vec::new(),
    })
}

/// Dense OTel buckets to sparse Prometheus spans and deltas, merging `2^scale_down` buckets.
///
/// OTel's bucket `i` is `(base^i, base^(i+1)]`, Prometheus' is `(base^(i-1), base^i]`, hence
/// the `+ 1`. Gaps of up to two empty buckets are written as zero buckets, longer ones start a
/// new span (client_golang's rule). The walk mirrors otelcol's step for step, including how
/// it keeps leading empty buckets, so the spans are identical and not merely equivalent.
fn buckets_layout(offset: i32, counts: &[u64], scale_down: u32) -> (Vec<BucketSpan>, Vec<i64>) {
    if counts.is_empty() {
        return (Vec::new(), Vec::new());
    }
    // Arithmetic shift rounds towards −inf, which is how merged indices must round; Go's
    // shift by 32 or more leaves the sign, which Rust's would refuse.
    let shift = scale_down.min(31);
    let index = |i: usize| (offset.wrapping_add(i as i32) >> shift).wrapping_add(1);
    let mut spans = vec![BucketSpan {
        offset: index(0),
        length: 0,
    }];
    let mut deltas = Vec::with_capacity(counts.len());
    let mut prev: i64 = 0;
    let mut append = |spans: &mut Vec<BucketSpan>, count: i64| {
        if let Some(last) = spans.last_mut() {
            last.length += 1;
        }
        deltas.push(count.wrapping_sub(prev));
        prev = count;
    };
    let mut gap_then = |spans: &mut Vec<BucketSpan>, gap: i32, count: i64| {
        if gap > 2 {
            spans.push(BucketSpan {
                offset: gap,
                length: 0,
            });
        } else {
            for _ in 0..gap {
                append(spans, 0);
            }
        }
        append(spans, count);
    };

    let mut bucket = index(0);
    let mut count: i64 = 0;
    for (i, &c) in counts.iter().enumerate() {
        let next = index(i);
        if next == bucket {
            count = count.wrapping_add(c as i64);
            continue;
        }
        if count == 0 {
            // Nothing collected yet: this bucket's count is carried without moving the
            // current index; the final gap below accounts for the difference.
            count = c as i64;
            continue;
        }
        gap_then(&mut spans, next - bucket - 1, count);
        count = c as i64;
        bucket = next;
    }
    let last = index(counts.len() - 1);
    gap_then(&mut spans, last - bucket, count);
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    #[test]
    fn dense_buckets_are_one_span_of_deltas() {
        assert_eq!(
            buckets_layout(0, &[1, 2, 3, 3], 0),
            (vec![span(1, 4)], vec![1, 1, 1, 0])
        );
        assert_eq!(
            buckets_layout(-3, &[4, 1], 0),
            (vec![span(-2, 2)], vec![4, -3])
        );
        assert_eq!(buckets_layout(5, &[], 0), (vec![], vec![]));
    }

    #[test]
    fn short_gaps_are_zero_buckets_long_gaps_new_spans() {
        // Two empty buckets: kept inline as zeros.
        assert_eq!(
            buckets_layout(0, &[1, 0, 0, 2], 0),
            (vec![span(1, 4)], vec![1, -1, 0, 2])
        );
        // Three empty buckets between counts: a second span, three buckets on.
        assert_eq!(
            buckets_layout(0, &[1, 0, 0, 0, 2], 0),
            (vec![span(1, 1), span(3, 1)], vec![1, 1])
        );
    }

    #[test]
    fn leading_empty_buckets_stay_as_otelcol_writes_them() {
        // otelcol keeps the leading zero rather than moving the span start.
        assert_eq!(
            buckets_layout(0, &[0, 5], 0),
            (vec![span(1, 2)], vec![0, 5])
        );
        assert_eq!(
            buckets_layout(0, &[0, 5, 0, 0, 0, 0, 7], 0),
            (vec![span(1, 2), span(4, 1)], vec![0, 5, 2])
        );
    }

    #[test]
    fn downscaling_merges_pairs_rounding_towards_minus_infinity() {
        // Scale 9 → 8: OTel indices -3..=2 merge into Prometheus (-2..=1) + 1.
        assert_eq!(
            buckets_layout(-3, &[1, 2, 3, 4, 5, 6], 1),
            (vec![span(-1, 4)], vec![1, 4, 4, -3])
        );
        // Scale 10 → 8: four per bucket.
        assert_eq!(
            buckets_layout(0, &[1, 1, 1, 1, 2, 2, 2, 2], 2),
            (vec![span(1, 2)], vec![4, 4])
        );
    }

    fn point<'a>(scale: i32, sum: Option<f64>, pos: &'a [u64]) -> ExponentialHistogramPoint<'a> {
        ExponentialHistogramPoint {
            scale,
            count: 10,
            sum,
            zero_count: 2,
            zero_threshold: 0.0,
            positive_offset: 0,
            positive_counts: pos,
            negative_offset: 0,
            negative_counts: &[],
            start_time_unix_nano: 0,
            time_unix_nano: 0,
            exemplars: &[],
        }
    }

    #[test]
    fn fields_scale_clamp_and_refusal() {
        let h = to_native(&point(12, Some(3.5), &[8]), 77).expect("scale 12 converts");
        assert_eq!(h.schema, 8);
        assert_eq!(h.count, Some(Count::CountInt(10)));
        assert_eq!(h.zero_count, Some(ZeroCount::ZeroCountInt(2)));
        assert_eq!(h.zero_threshold, 1e-128);
        assert_eq!(h.sum, 3.5);
        assert_eq!(h.timestamp, 77);
        assert_eq!(h.reset_hint, ResetHint::Unknown as i32);
        assert_eq!(h.positive_spans, vec![span(1, 1)]);
        assert!(h.negative_spans.is_empty() && h.negative_deltas.is_empty());
        assert_eq!(
            to_native(&point(-4, None, &[]), 0)
                .expect("scale -4 converts")
                .sum,
            0.0
        );
        assert_eq!(
            to_native(&point(-5, None, &[]), 0),
            Err(NativeError::ScaleTooSmall(-5))
        );
    }

    #[test]
    fn stale_marker_goes_into_sum_and_count_bits() {
        let h = to_native(&point(0, Some(STALE_NAN), &[1]), 5).expect("scale 0 converts");
        assert_eq!(h.sum.to_bits(), STALE_NAN.to_bits());
        assert_eq!(h.count, Some(Count::CountInt(0x7ff0_0000_0000_0002)));
    }
}

//! OTLP exponential histograms as Prometheus native histograms, the way otelcol's
//! `convertExponentialHistogram` hands them to client_golang's `NewConstNativeHistogram`:
//! scales above 8 are clamped to 8 by merging buckets, scales below -4 (and the custom-bucket
//! scale -53) are refused, a zero threshold of 0 becomes 1e-128, a missing sum becomes 0, and
//! a point whose buckets do not add up to its count is refused.

use std::collections::BTreeMap;

use redline_pipeline::ExponentialHistogramPoint;

/// otelcol's threshold for points that do not set one (the remote-write translator's too).
pub(crate) const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;
/// The largest schema Prometheus accepts; finer OTLP scales are merged down to it.
const MAX_SCHEMA: i32 = 8;
const MIN_SCHEMA: i32 = -4;
/// Prometheus' custom-bucket schema, which reaches otelcol as a classic histogram only.
const CUSTOM_BUCKETS_SCALE: i32 = -53;

/// Why a point cannot be served (otelcol logs the error and leaves the series out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NativeError {
    #[error(
        "unexpected ExponentialHistogram with schema -53; CBNH is supported via classic histogram"
    )]
    CustomBuckets,
    #[error("cannot convert exponential to native histogram: scale must be >= -4, was {0}")]
    Scale(i32),
    #[error("the sum of all bucket populations exceeds the count of observations")]
    Count,
}

/// The scalar part of a point once converted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Native {
    pub schema: i32,
    /// How many scale steps the buckets are merged down by.
    pub scale_down: u32,
    pub zero_threshold: f64,
    pub sum: f64,
}

/// Checks a point as otelcol and client_golang do, without building its buckets.
pub(crate) fn check(p: &ExponentialHistogramPoint<'_>) -> Result<Native, NativeError> {
    if p.scale == CUSTOM_BUCKETS_SCALE {
        return Err(NativeError::CustomBuckets);
    }
    if p.scale < MIN_SCHEMA {
        return Err(NativeError::Scale(p.scale));
    }
    let (schema, scale_down) = if p.scale > MAX_SCHEMA {
        (MAX_SCHEMA, p.scale.abs_diff(MAX_SCHEMA))
    } else {
        (p.scale, 0)
    };
    let zero_threshold = if p.zero_threshold == 0.0 {
        DEFAULT_ZERO_THRESHOLD
    } else {
        p.zero_threshold
    };
    let sum = p.sum.unwrap_or(0.0);
    // Go adds the populations as int64; merging buckets does not change the total.
    let population = p
        .positive_counts
        .iter()
        .chain(p.negative_counts)
        .fold(p.zero_count as i64, |acc, &c| acc.wrapping_add(c as i64));
    let count = p.count as i64;
    if (sum.is_nan() && population > count) || (!sum.is_nan() && population != count) {
        return Err(NativeError::Count);
    }
    Ok(Native {
        schema,
        scale_down,
        zero_threshold,
        sum,
    })
}

/// One run of consecutive buckets: `offset` is the gap to the previous span (or the first
/// bucket's index), as in `io.prometheus.client.BucketSpan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub offset: i32,
    pub length: u32,
}

/// The spans and delta-encoded counts of one side (positive or negative) of a point.
/// Prometheus' bucket `i` covers `(base^(i-1), base^i]`, OTLP's `(base^i, base^(i+1)]`: the
/// index moves by one. Buckets present in the point stay present even when empty, as in
/// otelcol (every OTLP bucket becomes a map entry), and gaps of up to two buckets are filled
/// with empty ones instead of starting a new span, as client_golang does.
pub(crate) fn spans(offset: i32, counts: &[u64], scale_down: u32) -> (Vec<Span>, Vec<i64>) {
    let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
    for (i, &c) in counts.iter().enumerate() {
        let raw = (i as i32).wrapping_add(offset);
        // Go's shift of an int32 by its width or more gives 0 or -1, not a panic.
        let shifted = raw
            .checked_shr(scale_down)
            .unwrap_or(if raw < 0 { -1 } else { 0 });
        let idx = i64::from(shifted.wrapping_add(1));
        let slot = merged.entry(idx).or_insert(0);
        *slot = slot.wrapping_add(c as i64);
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut deltas = Vec::with_capacity(merged.len());
    let mut prev = 0i64;
    let mut next_i = 0i64;
    for (n, (&i, &count)) in merged.iter().enumerate() {
        let gap = (i - next_i) as i32;
        match spans.last_mut() {
            Some(span) if n > 0 && gap <= 2 => {
                for _ in 0..gap {
                    span.length += 1;
                    deltas.push(-prev);
                    prev = 0;
                }
            }
            _ => spans.push(Span {
                offset: gap,
                length: 0,
            }),
        }
        if let Some(span) = spans.last_mut() {
            span.length += 1;
        }
        deltas.push(count.wrapping_sub(prev));
        prev = count;
        next_i = i + 1;
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point<'a>(scale: i32, pos: (i32, &'a [u64]), count: u64) -> ExponentialHistogramPoint<'a> {
        ExponentialHistogramPoint {
            scale,
            count,
            sum: Some(1.5),
            zero_count: 0,
            zero_threshold: 0.0,
            positive_offset: pos.0,
            positive_counts: pos.1,
            negative_offset: 0,
            negative_counts: &[],
            start_time_unix_nano: 0,
            time_unix_nano: 0,
            exemplars: &[],
        }
    }

    #[test]
    fn spans_shift_the_index_and_fill_small_gaps() {
        // OTLP buckets 0..=1, then 5 (gap of three empty ones ⇒ new span), with a zero inside.
        let (s, d) = spans(0, &[2, 0, 0, 0, 0, 3], 0);
        // Every OTLP bucket is present (even empty), so it is one span of six.
        assert_eq!(
            s,
            vec![Span {
                offset: 1,
                length: 6
            }]
        );
        assert_eq!(d, vec![2, -2, 0, 0, 0, 3]);
        let (s, d) = spans(-3, &[4], 0);
        assert_eq!(
            s,
            vec![Span {
                offset: -2,
                length: 1
            }]
        );
        assert_eq!(d, vec![4]);
        assert_eq!(spans(7, &[], 0), (vec![], vec![]));
    }

    #[test]
    fn scale_above_8_merges_buckets() {
        // Scale 10 → 8: four OTLP buckets per Prometheus bucket; indices 0..=4 shift to 0 and 1.
        let p = point(10, (0, &[1, 1, 1, 1, 5]), 9);
        let n = check(&p).expect("valid");
        assert_eq!((n.schema, n.scale_down), (8, 2));
        assert_eq!(n.zero_threshold, DEFAULT_ZERO_THRESHOLD);
        let (s, d) = spans(p.positive_offset, p.positive_counts, n.scale_down);
        assert_eq!(
            s,
            vec![Span {
                offset: 1,
                length: 2
            }]
        );
        assert_eq!(d, vec![4, 1]);
        // Negative offsets round towards minus infinity, like Go's arithmetic shift.
        let (s, d) = spans(-5, &[1, 1, 1, 1, 1], 2);
        assert_eq!(
            s,
            vec![Span {
                offset: -1,
                length: 2
            }]
        );
        assert_eq!(d, vec![1, 3]);
        // A gap of three empty buckets starts a new span; one of two is filled.
        let (s, d) = spans(0, &[1], 0);
        assert_eq!((s.len(), d), (1, vec![1]));
    }

    #[test]
    fn bad_points_are_refused() {
        assert_eq!(check(&point(-5, (0, &[1]), 1)), Err(NativeError::Scale(-5)));
        assert_eq!(
            check(&point(-53, (0, &[1]), 1)),
            Err(NativeError::CustomBuckets)
        );
        assert_eq!(check(&point(0, (0, &[1, 2]), 4)), Err(NativeError::Count));
        let mut nan = point(0, (0, &[1, 2]), 4);
        nan.sum = Some(f64::NAN);
        assert!(
            check(&nan).is_ok(),
            "a NaN sum allows fewer bucketed observations"
        );
        let mut nosum = point(-4, (0, &[1]), 1);
        nosum.sum = None;
        assert_eq!(check(&nosum).map(|n| n.sum), Ok(0.0));
    }
}

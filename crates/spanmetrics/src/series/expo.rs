//! The base-2 exponential duration histogram (`histogram.exponential`), kept in a series'
//! words.
//!
//! It behaves as the structure otelcol's connector uses (go-expohisto): it starts at the
//! finest scale (20), and when a value falls outside the `max_size` buckets the current ones
//! can span, it halves the resolution as often as needed (merging neighbours), so its output
//! (scale, offset, counts) is otelcol's for the same durations. Durations are never negative
//! here, so there is no negative range; 0 goes to the zero bucket.
//!
//! Words: one header (scale, first index, number of buckets in use), then the zero count and
//! `max_size` bucket counts, the first for the header's first index.

/// The finest scale, where every histogram starts.
pub(crate) const MAX_SCALE: i32 = 20;
/// The coarsest scale a histogram can reach.
const MIN_SCALE: i32 = -10;

const SIGNIFICAND_WIDTH: u32 = 52;
const SIGNIFICAND_MASK: u64 = (1 << SIGNIFICAND_WIDTH) - 1;
const EXPONENT_BIAS: i32 = 1023;
const MIN_NORMAL_EXPONENT: i32 = -EXPONENT_BIAS + 1;
const MAX_NORMAL_EXPONENT: i32 = EXPONENT_BIAS;
/// The smallest normal float, 2^-1022.
const MIN_VALUE: f64 = f64::MIN_POSITIVE;

fn normal_base2(value: f64) -> i32 {
    ((value.to_bits() >> SIGNIFICAND_WIDTH) & 0x7ff) as i32 - EXPONENT_BIAS
}

fn significand(value: f64) -> u64 {
    value.to_bits() & SIGNIFICAND_MASK
}

/// The bucket index of a positive, finite `value` at `scale`: bucket `i` holds
/// `(base^i, base^(i+1)]`, `base = 2^(2^-scale)`.
pub(crate) fn map_to_index(value: f64, scale: i32) -> i32 {
    if scale <= 0 {
        let shift = -scale;
        if value < MIN_VALUE {
            let idx = MIN_NORMAL_EXPONENT >> shift;
            return if shift < 2 { idx - 1 } else { idx };
        }
        // An exact power of two belongs to the bucket below (upper-inclusive).
        let correction = if significand(value) == 0 { -1 } else { 0 };
        return (normal_base2(value) + correction) >> shift;
    }
    if value <= MIN_VALUE {
        return (MIN_NORMAL_EXPONENT << scale) - 1;
    }
    if significand(value) == 0 {
        return (normal_base2(value) << scale) - 1;
    }
    let scale_factor = std::f64::consts::LOG2_E * f64::from(1u32 << scale);
    let index = (value.ln() * scale_factor).floor() as i32;
    let max = ((MAX_NORMAL_EXPONENT + 1) << scale) - 1;
    index.min(max)
}

/// The decoded header word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub scale: i32,
    /// Index of the first bucket in use.
    pub start: i32,
    /// Buckets in use, from `start`.
    pub len: u32,
}

impl Header {
    pub(crate) fn decode(word: u64) -> Self {
        let len = ((word >> 16) & 0xffff) as u32;
        if len == 0 {
            // Nothing but zeros yet (or nothing at all): the finest scale.
            return Self {
                scale: MAX_SCALE,
                start: 0,
                len: 0,
            };
        }
        Self {
            scale: i32::from(word as u8 as i8),
            start: (word >> 32) as u32 as i32,
            len,
        }
    }

    fn encode(self) -> u64 {
        u64::from(self.scale as i8 as u8)
            | (u64::from(self.len) << 16)
            | (u64::from(self.start as u32) << 32)
    }
}

/// How many halvings make `[low, high]` fit in `max_size` buckets.
fn change_scale(mut low: i64, mut high: i64, max_size: i64) -> i32 {
    let mut change = 0;
    while high - low >= max_size {
        high >>= 1;
        low >>= 1;
        change += 1;
    }
    change
}

/// Counts one value. `counts` is the zero count followed by the buckets (`max_size` of them).
/// Counts `value` `n` times (a sampled span's adjusted count).
pub(crate) fn record(header_word: &mut u64, counts: &mut [u64], value: f64, n: u64) {
    let Some((zero, buckets)) = counts.split_first_mut() else {
        return;
    };
    if value == 0.0 || !value.is_finite() || value < 0.0 {
        *zero = zero.wrapping_add(n);
        return;
    }
    let max_size = buckets.len() as i64;
    let mut h = Header::decode(*header_word);
    let mut index = map_to_index(value, h.scale);
    if h.len > 0 {
        let end = i64::from(h.start) + i64::from(h.len) - 1;
        let low = i64::from(index).min(i64::from(h.start));
        let high = i64::from(index).max(end);
        if high - low >= max_size {
            let change = change_scale(low, high, max_size).min(h.scale - MIN_SCALE);
            downscale(&mut h, buckets, change);
            index = map_to_index(value, h.scale);
        }
    }
    if h.len == 0 {
        h.start = index;
        h.len = 1;
    } else if index < h.start {
        let shift = (h.start - index) as usize;
        let used = h.len as usize;
        if used + shift > buckets.len() {
            return;
        }
        buckets.copy_within(0..used, shift);
        buckets[..shift].fill(0);
        h.start = index;
        h.len += shift as u32;
    } else {
        let end = h.start + h.len as i32 - 1;
        if index > end {
            h.len = (index - h.start + 1) as u32;
        }
    }
    if let Some(c) = usize::try_from(index - h.start)
        .ok()
        .and_then(|i| buckets.get_mut(i))
    {
        *c = c.wrapping_add(n);
    }
    *header_word = h.encode();
}

/// Halves the resolution `by` times, merging each 2^by neighbouring buckets into one.
fn downscale(h: &mut Header, buckets: &mut [u64], by: i32) {
    if by <= 0 {
        return;
    }
    let new_start = h.start >> by;
    let used = (h.len as usize).min(buckets.len());
    // New positions never pass old ones, so one ascending pass merges in place.
    for i in 0..used {
        let count = std::mem::take(&mut buckets[i]);
        let to = (((h.start + i as i32) >> by) - new_start) as usize;
        if let Some(c) = buckets.get_mut(to) {
            *c = c.wrapping_add(count);
        }
    }
    let new_end = (h.start + h.len as i32 - 1) >> by;
    h.scale -= by;
    h.start = new_start;
    h.len = (new_end - new_start + 1) as u32;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[f64], max_size: usize) -> (Header, u64, Vec<u64>) {
        let mut header = 0u64;
        let mut counts = vec![0u64; max_size + 1];
        for v in values {
            record(&mut header, &mut counts, *v, 1);
        }
        let h = Header::decode(header);
        (h, counts[0], counts[1..=h.len as usize].to_vec())
    }

    #[test]
    fn indexes_match_the_reference_mapping() {
        // Powers of two sit at the top of their bucket (upper-inclusive).
        assert_eq!(map_to_index(1.0, 0), -1);
        assert_eq!(map_to_index(2.0, 0), 0);
        assert_eq!(map_to_index(3.0, 0), 1);
        assert_eq!(map_to_index(4.0, 0), 1);
        assert_eq!(map_to_index(4.0, -1), 0);
        assert_eq!(map_to_index(5.0, -1), 1);
        assert_eq!(map_to_index(1.0, 1), -1);
        assert_eq!(map_to_index(1.5, 1), 1);
        assert_eq!(map_to_index(2.0, 1), 1);
        assert_eq!(map_to_index(1.0, MAX_SCALE), -1);
        assert_eq!(map_to_index(2.0, MAX_SCALE), (1 << 20) - 1);
        // Bucket i holds (base^i, base^(i+1)].
        for scale in [-3, -1, 0, 1, 3, 8, 20] {
            for v in [0.001, 0.37, 1.7, 42.0, 1234.5, 9.9e7] {
                let i = map_to_index(v, scale);
                let base = 2f64.powf(2f64.powi(-scale));
                let low = base.powi(i);
                let high = base.powi(i + 1);
                assert!(
                    low < v * (1.0 + 1e-12) && v <= high * (1.0 + 1e-12),
                    "{v} at {scale}: {i}"
                );
            }
        }
    }

    #[test]
    fn starts_fine_and_downscales_to_fit_max_size() {
        // One value: one bucket at scale 20.
        let (h, zero, counts) = hist(&[1.5], 160);
        assert_eq!((h.scale, h.len, zero), (20, 1, 0));
        assert_eq!(h.start, map_to_index(1.5, 20));
        assert_eq!(counts, [1]);

        // 1 ms .. 1000 ms in 4 buckets: scale drops until the range fits.
        let values = [1.0, 10.0, 100.0, 1000.0, 0.0, 0.0];
        let (h, zero, counts) = hist(&values, 4);
        assert_eq!(zero, 2);
        assert_eq!(counts.iter().sum::<u64>(), 4);
        assert!(h.len <= 4);
        for v in &values[..4] {
            let i = map_to_index(*v, h.scale);
            assert!(i >= h.start && i < h.start + h.len as i32, "{v}");
        }
        // The scale is the finest at which the range fits in 4 buckets.
        let span = |s: i32| map_to_index(1000.0, s) - map_to_index(1.0, s);
        assert!(
            span(h.scale) < 4 && span(h.scale + 1) >= 4,
            "scale {}",
            h.scale
        );
        // Every value is in the bucket the final scale maps it to.
        let mut expected = vec![0u64; h.len as usize];
        for v in &values[..4] {
            expected[(map_to_index(*v, h.scale) - h.start) as usize] += 1;
        }
        assert_eq!(counts, expected);
    }

    #[test]
    fn a_smaller_value_later_shifts_the_buckets() {
        let (h, _, counts) = hist(&[5.0, 5.0, 4.9999], 160);
        assert_eq!(h.scale, 20);
        assert_eq!(h.start, map_to_index(4.9999, 20));
        assert_eq!(counts.first(), Some(&1));
        assert_eq!(counts.last(), Some(&2));
        assert_eq!(counts.iter().sum::<u64>(), 3);
    }

    #[test]
    fn merging_is_exact_for_many_values() {
        // A spread of durations: the final layout equals counting every value at the final
        // scale directly.
        let values: Vec<f64> = (1..2000)
            .map(|i| (i as f64 * 0.731).powf(1.7) / 10.0)
            .collect();
        let (h, zero, counts) = hist(&values, 160);
        assert_eq!(zero, 0);
        assert!(h.len <= 160);
        let mut expected = vec![0u64; h.len as usize];
        for v in &values {
            expected[(map_to_index(*v, h.scale) - h.start) as usize] += 1;
        }
        assert_eq!(counts, expected);
    }
}

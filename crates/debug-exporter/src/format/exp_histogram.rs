//! Bucket bounds of an exponential histogram, computed as otelcol computes them for printing:
//! `exp(index × ln2 × 2^-scale)`. (This reports the bound nearest infinity imprecisely, as
//! otelcol does; printing matches it.)

/// `ln 2 × 2^-scale`, exactly as Go's `math.Ldexp(math.Ln2, -scale)`.
fn factor(scale: i32) -> f64 {
    std::f64::consts::LN_2 * 2f64.powi(-scale)
}

fn index(offset: i32, pos: usize) -> f64 {
    f64::from(offset) + pos as f64
}

/// The lower bound of the bucket at `pos` of a range starting at `offset`.
pub fn bucket_lower(scale: i32, offset: i32, pos: usize) -> f64 {
    (index(offset, pos) * factor(scale)).exp()
}

/// The upper bound of the bucket at `pos` of a range starting at `offset`.
pub fn bucket_upper(scale: i32, offset: i32, pos: usize) -> f64 {
    ((index(offset, pos) + 1.0) * factor(scale)).exp()
}

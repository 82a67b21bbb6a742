//! Number formatting as the Go Prometheus client writes it, so an exposition from Redline
//! reads like one from otelcol: floats as `strconv.FormatFloat(v, 'g', -1, 64)` (`12.5`,
//! `15000`, `1e+06`, `1e-05`, `+Inf`), integers in decimal.

/// Appends `v` as Go's `strconv.AppendFloat(v, 'g', -1, 64)` does, with Prometheus' `+Inf`,
/// `-Inf` and `NaN` spellings.
pub(crate) fn push_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // Fast path: small whole numbers (bucket bounds, most sums in ms) print as integers in
    // Go's %g too, because their decimal exponent is below 6.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(v as i64).as_bytes());
        return;
    }
    // In [1e-4, 1e6) Go uses %f layout (decimal exponent -4..6).
    let plain = (1e-4..1e6).contains(&v.abs());
    if plain && push_micro_decimal(out, v) {
        return;
    }
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
    // ryu lays out [1e-5, 1e16) without exponent too, with the same shortest digits. Whole
    // numbers are handled above, so its `.0` suffix cannot appear here.
    if plain {
        out.extend_from_slice(s);
        return;
    }
    push_relaid_out(out, s);
}

/// Writes `v` (not whole, `|v|` in [1e-4, 1e6)) when it is exactly the nearest float to a
/// decimal of at most 6 fraction digits, and returns whether it did. Durations in ms measured
/// in nanoseconds are such decimals (every exemplar value, most sums), and this is several
/// times cheaper than the general shortest-digits search, whose tables the output stream keeps
/// evicting from cache.
///
/// Why the digits are the shortest: a float this small has an ulp below 1.2e-10, so no other
/// decimal with at most 6 fraction digits lies within half an ulp of `v`, and one with fewer
/// digits would be one of those.
fn push_micro_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    const SCALE: f64 = 1e6;
    let scaled = v.abs() * SCALE;
    // `scaled` < 1e12 is an exact integer in f64, and the division is correctly rounded: equal
    // to `|v|` exactly when the decimal `scaled / 10^6` rounds to `|v|`.
    if scaled.fract() != 0.0 || scaled / SCALE != v.abs() {
        return false;
    }
    let micros = scaled as u64;
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        return false;
    }
    if v < 0.0 {
        out.push(b'-');
    }
    push_u64(out, whole);
    push_fraction(out, frac, 6);
    true
}

/// Lays ryu's shortest digits of a finite non-zero float out as Go's %g does.
fn push_relaid_out(out: &mut Vec<u8>, s: &[u8]) {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    // ryu picks its own layout (`1e16`, `1.5e-7`, `123.45`); take only its shortest digits
    // and the decimal point position, and lay them out the way Go does.
    let (mantissa, exp10) = match s.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&s[..i], parse_exp(&s[i + 1..])),
        None => (s, 0),
    };
    let mut digits = [0u8; 32];
    let mut nd = 0usize;
    let mut int_len: i32 = 0;
    let mut seen_dot = false;
    let mut leading = true;
    for &b in mantissa {
        if b == b'.' {
            seen_dot = true;
            continue;
        }
        if !b.is_ascii_digit() {
            continue;
        }
        if leading && b == b'0' {
            // A leading zero moves the decimal point left relative to the first digit.
            if seen_dot {
                int_len -= 1;
            }
            continue;
        }
        leading = false;
        if !seen_dot {
            int_len += 1;
        }
        if nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    if nd == 0 {
        out.push(b'0');
        return;
    }
    let digits = &digits[..nd];
    let dp = int_len + exp10; // decimal point position relative to the first digit
    let exp = dp - 1;
    if neg {
        out.push(b'-');
    }
    // Go: %e when the exponent is < -4 or >= 6 (the precision used for shortest 'g').
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(e).as_bytes());
    } else if dp <= 0 {
        out.extend_from_slice(b"0.");
        for _ in 0..(-dp) {
            out.push(b'0');
        }
        out.extend_from_slice(digits);
    } else {
        let dp = dp as usize;
        if dp >= nd {
            out.extend_from_slice(digits);
            for _ in nd..dp {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(&digits[..dp]);
            out.push(b'.');
            out.extend_from_slice(&digits[dp..]);
        }
    }
}

fn parse_exp(s: &[u8]) -> i32 {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let mut e: i32 = 0;
    for &b in s {
        if b.is_ascii_digit() {
            e = e.saturating_mul(10).saturating_add(i32::from(b - b'0'));
        }
    }
    if neg {
        -e
    } else {
        e
    }
}

/// OpenMetrics float as the Go client writes it: like [`push_go_float`], with `.0` appended
/// when the number would otherwise look like an integer (`1.0`, `2.0`, `1400.0`).
pub(crate) fn push_om_float(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    let start = out.len();
    push_go_float(out, v);
    if v.is_finite() && !out[start..].iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
}

/// A count in the text format, which the Go client writes as a float (`float64(count)`
/// through `%g`): the same digits as an integer below 10^6, `1e+06` and up from there.
#[inline]
pub(crate) fn push_text_count(out: &mut Vec<u8>, v: u64) {
    if v < 1_000_000 {
        push_u64(out, v);
    } else {
        push_go_float(out, v as f64);
    }
}

pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    // Most bucket counts of most series are small: two pushes beat formatting into a buffer
    // and a memcpy call.
    if v < 100 {
        let v = v as u8;
        if v >= 10 {
            out.push(b'0' + v / 10);
        }
        out.push(b'0' + v % 10);
        return;
    }
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// A Unix timestamp in seconds with its exact fraction (`1700000000.123`), for exemplars.
/// Written from the integer nanoseconds rather than through a float, which would lose the
/// sub-microsecond part (and print `1.700000000123e+09`).
pub(crate) fn push_unix_seconds(out: &mut Vec<u8>, nanos: u64) {
    push_u64(out, nanos / 1_000_000_000);
    let frac = nanos % 1_000_000_000;
    if frac != 0 {
        push_fraction(out, frac, 9);
    }
}

/// Appends `.` and the fraction `frac / 10^width` (`0 < frac < 10^width`, `width <= 9`): `width`
/// digits with leading zeros, trailing zeros dropped.
fn push_fraction(out: &mut Vec<u8>, mut frac: u64, mut width: usize) {
    while width > 1 && frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    let mut text = [b'0'; 10];
    text[0] = b'.';
    let end = width.min(9) + 1;
    for d in text[1..end].iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.extend_from_slice(&text[..end]);
}

/// Appends `bytes` as lowercase hex (exemplar trace and span ids: 24 bytes per exemplar).
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let (words, tail) = bytes.as_chunks::<8>();
    for word in words {
        out.extend_from_slice(&hex_word(u64::from_be_bytes(*word)));
    }
    for &b in tail {
        out.extend_from_slice(&hex_word(u64::from(b))[14..]);
    }
}

/// The 16 hex digits of `x`, most significant first, computed for all nibbles at once: each
/// nibble is spread into a byte of its own, then turned into its digit with adds and shifts.
pub(crate) fn hex_word(x: u64) -> [u8; 16] {
    const ONES: u128 = u128::from_le_bytes([0x01; 16]);
    let mut v = u128::from(x);
    v = (v | v << 32) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
    v = (v | v << 16) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
    v = (v | v << 8) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff;
    v = (v | v << 4) & 0x0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f_0f0f;
    // Byte i now holds nibble i (0–15); 1 in the bytes whose nibble is 10 or more.
    let letters = ((v + 6 * ONES) >> 4) & ONES;
    let digits = v + u128::from(b'0') * ONES + letters * u128::from(b'a' - b'0' - 10);
    digits.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut out = Vec::new();
        push_go_float(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }

    fn om(v: f64) -> String {
        let mut out = Vec::new();
        push_om_float(&mut out, v);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn matches_go_strconv_g_shortest() {
        // Expected values are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (2.0, "2"),
            (0.5, "0.5"),
            (12.5, "12.5"),
            (1400.0, "1400"),
            (15000.0, "15000"),
            (100000.0, "100000"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1234567.5, "1.2345675e+06"),
            (123456.789, "123456.789"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-3.25, "-3.25"),
            (-2e6, "-2e+06"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (9007199254740993.0, "9.007199254740992e+15"),
        ];
        for (v, want) in cases {
            assert_eq!(go(*v), *want, "{v:e}");
        }
    }

    #[test]
    fn openmetrics_floats_look_like_floats() {
        assert_eq!(om(0.0), "0.0");
        assert_eq!(om(1.0), "1.0");
        assert_eq!(om(2.0), "2.0");
        assert_eq!(om(1400.0), "1400.0");
        assert_eq!(om(12.5), "12.5");
        assert_eq!(om(1e6), "1e+06");
        assert_eq!(om(f64::INFINITY), "+Inf");
    }

    #[test]
    fn fast_paths_match_the_general_layout() {
        let general = |v: f64| {
            let mut buf = ryu::Buffer::new();
            let mut out = Vec::new();
            push_relaid_out(&mut out, buf.format_finite(v).as_bytes());
            String::from_utf8(out).unwrap_or_default()
        };
        let mut values = vec![
            1e-4,
            1e-4 + 1e-20,
            0.000123456789,
            0.5,
            0.30000000000000004,
            1.5,
            12.345,
            1234.5678,
            999_999.999_999,
            999_999.5,
            f64::from_bits(1e6f64.to_bits() - 1),
            f64::from_bits(1e-4f64.to_bits() + 1),
        ];
        // Deterministic pseudo-random values over the whole fast-path range.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            // Past both ends of the fast path too, where it must not apply.
            values.push(10f64.powf(-7.0 + 16.0 * unit));
        }
        // Decimals of up to 6 fraction digits (durations in ms from nanoseconds) and sums of
        // them, which take the short-decimal path when exact.
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nanos = x % 1_000_000_000_000;
            let ms = nanos as f64 / 1e6;
            values.push(ms);
            values.push(ms + (x >> 40) as f64 / 1e6);
            values.push(ms / 1e3);
            values.push((x % 1_000_000) as f64 / 1e6);
        }
        values.extend([
            1e-5,
            9.9999e-5,
            0.0001,
            0.000101,
            0.001,
            0.1,
            0.123456,
            0.1234567,
            999_999.999_999,
            999_999.999_999_9,
            7960.330354,
            1e6,
            1e6 + 0.5,
            1e15 + 0.5,
            1e16,
            123e20,
        ]);
        for v in values {
            for v in [v, -v] {
                assert_eq!(go(v), general(v), "{v:e}");
            }
        }
    }

    #[test]
    fn hex_is_lowercase_and_ordered() {
        let mut bytes: Vec<u8> = (0..=u8::MAX).collect();
        bytes.extend([0x00, 0x0f, 0xf0, 0x9a, 0xa9]);
        for len in [0, 1, 7, 8, 9, 16, 24, bytes.len()] {
            for start in [0, 3, 100, 250] {
                let Some(slice) = bytes.get(start..start + len) else {
                    continue;
                };
                let mut out = Vec::new();
                push_hex(&mut out, slice);
                let want: String = slice.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(String::from_utf8_lossy(&out), want);
            }
        }
    }

    #[test]
    fn integers_are_plain_decimal() {
        let mut values: Vec<u64> = (0..=1000).collect();
        values.extend([9_999, 10_000, u64::from(u32::MAX), u64::MAX - 1, u64::MAX]);
        for v in values {
            let mut out = b"x".to_vec();
            push_u64(&mut out, v);
            assert_eq!(String::from_utf8_lossy(&out), format!("x{v}"));
        }
    }

    #[test]
    fn exemplar_timestamps_are_exact() {
        let ts = |n| {
            let mut out = Vec::new();
            push_unix_seconds(&mut out, n);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(ts(1_700_000_000_123_000_000), "1700000000.123");
        assert_eq!(ts(1_700_000_000_000_000_000), "1700000000");
        assert_eq!(ts(1_700_000_000_000_000_001), "1700000000.000000001");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(5), "0.000000005");
        assert_eq!(ts(u64::MAX), "18446744073.709551615");
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Whole seconds, milliseconds, microseconds and nanoseconds.
            for n in [
                x,
                x / 1_000 * 1_000,
                x / 1_000_000 * 1_000_000,
                x / 1_000_000_000 * 1_000_000_000,
            ] {
                let frac = format!("{:09}", n % 1_000_000_000);
                let frac = frac.trim_end_matches('0');
                let want = if frac.is_empty() {
                    format!("{}", n / 1_000_000_000)
                } else {
                    format!("{}.{frac}", n / 1_000_000_000)
                };
                assert_eq!(ts(n), want);
            }
        }
    }
}

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
    let mut buf = ryu::Buffer::new();
    let s = buf.format_finite(v).as_bytes();
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

pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
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
        let mut digits = [b'0'; 9];
        let mut f = frac;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (f % 10) as u8;
            f /= 10;
        }
        let mut len = 9;
        while len > 1 && digits[len - 1] == b'0' {
            len -= 1;
        }
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
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
    fn exemplar_timestamps_are_exact() {
        let ts = |n| {
            let mut out = Vec::new();
            push_unix_seconds(&mut out, n);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(ts(1_700_000_000_123_000_000), "1700000000.123");
        assert_eq!(ts(1_700_000_000_000_000_000), "1700000000");
        assert_eq!(ts(1_700_000_000_000_000_001), "1700000000.000000001");
    }
}

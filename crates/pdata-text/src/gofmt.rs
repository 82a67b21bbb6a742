//! How Go prints what otelcol prints: floats (`%v`, `%f`, and the JSON / `Value.AsString`
//! form), `time.Time.String()` of Unix-nanosecond timestamps, and ids.

use std::fmt::Write;

/// The shortest decimal digits of a finite, non-zero `|x|` and the position of the decimal
/// point: `|x| = 0.DIGITS × 10^point` (strconv's `decimal` form). Rust's `{:e}` gives the
/// same shortest round-trip digits Go does.
fn shortest(x: f64) -> (String, i32) {
    let e = format!("{:e}", x.abs());
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// `d.ddde±XX`, Go's `%e` with the shortest digits (at least two exponent digits).
fn exponent_form(negative: bool, digits: &str, point: i32) -> String {
    let mut s = String::with_capacity(digits.len() + 6);
    if negative {
        s.push('-');
    }
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    let exp = point - 1;
    let _ = write!(
        s,
        "e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.unsigned_abs()
    );
    s
}

/// `ddd.ddd` with exactly the shortest digits, no exponent (Go's `%f` at precision -1).
fn fixed_form(negative: bool, digits: &str, point: i32) -> String {
    let mut s = String::with_capacity(digits.len() + 8);
    if negative {
        s.push('-');
    }
    let nd = digits.len() as i32;
    if point <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        s.push_str(digits);
    } else if point >= nd {
        s.push_str(digits);
        s.extend(std::iter::repeat_n('0', (point - nd) as usize));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        s.push_str(int);
        s.push('.');
        s.push_str(frac);
    }
    s
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(x, 'g', -1, 64)`): the shortest digits, in
/// exponent form when the decimal exponent is below -4 or at least 6 (the precision Go uses
/// for that choice when printing the shortest form).
pub fn go_v(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let (digits, point) = shortest(x);
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        exponent_form(x < 0.0, &digits, point)
    } else {
        fixed_form(x < 0.0, &digits, point)
    }
}

/// Go's `%f`: six decimals, correctly rounded (Rust rounds ties to even, as Go does).
pub fn go_f(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    format!("{x:.6}")
}

/// Go's `strconv.FormatFloat(x, 'f', -1, 64)`: the shortest digits that read back as `x`,
/// never in exponent form. Rust's `Display` prints the same digits; only the special values
/// are spelled differently.
pub fn format_float_f(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_owned()
    } else if x == f64::INFINITY {
        "+Inf".to_owned()
    } else if x == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{x}")
    }
}

/// A float64 as Go's `encoding/json` writes it, which is also how otelcol's
/// `Value.AsString()` prints doubles: plain decimal digits unless the magnitude is below 1e-6
/// or at least 1e21, then exponent form without a leading zero in a negative exponent
/// (`1e-7`, `1e+21`). `None` for NaN and infinities, which JSON cannot hold.
pub fn json_float(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some(if x.is_sign_negative() { "-0" } else { "0" }.into());
    }
    let (digits, point) = shortest(x);
    let abs = x.abs();
    if !(1e-6..1e21).contains(&abs) {
        let mut s = exponent_form(x < 0.0, &digits, point);
        // Go's clean-up: e-07 becomes e-7 (positive exponents keep two digits).
        if let Some(at) = s.find("e-0") {
            s.remove(at + 2);
        }
        Some(s)
    } else {
        Some(fixed_form(x < 0.0, &digits, point))
    }
}

/// A double as `Value.AsString()` prints it: the JSON form, with NaN and the infinities
/// spelled as the protobuf JSON mapping does.
pub fn double_as_string(x: f64) -> String {
    json_float(x).unwrap_or_else(|| {
        if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    })
}

/// Go's `time.Time.String()` of `time.Unix(0, int64(ts)).UTC()`, as pdata's
/// `Timestamp.String()` prints it: `2018-12-13 14:51:00.5 +0000 UTC`, the fraction without
/// trailing zeros. Like Go, a value past `i64::MAX` wraps to before 1970.
pub fn timestamp(unix_nanos: u64) -> String {
    let nanos = unix_nanos as i64;
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = String::with_capacity(40);
    if y < 0 {
        let _ = write!(s, "-{:04}", y.unsigned_abs());
    } else {
        let _ = write!(s, "{y:04}");
    }
    let _ = write!(
        s,
        "-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if frac > 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A trace or span id as pdata prints it: lowercase hex, empty when it is all zeros (the
/// "invalid" id) or absent.
pub fn id(bytes: &[u8]) -> String {
    if bytes.iter().all(|b| *b == 0) {
        return String::new();
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_is_gos_shortest_g() {
        for (x, want) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (42.0, "42"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (12345678.9, "1.23456789e+07"),
            (1e21, "1e+21"),
            (1e-6, "1e-06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (2.82842712474619, "2.82842712474619"),
            (1.7070116948172912e243, "1.7070116948172912e+243"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_v(x), want, "{x:e}");
        }
    }

    #[test]
    fn f_is_six_decimals() {
        assert_eq!(go_f(1.5), "1.500000");
        assert_eq!(go_f(1e21), "1000000000000000000000.000000");
        assert_eq!(go_f(0.000001), "0.000001");
        assert_eq!(go_f(0.0078125), "0.007812", "ties to even, as Go");
        assert_eq!(go_f(-1.0), "-1.000000");
        assert_eq!(go_f(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn json_floats_are_gos() {
        for (x, want) in [
            (1e21, "1e+21"),
            (1e-7, "1e-7"),
            (123456789012.5, "123456789012.5"),
            (2.5e-6, "0.0000025"),
            (3.0, "3"),
            (-0.0, "-0"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123_456_789.123_456_79, "123456789.12345679"),
        ] {
            assert_eq!(json_float(x).as_deref(), Some(want), "{x:e}");
        }
        assert_eq!(json_float(f64::NAN), None);
        assert_eq!(double_as_string(f64::NAN), "NaN");
        assert_eq!(double_as_string(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn timestamps_are_gos_time_string() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(timestamp(1), "1970-01-01 00:00:00.000000001 +0000 UTC");
        assert_eq!(
            timestamp(1_544_712_660_500_000_000),
            "2018-12-13 14:51:00.5 +0000 UTC"
        );
        assert_eq!(
            timestamp(1_544_712_661_000_000_123),
            "2018-12-13 14:51:01.000000123 +0000 UTC"
        );
        assert_eq!(
            timestamp(951_782_400_000_000_000),
            "2000-02-29 00:00:00 +0000 UTC"
        );
        assert_eq!(
            timestamp(u64::MAX),
            "1969-12-31 23:59:59.999999999 +0000 UTC",
            "wraps like Go's int64 conversion"
        );
    }

    #[test]
    fn ids_are_hex_or_empty_when_zero() {
        assert_eq!(id(&[0xab, 0x01]), "ab01");
        assert_eq!(id(&[0; 16]), "");
        assert_eq!(id(&[]), "");
    }

    #[test]
    fn format_float_f_is_gos_shortest_f() {
        assert_eq!(format_float_f(1.0), "1");
        assert_eq!(format_float_f(0.1), "0.1");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(1e-7), "0.0000001");
        assert_eq!(format_float_f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float_f(f64::NAN), "NaN");
    }
}

//! The sign of a string as Go's `strconv.ParseFloat(s, 64)` reads it: otelcol takes a
//! string `sampling.priority` that parses as a float, and what parses is Go's syntax
//! (`inf`, `NaN`, hex floats such as `0x1p-2`, `_` between digits), with a value too large
//! for a float64 being an error rather than infinity.

/// What a priority string amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatSign {
    Zero,
    Positive,
    Negative,
    NaN,
}

/// `None` when Go would answer an error (bad syntax, or out of float64 range).
pub fn parse_sign(s: &str) -> Option<FloatSign> {
    if let Some(sign) = special(s) {
        return Some(sign);
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let hex = body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X"));
    let number = if hex {
        read(&body[2..], 16)?
    } else {
        read(body, 10)?
    };
    if !underscores_ok(s) {
        return None;
    }
    let nonzero = if hex {
        hex_nonzero(&number)?
    } else {
        decimal_nonzero(&number)?
    };
    Some(match (nonzero, negative) {
        (false, _) => FloatSign::Zero,
        (true, false) => FloatSign::Positive,
        (true, true) => FloatSign::Negative,
    })
}

/// `inf`, `infinity` (any case, optional sign) and unsigned `nan`.
fn special(s: &str) -> Option<FloatSign> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => Some(FloatSign::NaN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(FloatSign::Positive),
        "-inf" | "-infinity" => Some(FloatSign::Negative),
        _ => None,
    }
}

/// A number's significant digits (leading zeros dropped, value of each digit), where its
/// point falls among them, and its exponent.
struct Number {
    digits: Vec<u8>,
    /// Digits before the point, counted from the first significant digit (may be negative).
    point: i64,
    exponent: i64,
}

/// Digits with at most one point, then the exponent (`e` for decimal, mandatory `p` for
/// hex); underscores are skipped here and checked separately.
fn read(s: &str, radix: u32) -> Option<Number> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let (mut digits, mut point, mut seen_point, mut seen_digit) = (Vec::new(), 0i64, false, false);
    while let Some(&c) = bytes.get(i) {
        match c {
            b'_' => {}
            b'.' if !seen_point => seen_point = true,
            _ => match char::from(c).to_digit(radix) {
                Some(d) => {
                    seen_digit = true;
                    if digits.is_empty() && d == 0 {
                        // A leading zero after the point moves the point left.
                        point -= i64::from(seen_point);
                    } else {
                        digits.push(d as u8);
                        point += i64::from(!seen_point);
                    }
                }
                None => break,
            },
        }
        i += 1;
    }
    if !seen_digit {
        return None;
    }
    let exponent_mark = if radix == 16 { b'p' } else { b'e' };
    let mut exponent = 0i64;
    match bytes.get(i) {
        Some(c) if c.to_ascii_lowercase() == exponent_mark => {
            i += 1;
            let negative = match bytes.get(i) {
                Some(b'+') => {
                    i += 1;
                    false
                }
                Some(b'-') => {
                    i += 1;
                    true
                }
                _ => false,
            };
            if !bytes.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            while let Some(&c) = bytes.get(i) {
                match c {
                    b'_' => {}
                    b'0'..=b'9' => {
                        // Go stops growing the exponent past 10000; the value is out of
                        // range either way.
                        if exponent < 10_000 {
                            exponent = exponent * 10 + i64::from(c - b'0');
                        }
                    }
                    _ => break,
                }
                i += 1;
            }
            if negative {
                exponent = -exponent;
            }
        }
        _ if radix == 16 => return None,
        _ => {}
    }
    (i == bytes.len()).then_some(Number {
        digits,
        point,
        exponent,
    })
}

/// Underscores only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    if !s.contains('_') {
        return true;
    }
    let mut rest = s.trim_start_matches(['+', '-']).as_bytes();
    let hex = rest.len() >= 2 && rest[0] == b'0' && rest[1].eq_ignore_ascii_case(&b'x');
    // What came before each character: a digit (or prefix), an underscore, or other.
    let mut before = b'!';
    if hex {
        rest = &rest[2..];
        before = b'0';
    }
    for &c in rest {
        let is_digit = c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
        if is_digit {
            before = b'0';
        } else if c == b'_' {
            if before != b'0' {
                return false;
            }
            before = b'_';
        } else {
            if before == b'_' {
                return false;
            }
            before = b'!';
        }
    }
    before != b'_'
}

/// Whether a decimal number is nonzero once rounded to a float64; `None` when it overflows.
fn decimal_nonzero(n: &Number) -> Option<bool> {
    if n.digits.is_empty() {
        return Some(false);
    }
    let digits: String = n.digits.iter().map(|d| char::from(b'0' + d)).collect();
    let value: f64 = format!("0.{digits}e{}", n.point + n.exponent)
        .parse()
        .ok()?;
    value.is_finite().then_some(value != 0.0)
}

/// Whether a hex float is nonzero once rounded to a float64; `None` when it overflows.
/// The value is `0.DIGITS (base 16) * 16^point * 2^exponent`; its highest bit decides.
fn hex_nonzero(n: &Number) -> Option<bool> {
    let Some(&first) = n.digits.first() else {
        return Some(false);
    };
    // The value lies in [2^(top-1), 2^top).
    let top = 4 * n.point - i64::from(first.leading_zeros() as u8 - 4) + n.exponent;
    let bits = || {
        n.digits
            .iter()
            .flat_map(|d| (0..4).rev().map(move |b| (d >> b) & 1))
            .skip_while(|b| *b == 0)
    };
    if top > 1024 {
        return None;
    }
    if top == 1024 {
        // Rounds up to 2^1024 (out of range) only when the 53 kept bits are all ones and
        // the next one is set.
        let mut it = bits();
        let all_ones = it.by_ref().take(53).all(|b| b == 1);
        if all_ones && it.next() == Some(1) {
            return None;
        }
        return Some(true);
    }
    // Below half the smallest subnormal (2^-1075) a value rounds to zero; exactly half
    // rounds to even, zero too.
    if top < -1074 {
        return Some(false);
    }
    if top == -1074 {
        return Some(bits().skip(1).any(|b| b == 1));
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use FloatSign::*;

    #[test]
    fn go_syntax_and_range() {
        let cases: &[(&str, Option<FloatSign>)] = &[
            ("0", Some(Zero)),
            ("0.0", Some(Zero)),
            ("-0", Some(Zero)),
            ("1", Some(Positive)),
            ("0.5", Some(Positive)),
            ("-0.5", Some(Negative)),
            ("+.5", Some(Positive)),
            ("5.", Some(Positive)),
            ("1e3", Some(Positive)),
            ("1E-3", Some(Positive)),
            ("1e-400", Some(Zero)),
            ("1e400", None),
            ("-1e309", None),
            ("1_000", Some(Positive)),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("1_.5", None),
            ("0x_1p0", Some(Positive)),
            ("0x1p-2", Some(Positive)),
            ("0x1.8P+1", Some(Positive)),
            ("0x1", None),
            ("0x", None),
            ("0xp1", None),
            ("0x0p5", Some(Zero)),
            ("0x1p1023", Some(Positive)),
            ("0x1p1024", None),
            ("0x1.fffffffffffffp1023", Some(Positive)),
            ("0x1.fffffffffffff8p1023", None),
            ("0x1p-1074", Some(Positive)),
            ("0x1p-1075", Some(Zero)),
            ("0x1.0000001p-1075", Some(Positive)),
            ("NaN", Some(NaN)),
            ("nan", Some(NaN)),
            ("+nan", None),
            ("Inf", Some(Positive)),
            ("-Infinity", Some(Negative)),
            ("+INF", Some(Positive)),
            ("infin", None),
            ("", None),
            ("+", None),
            (".", None),
            ("1e", None),
            ("1e+", None),
            ("abc", None),
            (" 1", None),
            ("1 ", None),
            ("1.2.3", None),
            ("0.000", Some(Zero)),
            ("1e1_0", Some(Positive)),
            ("0x1.fffffffffffff7ffp1023", Some(Positive)),
            ("0x.1p-1070", Some(Positive)),
            ("0x0.00000000000000000000001p-1000", Some(Zero)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_sign(input), *want, "{input:?}");
        }
    }

    proptest::proptest! {
        /// Plain decimal numbers read the same in Go and Rust (Rust's parser has no
        /// range error: an overflow to infinity is Go's error).
        #[test]
        fn decimals_agree_with_rust(s in "[-+]?[0-9]{0,3}[.]?[0-9]{0,3}([eE][-+]?[0-9]{1,3})?") {
            let want = s.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| {
                if v == 0.0 {
                    FloatSign::Zero
                } else if v > 0.0 {
                    FloatSign::Positive
                } else {
                    FloatSign::Negative
                }
            });
            proptest::prop_assert_eq!(parse_sign(&s), want, "{:?}", s);
        }

        #[test]
        fn anything_else_is_classified_without_panicking(s in "[-+0-9a-fA-FxXpPeE._nNiItyé ]{0,24}") {
            let sign = parse_sign(&s);
            proptest::prop_assert!(sign.is_none() || !s.contains(' '));
        }
    }
}

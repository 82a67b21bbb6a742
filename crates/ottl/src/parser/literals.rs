//! Numbers and byte literals from their token text, with otelcol's conversions.

use super::ParseError;
use crate::ast::Span;

/// An integer token as Go's `strconv.ParseInt(text, 0, 64)` reads it, which is what
/// otelcol's parser applies: a leading `0` makes the rest octal (`010` is 8, `08` is an
/// error); above `i64::MAX` is out of range.
pub(crate) fn int_literal(text: &str, span: Span) -> Result<i64, ParseError> {
    let (digits, radix) = match text.strip_prefix('0') {
        Some(rest) if !rest.is_empty() => (rest, 8),
        _ => (text, 10),
    };
    i64::from_str_radix(digits, radix).map_err(|err| {
        let reason = match err.kind() {
            std::num::IntErrorKind::PosOverflow => "is out of range for a 64-bit integer",
            _ => "is not a valid integer (a leading 0 makes it octal)",
        };
        ParseError::new(format!("integer literal {text} {reason}"), span)
    })
}

/// A float token as Go's `strconv.ParseFloat(text, 64)` reads it: values beyond the f64
/// range are errors, values too small become zero.
pub(crate) fn float_literal(text: &str, span: Span) -> Result<f64, ParseError> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(ParseError::new(
            format!("float literal {text} is out of range for a 64-bit float"),
            span,
        )),
    }
}

/// `0x` and an even number of hex digits.
pub(crate) fn bytes_literal(text: &str, span: Span) -> Result<Vec<u8>, ParseError> {
    let digits = text.get(2..).unwrap_or_default().as_bytes();
    let odd = || {
        ParseError::new(
            format!("byte literal {text} has an odd number of hexadecimal digits"),
            span,
        )
        .expecting("two hexadecimal digits per byte")
    };
    if digits.len() % 2 != 0 {
        return Err(odd());
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16);
            let low = char::from(pair[1]).to_digit(16);
            match (high, low) {
                (Some(high), Some(low)) => u8::try_from(high * 16 + low).map_err(|_| odd()),
                _ => Err(odd()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: Span = Span { start: 0, end: 1 };

    #[test]
    fn ints_follow_go_base_prefix_rules() {
        assert_eq!(int_literal("0", SPAN), Ok(0));
        assert_eq!(int_literal("00", SPAN), Ok(0));
        assert_eq!(int_literal("12345", SPAN), Ok(12345));
        assert_eq!(int_literal("010", SPAN), Ok(8));
        assert_eq!(
            int_literal("9223372036854775807", SPAN),
            Ok(9_223_372_036_854_775_807)
        );
        assert_eq!(
            int_literal("08", SPAN).map_err(|e| e.message),
            Err("integer literal 08 is not a valid integer (a leading 0 makes it octal)".into())
        );
        assert_eq!(
            int_literal("9223372036854775808", SPAN).map_err(|e| e.message),
            Err("integer literal 9223372036854775808 is out of range for a 64-bit integer".into())
        );
    }

    #[test]
    fn floats_overflow_is_an_error_underflow_is_zero() {
        assert_eq!(float_literal("1.", SPAN), Ok(1.0));
        assert_eq!(float_literal(".5", SPAN), Ok(0.5));
        assert_eq!(float_literal("1.e5", SPAN), Ok(100_000.0));
        assert_eq!(float_literal("2.5e-3", SPAN), Ok(0.0025));
        assert_eq!(float_literal("1.e-400", SPAN), Ok(0.0));
        assert!(float_literal("1.e400", SPAN).is_err());
    }

    #[test]
    fn bytes_need_an_even_digit_count() {
        assert_eq!(
            bytes_literal("0x0102aBfF", SPAN),
            Ok(vec![0x01, 0x02, 0xab, 0xff])
        );
        assert_eq!(
            bytes_literal("0xABC", SPAN).map_err(|e| e.message),
            Err("byte literal 0xABC has an odd number of hexadecimal digits".into())
        );
    }
}

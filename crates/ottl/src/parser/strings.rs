//! String literals: unescaping with Go's rules.

use super::ParseError;
use crate::ast::Span;

/// Unescapes a string literal as otelcol does: character by character with Go's
/// `strconv.UnquoteChar`, each result appended as a Unicode scalar value, so `\xff` and
/// `\377` both become U+00FF (two UTF-8 bytes), never a lone byte.
pub(crate) fn unquote(text: &str, span: Span) -> Result<String, ParseError> {
    let body_start = span.start + 1;
    let body = &text[body_start..span.end - 1];
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((offset, ch)) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let mut escape = Escape {
            text,
            start: body_start + offset,
            end: body_start + offset + 1,
            body_start,
        };
        let kind = escape.next(&mut chars).ok_or_else(|| escape.error())?;
        let simple = match kind {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        let (radix, digits) = match kind {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => (8, 2),
            _ => return Err(escape.error()),
        };
        let mut value = if radix == 8 {
            kind as u32 - '0' as u32
        } else {
            0
        };
        for _ in 0..digits {
            let digit = escape.next(&mut chars).and_then(|c| c.to_digit(radix));
            let Some(digit) = digit else {
                return Err(escape.error());
            };
            value = value * radix + digit;
        }
        // Octal escapes stop at 255; \u and \U must name a Unicode scalar value; \x is
        // always in range.
        let decoded = match kind {
            '0'..='7' if value > 255 => None,
            _ => char::from_u32(value),
        };
        out.push(decoded.ok_or_else(|| escape.error())?);
    }
    Ok(out)
}

/// The escape sequence being read, for its error message.
struct Escape<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    body_start: usize,
}

impl Escape<'_> {
    fn next(&mut self, chars: &mut std::str::CharIndices<'_>) -> Option<char> {
        let (offset, c) = chars.next()?;
        self.end = self.body_start + offset + c.len_utf8();
        Some(c)
    }

    fn error(&self) -> ParseError {
        let shown = &self.text[self.start..self.end];
        ParseError::new(
            format!("invalid escape sequence {shown:?} in string literal"),
            Span::new(self.start, self.end),
        )
        .expecting(
            "one of \\a \\b \\f \\n \\r \\t \\v \\\\ \\\" \\xHH \\uHHHH \\UHHHHHHHH or a three-digit octal escape",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::lexer::tokenize;

    fn lex_error(text: &str) -> ParseError {
        tokenize(text).expect_err("text should not lex")
    }

    #[test]
    fn strings_unescape_like_go_unquote_char() {
        let value = |text: &str| unquote(text, Span::new(0, text.len())).expect("valid escapes");
        assert_eq!(value(r#""fo\"o""#), "fo\"o");
        assert_eq!(value(r#""\\""#), "\\");
        assert_eq!(value(r#""\a\b\f\n\r\t\v""#), "\x07\x08\x0c\n\r\t\x0b");
        assert_eq!(value(r#""\x41\101\u00e9\U0001F600""#), "AAé😀");
        assert_eq!(value(r#""\xff\377""#), "ÿÿ");
        assert_eq!(value("\"a\nb\""), "a\nb");
        assert_eq!(value(r#""it's""#), "it's");
    }

    #[test]
    fn bad_strings_are_errors() {
        assert_eq!(lex_error(r#""\""#).message, "unterminated string literal");
        assert_eq!(
            lex_error("\"a\\\nb\"").message,
            "unterminated string literal"
        );
        let err = lex_error(r#"x("\q")"#);
        assert_eq!(
            err.message,
            r#"invalid escape sequence "\\q" in string literal"#
        );
        assert_eq!(err.span, Span::new(3, 5));
        for bad in [
            r#""\'""#,
            r#""\x4""#,
            r#""\400""#,
            r#""\uD800""#,
            r#""\U00110000""#,
            r#""\8""#,
        ] {
            assert!(tokenize(bad).is_err(), "{bad} should be rejected");
        }
    }
}

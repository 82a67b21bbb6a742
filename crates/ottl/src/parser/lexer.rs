//! Tokens of OTTL text, as otelcol's lexer produces them.
//!
//! The rules are tried in a fixed order at each position and the first that matches wins
//! (not the longest): byte literals before floats before ints, keywords before identifiers.
//! That order decides cases such as `1.e5` (one float), `1e5` (an int then an identifier),
//! `0x` (an int then an identifier) and `android` (an identifier, not `and`). Whitespace
//! separates tokens and is then dropped, so the grammar never sees it.

use super::strings::unquote;
use super::ParseError;
use crate::ast::{CompareOp, MathOp, Span};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// `0x` followed by hex digits (the digit count is checked when the literal is used).
    Bytes,
    Float,
    Int,
    /// A string literal, already unescaped.
    Str(String),
    Nil,
    Not,
    Or,
    And,
    Compare(CompareOp),
    /// `=>`, only meaningful in lambdas, which Redline does not support.
    Arrow,
    AddSub(MathOp),
    MulDiv(MathOp),
    Bool(bool),
    Equal,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Colon,
    Comma,
    Dot,
    LBracket,
    RBracket,
    /// `[A-Z][A-Z0-9_]*`: one piece of a converter name, or an enum symbol.
    Upper,
    /// `[a-z][a-z0-9_]*`: a path segment, or one piece of an editor name.
    Lower,
    /// A lone `_` (a blank lambda parameter).
    Underscore,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub span: Span,
}

/// Go's `\b` counts only ASCII letters, digits and `_` as word characters.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn digits_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Splits `text` into tokens; the last one is always `Eof`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let (kind, len) = match next_token(rest) {
            Some(Lexed::Token(kind, len)) => (kind, len),
            Some(Lexed::Whitespace(len)) => {
                pos += len;
                continue;
            }
            Some(Lexed::String(len)) => {
                let span = Span::new(pos, pos + len);
                (Tok::Str(unquote(text, span)?), len)
            }
            None => return Err(no_token_error(text, pos)),
        };
        tokens.push(Token {
            kind,
            span: Span::new(pos, pos + len),
        });
        pos += len;
    }
    tokens.push(Token {
        kind: Tok::Eof,
        span: Span::new(text.len(), text.len()),
    });
    Ok(tokens)
}

enum Lexed {
    Token(Tok, usize),
    /// A string literal of this many bytes, quotes included, still escaped.
    String(usize),
    Whitespace(usize),
}

/// The first rule (in otelcol's order) that matches at the start of `rest`.
fn next_token(rest: &str) -> Option<Lexed> {
    let bytes = rest.as_bytes();
    let token = |kind, len| Some(Lexed::Token(kind, len));
    if let Some(len) = bytes_literal_len(bytes) {
        return token(Tok::Bytes, len);
    }
    if let Some(len) = float_len(bytes) {
        return token(Tok::Float, len);
    }
    let ints = digits_len(bytes);
    if ints > 0 {
        return token(Tok::Int, ints);
    }
    if bytes[0] == b'"' {
        return string_len(bytes).map(Lexed::String);
    }
    for (word, kind) in [
        ("nil", Tok::Nil),
        ("not", Tok::Not),
        ("or", Tok::Or),
        ("and", Tok::And),
    ] {
        if keyword_at(bytes, word) {
            return token(kind, word.len());
        }
    }
    for (op, cmp) in [
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        (">=", CompareOp::Ge),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        ("<", CompareOp::Lt),
    ] {
        if rest.starts_with(op) {
            return token(Tok::Compare(cmp), op.len());
        }
    }
    if rest.starts_with("=>") {
        return token(Tok::Arrow, 2);
    }
    let single = match bytes[0] {
        b'+' => Some(Tok::AddSub(MathOp::Add)),
        b'-' => Some(Tok::AddSub(MathOp::Sub)),
        b'/' => Some(Tok::MulDiv(MathOp::Div)),
        b'*' => Some(Tok::MulDiv(MathOp::Mul)),
        _ => None,
    };
    if let Some(kind) = single {
        return token(kind, 1);
    }
    for (word, value) in [("true", true), ("false", false)] {
        if keyword_at(bytes, word) {
            return token(Tok::Bool(value), word.len());
        }
    }
    let punct = match bytes[0] {
        b'=' => Some(Tok::Equal),
        b'(' => Some(Tok::LParen),
        b')' => Some(Tok::RParen),
        b'{' => Some(Tok::LBrace),
        b'}' => Some(Tok::RBrace),
        b':' => Some(Tok::Colon),
        b',' => Some(Tok::Comma),
        b'.' => Some(Tok::Dot),
        b'[' => Some(Tok::LBracket),
        b']' => Some(Tok::RBracket),
        _ => None,
    };
    if let Some(kind) = punct {
        return token(kind, 1);
    }
    let ident_len = |first: fn(&u8) -> bool, rest_ok: fn(&u8) -> bool| {
        if first(&bytes[0]) {
            1 + bytes[1..].iter().take_while(|b| rest_ok(b)).count()
        } else {
            0
        }
    };
    let upper = ident_len(u8::is_ascii_uppercase, |b| {
        b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_'
    });
    if upper > 0 {
        return token(Tok::Upper, upper);
    }
    let lower = ident_len(u8::is_ascii_lowercase, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_'
    });
    if lower > 0 {
        return token(Tok::Lower, lower);
    }
    // Go's `\s`: ASCII space, tab, line feed, form feed and carriage return (no vertical tab).
    let spaces = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r'))
        .count();
    if spaces > 0 {
        return Some(Lexed::Whitespace(spaces));
    }
    if keyword_at(bytes, "_") {
        return token(Tok::Underscore, 1);
    }
    None
}

/// `word` at the start, not followed by a word character. (The leading `\b` of otelcol's
/// keyword rules always holds: matching starts fresh at each token.)
fn keyword_at(bytes: &[u8], word: &str) -> bool {
    bytes.starts_with(word.as_bytes()) && bytes.get(word.len()).is_none_or(|b| !is_word_byte(*b))
}

fn bytes_literal_len(bytes: &[u8]) -> Option<usize> {
    if !bytes.starts_with(b"0x") {
        return None;
    }
    let hex = bytes[2..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    (hex > 0).then_some(2 + hex)
}

/// `(\d+\.\d*|\d*\.\d+)([eE][-+]?\d+)?`
fn float_len(bytes: &[u8]) -> Option<usize> {
    let int_part = digits_len(bytes);
    if bytes.get(int_part) != Some(&b'.') {
        return None;
    }
    let frac = digits_len(&bytes[int_part + 1..]);
    if int_part == 0 && frac == 0 {
        return None;
    }
    let mantissa = int_part + 1 + frac;
    let exponent = match bytes.get(mantissa) {
        Some(b'e' | b'E') => {
            let sign = usize::from(matches!(bytes.get(mantissa + 1), Some(b'+' | b'-')));
            let exp_digits = digits_len(&bytes[mantissa + 1 + sign..]);
            if exp_digits > 0 {
                1 + sign + exp_digits
            } else {
                0
            }
        }
        _ => 0,
    };
    Some(mantissa + exponent)
}

/// `"(\\.|[^\\"])*"`: up to the first unescaped quote. A backslash escapes any character
/// but a line feed; `None` when the literal never closes.
fn string_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    loop {
        match bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match bytes.get(i + 1)? {
                b'\n' => return None,
                _ => i += 2,
            },
            _ => i += 1,
        }
    }
}

fn no_token_error(text: &str, pos: usize) -> ParseError {
    let rest = &text[pos..];
    if rest.starts_with('"') {
        return ParseError::new("unterminated string literal", Span::new(pos, text.len()))
            .expecting("a closing `\"` (a backslash cannot escape a line break)");
    }
    let ch = rest.chars().next().unwrap_or(' ');
    ParseError::new(
        format!("unexpected character {:?}", ch.to_string()),
        Span::new(pos, pos + ch.len_utf8()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Tok, &str)> {
        tokenize(text)
            .expect("text should lex")
            .into_iter()
            .filter(|t| t.kind != Tok::Eof)
            .map(|t| (t.kind, &text[t.span.start..t.span.end]))
            .collect()
    }

    fn lex_error(text: &str) -> ParseError {
        tokenize(text).expect_err("text should not lex")
    }

    #[test]
    fn identifiers_split_by_case() {
        assert_eq!(kinds("abc"), vec![(Tok::Lower, "abc")]);
        assert_eq!(kinds("ABC"), vec![(Tok::Upper, "ABC")]);
        assert_eq!(
            kinds("aBCd_123E_4"),
            vec![
                (Tok::Lower, "a"),
                (Tok::Upper, "BC"),
                (Tok::Lower, "d_123"),
                (Tok::Upper, "E_4")
            ]
        );
        assert_eq!(
            kinds("foo bar BAZZ"),
            vec![
                (Tok::Lower, "foo"),
                (Tok::Lower, "bar"),
                (Tok::Upper, "BAZZ")
            ]
        );
    }

    #[test]
    fn keywords_are_whole_words() {
        assert_eq!(
            kinds("iphone android"),
            vec![(Tok::Lower, "iphone"), (Tok::Lower, "android")]
        );
        assert_eq!(
            kinds("iphone and roid"),
            vec![
                (Tok::Lower, "iphone"),
                (Tok::And, "and"),
                (Tok::Lower, "roid")
            ]
        );
        assert_eq!(
            kinds("oreo corn"),
            vec![(Tok::Lower, "oreo"), (Tok::Lower, "corn")]
        );
        assert_eq!(
            kinds("if, and, or but"),
            vec![
                (Tok::Lower, "if"),
                (Tok::Comma, ","),
                (Tok::And, "and"),
                (Tok::Comma, ","),
                (Tok::Or, "or"),
                (Tok::Lower, "but")
            ]
        );
        assert_eq!(
            kinds("true and not false"),
            vec![
                (Tok::Bool(true), "true"),
                (Tok::And, "and"),
                (Tok::Not, "not"),
                (Tok::Bool(false), "false")
            ]
        );
        // A keyword followed by a word character is an identifier; after an upper-case
        // identifier a keyword starts a new token.
        assert_eq!(kinds("nil_"), vec![(Tok::Lower, "nil_")]);
        assert_eq!(
            kinds("trueX"),
            vec![(Tok::Lower, "true"), (Tok::Upper, "X")]
        );
        assert_eq!(kinds("Xnil"), vec![(Tok::Upper, "X"), (Tok::Nil, "nil")]);
    }

    #[test]
    fn numbers_floats_before_ints() {
        assert_eq!(kinds("12345"), vec![(Tok::Int, "12345")]);
        assert_eq!(kinds("3.14159"), vec![(Tok::Float, "3.14159")]);
        assert_eq!(
            kinds("1. 2. .5 .99"),
            vec![
                (Tok::Float, "1."),
                (Tok::Float, "2."),
                (Tok::Float, ".5"),
                (Tok::Float, ".99")
            ]
        );
        assert_eq!(kinds("1.e5"), vec![(Tok::Float, "1.e5")]);
        assert_eq!(kinds("3.14e+10"), vec![(Tok::Float, "3.14e+10")]);
        assert_eq!(kinds("2.5e-3"), vec![(Tok::Float, "2.5e-3")]);
        assert_eq!(kinds("1e5"), vec![(Tok::Int, "1"), (Tok::Lower, "e5")]);
        assert_eq!(kinds("1.5E"), vec![(Tok::Float, "1.5"), (Tok::Upper, "E")]);
        assert_eq!(
            kinds("1.2.3"),
            vec![(Tok::Float, "1.2"), (Tok::Float, ".3")]
        );
        assert_eq!(
            kinds("3==4.9"),
            vec![
                (Tok::Int, "3"),
                (Tok::Compare(CompareOp::Eq), "=="),
                (Tok::Float, "4.9")
            ]
        );
    }

    #[test]
    fn byte_literals_need_a_hex_digit() {
        assert_eq!(
            kinds("0x0102030405060708"),
            vec![(Tok::Bytes, "0x0102030405060708")]
        );
        assert_eq!(kinds("0x"), vec![(Tok::Int, "0"), (Tok::Lower, "x")]);
        assert_eq!(
            kinds("0x1.5"),
            vec![(Tok::Bytes, "0x1"), (Tok::Float, ".5")]
        );
    }

    #[test]
    fn operators_and_punctuation() {
        assert_eq!(
            kinds("+-*/"),
            vec![
                (Tok::AddSub(MathOp::Add), "+"),
                (Tok::AddSub(MathOp::Sub), "-"),
                (Tok::MulDiv(MathOp::Mul), "*"),
                (Tok::MulDiv(MathOp::Div), "/")
            ]
        );
        assert_eq!(
            kinds("== != >= <= > < => ="),
            vec![
                (Tok::Compare(CompareOp::Eq), "=="),
                (Tok::Compare(CompareOp::Ne), "!="),
                (Tok::Compare(CompareOp::Ge), ">="),
                (Tok::Compare(CompareOp::Le), "<="),
                (Tok::Compare(CompareOp::Gt), ">"),
                (Tok::Compare(CompareOp::Lt), "<"),
                (Tok::Arrow, "=>"),
                (Tok::Equal, "=")
            ]
        );
        assert_eq!(
            kinds(r#"{"foo":"bar"}"#),
            vec![
                (Tok::LBrace, "{"),
                (Tok::Str("foo".into()), "\"foo\""),
                (Tok::Colon, ":"),
                (Tok::Str("bar".into()), "\"bar\""),
                (Tok::RBrace, "}")
            ]
        );
        assert_eq!(
            kinds("(_, v)"),
            vec![
                (Tok::LParen, "("),
                (Tok::Underscore, "_"),
                (Tok::Comma, ","),
                (Tok::Lower, "v"),
                (Tok::RParen, ")")
            ]
        );
    }

    #[test]
    fn whitespace_is_go_s_class_only() {
        assert_eq!(kinds(" \t\r\n\x0ca"), vec![(Tok::Lower, "a")]);
        assert_eq!(
            lex_error("a\x0bb").message,
            r#"unexpected character "\u{b}""#
        );
        assert_eq!(lex_error("a\u{a0}b").span, Span::new(1, 3));
    }

    #[test]
    fn unknown_characters_are_errors() {
        let err = lex_error("a |");
        assert_eq!(err.message, r#"unexpected character "|""#);
        assert_eq!(err.span, Span::new(2, 3));
        assert!(tokenize("_x").is_err());
        assert!(tokenize("!").is_err());
    }
}

//! The token stream the grammar rules walk, with error and nesting helpers.

use super::lexer::{tokenize, Tok, Token};
use super::{ParseError, MAX_DEPTH};
use crate::ast::Span;

/// Longest piece of a token quoted in an error message.
const SHOWN_TOKEN_CHARS: usize = 30;

pub(crate) struct Cursor<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    eof: Token,
    pos: usize,
    depth: usize,
}

impl<'t> Cursor<'t> {
    pub(crate) fn new(text: &'t str) -> Result<Self, ParseError> {
        Ok(Self {
            text,
            tokens: tokenize(text)?,
            eof: Token {
                kind: Tok::Eof,
                span: Span::new(text.len(), text.len()),
            },
            pos: 0,
            depth: 0,
        })
    }

    /// The source text of `span` (empty if the span were ever out of range).
    pub(crate) fn slice(&self, span: Span) -> &'t str {
        self.text.get(span.start..span.end).unwrap_or_default()
    }

    fn token_at(&self, index: usize) -> &Token {
        self.tokens.get(index).unwrap_or(&self.eof)
    }

    pub(crate) fn peek(&self) -> &Tok {
        &self.token_at(self.pos).kind
    }

    /// The kind of the token `n` places after the current one.
    pub(crate) fn peek_nth(&self, n: usize) -> &Tok {
        &self.token_at(self.pos + n).kind
    }

    /// The span of the current token.
    pub(crate) fn span(&self) -> Span {
        self.token_at(self.pos).span
    }

    /// The span of the token `n` places after the current one.
    pub(crate) fn span_nth(&self, n: usize) -> Span {
        self.token_at(self.pos + n).span
    }

    /// Where the last consumed token ends (0 before the first).
    pub(crate) fn prev_end(&self) -> usize {
        match self.pos.checked_sub(1) {
            Some(index) => self.token_at(index).span.end,
            None => 0,
        }
    }

    /// Consumes the current token (never past the end) and returns it.
    pub(crate) fn advance(&mut self) -> Token {
        let token = self.token_at(self.pos).clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    /// Consumes the current token if it is `kind`.
    pub(crate) fn eat(&mut self, kind: &Tok) -> Option<Span> {
        (self.peek() == kind).then(|| self.advance().span)
    }

    pub(crate) fn expect(&mut self, kind: &Tok, expected: &str) -> Result<Span, ParseError> {
        self.eat(kind).ok_or_else(|| self.unexpected(expected))
    }

    /// An error at the current token: what it is, and what the grammar wanted instead.
    pub(crate) fn unexpected(&self, expected: &str) -> ParseError {
        let token = self.token_at(self.pos);
        let found = if token.kind == Tok::Eof {
            "unexpected end of input".to_string()
        } else {
            let text = self.slice(token.span);
            let mut shown: String = text.chars().take(SHOWN_TOKEN_CHARS).collect();
            if shown.len() < text.len() {
                shown.push_str("...");
            }
            format!("unexpected token {shown:?}")
        };
        ParseError::new(found, token.span).expecting(expected)
    }

    /// Fails unless every token was consumed.
    pub(crate) fn finish(&self, expected: &str) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Eof => Ok(()),
            _ => Err(self.unexpected(expected)),
        }
    }

    /// Where the parse stands, to come back to with [`Cursor::rewind`].
    pub(crate) fn mark(&self) -> usize {
        self.pos
    }

    pub(crate) fn rewind(&mut self, mark: usize) {
        self.pos = mark;
    }

    /// Runs `rule` one nesting level deeper; past [`MAX_DEPTH`] levels it is an error.
    pub(crate) fn nested<T>(
        &mut self,
        rule: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.chained(|cursor| {
            cursor.descend()?;
            rule(cursor)
        })
    }

    /// Runs `chain`, a rule that calls [`Cursor::descend`] for each link it adds, and
    /// restores the nesting level afterwards.
    pub(crate) fn chained<T>(
        &mut self,
        chain: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        let depth = self.depth;
        let result = chain(self);
        self.depth = depth;
        result
    }

    /// One level deeper. Operator chains count too: `1 + 2 + 3` is a tree two levels deep,
    /// and the tree's consumers walk it recursively.
    pub(crate) fn descend(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::new(
                format!("expression nested more than {MAX_DEPTH} levels deep"),
                self.span(),
            )
            .expecting("fewer nested parentheses, brackets, calls or arithmetic operators"));
        }
        self.depth += 1;
        Ok(())
    }
}

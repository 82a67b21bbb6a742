//! Function calls (editors and converters) and their arguments.
//!
//! A function name is a run of identifier tokens: `IsMatch` lexes as `I`, `s`, `M`,
//! `atch`, and otelcol's grammar glues consecutive identifier tokens back together, even
//! across whitespace (`Is Match(x)` calls `IsMatch`). The same holds for argument names.

use super::cursor::Cursor;
use super::lexer::Tok;
use super::ParseError;
use crate::ast::{ArgValue, Argument, Call, Span};

fn is_identifier(tok: &Tok) -> bool {
    matches!(tok, Tok::Upper | Tok::Lower)
}

impl Cursor<'_> {
    /// Number of consecutive identifier tokens from the current one.
    fn identifier_run(&self) -> usize {
        (0..)
            .take_while(|&n| is_identifier(self.peek_nth(n)))
            .count()
    }

    /// The span of the identifier run starting here (empty when there is none).
    pub(crate) fn identifier_run_span(&self) -> Span {
        let start = self.span();
        let last = self.identifier_run().saturating_sub(1);
        Span::new(start.start, start.end.max(self.span_nth(last).end))
    }

    /// Whether an identifier run starting here is followed by `(`, i.e. is a call.
    pub(crate) fn call_ahead(&self) -> bool {
        let run = self.identifier_run();
        run > 0 && *self.peek_nth(run) == Tok::LParen
    }

    /// Consumes an identifier run and returns the glued name and its span.
    fn glued_name(&mut self) -> (String, Span) {
        let start = self.span();
        let mut end = start;
        let mut name = String::new();
        while is_identifier(self.peek()) {
            end = self.advance().span;
            name.push_str(self.slice(end));
        }
        (name, Span::new(start.start, end.end))
    }

    /// `name(args)` followed by any number of `[...]` keys.
    pub(crate) fn call(&mut self) -> Result<Call, ParseError> {
        let (name, name_span) = self.glued_name();
        self.expect(&Tok::LParen, "`(` after the function name")?;
        let mut args = Vec::new();
        let mut closed = self.eat(&Tok::RParen).is_some();
        while !closed {
            args.push(self.argument()?);
            if self.eat(&Tok::Comma).is_none() {
                self.expect(&Tok::RParen, "`,` or `)`")?;
                closed = true;
            }
        }
        let keys = self.keys()?;
        Ok(Call {
            name,
            name_span,
            args,
            keys,
            span: Span::new(name_span.start, self.prev_end()),
        })
    }

    /// `[name =] value`, where a value may also be a bare function name such as `Sha256`.
    fn argument(&mut self) -> Result<Argument, ParseError> {
        let start = self.span().start;
        let run = self.identifier_run();
        let named = *self.peek() == Tok::Lower && *self.peek_nth(run) == Tok::Equal;
        let name = if named {
            let (name, _) = self.glued_name();
            self.advance();
            Some(name)
        } else {
            None
        };
        // Only where a value cannot start: an upper-case token followed by a lower-case
        // one and no `(`. All-upper-case names are enum symbols as values; the compiler
        // takes them as function names where the parameter wants a function.
        let function_name =
            *self.peek() == Tok::Upper && *self.peek_nth(1) == Tok::Lower && !self.call_ahead();
        let value = if function_name {
            ArgValue::FunctionName(self.glued_name().0)
        } else {
            ArgValue::Value(self.value()?)
        };
        Ok(Argument {
            name,
            value,
            span: Span::new(start, self.prev_end()),
        })
    }
}

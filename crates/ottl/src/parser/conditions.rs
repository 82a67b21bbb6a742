//! Statements and boolean expressions.
//!
//! `and` binds tighter than `or`; `not` applies to one comparison, constant or
//! parenthesised condition (so `not not x` is an error, as in otelcol).

use super::cursor::Cursor;
use super::lexer::Tok;
use super::ParseError;
use crate::ast::{BoolExpr, Comparison, Statement, Value};

impl Cursor<'_> {
    /// `editor(args)` (or a converter call) with an optional `where` condition.
    pub(crate) fn statement(&mut self) -> Result<Statement, ParseError> {
        if !matches!(self.peek(), Tok::Lower | Tok::Upper) {
            return Err(self.unexpected("an editor call such as `set(...)`"));
        }
        let call = self.call()?;
        let where_clause = if *self.peek() == Tok::Lower && self.slice(self.span()) == "where" {
            self.advance();
            Some(self.bool_expr()?)
        } else {
            None
        };
        Ok(Statement { call, where_clause })
    }

    /// Terms joined by `or`.
    pub(crate) fn bool_expr(&mut self) -> Result<BoolExpr, ParseError> {
        let mut terms = vec![self.and_term()?];
        while self.eat(&Tok::Or).is_some() {
            terms.push(self.and_term()?);
        }
        Ok(single_or(terms, BoolExpr::Or))
    }

    /// Operands joined by `and`.
    fn and_term(&mut self) -> Result<BoolExpr, ParseError> {
        let mut operands = vec![self.bool_operand()?];
        while self.eat(&Tok::And).is_some() {
            operands.push(self.bool_operand()?);
        }
        Ok(single_or(operands, BoolExpr::And))
    }

    fn bool_operand(&mut self) -> Result<BoolExpr, ParseError> {
        let negated = self.eat(&Tok::Not).is_some();
        let operand = if *self.peek() == Tok::LParen {
            self.parenthesised_operand()?
        } else {
            self.comparison_or_constant()?
        };
        Ok(if negated {
            BoolExpr::Not(Box::new(operand))
        } else {
            operand
        })
    }

    /// At `(`, otelcol first tries a comparison whose left side is parenthesised
    /// arithmetic (`(a + 1) == b`), then a parenthesised condition (`(a == 1 or b)`).
    /// Only here does the parser go back; as values hold no conditions, each nesting level
    /// re-reads its contents at most once, so the work stays within [`super::MAX_DEPTH`]
    /// times the length of the text.
    fn parenthesised_operand(&mut self) -> Result<BoolExpr, ParseError> {
        let mark = self.mark();
        let as_comparison = match self.comparison_or_constant() {
            Ok(expr) => return Ok(expr),
            Err(err) => err,
        };
        self.rewind(mark);
        let as_condition = self.nested(|cursor| {
            cursor.advance();
            let inner = cursor.bool_expr()?;
            cursor.expect(&Tok::RParen, "`)`, `and` or `or`")?;
            Ok(inner)
        });
        // When both readings fail, the one that got further explains the problem best.
        as_condition.map_err(|err| {
            if as_comparison.span.start > err.span.start {
                as_comparison
            } else {
                err
            }
        })
    }

    /// `value op value`, or alone a boolean literal or a converter call.
    fn comparison_or_constant(&mut self) -> Result<BoolExpr, ParseError> {
        let start = self.span().start;
        let left = self.value()?;
        if let Tok::Compare(op) = *self.peek() {
            self.advance();
            let right = self.value()?;
            let span = crate::ast::Span::new(start, self.prev_end());
            return Ok(BoolExpr::Comparison(Box::new(Comparison {
                left,
                op,
                right,
                span,
            })));
        }
        match left {
            Value::Bool(value, _) => Ok(BoolExpr::Literal(value)),
            Value::Converter(call) => Ok(BoolExpr::Converter(call)),
            _ => Err(self.unexpected("a comparison operator (==, !=, <, <=, >, >=)")),
        }
    }
}

/// The one item itself, or the items joined by `join`.
fn single_or(mut items: Vec<BoolExpr>, join: fn(Vec<BoolExpr>) -> BoolExpr) -> BoolExpr {
    if items.len() == 1 {
        if let Some(item) = items.pop() {
            return item;
        }
    }
    join(items)
}

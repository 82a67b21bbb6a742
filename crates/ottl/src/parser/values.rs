//! Value expressions: literals, enum symbols, paths with keys, lists, maps and arithmetic.
//!
//! otelcol's grammar tries a plain literal (path, call, number) first and arithmetic only
//! when an operator follows; the tree keeps that distinction: `x` is `Value::Path`, while
//! `-x`, `+x`, `(x)` and `-1` went through arithmetic and are `Value::Math` (with `-1`
//! folded into an `Int(-1)` leaf). The compiler needs it where otelcol does: a parameter
//! that takes a path or a literal int rejects the arithmetic forms.

use super::cursor::Cursor;
use super::lexer::Tok;
use super::literals::{bytes_literal, float_literal, int_literal};
use super::ParseError;
use crate::ast::{Field, Key, MathExpr, MathOp, Path, Span, Value};

/// One operand or partial result of arithmetic.
struct Operand {
    expr: MathExpr,
    /// Source extent, parentheses and sign included.
    span: Span,
    /// A lone literal, path or call: no sign, parentheses or operator.
    bare: bool,
}

impl Operand {
    fn into_value(self) -> Value {
        match self.expr {
            MathExpr::Leaf(value) if self.bare => value,
            expr => Value::Math(Box::new(expr)),
        }
    }
}

impl Cursor<'_> {
    pub(crate) fn value(&mut self) -> Result<Value, ParseError> {
        self.nested(Self::value_unnested)
    }

    fn value_unnested(&mut self) -> Result<Value, ParseError> {
        let span = self.span();
        let simple = match self.peek() {
            Tok::Nil => Some(Value::Nil(span)),
            Tok::Bool(value) => Some(Value::Bool(*value, span)),
            Tok::Str(value) => Some(Value::String(value.clone(), span)),
            Tok::Bytes => Some(Value::Bytes(bytes_literal(self.slice(span), span)?, span)),
            _ => None,
        };
        if let Some(value) = simple {
            self.advance();
            return Ok(value);
        }
        match self.peek() {
            Tok::LBrace => self.map(),
            Tok::LBracket => self.list(),
            Tok::Upper if !self.call_ahead() => {
                // An enum symbol is one upper-case token not followed by a lower-case one.
                if *self.peek_nth(1) == Tok::Lower {
                    let name = self.identifier_run_span();
                    return Err(ParseError::new(
                        format!("unexpected name {:?}", self.slice(name)),
                        name,
                    )
                    .expecting(
                        "a value (a converter needs `(...)`; an enum symbol is all upper case)",
                    ));
                }
                let token = self.advance();
                Ok(Value::Enum(self.slice(token.span).to_string(), token.span))
            }
            Tok::LParen if self.lambda_ahead() => Err(ParseError::new(
                "lambda expressions are not supported",
                span,
            )),
            Tok::Lower | Tok::Upper | Tok::Int | Tok::Float | Tok::AddSub(_) | Tok::LParen => {
                Ok(self.sum()?.into_value())
            }
            _ => Err(self.unexpected("a value")),
        }
    }

    /// `(`, optional lower-case or `_` parameters separated by commas, `)`, `=>`.
    fn lambda_ahead(&self) -> bool {
        let mut n = 1;
        if matches!(self.peek_nth(n), Tok::Lower | Tok::Underscore) {
            n += 1;
            while *self.peek_nth(n) == Tok::Comma
                && matches!(self.peek_nth(n + 1), Tok::Lower | Tok::Underscore)
            {
                n += 2;
            }
        }
        *self.peek_nth(n) == Tok::RParen && *self.peek_nth(n + 1) == Tok::Arrow
    }

    /// Terms joined by `+` and `-`, left to right.
    fn sum(&mut self) -> Result<Operand, ParseError> {
        self.chained(|cursor| {
            let mut left = cursor.product()?;
            while let Tok::AddSub(op) = *cursor.peek() {
                cursor.advance();
                cursor.descend()?;
                let right = cursor.product()?;
                left = binary(op, left, right);
            }
            Ok(left)
        })
    }

    /// Operands joined by `*` and `/`, left to right.
    fn product(&mut self) -> Result<Operand, ParseError> {
        self.chained(|cursor| {
            let mut left = cursor.operand()?;
            while let Tok::MulDiv(op) = *cursor.peek() {
                cursor.advance();
                cursor.descend()?;
                let right = cursor.operand()?;
                left = binary(op, left, right);
            }
            Ok(left)
        })
    }

    /// An optional sign, then a number, path, call or parenthesised arithmetic.
    fn operand(&mut self) -> Result<Operand, ParseError> {
        let start = self.span().start;
        let sign = match *self.peek() {
            Tok::AddSub(op) => {
                self.advance();
                Some(op)
            }
            _ => None,
        };
        let inner = if *self.peek() == Tok::LParen {
            let open = self.advance().span;
            let inner = self.nested(Self::sum)?;
            let close = self.expect(&Tok::RParen, "`)` or an arithmetic operator")?;
            Operand {
                expr: inner.expr,
                span: Span::new(open.start, close.end),
                bare: false,
            }
        } else {
            let leaf = self.math_literal()?;
            let span = leaf.span();
            Operand {
                expr: MathExpr::Leaf(leaf),
                span,
                bare: true,
            }
        };
        let span = Span::new(start, inner.span.end);
        let expr = match (sign, inner.expr) {
            (None, expr) => return Ok(Operand { expr, ..inner }),
            (Some(MathOp::Sub), MathExpr::Leaf(Value::Int(n, _))) if inner.bare => {
                MathExpr::Leaf(Value::Int(-n, span))
            }
            (Some(MathOp::Sub), MathExpr::Leaf(Value::Float(f, _))) if inner.bare => {
                MathExpr::Leaf(Value::Float(-f, span))
            }
            (Some(MathOp::Sub), expr) => MathExpr::Neg(Box::new(expr), span),
            // Unary plus changes nothing (otelcol does not even check the operand's type).
            (Some(_), expr) => expr,
        };
        Ok(Operand {
            expr,
            span,
            bare: false,
        })
    }

    /// What arithmetic operates on: a call, a number or a path.
    fn math_literal(&mut self) -> Result<Value, ParseError> {
        let span = self.span();
        match self.peek() {
            Tok::Lower if self.call_ahead() => Ok(Value::Editor(self.call()?)),
            Tok::Lower => Ok(Value::Path(self.path()?)),
            Tok::Upper if self.call_ahead() => Ok(Value::Converter(self.call()?)),
            Tok::Int => {
                let n = int_literal(self.slice(span), span)?;
                self.advance();
                Ok(Value::Int(n, span))
            }
            Tok::Float => {
                let f = float_literal(self.slice(span), span)?;
                self.advance();
                Ok(Value::Float(f, span))
            }
            _ => Err(self.unexpected("a number, a path or a converter call")),
        }
    }

    /// Segments separated by dots, each a lower-case name with optional keys.
    fn path(&mut self) -> Result<Path, ParseError> {
        let mut fields = vec![self.field()?];
        while self.eat(&Tok::Dot).is_some() {
            if *self.peek() != Tok::Lower {
                return Err(self.unexpected("a path segment (a lower-case name)"));
            }
            fields.push(self.field()?);
        }
        let start = fields.first().map_or(0, |f| f.span.start);
        let end = fields.last().map_or(0, |f| f.span.end);
        Ok(Path {
            fields,
            span: Span::new(start, end),
        })
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        let token = self.expect(&Tok::Lower, "a path segment (a lower-case name)")?;
        let keys = self.keys()?;
        Ok(Field {
            name: self.slice(token).to_string(),
            keys,
            span: Span::new(token.start, self.prev_end()),
        })
    }

    /// Any number of `[...]` indexes.
    pub(crate) fn keys(&mut self) -> Result<Vec<Key>, ParseError> {
        let mut keys = Vec::new();
        while *self.peek() == Tok::LBracket {
            keys.push(self.nested(Self::key)?);
        }
        Ok(keys)
    }

    /// `["name"]`, `[0]`, or an expression: a path, a call or arithmetic.
    fn key(&mut self) -> Result<Key, ParseError> {
        let open = self.advance().span;
        let close_hint = "`]`";
        match self.peek().clone() {
            Tok::Str(name) => {
                self.advance();
                let close = self.expect(&Tok::RBracket, close_hint)?;
                Ok(Key::String(name, Span::new(open.start, close.end)))
            }
            Tok::Int => {
                let span = self.span();
                let index = int_literal(self.slice(span), span)?;
                self.advance();
                // otelcol commits to an integer key here, so `[1 + x]` is an error while
                // `[x + 1]` is arithmetic.
                let close = self.expect(
                    &Tok::RBracket,
                    "`]` (an index starting with an integer literal cannot continue)",
                )?;
                Ok(Key::Int(index, Span::new(open.start, close.end)))
            }
            Tok::Lower | Tok::Upper | Tok::Float | Tok::AddSub(_) | Tok::LParen => {
                let expr = self.sum()?.into_value();
                let close = self.expect(&Tok::RBracket, "`]` or an arithmetic operator")?;
                Ok(Key::Expr(Box::new(expr), Span::new(open.start, close.end)))
            }
            _ => {
                Err(self.unexpected("a string, an integer, a path, a converter call or arithmetic"))
            }
        }
    }

    /// `[v, ...]`; no trailing comma.
    fn list(&mut self) -> Result<Value, ParseError> {
        let open = self.advance().span;
        let mut items = Vec::new();
        if let Some(close) = self.eat(&Tok::RBracket) {
            return Ok(Value::List(items, Span::new(open.start, close.end)));
        }
        loop {
            items.push(self.value()?);
            if self.eat(&Tok::Comma).is_none() {
                let close = self.expect(&Tok::RBracket, "`,` or `]`")?;
                return Ok(Value::List(items, Span::new(open.start, close.end)));
            }
        }
    }

    /// `{"k": v, ...}`; commas between entries are optional and one may trail.
    fn map(&mut self) -> Result<Value, ParseError> {
        let open = self.advance().span;
        let mut entries = Vec::new();
        loop {
            match self.peek().clone() {
                Tok::RBrace => {
                    let close = self.advance().span;
                    return Ok(Value::Map(entries, Span::new(open.start, close.end)));
                }
                Tok::Str(key) => {
                    self.advance();
                    self.expect(&Tok::Colon, "`:` after the map key")?;
                    entries.push((key, self.value()?));
                    self.eat(&Tok::Comma);
                }
                _ => return Err(self.unexpected("a string map key or `}`")),
            }
        }
    }
}

fn binary(op: MathOp, left: Operand, right: Operand) -> Operand {
    let span = Span::new(left.span.start, right.span.end);
    Operand {
        expr: MathExpr::Binary {
            op,
            left: Box::new(left.expr),
            right: Box::new(right.expr),
            span,
        },
        span,
        bare: false,
    }
}

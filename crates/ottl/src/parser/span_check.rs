//! The body of the `ottl_parse` fuzz target, also run by the unit tests: the fuzz target
//! includes this file by path, so both compile against the same API.
//!
//! It parses text as a statement, a condition and a value; no parse may panic, every span
//! of a tree must lie within the text on character boundaries, and so must an error's.

use super::ast::{ArgValue, BoolExpr, Call, Key, MathExpr, Span, Value};
use super::{parse_condition, parse_statement, parse_value, ParseError};

/// Panics when a parse result points outside `text`.
pub fn check(text: &str) {
    let spans = Spans { text };
    match parse_statement(text) {
        Ok(statement) => {
            spans.call(&statement.call);
            if let Some(condition) = &statement.where_clause {
                spans.bool_expr(condition);
            }
        }
        Err(err) => spans.error(&err),
    }
    match parse_condition(text) {
        Ok(condition) => spans.bool_expr(&condition),
        Err(err) => spans.error(&err),
    }
    match parse_value(text) {
        Ok(value) => spans.value(&value),
        Err(err) => spans.error(&err),
    }
}

struct Spans<'t> {
    text: &'t str,
}

impl Spans<'_> {
    fn span(&self, span: Span) {
        assert!(
            span.start <= span.end && self.text.get(span.start..span.end).is_some(),
            "span {span:?} is not within the {} bytes of {:?}",
            self.text.len(),
            self.text
        );
    }

    fn inside(&self, inner: Span, outer: Span) {
        self.span(inner);
        assert!(
            outer.start <= inner.start && inner.end <= outer.end,
            "span {inner:?} is not inside {outer:?} in {:?}",
            self.text
        );
    }

    fn error(&self, err: &ParseError) {
        self.span(err.span);
        let rendered = err.render(self.text);
        assert!(
            rendered.contains(&format!("at column {}", err.column(self.text))),
            "{rendered}"
        );
    }

    fn call(&self, call: &Call) {
        self.span(call.span);
        self.inside(call.name_span, call.span);
        for arg in &call.args {
            self.inside(arg.span, call.span);
            if let ArgValue::Value(value) = &arg.value {
                self.inside(value.span(), arg.span);
                self.value(value);
            }
        }
        self.keys(&call.keys, call.span);
    }

    fn keys(&self, keys: &[Key], outer: Span) {
        for key in keys {
            match key {
                Key::String(_, span) | Key::Int(_, span) => self.inside(*span, outer),
                Key::Expr(value, span) => {
                    self.inside(*span, outer);
                    self.inside(value.span(), *span);
                    self.value(value);
                }
            }
        }
    }

    fn value(&self, value: &Value) {
        self.span(value.span());
        match value {
            Value::Path(path) => {
                for field in &path.fields {
                    self.inside(field.span, path.span);
                    self.keys(&field.keys, field.span);
                }
            }
            Value::Converter(call) | Value::Editor(call) => self.call(call),
            Value::List(items, span) => {
                for item in items {
                    self.inside(item.span(), *span);
                    self.value(item);
                }
            }
            Value::Map(entries, span) => {
                for (_, item) in entries {
                    self.inside(item.span(), *span);
                    self.value(item);
                }
            }
            Value::Math(expr) => self.math(expr),
            _ => {}
        }
    }

    fn math(&self, expr: &MathExpr) {
        match expr {
            MathExpr::Leaf(value) => self.value(value),
            MathExpr::Neg(inner, span) => {
                self.inside(inner.span(), *span);
                self.math(inner);
            }
            MathExpr::Binary {
                left, right, span, ..
            } => {
                self.inside(left.span(), *span);
                self.inside(right.span(), *span);
                self.math(left);
                self.math(right);
            }
        }
    }

    fn bool_expr(&self, expr: &BoolExpr) {
        match expr {
            BoolExpr::Or(items) | BoolExpr::And(items) => {
                items.iter().for_each(|item| self.bool_expr(item));
            }
            BoolExpr::Not(inner) => self.bool_expr(inner),
            BoolExpr::Comparison(comparison) => {
                self.inside(comparison.left.span(), comparison.span);
                self.inside(comparison.right.span(), comparison.span);
                self.value(&comparison.left);
                self.value(&comparison.right);
            }
            BoolExpr::Literal(_) => {}
            BoolExpr::Converter(call) => self.call(call),
        }
    }
}

//! The OTTL parser: text to the syntax tree of [`crate::ast`].
//!
//! It accepts what otelcol's grammar (pkg/ottl, participle-based) accepts and builds the
//! same structure, with a hand-written lexer and a recursive-descent parser:
//!
//! - a statement is `editor(args) [where condition]`; a converter call in statement
//!   position parses too (the grammar allows it, otelcol's post-parse check rejects it);
//! - a condition is `or` of `and` of optionally negated comparisons, `true`/`false`,
//!   converter calls, or parenthesised conditions;
//! - values are literals, enum symbols, paths, calls, lists, maps and `+ - * /` arithmetic.
//!
//! What otelcol rejects after parsing (an editor used as a value, an indexed editor, a
//! converter used as a statement) is left to the compiler: the tree keeps those nodes with
//! their spans. Lambdas are rejected here: Redline does not support them.
//!
//! One quirk of otelcol's parser generator is not reproduced: it matches a fixed word of
//! the grammar (`where`, `(`, `[`, ...) against any token with that text, so a string
//! literal such as `"where"` or `"("` can stand in for it. Here punctuation and `where`
//! must be written as such.
//!
//! Nesting is capped at [`MAX_DEPTH`] levels so hostile input cannot exhaust the stack, here
//! or in whatever walks the tree; each arithmetic operator counts as a level, because
//! `1 + 2 + 3` is a tree as deep as it has operators.

mod calls;
mod conditions;
mod cursor;
mod lexer;
mod literals;
mod strings;
mod values;

#[cfg(test)]
mod span_check;
#[cfg(test)]
mod tests_conditions;
#[cfg(test)]
mod tests_values;

// span_check.rs, shared with the fuzz target, reaches the tree as `super::ast`.
#[cfg(test)]
use crate::ast;
use crate::ast::{BoolExpr, Span, Statement, Value};
use cursor::Cursor;

/// How deeply values, parentheses, index expressions and arithmetic operators may nest.
pub const MAX_DEPTH: usize = 100;

/// Why text is not valid OTTL, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe(None))]
pub struct ParseError {
    /// What was found or went wrong, e.g. `unexpected token "where"`.
    pub message: String,
    /// What the grammar allows at that point, e.g. `a value`.
    pub expected: Option<String>,
    /// Byte offsets into the parsed text.
    pub span: Span,
}

impl ParseError {
    pub(crate) fn new(message: impl Into<String>, span: Span) -> Self {
        Self {
            message: message.into(),
            expected: None,
            span,
        }
    }

    pub(crate) fn expecting(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// 1-based column (in characters) where the problem starts.
    pub fn column(&self, text: &str) -> usize {
        self.span.column(text)
    }

    /// The message with its column, e.g.
    /// `unexpected token "where" at column 12: expected a value`.
    pub fn render(&self, text: &str) -> String {
        self.describe(Some(self.column(text)))
    }

    fn describe(&self, column: Option<usize>) -> String {
        let mut out = self.message.clone();
        if let Some(column) = column {
            out.push_str(&format!(" at column {column}"));
        }
        if let Some(expected) = &self.expected {
            out.push_str(&format!(": expected {expected}"));
        }
        out
    }
}

/// Parses one statement: `editor(args)` with an optional `where` condition.
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    let mut cursor = Cursor::new(text)?;
    let statement = cursor.statement()?;
    cursor.finish("`where` and a condition, or the end of the statement")?;
    Ok(statement)
}

/// Parses one condition (a boolean expression, as in a `where` clause).
pub fn parse_condition(text: &str) -> Result<BoolExpr, ParseError> {
    let mut cursor = Cursor::new(text)?;
    let condition = cursor.bool_expr()?;
    cursor.finish("`and`, `or` or the end of the condition")?;
    Ok(condition)
}

/// Parses one value expression (a literal, path, call, list, map or arithmetic).
pub fn parse_value(text: &str) -> Result<Value, ParseError> {
    let mut cursor = Cursor::new(text)?;
    let value = cursor.value()?;
    cursor.finish("an operator or the end of the expression")?;
    Ok(value)
}

//! Where statement texts become syntax trees: the parser's errors as compile errors, located
//! at their column.

use crate::ast;
use crate::error::CompileError;
use crate::parser::{self, ParseError};

pub(crate) fn statement(text: &str) -> Result<ast::Statement, CompileError> {
    parser::parse_statement(text).map_err(|e| located(text, &e))
}

pub(crate) fn condition(text: &str) -> Result<ast::BoolExpr, CompileError> {
    parser::parse_condition(text).map_err(|e| located(text, &e))
}

fn located(text: &str, error: &ParseError) -> CompileError {
    CompileError::new(text, error.column(text), error.to_string())
}

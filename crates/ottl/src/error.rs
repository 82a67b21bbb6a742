//! Errors: compile-time ([`CompileError`]), per-statement runtime ([`EvalError`]) and what the
//! executors return ([`ExecError`]).

use std::fmt;

/// A statement or condition that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("statement {statement:?}: column {column}: {message}")]
pub struct CompileError {
    pub statement: String,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl CompileError {
    pub fn new(statement: &str, column: usize, message: impl Into<String>) -> Self {
        Self {
            statement: statement.to_string(),
            column,
            message: message.into(),
        }
    }
}

/// A runtime failure of one statement or condition (otelcol's error from `Execute`/`Eval`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    message: String,
    /// otelcol's `ottl.TypeError` (a typed getter got the wrong type): `IsString` and
    /// friends turn it into `false` instead of failing.
    type_error: bool,
}

impl EvalError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            type_error: false,
        }
    }

    pub fn type_error(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            type_error: true,
        }
    }

    pub fn is_type_error(&self) -> bool {
        self.type_error
    }

    /// Wraps the message as otelcol's getters do (`error getting value in ...: <err>`); the
    /// result is no longer a type error, as in Go where the wrapped error is not one.
    pub(crate) fn context(self, prefix: &str) -> Self {
        Self {
            message: format!("{prefix}: {}", self.message),
            type_error: false,
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// What an executor returns when a statement fails under `error_mode: propagate`, or the
/// encoded request cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("failed to execute statement: {statement}, {source}")]
    Statement {
        statement: String,
        source: EvalError,
    },
    #[error("failed to eval condition: {condition}, {source}")]
    Condition {
        condition: String,
        source: EvalError,
    },
    #[error("malformed request: {0}")]
    Wire(#[from] redline_otlp_wire::WireError),
    #[error("the {0:?} context does not apply to this signal")]
    WrongSignal(crate::ContextKind),
    #[error("the {0:?} context cannot be evaluated on the encoded request")]
    UnsupportedDryRun(crate::ContextKind),
}

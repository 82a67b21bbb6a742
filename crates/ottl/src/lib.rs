//! OTTL, the OpenTelemetry Transformation Language, as otelcol's `pkg/ottl` defines it.

pub mod ast;
pub mod parser;

pub use parser::{parse_condition, parse_statement, parse_value, ParseError};

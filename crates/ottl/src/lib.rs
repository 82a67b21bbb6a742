//! OTTL, the OpenTelemetry Transformation Language, as otelcol's `pkg/ottl` defines it:
//! compilation of statements and conditions against a context, evaluation on OTLP prost
//! messages (traces, metrics, logs), and a dry run on encoded traces that tells whether
//! applying could change them.

// Values carry the wire walker's attribute iterator inline (a few hundred bytes): boxing it
// would allocate on every attribute read of the dry run, which must not allocate.
#![allow(clippy::large_enum_variant)]

pub mod ast;
mod compare;
mod compile;
mod contexts;
mod error;
mod eval;
mod exec;
mod funcs;
#[doc(hidden)]
pub mod fuzzing;
mod infer;
mod ir;
mod parse_shim;
pub mod parser;
mod paths;
pub mod tracestate;
mod value;
mod write;

pub use contexts::proto_metrics::point_count;
pub use error::{CompileError, EvalError, ExecError};
pub use exec::{
    any_span_matches, filter_logs, filter_metrics, filter_traces, traces_may_drop, ConditionSet,
    ErrorMode, FilterOutcome, Item, ItemScope, LogFilters, MetricFilters, StatementGroup,
    TraceFilters,
};
pub use parser::{parse_condition, parse_statement, parse_value, ParseError};
pub use paths::{ContextKind, Signal};
pub use value::Value;

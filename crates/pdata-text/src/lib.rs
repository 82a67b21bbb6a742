//! OTLP attribute values and numbers printed exactly as otelcol prints them: pdata's
//! `Value.AsString()` and type names, and Go's float, time and id formats.
//!
//! Whatever Redline writes where otelcol writes a pdata value must match it byte for byte:
//! a Prometheus label value that differs makes the same series two series, and the `debug`
//! exporter's output is compared with otelcol's line for line. The components that print
//! values (`prometheus-translate`, `debug-exporter`) share this crate instead of each keeping
//! a copy.

mod gofmt;
mod value;

pub use gofmt::{double_as_string, format_float_f, go_f, go_v, id, json_float, timestamp};
pub use value::{as_string, type_name, typed};

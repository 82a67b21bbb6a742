//! OTTL, the OpenTelemetry Transformation Language, as otelcol's `pkg/ottl` defines it.

pub mod ast;

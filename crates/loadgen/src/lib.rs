//! loadgen: the load-test harness for Redline and any OTLP endpoint (docs/architecture.md §6).
//!
//! - [`model`] generates realistic, seeded traces, [`model_metrics`] and [`model_logs`]
//!   metrics and logs of the same request size ([`signal`] picks one); [`encode`]
//!   pre-encodes them into [`encode::Template`]s whose ids and timestamps are patched in
//!   place per send ([`templates`] builds a run's).
//! - [`engine`] sends them open loop (fixed rate, latency from the intended send time) or
//!   closed loop (full speed) through [`send`] (OTLP/gRPC raw bytes, OTLP/HTTP protobuf).
//! - [`tally`] and [`verify`] check a spanmetrics pipeline's Prometheus series exactly
//!   ([`expo`] parses the exposition); [`sink`] counts what reaches the forward side, per
//!   signal, and [`verify_sink`] checks it for metrics and logs.
//!
//! The binary's commands live in `cmd_run` and `cmd_sink` (anyhow); the rest are library
//! modules with typed errors so that tests can drive them directly.

pub mod cli;
pub mod cmd_run;
pub mod cmd_sink;
pub mod codec;
pub mod encode;
pub mod engine;
pub mod expo;
pub mod fluent;
pub mod httpget;
pub mod ids;
pub mod jaeger;
pub mod model;
pub mod model_logs;
pub mod model_metrics;
pub mod model_signals;
pub mod procstat;
pub mod progress;
pub mod report;
pub mod rng;
pub mod send;
pub mod signal;
pub mod sink;
pub mod tally;
pub mod templates;
pub mod verify;
pub mod verify_sink;
pub mod zipkin;

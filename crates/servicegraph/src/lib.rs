//! servicegraph connector: request metrics between services, from paired client and server
//! spans, as otelcol-contrib's `servicegraph` connector computes them.
//!
//! [`ServiceGraph`] is the whole connector without any pipeline: feed it encoded
//! `ExportTraceServiceRequest`s with [`ServiceGraph::consume`] and read it as a
//! [`redline_pipeline::MetricsSource`]. [`ServiceGraphFactory`] wires it into a pipeline
//! (type `servicegraph`, alias `service_graph`).
//!
//! How it works, as otelcol: a client (or producer) span waits in the store under (trace id,
//! its span id), a server (or consumer) span under (trace id, its parent span id); when both
//! sides of a key are known the request is recorded. A client span with one of
//! `database_name_attributes` (resource first, then span) is complete at once, the database
//! name as server, `connection_type="database"`. Producer/consumer edges are
//! `messaging_system`. An edge still half-open after `store.ttl` expires: with
//! `virtual_node_peer_attributes` not empty it becomes a `virtual_node` edge, its missing
//! client `user` when the server span was a root, its missing server the client span's
//! highest-priority peer attribute or `unknown`. `failed` is true when either span has status
//! ERROR.
//!
//! Families (Prometheus names): `traces_service_graph_request_total`,
//! `traces_service_graph_request_failed_total`,
//! `traces_service_graph_request_server_seconds` and `..._client_seconds` (histograms, unit
//! `s`, otelcol's default buckets). Labels: `client`, `server`, `connection_type`, `failed`,
//! `client_<dim>` / `server_<dim>` for each of `dimensions` found (resource attribute first,
//! then span attribute), and `virtual_node` with `virtual_node_extra_label: true`.
//!
//! Weights: a request counts as the number of requests its spans stand for, in the calls,
//! the failed calls and the histograms (bucket and count `+= w`, sum `+= latency * w`). `w`
//! is the `span_multiplier_key` value when that key is set and found (server span first, then
//! client span; on a span, its attribute first, then its resource's), else the server span's
//! adjusted count from its `tracestate` (`ot=th:...`) when there is a server span, else the
//! client span's; 1 without sampling information. The server span is preferred because it
//! is the span the called service sampled, and a database or virtual-server edge has only
//! the client's. Fractions are rounded without bias, the span id being the coin.
//!
//! Differences from otelcol, on purpose:
//! - The store is sharded with one lock per shard; `store.max_items` bounds all shards
//!   together. When the store is full, a new edge makes room from expired edges: its own
//!   shard's, else every shard's when one holds an expired edge (otelcol evicts its single
//!   oldest edge when that one has expired). A full store logs one warning per 10 s burst,
//!   with counts.
//! - `store.max_items` must be positive (otelcol drops every span with 0).
//! - `exponential_histogram_max_size` above 0 is refused: latency histograms have explicit
//!   buckets only. Bucket bounds must be strictly ascending.
//! - Histograms carry an exemplar (the latest request's trace and span id); otelcol has none.
//! - Weighted counts (sampling adjusted counts, `span_multiplier_key`): otelcol counts 1 per
//!   edge.
//! - Negative span durations count as 0 (Go's unsigned subtraction wraps to a huge value).
//! - `virtual_node` is part of a series' identity (otelcol keys series without it and keeps
//!   the last value seen).
//! - Consumer spans are paired through their parent span id only; otelcol's newest versions
//!   also pair a consumer with each producer its span links name.
//! - The legacy feature gates (`legacyLatencyMetricNames`, `legacyLatencyUnitMs`) do not
//!   exist; the virtual node gate is always on (otelcol's default).
//! - `metrics_timestamp_offset` shifts the points pushed as OTLP; a Prometheus scrape has no
//!   timestamps to shift.
//! - `metrics_exporter` (a no-op in otelcol) and `database_name_attribute` (deprecated; used
//!   when `database_name_attributes` is empty) are accepted with a warning.
//! - Exporters that read sources (Prometheus, remote write) read the state in place; others
//!   get OTLP pushed every `metrics_flush_interval` (0: after every batch) and once more on
//!   shutdown (otelcol does not push on shutdown).
//! - Own telemetry carries the label `connector`; `redline_servicegraph_store_edges` (edges
//!   waiting) is Redline's addition.

mod collect;
pub mod config;
mod edge;
mod factory;
mod graph;
mod push;
mod series;
mod store;
mod visitor;

pub use collect::{REQUEST_CLIENT, REQUEST_FAILED_TOTAL, REQUEST_SERVER, REQUEST_TOTAL};
pub use config::Config;
pub use factory::{ServiceGraphFactory, DROPPED_SPANS, EXPIRED_EDGES, STORE_EDGES, TOTAL_EDGES};
pub use graph::ServiceGraph;
pub use redline_otlp_wire::WireError;

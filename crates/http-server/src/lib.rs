//! The connection plumbing of Redline's servers (the `otlp` receiver's gRPC and HTTP, the
//! `prometheus` exporter's `/metrics`).
//!
//! - [`ServerHandle`]: the accept loop, owned rather than left to `axum::serve`, so that
//!   shutdown stops accepting, asks every connection to finish (HTTP/2 GOAWAY, HTTP/1 close
//!   after the current response) and aborts what is left at its deadline.
//! - [`Conn`]: one accepted connection, its TLS handshake run in its own task.
//! - [`lifetime`]: when a server ends a connection by itself, with otelcol's settings
//!   (`read_header_timeout`, `read_timeout`, `write_timeout`, `keepalive.idle_timeout`,
//!   gRPC's `max_connection_*`).
//! - [`body`]: reading a request body under a size cap and the body budget.
//! - [`HttpProtocol`] and [`HttpServerTimeouts`]: an axum router served over HTTP/1.1 or h2c
//!   with confighttp's keys.

pub mod body;
mod conn;
pub mod gzip;
mod http;
pub mod lifetime;
pub mod receive;
mod server;
mod timeouts;

pub use conn::{Conn, Protocol};
pub use http::{response_headers, HttpProtocol};
pub use server::ServerHandle;
pub use timeouts::{
    HttpKeepalive, HttpServerTimeouts, DEFAULT_IDLE_TIMEOUT, DEFAULT_READ_HEADER_TIMEOUT,
};

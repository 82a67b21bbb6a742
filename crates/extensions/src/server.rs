//! The HTTP server an extension runs on its `endpoint`: bound while the extension builds, so a
//! taken port fails the start and port 0 works in tests, and stopped within a deadline. It is
//! the extension's running handle. Its connections are held to confighttp's deadlines
//! (`read_header_timeout`, `keepalive.idle_timeout`), as otelcol's extension servers are.

/// Declares an extension's config: otelcol's `confighttp.ServerConfig` keys beside the
/// extension's own. `endpoint` (defaulted by the module's `default_endpoint()`) is the one these
/// extensions listen with, and the connection timeouts are kept; `transport` is taken at its
/// default; the others are refused by name. serde cannot flatten a struct into one that
/// refuses unknown keys, so one list serves every extension that listens.
macro_rules! with_http_server_keys {
    ($(#[$attr:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            #[serde(default = "default_endpoint")]
            pub endpoint: String,
            /// Only `tcp`.
            #[serde(default)]
            pub transport: redline_pipeline::endpoint::TcpTransport,
            /// Deprecated in otelcol for `keepalive.enabled`; still read, with a warning.
            pub keep_alives_enabled: Option<bool>,
            pub dialer: Option<Unsupported>,
            pub tls: Option<Unsupported>,
            pub cors: Option<Unsupported>,
            pub auth: Option<Unsupported>,
            pub max_request_body_size: Option<Unsupported>,
            pub include_metadata: Option<Unsupported>,
            pub response_headers: Option<Unsupported>,
            pub compression_algorithms: Option<Unsupported>,
            #[serde(default, deserialize_with = "redline_pipeline::duration::deserialize_opt")]
            pub read_timeout: Option<std::time::Duration>,
            #[serde(default, deserialize_with = "redline_pipeline::duration::deserialize_opt")]
            pub read_header_timeout: Option<std::time::Duration>,
            #[serde(default, deserialize_with = "redline_pipeline::duration::deserialize_opt")]
            pub write_timeout: Option<std::time::Duration>,
            /// Deprecated in otelcol for `keepalive.idle_timeout`; still read, with a warning.
            #[serde(default, deserialize_with = "redline_pipeline::duration::deserialize_opt")]
            pub idle_timeout: Option<std::time::Duration>,
            pub keepalive: Option<redline_http_server::HttpKeepalive>,
            pub middlewares: Option<Unsupported>,
            $($own)*
        }

        impl $name {
            /// The keys bounding a connection's life.
            pub fn timeouts(&self) -> redline_http_server::HttpServerTimeouts {
                redline_http_server::HttpServerTimeouts {
                    read_header_timeout: self.read_header_timeout,
                    read_timeout: self.read_timeout,
                    write_timeout: self.write_timeout,
                    idle_timeout: self.idle_timeout,
                    keep_alives_enabled: self.keep_alives_enabled,
                    keepalive: self.keepalive,
                }
            }
        }
    };
}

use std::net::SocketAddr;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_http_server::{Conn, HttpProtocol, HttpServerTimeouts, ServerHandle};
use redline_pipeline::{
    BuildError, ComponentConfig, ComponentId, ConfigError, RunningComponent, ShutdownError,
};

pub(crate) struct Server {
    /// What `local_addrs` calls the address (`health`, `zpages`).
    name: &'static str,
    server: ServerHandle,
}

impl Server {
    /// Listens on `endpoint` (Go's net.Listen rules) and serves `app` until stopped, its
    /// connections held to `timeouts`.
    pub(crate) async fn start(
        id: &ComponentId,
        name: &'static str,
        endpoint: &str,
        app: axum::Router,
        timeouts: &HttpServerTimeouts,
    ) -> Result<Server, BuildError> {
        let listener = redline_pipeline::endpoint::listen(endpoint)
            .await
            .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
        let conn = Conn::new(HttpProtocol::new(app, timeouts), None);
        let server = ServerHandle::spawn(name, listener, conn);
        Ok(Server { name, server })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

impl RunningComponent for Server {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![(self.name, self.server.addr)]
    }

    /// Stops accepting, lets requests in progress finish until `deadline`, then drops them.
    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async move {
            self.server.shutdown(deadline).await;
            Ok(())
        })
    }
}

/// The config's connection timeouts checked as otelcol checks them (no deprecated key beside
/// the `keepalive` section).
pub(crate) fn check_timeouts(
    timeouts: &HttpServerTimeouts,
    config: &ComponentConfig,
) -> Result<(), ConfigError> {
    timeouts
        .check()
        .map_err(|(key, reason)| config.invalid(key, reason))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redline_pipeline::component::FactoryInfo;
    use redline_pipeline::ExtensionFactory;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::test_config::extension_section;
    use crate::HealthCheckFactory;

    #[tokio::test]
    async fn a_silent_client_is_closed_at_the_head_deadline() {
        let section = extension_section(
            "health_check",
            "    endpoint: 127.0.0.1:0\n    read_header_timeout: 200ms",
        );
        let ctx =
            redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
        let (_, running) = HealthCheckFactory
            .build(&section, &ctx)
            .await
            .unwrap_or_else(|e| panic!("builds: {e}"));
        let addr = running.local_addrs()[0].1;
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let started = std::time::Instant::now();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        assert!(started.elapsed() >= Duration::from_millis(190));
        // A client that speaks is served as before.
        let mut client = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.expect("answer");
        assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
        running
            .shutdown(std::time::Instant::now() + Duration::from_secs(5))
            .await
            .expect("stops");
    }

    #[test]
    fn keepalive_keys_are_checked_as_otelcol_does() {
        let deprecated =
            extension_section("zpages", "    endpoint: 127.0.0.1:0\n    idle_timeout: 2m");
        assert_eq!(
            crate::ZPagesFactory.warnings(&deprecated),
            ["idle_timeout is deprecated; use keepalive.idle_timeout instead"]
        );
        let mixed = extension_section(
            "health_check",
            "    endpoint: 127.0.0.1:0\n    keep_alives_enabled: false\n    keepalive:\n      idle_timeout: 5s",
        );
        let err = HealthCheckFactory
            .validate(&mixed)
            .expect_err("both representations")
            .to_string();
        assert!(
            err.contains("keep_alives_enabled") && err.contains("`keepalive` section"),
            "{err}"
        );
    }
}

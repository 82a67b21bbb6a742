//! The HTTP server an extension runs on its `endpoint`: bound while the extension builds, so a
//! taken port fails the start and port 0 works in tests, and stopped within a deadline. It is
//! the extension's running handle. Its connections are held to confighttp's deadlines
//! (`read_header_timeout`, `keepalive.idle_timeout`), as otelcol's extension servers are.

/// Declares an extension's config: otelcol's `confighttp.ServerConfig` keys beside the
/// extension's own. These extensions listen with `endpoint` (defaulted by the module's
/// `default_endpoint()`), `tls` and the connection timeouts; `transport` is taken at its
/// default and `dialer` has no effect on a listener (as in otelcol); the others are refused by
/// name. serde cannot flatten a struct into one that refuses unknown keys, so one list serves
/// every extension that listens.
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
            #[serde(default)]
            pub dialer: Option<redline_pipeline::endpoint::ListenerDialer>,
            /// Serve over TLS (otelcol's configtls server keys); `client_ca_file` makes
            /// clients present a certificate.
            #[serde(default, deserialize_with = "redline_pipeline::config::present")]
            pub tls: Option<redline_pipeline::tls::ServerTlsConfig>,
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
            /// The keys deciding how the extension listens.
            pub(crate) fn listen(&self) -> $crate::server::Listen<'_> {
                $crate::server::Listen {
                    endpoint: &self.endpoint,
                    tls: self.tls.as_ref(),
                    timeouts: redline_http_server::http_server_timeouts!(self),
                }
            }
        }
    };
}

use std::net::SocketAddr;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_http_server::{Conn, HttpProtocol, HttpServerTimeouts, ServerHandle};
use redline_pipeline::tls::{ServerTlsConfig, ALPN_HTTP};
use redline_pipeline::{
    BuildError, ComponentConfig, ComponentId, ConfigError, RunningComponent, ShutdownError,
};

/// An extension server's `endpoint`, `tls` and connection timeouts.
pub(crate) struct Listen<'a> {
    pub endpoint: &'a str,
    pub tls: Option<&'a ServerTlsConfig>,
    pub timeouts: HttpServerTimeouts,
}

impl Listen<'_> {
    /// otelcol's checks of these keys, each problem named by its key.
    pub(crate) fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::endpoint::split_listen_endpoint(self.endpoint)
            .map_err(|e| config.invalid("endpoint", e))?;
        if let Some(tls) = self.tls {
            tls.check()
                .map_err(|e| config.invalid(&format!("tls.{}", e.key), e.reason))?;
        }
        // No deprecated key beside the `keepalive` section.
        self.timeouts
            .check()
            .map_err(|(key, reason)| config.invalid(key, reason))
    }

    /// Deprecated keys and keys with no effect, for `validate` and the start to print.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut warnings = self.timeouts.deprecation_warnings("");
        if let Some(tls) = self.tls {
            warnings.extend(tls.warnings().into_iter().map(str::to_owned));
        }
        warnings
    }
}

pub(crate) struct Server {
    /// What `local_addrs` calls the address (`health`, `zpages`).
    name: &'static str,
    server: ServerHandle,
}

impl Server {
    /// Listens as `listen` says (Go's net.Listen rules for the endpoint, TLS when set) and
    /// serves `app` until stopped.
    pub(crate) async fn start(
        id: &ComponentId,
        name: &'static str,
        listen: &Listen<'_>,
        app: axum::Router,
    ) -> Result<Server, BuildError> {
        // Certificates are read before the port is taken, so a bad file fails the start
        // without a listener left behind.
        let tls = listen
            .tls
            .map(|tls| tls.load(ALPN_HTTP))
            .transpose()
            .map_err(|e| BuildError::new(id, format!("tls.{}: {}", e.key, e.reason)))?;
        let listener = redline_pipeline::endpoint::listen(listen.endpoint)
            .await
            .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
        let conn = Conn::new(HttpProtocol::new(app, &listen.timeouts), tls);
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
    fn otelcols_legacy_and_listener_keys_are_taken() {
        let section = extension_section(
            "health_check",
            "    endpoint: 127.0.0.1:0\n    dialer:\n      timeout: 5s\n    \
             check_collector_pipeline:\n      enabled: true\n      interval: 5m\n      \
             exporter_failure_threshold: -1",
        );
        HealthCheckFactory.validate(&section).expect("valid");
        let notices = HealthCheckFactory.warnings(&section);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].starts_with("check_collector_pipeline has no effect, as in otelcol"),
            "{notices:?}"
        );
        let off = extension_section(
            "health_check",
            "    endpoint: 127.0.0.1:0\n    check_collector_pipeline:\n      enabled: false",
        );
        assert!(HealthCheckFactory.warnings(&off).is_empty());
        let zpages = extension_section(
            "zpages",
            "    endpoint: 127.0.0.1:0\n    dialer:\n      timeout: 1s",
        );
        crate::ZPagesFactory.validate(&zpages).expect("valid");
    }

    #[tokio::test]
    async fn tls_keys_are_checked_and_a_bad_certificate_fails_the_start() {
        let half = extension_section(
            "zpages",
            "    endpoint: 127.0.0.1:0\n    tls:\n      cert_file: /nonexistent/cert.pem",
        );
        let err = crate::ZPagesFactory
            .validate(&half)
            .expect_err("a certificate without its key")
            .to_string();
        assert!(err.contains("zpages.tls.key_file"), "{err}");

        let empty = extension_section("health_check", "    endpoint: 127.0.0.1:0\n    tls:");
        let err = HealthCheckFactory
            .validate(&empty)
            .expect_err("`tls:` turns TLS on, and it needs a certificate")
            .to_string();
        assert!(err.contains("health_check.tls.cert_file"), "{err}");

        let missing = extension_section(
            "health_check",
            "    endpoint: 127.0.0.1:0\n    tls:\n      cert_file: /nonexistent/cert.pem\n      \
             key_file: /nonexistent/key.pem",
        );
        HealthCheckFactory
            .validate(&missing)
            .expect("the files are read at start");
        let ctx =
            redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
        let err = match HealthCheckFactory.build(&missing, &ctx).await {
            Ok(_) => panic!("started without its certificate"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("tls.cert_file") && err.contains("/nonexistent/cert.pem"),
            "{err}"
        );
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

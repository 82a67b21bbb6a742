//! The HTTP server an extension runs on its `endpoint`: bound while the extension builds, so a
//! taken port fails the start and port 0 works in tests, and stopped within a deadline. It is
//! the extension's running handle.

/// Declares an extension's config: otelcol's `confighttp.ServerConfig` keys beside the
/// extension's own. `endpoint` (defaulted by the module's `default_endpoint()`) is the one these
/// extensions listen with; `transport` and `keep_alives_enabled` are taken at their defaults,
/// which are what Redline does; the others are refused by name. serde cannot flatten a struct
/// into one that refuses unknown keys, so one list serves every extension that listens.
macro_rules! with_http_server_keys {
    ($(#[$attr:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            #[serde(default = "default_endpoint")]
            pub endpoint: String,
            /// Only `tcp`.
            #[serde(default)]
            pub transport: redline_pipeline::endpoint::TcpTransport,
            /// Only `true`, otelcol's default.
            pub keep_alives_enabled: Option<redline_pipeline::only_bool::OnlyBool<true>>,
            pub dialer: Option<Unsupported>,
            pub tls: Option<Unsupported>,
            pub cors: Option<Unsupported>,
            pub auth: Option<Unsupported>,
            pub max_request_body_size: Option<Unsupported>,
            pub include_metadata: Option<Unsupported>,
            pub response_headers: Option<Unsupported>,
            pub compression_algorithms: Option<Unsupported>,
            pub read_timeout: Option<Unsupported>,
            pub read_header_timeout: Option<Unsupported>,
            pub write_timeout: Option<Unsupported>,
            pub idle_timeout: Option<Unsupported>,
            pub keepalive: Option<Unsupported>,
            pub middlewares: Option<Unsupported>,
            $($own)*
        }
    };
}

use std::net::SocketAddr;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_pipeline::{BuildError, ComponentId, RunningComponent, ShutdownError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) struct Server {
    /// What `local_addrs` calls the address (`health`, `zpages`).
    name: &'static str,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Listens on `endpoint` (Go's net.Listen rules) and serves `app` until stopped.
    pub(crate) async fn start(
        id: &ComponentId,
        name: &'static str,
        endpoint: &str,
        app: axum::Router,
    ) -> Result<Server, BuildError> {
        let listener = redline_pipeline::endpoint::listen(endpoint)
            .await
            .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
        let addr = listener.local_addr().map_err(|e| BuildError::new(id, e))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let id = id.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(extension = %id, error = %e, "extension server failed");
            }
        });
        Ok(Server {
            name,
            addr,
            stop,
            task,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl RunningComponent for Server {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![(self.name, self.addr)]
    }

    /// Stops accepting, lets requests in progress finish until `deadline`, then drops them.
    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Server { stop, mut task, .. } = *self;
        let _ = stop.send(());
        Box::pin(async move {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(remaining, &mut task).await.is_err() {
                task.abort();
            }
            Ok(())
        })
    }
}

//! The HTTP server an extension runs on its `endpoint`: bound while the extension builds, so a
//! taken port fails the start and port 0 works in tests, and stopped within a deadline. It is
//! the extension's running handle.

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

//! The HTTP side: `GET /metrics` renders a snapshot of every source at scrape time.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::future::BoxFuture;
use redline_pipeline::{MetricsSource, RunningComponent, ShutdownError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::negotiate::{accepts_gzip, negotiate};
use crate::render::{render, RenderOptions};

/// What every scrape needs, shared by the handler.
pub(crate) struct Scraper {
    pub sources: Arc<[Arc<dyn MetricsSource>]>,
    pub options: RenderOptions,
    pub enable_open_metrics: bool,
    /// Size of the last body: the next scrape reserves that much up front instead of growing
    /// the buffer ~20 times while rendering tens of megabytes.
    pub last_len: AtomicUsize,
}

impl Scraper {
    /// Renders (and compresses if asked); runs on a blocking thread.
    fn scrape(&self, format: crate::Format, gzip: bool) -> std::io::Result<Vec<u8>> {
        let hint = self.last_len.load(Ordering::Relaxed);
        let mut body = Vec::with_capacity(hint + hint / 8);
        render(&self.sources, format, &self.options, &mut body);
        self.last_len.store(body.len(), Ordering::Relaxed);
        if !gzip {
            return Ok(body);
        }
        // Fast level: a scrape is latency-bound and expositions compress ~10x even so.
        let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
        enc.write_all(&body)?;
        enc.finish()
    }
}

async fn metrics(State(scraper): State<Arc<Scraper>>, headers: HeaderMap) -> Response {
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let negotiated = negotiate(header_str(header::ACCEPT), scraper.enable_open_metrics);
    let gzip = accepts_gzip(header_str(header::ACCEPT_ENCODING));
    let format = negotiated.format;
    // Rendering 100k series takes tens of milliseconds of CPU: keep it off the async workers
    // so receivers keep accepting spans meanwhile.
    let job = tokio::task::spawn_blocking(move || scraper.scrape(format, gzip)).await;
    let body = match job {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "compressing the scrape failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "compression failed\n").into_response();
        }
        Err(e) => {
            // A source panicked while being collected (the panic is contained in the task).
            tracing::error!(error = %e, "collecting metrics failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "collecting metrics failed\n",
            )
                .into_response();
        }
    };
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(negotiated.content_type),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

pub(crate) fn router(scraper: Arc<Scraper>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(scraper)
}

/// The running exporter: its address and the server task.
pub(crate) struct Running {
    pub component: String,
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Binds `addr` and serves until shut down.
    pub async fn start(
        component: String,
        addr: &str,
        scraper: Arc<Scraper>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(scraper);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender stops the server too.
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(component = %component, address = %local, "serving Prometheus metrics on /metrics");
        Ok(Self {
            component,
            addr: local,
            stop: Some(stop),
            task,
        })
    }
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("metrics", self.addr)]
    }

    fn shutdown(
        mut self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async move {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            let abort = self.task.abort_handle();
            match tokio::time::timeout_at(deadline, &mut self.task).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(ShutdownError {
                    component: self.component.clone(),
                    reason: format!("metrics server failed: {e}"),
                }),
                Ok(Err(e)) => Err(ShutdownError {
                    component: self.component.clone(),
                    reason: format!("metrics server task failed: {e}"),
                }),
                Err(_) => {
                    // Scrapes still in flight at the deadline are cut off.
                    abort.abort();
                    Err(ShutdownError {
                        component: self.component.clone(),
                        reason: "scrapes still in flight at the shutdown deadline were aborted"
                            .into(),
                    })
                }
            }
        })
    }
}

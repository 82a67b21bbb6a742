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
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::tls::{TlsAcceptor, TlsStream};
use redline_pipeline::{MetricsSource, RunningComponent, ShutdownError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::negotiate::{accepts_gzip, negotiate};
use crate::render::{render, render_streaming, RenderOptions, StreamError};

/// What every scrape needs, shared by the handler.
pub(crate) struct Scraper {
    pub sources: Arc<[Arc<dyn MetricsSource>]>,
    pub options: RenderOptions,
    pub enable_open_metrics: bool,
    /// Size of the last body: the next scrape reserves that much up front instead of growing
    /// the buffer ~20 times while rendering tens of megabytes.
    pub last_len: AtomicUsize,
    /// `auth.authenticator`: every scrape must pass it.
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
}

impl Scraper {
    /// Renders (and compresses if asked); runs on a blocking thread.
    fn scrape(&self, format: crate::Format, gzip: bool) -> std::io::Result<Vec<u8>> {
        if gzip {
            // Compress as the exposition is produced, ~1 MB at a time: the uncompressed text
            // (hundreds of MB at 100k series) never exists in one piece.
            let hint = self.last_len.load(Ordering::Relaxed) / 8;
            let mut enc = GzEncoder::new(Vec::with_capacity(hint), Compression::fast());
            let mut total = 0usize;
            let streamed = render_streaming(&self.sources, format, &self.options, &mut |chunk| {
                total += chunk.len();
                enc.write_all(chunk)
            });
            match streamed {
                Ok(()) => {
                    self.last_len.store(total, Ordering::Relaxed);
                    return enc.finish();
                }
                Err(StreamError::Io(e)) => return Err(e),
                // Rare (two sources exporting one family): render whole, then compress.
                Err(StreamError::NeedsMerge) => {}
            }
        }
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
    if let Some(auth) = scraper.auth.clone() {
        // Off the async workers: a bcrypt check (basicauth) takes tens of milliseconds.
        let checked = tokio::task::spawn_blocking(move || {
            let result = auth.authenticate(&headers);
            (result, headers)
        })
        .await;
        let (result, h) = match checked {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "authenticating a scrape failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "authentication failed\n")
                    .into_response();
            }
        };
        if let Err(e) = result {
            tracing::debug!(reason = %e, "scrape refused: not authenticated");
            return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response();
        }
        return serve_metrics(scraper, h).await;
    }
    serve_metrics(scraper, headers).await
}

async fn serve_metrics(scraper: Arc<Scraper>, headers: HeaderMap) -> Response {
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
    /// Binds `addr` and serves until shut down, over TLS when `tls` is given.
    pub async fn start(
        component: String,
        addr: &str,
        scraper: Arc<Scraper>,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(scraper);
        // A dropped sender stops the server too.
        let stopped = async move {
            let _ = stopped.await;
        };
        let secure = tls.is_some();
        let task = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
            }),
            Some(acceptor) => {
                let listener = TlsListener::spawn(listener, local, acceptor);
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped)
                        .await
                })
            }
        };
        tracing::info!(component = %component, address = %local, tls = secure, "serving Prometheus metrics on /metrics");
        Ok(Self {
            component,
            addr: local,
            stop: Some(stop),
            task,
        })
    }
}

/// Most TLS handshakes in progress at once; further connections wait in the kernel's
/// backlog until one finishes (each is bounded by the handshake timeout).
const MAX_PENDING_HANDSHAKES: usize = 64;

/// A listener whose connections come out already through the TLS handshake. Handshakes run
/// in their own tasks, so a slow client does not hold up the others.
struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    task: JoinHandle<()>,
}

impl TlsListener {
    fn spawn(listener: TcpListener, addr: SocketAddr, acceptor: TlsAcceptor) -> Self {
        let (tx, ready) = mpsc::channel(MAX_PENDING_HANDSHAKES);
        let task = tokio::spawn(async move {
            // Dropped with this task, which aborts the handshakes still running.
            let mut handshakes = JoinSet::new();
            loop {
                while handshakes.len() >= MAX_PENDING_HANDSHAKES {
                    let _ = handshakes.join_next().await;
                }
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, peer)) => {
                            let acceptor = acceptor.clone();
                            let tx = tx.clone();
                            handshakes.spawn(async move {
                                match acceptor.accept(tcp).await {
                                    Ok(tls) => {
                                        let _ = tx.send((tls, peer)).await;
                                    }
                                    Err(e) => {
                                        tracing::debug!(%peer, error = %e, "metrics TLS handshake failed");
                                    }
                                }
                            });
                        }
                        Err(e) => {
                            // Typically EMFILE: back off rather than spin.
                            tracing::warn!(error = %e, "metrics endpoint: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                    Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
                }
            }
        });
        Self { addr, ready, task }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // Only when the accept task is gone, which happens only on drop: nothing more
            // will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
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

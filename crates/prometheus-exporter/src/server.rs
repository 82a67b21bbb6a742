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
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::future::BoxFuture;
use futures::StreamExt as _;
use redline_http_server::{Conn, HttpProtocol, HttpServerTimeouts, ServerHandle};
use redline_pipeline::extension::{AuthError, ServerAuthenticator};
use redline_pipeline::tls::TlsAcceptor;
use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricsSink, MetricsSource,
    NumberPoint, RunningComponent, ShutdownError, SummaryPoint,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::negotiate::{accepts_gzip, negotiate, Encoding};
use crate::render::{
    render, render_streaming, ChunkConsumer, RenderOptions, StreamError, STREAM_CHUNK,
};
use crate::render_proto::render_protobuf;

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
    /// Renders the body into `body` (compressing it when asked); runs on a blocking thread.
    /// The channel is small, so the socket's pace bounds the memory a scrape holds.
    fn scrape(&self, encoding: Encoding, gzip: bool, body: mpsc::Sender<Chunk>) {
        let mut sink = BodySink::new(body, gzip);
        let rendered = self.render_body(encoding, &mut |chunk| sink.write(chunk));
        match rendered {
            Ok(()) => {
                self.last_len.store(sink.plain_len, Ordering::Relaxed);
                sink.finish();
            }
            Err(StreamError::Io(e)) => sink.abort(e),
            Err(StreamError::NeedsMerge) => {
                // Only if a family was added between the check and the render: the body
                // already went out in part, so it is cut off rather than left inconsistent.
                tracing::warn!("a metric family appeared twice during a streamed scrape; the scrape is aborted");
                sink.abort(std::io::Error::other(
                    "metric family repeated while streaming",
                ));
            }
        }
    }

    fn render_body(
        &self,
        encoding: Encoding,
        consume: &mut ChunkConsumer<'_>,
    ) -> Result<(), StreamError> {
        // A family that appears twice (two sources, or two OTLP names that translate alike)
        // must be merged, which streaming cannot do once its first part went out: a cheap
        // pass over the family names decides up front.
        let merge = has_repeated_families(&self.sources, &self.options);
        match encoding {
            Encoding::Protobuf => render_protobuf(&self.sources, &self.options, merge, consume),
            Encoding::Text(format) if merge => {
                let hint = self.last_len.load(Ordering::Relaxed);
                let mut body = Vec::with_capacity(hint + hint / 8);
                render(&self.sources, format, &self.options, &mut body);
                for piece in body.chunks(STREAM_CHUNK) {
                    consume(piece).map_err(StreamError::Io)?;
                }
                Ok(())
            }
            Encoding::Text(format) => {
                render_streaming(&self.sources, format, &self.options, consume)
            }
        }
    }
}

/// A piece of a response body, or the error that cuts it off.
type Chunk = Result<Bytes, std::io::Error>;

/// Pieces of body between the renderer and the socket: with ~1 MiB pieces, a scrape holds a
/// few MiB whatever its size.
const BODY_CHANNEL: usize = 2;
/// Compressed bytes gathered before they are sent.
const GZIP_PIECE: usize = 256 << 10;
/// How long the renderer waits for a scraper that stopped reading before it gives up (a
/// vanished scraper is noticed at once: its body is dropped).
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The renderer's end of the body channel, compressing on the way when asked.
struct BodySink {
    tx: mpsc::Sender<Chunk>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    /// Uncompressed bytes produced, the next in-memory render's size hint.
    plain_len: usize,
}

impl BodySink {
    fn new(tx: mpsc::Sender<Chunk>, gzip: bool) -> Self {
        // Fast level: a scrape is latency-bound and expositions compress ~10x even so.
        let gzip =
            gzip.then(|| GzEncoder::new(Vec::with_capacity(GZIP_PIECE * 2), Compression::fast()));
        Self {
            tx,
            gzip,
            plain_len: 0,
        }
    }

    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.plain_len += chunk.len();
        let Some(enc) = self.gzip.as_mut() else {
            return self.send(Bytes::copy_from_slice(chunk));
        };
        enc.write_all(chunk)?;
        if enc.get_ref().len() < GZIP_PIECE {
            return Ok(());
        }
        let piece = std::mem::take(enc.get_mut());
        self.send(Bytes::from(piece))
    }

    fn send(&self, piece: Bytes) -> std::io::Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        // A blocking-pool thread may wait on the runtime's futures.
        let sent = tokio::runtime::Handle::current()
            .block_on(tokio::time::timeout(STALL_TIMEOUT, self.tx.send(Ok(piece))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the scraper went away",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the scraper stopped reading",
            )),
        }
    }

    fn finish(mut self) {
        let Some(enc) = self.gzip.take() else {
            return;
        };
        match enc.finish() {
            Ok(rest) => {
                if let Err(e) = self.send(Bytes::from(rest)) {
                    tracing::debug!(error = %e, "scrape not delivered");
                }
            }
            Err(e) => self.abort(e),
        }
    }

    fn abort(self, e: std::io::Error) {
        tracing::debug!(error = %e, "scrape cut off");
        // The receiver may be gone already, which is the usual reason to get here.
        let _ = self.tx.try_send(Err(e));
    }
}

/// Whether rendering will meet a family name twice (after translation), with points both
/// times: the cheap pass that decides between streaming and merging in memory.
pub(crate) fn has_repeated_families(
    sources: &[Arc<dyn MetricsSource>],
    opts: &RenderOptions,
) -> bool {
    let mut pass = FamilyNames {
        opts,
        seen: std::collections::HashSet::new(),
        current: None,
        counted: false,
        repeated: false,
    };
    for source in sources {
        source.collect(&mut pass);
        if pass.repeated {
            return true;
        }
    }
    false
}

struct FamilyNames<'a> {
    opts: &'a RenderOptions,
    seen: std::collections::HashSet<String>,
    current: Option<String>,
    /// The current family has had a point (and is in `seen`).
    counted: bool,
    repeated: bool,
}

impl FamilyNames<'_> {
    #[inline]
    fn point(&mut self) {
        if self.counted {
            return;
        }
        self.counted = true;
        if let Some(name) = self.current.take() {
            if !self.seen.insert(name) {
                self.repeated = true;
            }
        }
    }
}

impl MetricsSink for FamilyNames<'_> {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.current = crate::names::family_names(
            desc.name,
            desc.unit,
            desc.kind,
            self.opts.namespace(),
            self.opts.add_metric_suffixes(),
        )
        .map(|n| n.sample);
        self.counted = false;
    }
    fn counter(&mut self, _: &[(&str, &str)], _: u64, _: u64, _: Option<&Exemplar>) {
        self.point();
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {
        self.point();
    }
    fn histogram(&mut self, _: &[(&str, &str)], _: &HistogramPoint<'_>) {
        self.point();
    }
    fn number(&mut self, _: &[(&str, &str)], _: &NumberPoint<'_>) {
        self.point();
    }
    fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {
        self.point();
    }
    fn exponential_histogram(&mut self, _: &[(&str, &str)], _: &ExponentialHistogramPoint<'_>) {
        self.point();
    }
}

async fn metrics(State(scraper): State<Arc<Scraper>>, headers: HeaderMap) -> Response {
    if let Some(auth) = &scraper.auth {
        // An expensive check (bcrypt) runs off the async workers; see the authenticator.
        match auth.authenticate(&headers).outcome().await {
            Ok(()) => {}
            Err(AuthError::Denied(reason)) => {
                tracing::debug!(%reason, "scrape refused: not authenticated");
                return (StatusCode::UNAUTHORIZED, format!("{reason}\n")).into_response();
            }
            Err(busy @ AuthError::Busy) => {
                tracing::debug!("scrape refused: authentication queue full");
                return (StatusCode::SERVICE_UNAVAILABLE, format!("{busy}\n")).into_response();
            }
        }
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
    let encoding = negotiated.encoding;
    let (tx, mut rx) = mpsc::channel::<Chunk>(BODY_CHANNEL);
    // Rendering 100k series takes tens of milliseconds of CPU: keep it off the async workers
    // so receivers keep accepting spans meanwhile.
    let job = tokio::task::spawn_blocking(move || scraper.scrape(encoding, gzip, tx));
    // The status waits for the first piece, so a failure before any output is still a 500.
    let first = match rx.recv().await {
        Some(Ok(piece)) => piece,
        Some(Err(e)) => {
            tracing::error!(error = %e, "rendering the scrape failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n").into_response();
        }
        None => match job.await {
            // Nothing to send at all.
            Ok(()) => return respond(Body::empty(), &negotiated, gzip),
            Err(e) => {
                // A source panicked while being collected (the panic is contained in the task).
                tracing::error!(error = %e, "collecting metrics failed");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "collecting metrics failed\n",
                )
                    .into_response();
            }
        },
    };
    let rest = futures::stream::unfold((rx, Some(job)), |(mut rx, job)| async move {
        match rx.recv().await {
            Some(piece) => Some((piece, (rx, job))),
            None => {
                // The renderer is done; a panic midway must not look like a complete body.
                let job = job?;
                match job.await {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::error!(error = %e, "collecting metrics failed");
                        Some((
                            Err(std::io::Error::other("collecting metrics failed")),
                            (rx, None),
                        ))
                    }
                }
            }
        }
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    respond(Body::from_stream(body), &negotiated, gzip)
}

fn respond(body: Body, negotiated: &crate::Negotiated, gzip: bool) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&negotiated.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
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

/// The running exporter: its address and its server.
pub(crate) struct Running {
    pub component: String,
    pub addr: SocketAddr,
    server: ServerHandle,
}

impl Running {
    /// Binds `addr` and serves until shut down, over TLS when `tls` is given (each handshake
    /// in its connection's own task, under the acceptor's deadline). Connections are held to
    /// `timeouts`: confighttp's header and idle deadlines.
    pub async fn start(
        component: String,
        addr: &str,
        scraper: Arc<Scraper>,
        tls: Option<TlsAcceptor>,
        timeouts: &HttpServerTimeouts,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let secure = tls.is_some();
        let conn = Conn::new(HttpProtocol::new(router(scraper), timeouts), tls);
        let server = ServerHandle::spawn("metrics", listener, conn);
        let addr = server.addr;
        tracing::info!(component = %component, address = %addr, tls = secure, "serving Prometheus metrics on /metrics");
        Ok(Self {
            component,
            addr,
            server,
        })
    }
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("metrics", self.addr)]
    }

    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async move {
            if self.server.shutdown(deadline).await {
                Ok(())
            } else {
                Err(ShutdownError {
                    component: self.component,
                    reason: "scrapes still in flight at the shutdown deadline were aborted".into(),
                })
            }
        })
    }
}

//! An axum router served over HTTP/1.1 or HTTP/2 in clear text (h2c) or TLS, told apart by
//! what the client sends first.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

use crate::conn::Protocol;
use crate::lifetime::{self, Lifetime, Tracked, Watched};
use crate::timeouts::HttpServerTimeouts;

/// The header block an HTTP/2 request may carry, about what hyper's HTTP/1.1 reader buffers.
///
/// hyper's h2 default (16 KiB) refuses a larger header block (431), and one past its abuse
/// threshold by closing the whole connection (GOAWAY), failing every request on it.
const H2_MAX_HEADER_LIST_SIZE: u32 = 256 * 1024;

/// The HTTP side of a connection.
#[derive(Clone)]
pub struct HttpProtocol {
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    service: TowerToHyperService<Router>,
    lifetime: Lifetime,
}

impl HttpProtocol {
    pub fn new(router: Router, timeouts: &HttpServerTimeouts) -> Self {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // hyper's header timer would also run between requests (see `lifetime`): the head
        // and idle deadlines are kept there instead.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(timeouts.keep_alives());
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(H2_MAX_HEADER_LIST_SIZE);
        Self {
            builder,
            service: TowerToHyperService::new(router),
            lifetime: timeouts.lifetime(),
        }
    }
}

impl Protocol for HttpProtocol {
    const NAME: &'static str = "HTTP";
    type Error = Box<dyn std::error::Error + Send + Sync>;

    async fn serve<I>(self, io: I, stop: CancellationToken) -> Result<(), Self::Error>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // One connection type whether or not activity is watched: two would each take their
        // room in this future, which every accepted connection copies around.
        let activity = self.lifetime.activity(true);
        let io = Watched::new(io, activity.clone());
        let service = Tracked::new(self.service, activity.clone());
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        lifetime::drive(conn, &stop, self.lifetime, activity.as_deref()).await
    }
}

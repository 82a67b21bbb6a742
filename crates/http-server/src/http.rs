//! An axum router served over HTTP/1.1 or HTTP/2 in clear text (h2c) or TLS, told apart by
//! what the client sends first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use crate::conn::Protocol;
use crate::lifetime::{self, Activity, Lifetime, Tracked, Watched};
use crate::timeouts::HttpServerTimeouts;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
        let service = ReadDeadline {
            read: self.lifetime.read,
            activity: activity.clone(),
            inner: Tracked::new(self.service, activity.clone()),
        };
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        lifetime::drive(conn, &stop, self.lifetime, activity.as_deref()).await
    }
}

/// Holds each HTTP/1 request's body to `read_timeout` from its head's first byte, as Go's
/// server does with a read deadline: past it, the body's next read fails, so the handler
/// answers as it does to any failed read (the OTLP receiver with 400), and hyper closes the
/// connection, whose request was not read to its end.
#[derive(Clone)]
struct ReadDeadline<S> {
    inner: S,
    read: Option<Duration>,
    activity: Option<Arc<Activity>>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for ReadDeadline<S>
where
    S: hyper::service::Service<http::Request<ReadLimited<Incoming>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let deadline = match (self.read, &self.activity) {
            (Some(read), Some(activity)) if !activity.is_h2() => activity
                .head_started()
                .checked_add(read)
                .map(|at| (Box::pin(tokio::time::sleep_until(at)), read)),
            _ => None,
        };
        self.inner
            .call(req.map(|inner| ReadLimited { inner, deadline }))
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails its reads once its deadline has passed.
    struct ReadLimited<B> {
        #[pin]
        inner: B,
        // Boxed: only requests of servers with a `read_timeout` pay for a timer.
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    }
}

/// The error a body read gets past `read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request was not read within read_timeout ({0:?})")]
struct ReadTimedOut(Duration);

impl<B> http_body::Body for ReadLimited<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if let Some((sleep, read)) = this.deadline {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(ReadTimedOut(*read).into())));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// confighttp's `response_headers`, as headers; `Err` names the first entry that is not a
/// valid HTTP header.
pub fn response_headers(
    configured: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, String> {
    configured
        .iter()
        .map(|(name, value)| {
            match (
                http::HeaderName::try_from(name.as_str()),
                http::HeaderValue::try_from(value.as_str()),
            ) {
                (Ok(n), Ok(v)) => Ok((n, v)),
                _ => Err(name.clone()),
            }
        })
        .collect()
}

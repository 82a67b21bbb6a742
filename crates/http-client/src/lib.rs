//! The HTTP/1.1 client of every Redline component that pushes over HTTP (the `otlphttp` and
//! `prometheusremotewrite` exporters, the push of Redline's own telemetry): hyper's pooled
//! client over rustls on the ring provider, configured from an otelcol `tls` section, and one
//! request with a timeout and a bounded read of the answer. gRPC clients (the `otlp`
//! exporter, the gRPC push of Redline's telemetry) take their TLS connector from here too,
//! so one `tls` section means the same over both protocols.
//!
//! What a request carries and what its answer means stay with the component: this crate
//! knows HTTP, not OTLP or remote write. Like the rest of the shared plumbing it sits between
//! the components and `pipeline` (architecture §2).

mod connect;
mod keys;
mod proxy;

pub use connect::{GrpcConnector, ProxiedStream};
pub use keys::{ConnectionKeys, CookiesConfig, HttpKeepaliveConfig, IGNORED_KEYS_NOTE};
pub use proxy::{Proxy, ProxyError};

use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::rpc_status::MAX_RETRY_DELAY;
use redline_pipeline::tls::TlsError;

/// How much of an answer is read unless a client says otherwise: otelcol's limit. An export
/// response is tiny; an error page is cut off here, and only needed for the log.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Go's `http.DefaultTransport.IdleConnTimeout`, which otelcol's clients inherit.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How connections are reused (otelcol's `keepalive` section and its legacy keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionReuse {
    /// Connections are reused at all.
    pub keep_alive: bool,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept; `None`: no limit other than the senders' count.
    pub max_idle: Option<usize>,
}

impl Default for ConnectionReuse {
    fn default() -> Self {
        Self {
            keep_alive: true,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle: None,
        }
    }
}

/// How a client is built, besides its TLS section.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The endpoint is `https://`. Only then are the TLS section's files read: a plain HTTP
    /// endpoint must not fail on a missing system CA bundle it would never use.
    pub https: bool,
    /// Sent with every request unless the request's own headers name another.
    pub user_agent: HeaderValue,
    /// Bounds connecting, so a black-holed server fails an attempt instead of holding it
    /// until the request's timeout. `None`: only the request's timeout applies.
    pub connect_timeout: Option<Duration>,
    pub reuse: ConnectionReuse,
    /// The most of an answer's body read; the rest is dropped with the connection.
    pub max_response_bytes: usize,
    /// Default: none; components take [`Proxy::from_config`].
    pub proxy: Proxy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            https: false,
            user_agent: HeaderValue::from_static(concat!("redline/", env!("CARGO_PKG_VERSION"))),
            connect_timeout: None,
            reuse: ConnectionReuse::default(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            proxy: Proxy::default(),
        }
    }
}

/// Why a request got no (whole) answer. Every one of them may go away on a later attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no answer within the {0:?} timeout")]
    Timeout(Duration),
    /// Not connected, refused, reset, a failed handshake: the error with its causes, where
    /// hyper puts the useful part ("connection refused").
    #[error("{0}")]
    Request(String),
    /// The connection broke while the answer's body was read.
    #[error("reading the response: {0}")]
    Response(String),
}

/// An answer with its body read, up to the client's `max_response_bytes`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as text for a log line: lossy, since servers send what they like.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// A pooled HTTP/1.1 client, plain or TLS by the URL's scheme. `B` is the request body
/// type.
pub struct HttpClient<B = Full<Bytes>> {
    client: Client<HttpsConnector<connect::ProxiedTcp>, B>,
    user_agent: HeaderValue,
    max_response_bytes: usize,
    proxy: Proxy,
}

impl<B> HttpClient<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Builds the client; with `options.https` reads the TLS files now, so a bad one stops
    /// startup instead of failing every request. Errors name the key relative to the `tls`
    /// section, as the caller knows where that section is.
    pub fn new(tls: &ClientTlsConfig, options: ClientOptions) -> Result<Self, TlsError> {
        let config = if options.https {
            tls.rustls_config()?
        } else {
            connect::unused_tls_config()?
        };
        let connector = connect::tls_builder(config, tls)?
            .enable_http1()
            .wrap_connector(connect::ProxiedTcp::new(
                options.connect_timeout,
                options.proxy.clone(),
                false,
            ));

        let reuse = options.reuse;
        let mut client = Client::builder(TokioExecutor::new());
        // Without a timer the pool only notices expired connections when it next hands one
        // out; with it, idle connections are closed on time, as Go's transport does.
        client
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(reuse.idle_timeout);
        if !reuse.keep_alive {
            client.pool_max_idle_per_host(0);
        } else if let Some(n) = reuse.max_idle {
            client.pool_max_idle_per_host(n);
        }
        Ok(Self {
            client: client.build(connector),
            user_agent: options.user_agent,
            max_response_bytes: options.max_response_bytes,
            proxy: options.proxy,
        })
    }

    /// A POST of `body` to `url` with the client's user agent and then `headers`, which win
    /// over it (as in otelcol). The caller adds what the body needs (`Content-Type`, …).
    pub fn post(&self, url: &Uri, headers: &HeaderMap, body: B) -> Request<B> {
        // Built from parts, not `Request::builder`: nothing here can be invalid.
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.clone();
        let h = request.headers_mut();
        h.insert(USER_AGENT, self.user_agent.clone());
        for (name, value) in headers {
            h.insert(name, value.clone());
        }
        // A plain-HTTP request goes to a proxy as it is: its credentials travel with it (over
        // HTTPS they go with the CONNECT, and the tunnel carries only the request).
        if url.scheme() == Some(&http::uri::Scheme::HTTP) {
            if let Ok(Some(route)) = self.proxy.route(url, false) {
                if let Some(auth) = route.auth {
                    h.insert(http::header::PROXY_AUTHORIZATION, auth);
                }
            }
        }
        request
    }

    /// Sends `request` and reads the answer, all within `timeout` when one is given.
    pub async fn send(
        &self,
        request: Request<B>,
        timeout: Option<Duration>,
    ) -> Result<Answer, SendError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SendError::Request(error_chain(&e)))?;
            read(response, self.max_response_bytes).await
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, exchange)
                .await
                .unwrap_or(Err(SendError::Timeout(t))),
            None => exchange.await,
        }
    }
}

/// Reads the status, headers and up to `limit` bytes of the body. A longer body is cut off
/// (and its connection not reused) rather than read to the end: what a server sends back
/// must not cost more memory than the caller allowed.
async fn read(response: Response<Incoming>, limit: usize) -> Result<Answer, SendError> {
    let (parts, mut body) = response.into_parts();
    let mut buf = BytesMut::new();
    while buf.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| SendError::Response(error_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            let room = limit - buf.len();
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: buf.freeze(),
    })
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110), capped like a gRPC RetryInfo so an
/// absurd value cannot park a sender for hours. A date in the past is no wait; a value that
/// is neither is ignored.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_DELAY))
}

/// An error and its sources joined, since hyper's own message ("client error (Connect)")
/// says little without them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests;

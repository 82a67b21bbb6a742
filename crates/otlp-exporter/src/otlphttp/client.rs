//! The HTTP/1.1 client of the `otlphttp` exporter: hyper's pooled client over rustls (ring,
//! as everywhere in Redline), configured from the confighttp keys that map onto it, and one
//! POST with a bounded read of the answer.
//!
//! The connector is built the way the `prometheusremotewrite` exporter builds its own; a
//! shared helper in the pipeline core would serve both.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, USER_AGENT};
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::tls::TlsError;
use rustls::pki_types::ServerName;

use crate::codec::MessageBody;
use crate::config::ConnectionReuse;
use crate::exporter::ExporterError;

/// The most of a response body read: otelcol's limit. An export response is tiny; an error
/// page is cut off here, and only needed for the log.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What the client needs from the config.
pub(crate) struct ClientSettings<'a> {
    pub tls: &'a ClientTlsConfig,
    /// The URL is `https://`: TLS is then used, with `tls`'s roots and certificate.
    pub https: bool,
    pub reuse: ConnectionReuse,
    /// Connecting is bounded too, so a black-holed server fails an attempt instead of
    /// holding it.
    pub connect_timeout: Duration,
}

pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, MessageBody>,
}

/// A response with its body read (up to [`MAX_RESPONSE_BYTES`]).
pub(crate) struct Answer {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    pub fn new(s: &ClientSettings<'_>) -> Result<Self, ExporterError> {
        let tls_error = |e: TlsError| ExporterError::Config {
            key: format!("tls.{}", e.key),
            reason: e.reason,
        };
        // Building roots reads CA files: only for URLs that use them.
        let config = if s.https {
            s.tls.rustls_config().map_err(tls_error)?
        } else {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| ExporterError::Tls(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(s.connect_timeout));
        let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        if let Some(name) = s.tls.server_name_override.as_deref() {
            let name =
                ServerName::try_from(name.to_owned()).map_err(|e| ExporterError::Config {
                    key: "tls.server_name_override".into(),
                    reason: e.to_string(),
                })?;
            builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
        }
        let connector = builder.enable_http1().wrap_connector(http);

        let mut client = Client::builder(TokioExecutor::new());
        // Without a timer the pool only notices expired connections when it next hands one
        // out; with it, idle connections are closed on time, as Go's transport does.
        client
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(s.reuse.idle_timeout);
        if !s.reuse.keep_alive {
            client.pool_max_idle_per_host(0);
        } else if let Some(n) = s.reuse.max_idle {
            client.pool_max_idle_per_host(n);
        }
        Ok(Self {
            client: client.build(connector),
        })
    }

    /// POSTs `body` to `url` and reads the answer.
    pub async fn post(
        &self,
        url: &Uri,
        headers: &HeaderMap,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
        body: MessageBody,
    ) -> Result<Answer, String> {
        let mut request = Request::post(url.clone())
            .body(body)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let h = request.headers_mut();
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("redline/", env!("CARGO_PKG_VERSION"))),
        );
        // The user's headers win over the user agent (and `Host`), as in otelcol; the body's
        // own headers are set after them (the config refuses overriding those).
        for (name, value) in headers {
            h.insert(name, value.clone());
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(encoding) = content_encoding {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        read(response).await
    }
}

/// Reads the status, headers and up to [`MAX_RESPONSE_BYTES`] of the body. A longer body is
/// cut off (and its connection not reused) rather than read to the end.
async fn read(response: Response<Incoming>) -> Result<Answer, String> {
    let (parts, mut body) = response.into_parts();
    let mut buf = BytesMut::new();
    while buf.len() < MAX_RESPONSE_BYTES {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(|e| format!("reading the response: {}", error_chain(&e)))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_RESPONSE_BYTES - buf.len();
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: buf.freeze(),
    })
}

/// An error and its sources, which is where hyper puts the useful part ("connection
/// refused").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

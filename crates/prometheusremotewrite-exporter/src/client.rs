//! One HTTP POST of a remote-write request, and what its outcome means.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::tls::TlsError;
use rustls::pki_types::ServerName;

use crate::settings::{invalid, Invalid, Settings};

pub(crate) const REMOTE_WRITE_VERSION: &str = "0.1.0";
const USER_AGENT_VALUE: &str = concat!("Redline/", env!("CARGO_PKG_VERSION"));
/// How much of an error response is kept for the log.
const ERROR_BODY_LIMIT: usize = 1024;

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Sent,
    /// 5xx, 429, a timeout or a connection error: try again, not before `after` if given.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Any other 4xx: the endpoint will refuse this request again.
    Permanent {
        status: StatusCode,
        body: String,
    },
}

pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
}

impl HttpClient {
    pub fn new(settings: &Settings) -> Result<Self, Invalid> {
        let (tls, prefix) = match &settings.tls {
            Some((t, p)) => (t.clone(), *p),
            None => (ClientTlsConfig::default(), "tls"),
        };
        let tls_error = |e: TlsError| invalid(format!("{prefix}.{}", e.key), e.reason);
        // Building roots reads CA files: only for endpoints that use them.
        let config = if settings.https {
            tls.rustls_config().map_err(tls_error)?
        } else {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| invalid(prefix, e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        if let Some(name) = tls.server_name_override.as_deref() {
            let name = ServerName::try_from(name.to_owned())
                .map_err(|e| invalid(format!("{prefix}.server_name_override"), e.to_string()))?;
            builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
        }
        let connector = builder.enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            client,
            url: settings.url.clone(),
            headers: settings.headers.clone(),
        })
    }

    /// POSTs one compressed `WriteRequest`, giving up after `timeout`.
    pub async fn send(&self, body: Bytes, timeout: Option<Duration>) -> Outcome {
        let mut req = Request::post(self.url.clone());
        if let Some(h) = req.headers_mut() {
            h.extend(self.headers.clone());
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-protobuf"),
            );
            h.insert(
                "x-prometheus-remote-write-version",
                HeaderValue::from_static(REMOTE_WRITE_VERSION),
            );
            h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        }
        let req = match req.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Permanent {
                    status: StatusCode::BAD_REQUEST,
                    body: format!("cannot build the request: {e}"),
                }
            }
        };
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Read (a bounded part of) the body so the connection can be reused.
            let body = match Limited::new(resp.into_body(), ERROR_BODY_LIMIT)
                .collect()
                .await
            {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
                Err(_) => String::new(),
            };
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, body))
        };
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, exchange).await {
                Ok(r) => r,
                Err(_) => {
                    return Outcome::Retry {
                        reason: format!("no response within {t:?}"),
                        after: None,
                    }
                }
            },
            None => exchange.await,
        };
        match result {
            Err(e) => Outcome::Retry {
                reason: error_chain(&e),
                after: None,
            },
            Ok((status, _, _)) if status.is_success() => Outcome::Sent,
            Ok((status, after, body))
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Outcome::Retry {
                    reason: format!("HTTP {status}: {body}"),
                    after,
                }
            }
            Ok((status, _, body)) => Outcome::Permanent { status, body },
        }
    }
}

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

//! One HTTP POST of a remote-write request, and what its outcome means.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use http::{StatusCode, Uri};
use http_body_util::Full;
use redline_http_client::{retry_after, ClientOptions};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::extension::ClientAuthenticator;
use redline_pipeline::ClientMetadata;

use crate::settings::{Invalid, Settings};

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
    /// The authenticator had no credentials to add; nothing was sent.
    NoCredentials(String),
}

pub(crate) struct HttpClient {
    client: redline_http_client::HttpClient,
    url: Uri,
    headers: HeaderMap,
    /// Adds its credentials to every request (`auth`).
    auth: Option<Arc<dyn ClientAuthenticator>>,
}

impl HttpClient {
    pub fn new(settings: &Settings) -> Result<Self, Invalid> {
        let (tls, prefix) = match &settings.tls {
            Some((t, p)) => (t.clone(), *p),
            None => (ClientTlsConfig::default(), "tls"),
        };
        let options = ClientOptions {
            https: settings.https,
            user_agent: HeaderValue::from_static(USER_AGENT_VALUE),
            max_response_bytes: ERROR_BODY_LIMIT,
            reuse: settings.reuse,
            proxy: settings.proxy.clone(),
            ..ClientOptions::default()
        };
        let client = redline_http_client::HttpClient::new(&tls, options)
            .map_err(|e| Invalid::new(format!("{prefix}.{}", e.key), e.reason))?;
        let auth = match &settings.auth {
            None => None,
            Some(a) => Some(a.authenticator.clone().ok_or_else(|| {
                Invalid::new(
                    a.key,
                    format!(
                        "extension `{}` was not looked up among the running extensions",
                        a.id
                    ),
                )
            })?),
        };
        Ok(Self {
            client,
            url: settings.url.clone(),
            headers: settings.headers.clone(),
            auth,
        })
    }

    /// POSTs one compressed `WriteRequest`, giving up after `timeout`. `client`: the
    /// metadata of the client whose data it holds, for the credentials.
    pub async fn send(
        &self,
        body: Bytes,
        timeout: Option<Duration>,
        client: Option<&ClientMetadata>,
    ) -> Outcome {
        let mut request = self.client.post(&self.url, &self.headers, Full::new(body));
        // Set after the user's headers; the config refuses overriding these anyway.
        let h = request.headers_mut();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        h.insert(
            "x-prometheus-remote-write-version",
            HeaderValue::from_static(REMOTE_WRITE_VERSION),
        );
        if let Some(auth) = &self.auth {
            if let Err(e) = auth.add_credentials(h, client) {
                return Outcome::NoCredentials(e.to_string());
            }
        }
        match self.client.send(request, timeout).await {
            Err(e) => Outcome::Retry {
                reason: e.to_string(),
                after: None,
            },
            Ok(answer) if answer.status.is_success() => Outcome::Sent,
            Ok(answer)
                if answer.status.is_server_error()
                    || answer.status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Outcome::Retry {
                    reason: format!("HTTP {}: {}", answer.status, answer.text()),
                    after: retry_after(&answer.headers, SystemTime::now()),
                }
            }
            Ok(answer) => Outcome::Permanent {
                status: answer.status,
                body: answer.text(),
            },
        }
    }
}

//! The `otlphttp` exporter's transport: OTLP/HTTP POSTs of the queued requests, as protobuf
//! (the received bytes, untouched) or OTLP/JSON, compressed as configured. Queueing, retries,
//! the disk queue and counting are the `otlp` exporter's own (see `exporter`).

mod body;
mod json;
mod response;

use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Uri};
use redline_http_client::{ClientOptions, HttpClient, SendError};
use redline_pipeline::endpoint::parse_http_endpoint;
use redline_pipeline::extension::ClientAuthenticator;
use redline_pipeline::rpc_status::ExportResponse;
use redline_pipeline::ClientMetadata;
use redline_pipeline::{BuildContext, BuildError, ComponentId, Signal};

use self::body::{BodyFormat, EncodedBody};
use crate::codec::MessageBody;
use crate::config::{Encoding, HttpCompression, HttpConfig};
use crate::exporter::{client_authenticator, launch, request_headers, ExporterError, Started};
use crate::queue::Taken;
use crate::retry::Verdict;
use crate::transport::{client_gzip_frame, encode_off_runtime, raw_parts, Failure, Transport};

#[doc(hidden)]
pub use self::json::to_json;

/// Builds and starts the `otlphttp` exporter of one signal. Never connects: connections are
/// made on first use, so Redline starts while the server is still down. Must be called
/// within a tokio runtime.
pub fn start(
    id: &ComponentId,
    config: HttpConfig,
    ctx: &BuildContext,
    signal: Signal,
) -> Result<Started, BuildError> {
    let auth = client_authenticator(id, config.auth.as_ref(), ctx)?;
    let transport =
        HttpTransport::new(&config, signal, auth).map_err(|e| BuildError::new(id, e))?;
    let ignored = config.ignored_keys();
    if !ignored.is_empty() {
        tracing::info!(
            exporter = %id,
            %signal,
            keys = %ignored.join(", "),
            "{}",
            redline_http_client::IGNORED_KEYS_NOTE
        );
    }
    let url = transport.url.to_string();
    let started = launch(
        id,
        signal,
        ctx,
        &config.sending_queue,
        &config.retry_on_failure,
        transport,
    )?;
    tracing::debug!(
        exporter = %id,
        %signal,
        url,
        encoding = ?config.encoding,
        compression = ?config.compression,
        "otlphttp exporter started"
    );
    Ok(started)
}

pub(crate) struct HttpTransport {
    client: HttpClient<MessageBody>,
    url: Uri,
    url_text: String,
    headers: HeaderMap,
    format: BodyFormat,
    timeout: Option<Duration>,
    /// Adds its credentials to every request (`auth`).
    auth: Option<Arc<dyn ClientAuthenticator>>,
}

impl HttpTransport {
    fn new(
        config: &HttpConfig,
        signal: Signal,
        auth: Option<Arc<dyn ClientAuthenticator>>,
    ) -> Result<Self, ExporterError> {
        config.check().map_err(|e| ExporterError::Config {
            key: e.key_path,
            reason: e.reason,
        })?;
        let (url, key) = config.url(signal).ok_or_else(|| ExporterError::Config {
            key: HttpConfig::signal_key(signal).to_owned(),
            reason: format!(
                "this exporter is in a {signal} pipeline: set `endpoint` or `{}`",
                HttpConfig::signal_key(signal)
            ),
        })?;
        let target = parse_http_endpoint(&url).map_err(|reason| ExporterError::Config {
            key: key.to_owned(),
            reason,
        })?;
        let timeout = (!config.timeout.is_zero()).then_some(config.timeout);

        let headers = request_headers(&config.headers)?;
        let proxy = config.proxy().map_err(|e| ExporterError::Config {
            key: e.key_path,
            reason: e.reason,
        })?;
        // A proxy from the environment that cannot be used for this URL stops the start.
        proxy
            .check(&target.url, false)
            .map_err(|e| ExporterError::Config {
                key: e.key,
                reason: e.reason,
            })?;

        let options = ClientOptions {
            https: target.https,
            user_agent: HeaderValue::from_static(concat!("redline/", env!("CARGO_PKG_VERSION"))),
            // Connecting is bounded even without a request timeout, so a black-holed server
            // fails an attempt instead of holding it.
            connect_timeout: Some(timeout.unwrap_or(Duration::from_secs(30))),
            reuse: config.connection_reuse(),
            proxy,
            // otelcol's limit (the client's default): an export response is tiny.
            ..ClientOptions::default()
        };
        let client = HttpClient::new(&config.tls, options).map_err(|e| ExporterError::Config {
            key: format!("tls.{}", e.key),
            reason: e.reason,
        })?;
        Ok(Self {
            client,
            url_text: url,
            url: target.url,
            headers,
            format: BodyFormat {
                signal,
                encoding: config.encoding,
                compression: config.compression,
                level: config.compression_level(),
            },
            timeout,
            auth,
        })
    }
}

/// A request ready to send: its body and how it is encoded.
pub(crate) struct HttpRequest {
    body: EncodedBody,
}

/// An attempt that got no answer (not connected, reset, timed out): the server may take it
/// next time.
fn no_response(message: String) -> Failure {
    Failure {
        verdict: Verdict::Retry { min_delay: None },
        code: "no response".to_owned(),
        message,
    }
}

impl Transport for HttpTransport {
    type Request = HttpRequest;

    async fn encode(&self, taken: &Taken) -> Result<HttpRequest, String> {
        if self.forwards_gzip_frames() {
            if let Some(frame) = client_gzip_frame(taken) {
                // Valid gzip of exactly these bytes, whatever level the client used
                // (docs/compatibility.md §23).
                return Ok(HttpRequest {
                    body: EncodedBody::client_gzip(frame),
                });
            }
        }
        let parts = raw_parts(taken);
        let len = usize::try_from(taken.bytes).unwrap_or(usize::MAX);
        let format = self.format;
        let encode = move || body::encode(parts, &format);
        let body = if format.compression.content_encoding().is_none()
            && format.encoding == Encoding::Proto
        {
            // Forwarding the bytes as they are costs nothing worth a thread.
            encode()?
        } else {
            encode_off_runtime(len, encode).await?
        };
        Ok(HttpRequest { body })
    }

    async fn send(
        &self,
        request: &HttpRequest,
        client: Option<&ClientMetadata>,
    ) -> Result<ExportResponse, Failure> {
        let mut post = self.client.post(
            &self.url,
            &self.headers,
            MessageBody::new(request.body.chunks.iter().cloned()),
        );
        // After the user's headers: the config refuses overriding the body's own.
        let h = post.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(self.format.content_type()),
        );
        if let Some(encoding) = self.format.compression.content_encoding() {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        // After the user's headers, as otelcol's auth round tripper runs after its headers one.
        if let Some(auth) = &self.auth {
            auth.add_credentials(h, client).map_err(|e| Failure {
                verdict: Verdict::Permanent,
                code: "no credentials".to_owned(),
                message: e.to_string(),
            })?;
        }
        // The sender bounds the attempt (`attempt_timeout`).
        match self.client.send(post, None).await {
            Ok(answer) => response::judge(answer),
            // Not connected, reset: the server may take it next time.
            Err(e) => Err(no_response(e.to_string())),
        }
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn timed_out(&self, timeout: Duration) -> Failure {
        no_response(SendError::Timeout(timeout).to_string())
    }

    fn describe(&self) -> &str {
        &self.url_text
    }

    fn endpoint_labels(&self) -> Vec<(&'static str, String)> {
        crate::endpoint_labels::http(&self.url_text)
    }

    fn forwards_gzip_frames(&self) -> bool {
        self.format.compression == HttpCompression::Gzip && self.format.encoding == Encoding::Proto
    }
}

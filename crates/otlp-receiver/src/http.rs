//! OTLP/HTTP: `POST {traces_url_path}` with a protobuf or JSON body.
//!
//! Protobuf bodies take the same raw-bytes path as gRPC. JSON bodies are decoded with
//! opentelemetry-proto's serde support (lowerCamelCase keys, hex ids, integer enums, 64-bit
//! integers as strings or numbers) and encoded to protobuf once, here, so the rest of the
//! pipeline only sees protobuf. Error answers carry a `google.rpc.Status` in the request's
//! encoding, as the OTLP/HTTP spec asks.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::tls::TlsAcceptor;
use tokio::net::TcpStream;

use crate::config::{ContentEncoding, HttpConfig};
use crate::ingest::{Ingest, IngestError, INVALID_IDS_MESSAGE};
use crate::rpc;
use crate::server::ServeConn;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The state one receiver's HTTP server shares across connections.
pub(crate) struct HttpState {
    pub ingest: Arc<Ingest>,
    pub counters: Arc<ReceiverCounters>,
    pub traces_path: String,
    pub max_body: usize,
    pub encodings: Vec<ContentEncoding>,
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// `auth.authenticator`: checked before anything else, on every request.
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
}

impl HttpState {
    pub(crate) fn new(
        config: &HttpConfig,
        ingest: Arc<Ingest>,
        counters: Arc<ReceiverCounters>,
        auth: Option<Arc<dyn ServerAuthenticator>>,
    ) -> Self {
        let response_headers = config
            .response_headers
            .iter()
            // Config::check rejected invalid headers; skipping here only guards a caller
            // that built a Config by hand.
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::try_from(k.as_str()).ok()?,
                    HeaderValue::try_from(v.as_str()).ok()?,
                ))
            })
            .collect();
        Self {
            ingest,
            counters,
            traces_path: config.traces_path(),
            max_body: config.max_request_body_size(),
            encodings: config.encodings(),
            response_headers,
            auth,
        }
    }
}

pub(crate) fn router(state: Arc<HttpState>) -> Router {
    // Paths are matched by hand rather than with `Router::route`, which panics on paths with
    // `{`, `*` or other route syntax: the path comes from user config.
    Router::new().fallback(handle).with_state(state)
}

/// The encoding of a request body, which is also the encoding of the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Protobuf,
    Json,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Protobuf => PROTOBUF,
            Kind::Json => JSON,
        }
    }
}

async fn handle(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    let mut resp = handle_inner(&state, req).await;
    for (k, v) in &state.response_headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

async fn handle_inner(state: &HttpState, req: Request) -> Response {
    if let Some(auth) = &state.auth {
        // First, as otelcol's auth interceptor wraps the whole handler: an unauthenticated
        // client learns nothing about paths, and nothing is decoded or counted.
        if let Err(e) = auth.authenticate(req.headers()) {
            tracing::debug!(reason = %e, "HTTP request refused: not authenticated");
            let message = format!("not authenticated: {e}");
            return match content_kind(req.headers()) {
                Some(kind) => status_response(kind, StatusCode::UNAUTHORIZED, &message),
                None => plain(StatusCode::UNAUTHORIZED, message),
            };
        }
    }
    if req.uri().path() != state.traces_path {
        return plain(StatusCode::NOT_FOUND, "404 page not found".to_owned());
    }
    if req.method() != Method::POST {
        let mut resp = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed, supported: [POST]".to_owned(),
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let kind = match content_kind(req.headers()) {
        Some(k) => k,
        None => {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("415 unsupported media type, supported: [{JSON}, {PROTOBUF}]"),
            )
        }
    };
    let encoding = match content_encoding(req.headers(), &state.encodings) {
        Ok(e) => e,
        Err(msg) => return status_response(kind, StatusCode::UNSUPPORTED_MEDIA_TYPE, &msg),
    };
    if let Some(len) = content_length(req.headers()) {
        if len > state.max_body as u64 {
            return too_large(kind, state.max_body);
        }
    }
    let body = match Limited::new(req.into_body(), state.max_body)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(kind, state.max_body)
        }
        Err(e) => {
            return status_response(
                kind,
                StatusCode::BAD_REQUEST,
                &format!("failed to read the request body: {e}"),
            )
        }
    };
    let body = match decompress(body, encoding, state.max_body) {
        Ok(b) => b,
        Err(DecompressError::TooLarge) => return too_large(kind, state.max_body),
        Err(DecompressError::Corrupt(e)) => {
            return status_response(
                kind,
                StatusCode::BAD_REQUEST,
                &format!("failed to decompress the request body: {e}"),
            )
        }
    };
    let raw = match kind {
        Kind::Protobuf => body,
        Kind::Json => match json_to_protobuf(&body) {
            Ok(raw) => raw,
            Err(e) => {
                return status_response(
                    kind,
                    StatusCode::BAD_REQUEST,
                    &format!("malformed OTLP/JSON ExportTraceServiceRequest: {e}"),
                )
            }
        },
    };
    match state.ingest.ingest(raw, &state.counters) {
        Ok(accepted) => success(kind, accepted.rejected_spans),
        Err(IngestError::Malformed(reason)) => status_response(
            kind,
            StatusCode::BAD_REQUEST,
            &format!("malformed ExportTraceServiceRequest: {reason}"),
        ),
        Err(IngestError::Refused(refused)) => {
            let message = format!("pipeline is full, retry later: {refused}");
            let mut resp = retry_response(kind, &message, refused.retry_after);
            resp.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(retry_after_secs(refused.retry_after)),
            );
            resp
        }
    }
}

/// Converts an OTLP/JSON `ExportTraceServiceRequest` body to protobuf, as the HTTP server
/// does with every JSON request. Public (hidden) for the fuzz target; never panics.
#[doc(hidden)]
pub fn json_to_protobuf(body: &[u8]) -> Result<Bytes, serde_json::Error> {
    let req = serde_json::from_slice::<ExportTraceServiceRequest>(body)?;
    Ok(Bytes::from(req.encode_to_vec()))
}

fn content_kind(headers: &HeaderMap) -> Option<Kind> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Kind::Protobuf),
        "application/json" => Some(Kind::Json),
        _ => None,
    }
}

fn content_encoding(
    headers: &HeaderMap,
    allowed: &[ContentEncoding],
) -> Result<ContentEncoding, String> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return if allowed.contains(&ContentEncoding::Identity) {
            Ok(ContentEncoding::Identity)
        } else {
            Err("uncompressed bodies are not accepted (compression_algorithms)".to_owned())
        };
    };
    let name = value
        .to_str()
        .map_err(|_| "Content-Encoding is not ASCII".to_owned())?;
    match ContentEncoding::parse(name) {
        Some(e) if allowed.contains(&e) => Ok(e),
        _ => Err(format!("unsupported Content-Encoding `{name}`")),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DecompressError {
    #[error("decompressed body is over the size limit")]
    TooLarge,
    #[error("{0}")]
    Corrupt(std::io::Error),
}

/// Decompresses with a cap on the output: reading stops one byte past `limit`, so a
/// decompression bomb costs at most `limit` bytes of memory.
pub(crate) fn decompress(
    body: Bytes,
    encoding: ContentEncoding,
    limit: usize,
) -> Result<Bytes, DecompressError> {
    let reader: Box<dyn Read + '_> = match encoding {
        ContentEncoding::Identity => return Ok(body),
        // Multi-member gzip, as Go's gzip.Reader reads it.
        ContentEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        ContentEncoding::Zlib => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
    };
    let cap = (limit as u64).saturating_add(1);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(DecompressError::Corrupt)?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge);
    }
    Ok(Bytes::from(out))
}

fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn plain(code: StatusCode, message: String) -> Response {
    (
        code,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

fn too_large(kind: Kind, limit: usize) -> Response {
    status_response(
        kind,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body is larger than max_request_body_size ({limit} bytes)"),
    )
}

/// The gRPC code that goes in the Status body for an HTTP status.
fn rpc_code(code: StatusCode) -> i32 {
    match code {
        StatusCode::PAYLOAD_TOO_LARGE => rpc::CODE_RESOURCE_EXHAUSTED,
        StatusCode::SERVICE_UNAVAILABLE => rpc::CODE_UNAVAILABLE,
        StatusCode::UNAUTHORIZED => rpc::CODE_UNAUTHENTICATED,
        _ => rpc::CODE_INVALID_ARGUMENT,
    }
}

fn status_response(kind: Kind, code: StatusCode, message: &str) -> Response {
    let body = match kind {
        Kind::Protobuf => rpc::status(rpc_code(code), message),
        Kind::Json => Bytes::from(
            serde_json::json!({ "code": rpc_code(code), "message": message }).to_string(),
        ),
    };
    (
        code,
        [(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()))],
        body,
    )
        .into_response()
}

fn retry_response(kind: Kind, message: &str, retry_after: Duration) -> Response {
    let body = match kind {
        Kind::Protobuf => rpc::status_with_retry(rpc::CODE_UNAVAILABLE, message, retry_after),
        Kind::Json => Bytes::from(
            serde_json::json!({
                "code": rpc::CODE_UNAVAILABLE,
                "message": message,
                "details": [{
                    "@type": rpc::RETRY_INFO_TYPE_URL,
                    // protojson's Duration form: seconds with an `s` suffix.
                    "retryDelay": format!("{}s", retry_after.as_secs_f64()),
                }],
            })
            .to_string(),
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()))],
        body,
    )
        .into_response()
}

fn success(kind: Kind, rejected_spans: usize) -> Response {
    let body = match kind {
        Kind::Protobuf => {
            let partial_success = (rejected_spans > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected_spans as i64,
                error_message: INVALID_IDS_MESSAGE.to_owned(),
            });
            Bytes::from(ExportTraceServiceResponse { partial_success }.encode_to_vec())
        }
        // Written by hand: the crate's serde would emit `"partialSuccess": null`. The count
        // is a JSON number, which protojson readers accept for int64 and which
        // opentelemetry-proto's own serde (numbers only) can read back.
        Kind::Json if rejected_spans > 0 => Bytes::from(
            serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": rejected_spans,
                    "errorMessage": INVALID_IDS_MESSAGE,
                }
            })
            .to_string(),
        ),
        Kind::Json => Bytes::from_static(b"{}"),
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()))],
        body,
    )
        .into_response()
}

/// One HTTP/1.1 or h2c connection of the HTTP server.
#[derive(Clone)]
pub(crate) struct HttpConn {
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    service: TowerToHyperService<Router>,
    tls: Option<TlsAcceptor>,
}

impl HttpConn {
    pub(crate) fn new(config: &HttpConfig, router: Router, tls: Option<TlsAcceptor>) -> Self {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // Header read timeouts and keep-alive need a timer; hyper panics without one.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.read_header_timeout());
        builder.http2().timer(TokioTimer::new());
        Self {
            builder,
            service: TowerToHyperService::new(router),
            tls,
        }
    }
}

impl ServeConn for HttpConn {
    fn serve(self, io: TcpStream, watcher: Watcher) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let result = match &self.tls {
                None => {
                    let conn = self
                        .builder
                        .serve_connection(TokioIo::new(io), self.service);
                    watcher.watch(conn).await
                }
                Some(tls) => {
                    // In the connection's own task: a slow handshake holds up no one else.
                    let io = match tls.accept(io).await {
                        Ok(io) => io,
                        Err(e) => {
                            tracing::debug!(error = %e, "HTTP TLS handshake failed");
                            return;
                        }
                    };
                    let conn = self
                        .builder
                        .serve_connection(TokioIo::new(io), self.service);
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("in-memory write");
        Bytes::from(enc.finish().expect("in-memory finish"))
    }

    #[test]
    fn decompress_caps_output() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 10_000);
        assert!(matches!(
            decompress(bomb.clone(), ContentEncoding::Gzip, 1000),
            Err(DecompressError::TooLarge)
        ));
        let ok = decompress(bomb, ContentEncoding::Gzip, 1 << 20).expect("fits exactly");
        assert_eq!(ok.len(), 1 << 20);
    }

    /// OTLP/JSON with an attribute nested `levels` arrays deep.
    fn deep_json(levels: usize) -> String {
        let value = format!(
            r#"{}{{"intValue":"1"}}{}"#,
            r#"{"arrayValue":{"values":["#.repeat(levels),
            "]}}".repeat(levels)
        );
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"name":"d","attributes":[{{"key":"k","value":{value}}}]}}]}}]}}]}}"#
        )
    }

    #[test]
    fn json_nesting_is_bounded_on_a_worker_sized_stack() {
        // Tokio's worker threads have 2 MiB stacks: the deepest JSON serde_json accepts (39
        // array levels here) converts there, and anything deeper is refused, not a crash.
        let run = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let ok = json_to_protobuf(deep_json(39).as_bytes());
                let too_deep = json_to_protobuf(deep_json(40).as_bytes());
                let far_too_deep = json_to_protobuf(deep_json(100_000).as_bytes());
                (ok.is_ok(), too_deep.is_err(), far_too_deep.is_err())
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
        assert_eq!(run, (true, true, true));
    }

    #[test]
    fn decompress_reports_corruption() {
        assert!(matches!(
            decompress(Bytes::from_static(b"not gzip"), ContentEncoding::Gzip, 100),
            Err(DecompressError::Corrupt(_))
        ));
    }

    #[test]
    fn parses_content_types() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_kind(&h), Some(Kind::Json));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-Protobuf"),
        );
        assert_eq!(content_kind(&h), Some(Kind::Protobuf));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(content_kind(&h), None);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
    }
}

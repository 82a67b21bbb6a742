//! The confighttp server side every receiver that is not OTLP/HTTP shares (Zipkin, Jaeger's
//! Thrift over HTTP): the authenticator check, the Content-Encodings confighttp decodes, the
//! body size limit (as received and again once decompressed) and the body budget, each
//! refused with the answer otelcol gives, or Redline's where otelcol has none.

use std::io::Read;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use redline_pipeline::body_budget::BodyBudget;
use redline_pipeline::extension::{AuthError, Extensions, ServerAuthConfig, ServerAuthenticator};
use redline_pipeline::tls::{ServerTlsConfig, TlsAcceptor};
use redline_pipeline::{BuildError, ComponentId};

use crate::body::{drain, read_body, BodyError, UNREAD_BODY_DRAINED};

/// The Content-Encodings these receivers decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    /// `deflate` and `zlib`: both zlib streams, as in otelcol.
    Zlib,
    Zstd,
}

impl ContentEncoding {
    /// Every encoding, the default of `compression_algorithms`.
    pub const ALL: [ContentEncoding; 4] = [Self::Identity, Self::Gzip, Self::Zlib, Self::Zstd];

    /// The names `compression_algorithms` and `Content-Encoding` take.
    pub const NAMES: &'static str = "\"\", gzip, zlib, deflate, zstd";

    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zlib" | "deflate" => Some(Self::Zlib),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }
}

/// What one receiver's server allows a request body.
pub struct BodyLimits {
    /// Bytes, for the body as received and again once decompressed.
    pub max: usize,
    pub encodings: Vec<ContentEncoding>,
    /// Bytes of bodies in flight across the server's connections.
    pub budget: BodyBudget,
}

/// A server section's `tls` and `auth`, loaded for its listener: the TLS acceptor (its
/// warnings logged) and the authenticator extension `auth.authenticator` names (extensions
/// are built first). `prefix` is the section's key path in the component (`""`, or
/// `protocols.thrift_http.`), for the errors; `alpn` the protocols TLS offers.
pub fn security(
    receiver: &ComponentId,
    prefix: &str,
    alpn: &[&[u8]],
    tls: Option<&ServerTlsConfig>,
    auth: Option<&ServerAuthConfig>,
    extensions: &Extensions,
) -> Result<ServerSecurity, BuildError> {
    let section = prefix.trim_end_matches('.');
    let acceptor = match tls {
        None => None,
        Some(tls) => {
            for warning in tls.warnings() {
                tracing::warn!(%receiver, section, "{warning}");
            }
            Some(tls.load(alpn).map_err(|e| {
                BuildError::new(
                    receiver,
                    format!("receivers.{receiver}.{prefix}tls.{}: {}", e.key, e.reason),
                )
            })?)
        }
    };
    let authenticator = match auth {
        None => None,
        Some(auth) => {
            if tls.is_none() {
                tracing::warn!(
                    %receiver,
                    section,
                    "auth is set without tls: credentials cross the network in clear text"
                );
            }
            Some(auth.resolve(extensions).map_err(|e| {
                BuildError::new(
                    receiver,
                    format!("receivers.{receiver}.{prefix}auth.authenticator: {e}"),
                )
            })?)
        }
    };
    Ok(ServerSecurity {
        tls: acceptor,
        auth: authenticator,
    })
}

/// What [`security`] loads.
pub struct ServerSecurity {
    pub tls: Option<TlsAcceptor>,
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
}

/// A plain-text answer, newline-terminated as Go's `http.Error` writes it.
pub fn text(code: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (code, body).into_response()
}

/// A request header's value, trimmed; `None` when absent or not text.
pub fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Runs `auth.authenticator`'s check, as confighttp does before the handler: a refused
/// request is answered 401 (503 when the authenticator is saturated) with its body drained.
pub async fn authenticate(
    auth: Option<&Arc<dyn ServerAuthenticator>>,
    req: Request,
    receiver: &str,
) -> Result<Request, Response> {
    let Some(auth) = auth else {
        return Ok(req);
    };
    let Err(e) = auth.authenticate(req.headers()).outcome().await else {
        return Ok(req);
    };
    let resp = match e {
        AuthError::Denied(reason) => {
            tracing::debug!(receiver, %reason, "request refused: not authenticated");
            text(
                StatusCode::UNAUTHORIZED,
                format!("not authenticated: {reason}"),
            )
        }
        AuthError::Busy => text(StatusCode::SERVICE_UNAVAILABLE, AuthError::Busy.to_string()),
    };
    drain(req.into_body(), UNREAD_BODY_DRAINED).await;
    Err(resp)
}

/// Reads a request's body whole and decompressed, within `limits`; the refusal is the answer
/// to send.
pub async fn read_request_body(req: Request, limits: &BodyLimits) -> Result<Bytes, Response> {
    let encoding_name = header(req.headers(), CONTENT_ENCODING)
        .unwrap_or("")
        .to_owned();
    let encoding = match ContentEncoding::parse(&encoding_name) {
        Some(e) if limits.encodings.contains(&e) => e,
        // otelcol's answer and text (confighttp's decompressor).
        _ => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("unsupported Content-Encoding: {encoding_name}"),
            ))
        }
    };
    let declared = header(req.headers(), CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max as u64) {
        return Err(too_large(limits.max));
    }
    let Some(mut permit) = limits.budget.take(declared.unwrap_or(0)) else {
        drain(req.into_body(), limits.max).await;
        return Err(over_budget(&limits.budget));
    };
    let body = match read_body(req.into_body(), limits.max, &mut permit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Err(too_large(limits.max)),
        Err(BodyError::OverBudget(rest)) => {
            drop(permit);
            drain(rest, limits.max).await;
            return Err(over_budget(&limits.budget));
        }
        Err(BodyError::Read(e)) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("failed to read the request body: {e}"),
            ))
        }
    };
    let body = match inflate(body, encoding, limits.max) {
        Ok(body) => body,
        Err(Inflate::TooLarge) => return Err(too_large(limits.max)),
        Err(Inflate::Corrupt(e)) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                format!("failed to decompress the request body ({encoding_name}): {e}"),
            ))
        }
    };
    if encoding != ContentEncoding::Identity && !permit.grow(body.len() as u64) {
        return Err(over_budget(&limits.budget));
    }
    Ok(body)
}

fn too_large(max: usize) -> Response {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than max_request_body_size ({max} bytes)"),
    )
}

fn over_budget(budget: &BodyBudget) -> Response {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, budget.refusal("HTTP"));
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

enum Inflate {
    TooLarge,
    Corrupt(std::io::Error),
}

/// Decompresses a body, reading at most one byte past `limit`.
fn inflate(body: Bytes, encoding: ContentEncoding, limit: usize) -> Result<Bytes, Inflate> {
    let reader: Box<dyn Read + '_> = match encoding {
        ContentEncoding::Identity => return Ok(body),
        ContentEncoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        ContentEncoding::Zlib => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
        ContentEncoding::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(&body[..]).map_err(Inflate::Corrupt)?)
        }
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(Inflate::Corrupt)?;
    if out.len() > limit {
        return Err(Inflate::TooLarge);
    }
    Ok(Bytes::from(out))
}

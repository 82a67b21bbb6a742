//! Jaeger's Thrift over HTTP (the collector's port 14268): `POST /api/traces` with a `Batch`
//! in the binary protocol, as Jaeger clients send it without an agent.
//!
//! Answers are otelcol's: 202 when the spans are in the pipeline, 400 with the reason when
//! the body is not a batch or the Content-Type is not Thrift's, 500 when the pipeline refused
//! them; 404 and 405 for other paths and methods.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, StatusCode};
use redline_http_server::receive::{authenticate, header, read_request_body, text, BodyLimits};
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::ClientMetadata;

use crate::ingest::Ingest;
use crate::model::read_batch;
use crate::thrift::Binary;

/// The transport otelcol counts these spans under.
pub(crate) const TRANSPORT: &str = "collector_http";

/// The media types otelcol takes.
const THRIFT_TYPES: [&str; 2] = [
    "application/x-thrift",
    "application/vnd.apache.thrift.binary",
];

pub(crate) struct HttpState {
    pub ingest: Ingest,
    pub limits: BodyLimits,
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    /// `include_metadata`: each request's headers travel with its spans.
    pub include_metadata: bool,
}

pub(crate) fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/api/traces", post(handle))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found")
}

async fn handle(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    let mut resp = handle_inner(&state, req).await;
    for (k, v) in &state.response_headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

async fn handle_inner(state: &HttpState, req: Request) -> Response {
    let req = match authenticate(state.auth.as_ref(), req, "jaeger").await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let content_type = media_type(header(req.headers(), CONTENT_TYPE).unwrap_or(""));
    let client = state.include_metadata.then(|| {
        ClientMetadata::from_headers(req.headers(), req.uri().authority().map(|a| a.as_str()))
    });
    let body = match read_request_body(req, &state.limits).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    match content_type {
        Err(reason) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Cannot parse content type: {reason}"),
            )
        }
        Ok(media) if !THRIFT_TYPES.contains(&media.as_str()) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Unsupported content type: {media}"),
            )
        }
        Ok(_) => {}
    }
    let batch = match read_batch(&mut Binary::new(&body)) {
        Ok(batch) => batch,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Unable to process request body: {e}"),
            )
        }
    };
    match state.ingest.batch(&batch, client) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        // otelcol answers every failure 500, a permanent one with its text.
        Err(refused) if refused.permanent => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Cannot submit Jaeger batch: Permanent error: {}",
                refused.reason
            ),
        ),
        Err(refused) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Cannot submit Jaeger batch: {refused}"),
        ),
    }
}

/// The media type of a Content-Type, lower-cased, with the checks of Go's
/// `mime.ParseMediaType` (a `type/subtype` of token characters, parameters well formed and
/// not given twice with different values), whose error texts otelcol answers with.
fn media_type(value: &str) -> Result<String, &'static str> {
    let (base, mut params) = value
        .split_once(';')
        .map_or((value, ""), |(b, _)| (b, &value[b.len()..]));
    let media = base.trim().to_lowercase();
    let (kind, rest) = token(&media);
    if kind.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let Some(rest) = rest.strip_prefix('/') else {
            return Err("mime: expected slash after first token");
        };
        let (subtype, rest) = token(rest);
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    loop {
        params = params.trim_start();
        if params.is_empty() {
            break;
        }
        let Some((key, value, rest)) = parameter(params) else {
            // A trailing semicolon is allowed.
            if params.trim() == ";" {
                break;
            }
            return Err("mime: invalid media parameter");
        };
        if seen.iter().any(|(k, v)| *k == key && *v != value) {
            return Err("mime: duplicate parameter name");
        }
        seen.push((key, value));
        params = rest;
    }
    Ok(media)
}

/// RFC 1521's token characters, as Go's `mime` package reads them.
fn is_token_char(c: char) -> bool {
    c.is_ascii() && c > ' ' && c != '\x7f' && !is_tspecial(c)
}

fn is_tspecial(c: char) -> bool {
    "()<>@,;:\\\"/[]?=".contains(c)
}

/// The longest token at the start of `s`, and the rest.
fn token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// `; key=value` at the start of `s` (Go's `consumeMediaParam`): the key lower-cased, the
/// value unquoted, and the rest.
fn parameter(s: &str) -> Option<(String, String, &str)> {
    let rest = s.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (value, after) = if let Some(quoted) = rest.strip_prefix('"') {
        quoted_value(quoted)?
    } else {
        let (value, after) = token(rest);
        if value.is_empty() {
            return None;
        }
        (value.to_owned(), after)
    };
    Some((key.to_lowercase(), value, after))
}

/// A quoted-string's value after its opening quote (Go's `consumeValue`): `\` escapes the
/// special characters; a line break or no closing quote is an error.
fn quoted_value(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' if s[i + 1..].starts_with(is_tspecial) => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\r' | '\n' => return None,
            _ => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn media_types_as_go_reads_them() {
        for (header, expected) in [
            (
                "Application/X-Thrift; charset=utf-8",
                Ok("application/x-thrift"),
            ),
            ("application/x-thrift;", Ok("application/x-thrift")),
            (
                "application/x-thrift; a=\"b;c\"; a=\"b;c\"",
                Ok("application/x-thrift"),
            ),
            ("thrift", Ok("thrift")),
            ("", Err("mime: no media type")),
            ("/x-thrift", Err("mime: no media type")),
            ("application/", Err("mime: expected token after slash")),
            (
                "application/x-thrift, text/plain",
                Err("mime: unexpected content after media subtype"),
            ),
            (
                "application x-thrift",
                Err("mime: expected slash after first token"),
            ),
            (
                "application/x-thrift; charset",
                Err("mime: invalid media parameter"),
            ),
            (
                "application/x-thrift; a=\"b",
                Err("mime: invalid media parameter"),
            ),
            (
                "application/x-thrift; charset=utf-8; CHARSET=latin1",
                Err("mime: duplicate parameter name"),
            ),
        ] {
            assert_eq!(media_type(header), expected.map(str::to_owned), "{header}");
        }
    }
}

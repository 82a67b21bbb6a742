//! OTLP/HTTP: `POST` to `traces_url_path`, `metrics_url_path` or `logs_url_path` with a
//! protobuf or JSON body, behind optional CORS for browser SDKs.
//!
//! Protobuf bodies take the same raw-bytes path as gRPC. JSON bodies are decoded with
//! opentelemetry-proto's serde support (lowerCamelCase keys, hex ids, integer enums, 64-bit
//! integers as strings or numbers) and encoded to protobuf once, here, so the rest of the
//! pipeline only sees protobuf. Error answers carry a `google.rpc.Status` in the request's
//! encoding, as the OTLP/HTTP spec asks.
//!
//! This module routes and serves; `body` reads and decodes request bodies, `response` writes
//! the answers.

mod body;
mod cors;
mod response;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::header::ALLOW;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use redline_http_server::body::{drain, read_body, BodyError, UNREAD_BODY_DRAINED};
use redline_pipeline::body_budget::BodyBudget;
use redline_pipeline::extension::{AuthError, ServerAuthenticator};
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{ClientMetadata, Signal};

use self::body::{content_encoding, content_kind, content_length, decompress, DecompressError};
use self::body::{Kind, JSON, PROTOBUF};
use self::response::{plain, retry_response, status_response, success, too_large};
use crate::config::{ContentEncoding, HttpConfig};
use crate::ingest::{Ingest, IngestError};

pub use self::body::json_to_protobuf;
pub use self::cors::CorsConfig;

/// One signal a receiver's HTTP server takes.
pub(crate) struct HttpRoute {
    pub path: String,
    pub ingest: Arc<Ingest>,
    pub counters: Arc<ReceiverCounters>,
}

/// The state one receiver's HTTP server shares across connections.
pub(crate) struct HttpState {
    /// The signals some pipeline takes from this receiver.
    pub routes: Vec<HttpRoute>,
    /// The paths of the other signals: 404, as otelcol, logged once each.
    pub unrouted: Vec<(Signal, String)>,
    pub unrouted_logged: crate::Once3,
    cors: Option<cors::Cors>,
    pub max_body: usize,
    pub encodings: Vec<ContentEncoding>,
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// `auth.authenticator`: checked before anything else, on every request.
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    /// Bytes of bodies in flight, shared with the receiver's gRPC server.
    pub budget: BodyBudget,
    /// `include_metadata`: each request's headers travel with its data.
    include_metadata: bool,
}

impl HttpState {
    pub(crate) fn new(
        config: &HttpConfig,
        routes: Vec<HttpRoute>,
        auth: Option<Arc<dyn ServerAuthenticator>>,
        budget: BodyBudget,
    ) -> Self {
        let unrouted = Signal::ALL
            .into_iter()
            .filter(|s| !routes.iter().any(|r| r.ingest.signal() == *s))
            .map(|s| (s, config.path(s)))
            .collect();
        // Config::check refused invalid headers; an empty list only guards a caller that
        // built a Config by hand.
        let response_headers =
            redline_http_server::response_headers(&config.response_headers).unwrap_or_default();
        Self {
            routes,
            unrouted,
            unrouted_logged: crate::Once3::default(),
            cors: config.cors.as_ref().and_then(cors::Cors::new),
            max_body: config.max_request_body_size(),
            encodings: config.encodings(),
            response_headers,
            auth,
            budget,
            include_metadata: config.include_metadata,
        }
    }
}

pub(crate) fn router(state: Arc<HttpState>) -> Router {
    // Paths are matched by hand rather than with `Router::route`, which panics on paths with
    // `{`, `*` or other route syntax: the path comes from user config.
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    // CORS wraps everything, authentication included: a browser's preflight carries no
    // credentials.
    let cors_headers = match state
        .cors
        .as_ref()
        .map(|c| c.check(req.method(), req.headers()))
    {
        Some(cors::Verdict::Preflight(headers)) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut().extend(headers);
            return resp;
        }
        Some(cors::Verdict::Simple(headers)) => Some(headers),
        None => None,
    };
    let mut resp = handle_inner(&state, req).await;
    for (k, v) in &state.response_headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    if let Some(headers) = cors_headers {
        resp.headers_mut().extend(headers);
    }
    resp
}

async fn handle_inner(state: &HttpState, req: Request) -> Response {
    if let Some(auth) = &state.auth {
        // First, as otelcol's auth interceptor wraps the whole handler: an unauthenticated
        // client learns nothing about paths, and nothing is decoded or counted.
        if let Err(e) = auth.authenticate(req.headers()).outcome().await {
            let (code, message) = match e {
                AuthError::Denied(reason) => {
                    tracing::debug!(%reason, "HTTP request refused: not authenticated");
                    (
                        StatusCode::UNAUTHORIZED,
                        format!("not authenticated: {reason}"),
                    )
                }
                AuthError::Busy => {
                    tracing::debug!("HTTP request refused: authentication queue full");
                    (StatusCode::SERVICE_UNAVAILABLE, AuthError::Busy.to_string())
                }
            };
            let resp = match content_kind(req.headers()) {
                Some(kind) => status_response(kind, code, &message),
                None => plain(code, message),
            };
            // A small body left unread would make hyper close the connection under a client
            // that is about to reuse it.
            drain(req.into_body(), UNREAD_BODY_DRAINED).await;
            return resp;
        }
    }
    let path = req.uri().path();
    let Some(route) = state.routes.iter().find(|r| r.path == path) else {
        if let Some((signal, _)) = state.unrouted.iter().find(|(_, p)| p == path) {
            if state.unrouted_logged.first(*signal) {
                tracing::warn!(
                    %signal,
                    path,
                    "a client sent {signal} over HTTP, but no {signal} pipeline takes them from this receiver; answering 404"
                );
            }
        }
        return plain(StatusCode::NOT_FOUND, "404 page not found".to_owned());
    };
    let signal = route.ingest.signal();
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
        // 400, as otelcol's confighttp answers an encoding it does not decode.
        Err(msg) => return status_response(kind, StatusCode::BAD_REQUEST, &msg),
    };
    let client = state.include_metadata.then(|| {
        ClientMetadata::from_headers(req.headers(), req.uri().authority().map(|a| a.as_str()))
    });
    let declared = content_length(req.headers());
    if declared.is_some_and(|len| len > state.max_body as u64) {
        return too_large(kind, state.max_body);
    }
    // Before a byte of the body is read: what it declares must fit the budget.
    let Some(mut permit) = state.budget.take(declared.unwrap_or(0)) else {
        drain(req.into_body(), state.max_body).await;
        return over_budget(kind, &state.budget);
    };
    let body = match read_body(req.into_body(), state.max_body, &mut permit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(kind, state.max_body),
        Err(BodyError::OverBudget(rest)) => {
            drop(permit);
            drain(rest, state.max_body).await;
            return over_budget(kind, &state.budget);
        }
        Err(BodyError::Read(e)) => {
            return status_response(
                kind,
                StatusCode::BAD_REQUEST,
                &format!("failed to read the request body: {e}"),
            )
        }
    };
    let (body, gzip_member) = match decompress(body, encoding, state.max_body) {
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
    // Inflated and converted bodies are held beside the one read: they count too.
    if (encoding != ContentEncoding::Identity || kind == Kind::Json)
        && !permit.grow(body.len() as u64)
    {
        return over_budget(kind, &state.budget);
    }
    // The client's gzip member decompresses to the request only when the request is the body.
    let (raw, gzip_member) = match kind {
        Kind::Protobuf => (body, gzip_member),
        Kind::Json => match body::signal_json_to_protobuf(signal, &body) {
            Ok(raw) => (raw, None),
            Err(e) => {
                return status_response(
                    kind,
                    StatusCode::BAD_REQUEST,
                    &format!("malformed OTLP/JSON {}: {e}", signal.export_request_name()),
                )
            }
        },
    };
    match route
        .ingest
        .ingest(raw, gzip_member, client, &route.counters)
    {
        Ok(accepted) => success(kind, accepted.rejected),
        Err(IngestError::Malformed(reason)) => status_response(
            kind,
            StatusCode::BAD_REQUEST,
            &format!("malformed {}: {reason}", signal.export_request_name()),
        ),
        Err(IngestError::Refused(refused)) if refused.permanent => status_response(
            kind,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("Permanent error: {}", refused.reason),
        ),
        Err(IngestError::Refused(refused)) => {
            let message = format!("pipeline is full, retry later: {refused}");
            retry_response(kind, &message, refused.retry_after)
        }
    }
}

fn over_budget(kind: Kind, budget: &BodyBudget) -> Response {
    retry_response(
        kind,
        &budget.refusal("HTTP"),
        redline_pipeline::body_budget::OVER_BUDGET_RETRY_AFTER,
    )
}

//! The HTTP side: every path takes Zipkin v2 spans (JSON, or protobuf when the Content-Type
//! says `application/x-protobuf`), as otelcol's handler does; a path with `api/v1/spans` is
//! Zipkin v1, which Redline refuses with a message saying so.
//!
//! Answers are otelcol's: 202 when the spans are in the pipeline, 400 with the reason when
//! the body is not Zipkin, 500 when the pipeline refused them.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use redline_http_server::body::{drain, read_body, BodyError, UNREAD_BODY_DRAINED};
use redline_pipeline::body_budget::BodyBudget;
use redline_pipeline::extension::{AuthError, ServerAuthenticator};
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{Batch, Consumer, Signal};

use crate::config::ContentEncoding;
use crate::{json, model, translate};

/// The transports otelcol's receiver counts under, for the two formats Redline takes.
pub(crate) const TRANSPORT_V2_JSON: &str = "http_v2_json";
pub(crate) const TRANSPORT_V2_PROTO: &str = "http_v2_proto";

const PROTOBUF: &str = "application/x-protobuf";

pub(crate) struct ZipkinState {
    pub next: Arc<dyn Consumer>,
    pub json_counters: Arc<ReceiverCounters>,
    pub proto_counters: Arc<ReceiverCounters>,
    pub parse_string_tags: bool,
    pub max_body: usize,
    pub encodings: Vec<ContentEncoding>,
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    pub budget: BodyBudget,
    pub v1_logged: AtomicBool,
}

pub(crate) fn router(state: Arc<ZipkinState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<Arc<ZipkinState>>, req: Request) -> Response {
    let mut resp = handle_inner(&state, req).await;
    for (k, v) in &state.response_headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

fn text(code: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    (code, body).into_response()
}

async fn handle_inner(state: &ZipkinState, req: Request) -> Response {
    if let Some(auth) = &state.auth {
        if let Err(e) = auth.authenticate(req.headers()).outcome().await {
            let resp = match e {
                AuthError::Denied(reason) => {
                    tracing::debug!(%reason, "Zipkin request refused: not authenticated");
                    text(
                        StatusCode::UNAUTHORIZED,
                        format!("not authenticated: {reason}"),
                    )
                }
                AuthError::Busy => {
                    text(StatusCode::SERVICE_UNAVAILABLE, AuthError::Busy.to_string())
                }
            };
            drain(req.into_body(), UNREAD_BODY_DRAINED).await;
            return resp;
        }
    }
    if req.uri().path().contains("api/v1/spans") {
        if !state.v1_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                path = req.uri().path(),
                "a client sent Zipkin v1 spans, which Redline does not take; answering 400"
            );
        }
        drain(req.into_body(), UNREAD_BODY_DRAINED).await;
        return text(
            StatusCode::BAD_REQUEST,
            "Zipkin v1 spans (api/v1/spans) are not supported by Redline; send Zipkin v2 \
             (api/v2/spans, JSON or protobuf)",
        );
    }
    let protobuf = header(req.headers(), CONTENT_TYPE) == Some(PROTOBUF);
    let encoding_name = header(req.headers(), CONTENT_ENCODING)
        .unwrap_or("")
        .to_owned();
    let encoding = match ContentEncoding::parse(&encoding_name) {
        Some(e) if state.encodings.contains(&e) => e,
        // otelcol's answer and text (confighttp's decompressor).
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unsupported Content-Encoding: {encoding_name}"),
            )
        }
    };
    let declared = header(req.headers(), CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.max_body as u64) {
        return too_large(state.max_body);
    }
    let Some(mut permit) = state.budget.take(declared.unwrap_or(0)) else {
        drain(req.into_body(), state.max_body).await;
        return over_budget(&state.budget);
    };
    let body = match read_body(req.into_body(), state.max_body, &mut permit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(state.max_body),
        Err(BodyError::OverBudget(rest)) => {
            drop(permit);
            drain(rest, state.max_body).await;
            return over_budget(&state.budget);
        }
        Err(BodyError::Read(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("failed to read the request body: {e}"),
            )
        }
    };
    let body = match inflate(body, encoding, state.max_body) {
        Ok(body) => body,
        Err(Inflate::TooLarge) => return too_large(state.max_body),
        Err(Inflate::Corrupt(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("failed to decompress the request body ({encoding_name}): {e}"),
            )
        }
    };
    if encoding != ContentEncoding::Identity && !permit.grow(body.len() as u64) {
        return over_budget(&state.budget);
    }
    let (spans, counters) = if protobuf {
        (model::from_protobuf(&body), &state.proto_counters)
    } else {
        (json::from_json(&body), &state.json_counters)
    };
    let request = match spans.and_then(|s| translate::to_otlp(s, state.parse_string_tags)) {
        Ok(request) => request,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.0),
    };
    drop(body);
    ingest(state, request, counters)
}

/// Hands the translated spans to the pipeline.
fn ingest(
    state: &ZipkinState,
    encoded: translate::Encoded,
    counters: &ReceiverCounters,
) -> Response {
    if encoded.dropped > 0 {
        counters
            .refused
            .fetch_add(encoded.dropped as u64, Ordering::Relaxed);
        tracing::debug!(
            dropped = encoded.dropped,
            "Zipkin spans with an all-zero trace or span id dropped"
        );
    }
    let spans = encoded.spans;
    if spans == 0 {
        return StatusCode::ACCEPTED.into_response();
    }
    let batch = Batch::new(Signal::Traces, Bytes::from(encoded.bytes), spans);
    match state.next.reserve(&batch) {
        Ok(reservation) => {
            reservation.commit(batch);
            counters.accepted.fetch_add(spans as u64, Ordering::Relaxed);
            StatusCode::ACCEPTED.into_response()
        }
        Err(refused) => {
            counters.refused.fetch_add(spans as u64, Ordering::Relaxed);
            tracing::debug!(%refused, spans, "pipeline refused Zipkin spans");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("pipeline is full, retry later: {refused}"),
            )
        }
    }
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn too_large(max: usize) -> Response {
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than max_request_body_size ({max} bytes)"),
    )
}

fn over_budget(budget: &BodyBudget) -> Response {
    tracing::debug!(
        budget_bytes = budget.capacity(),
        in_use_bytes = budget.in_use(),
        "Zipkin request refused: request bodies in flight over the receiver's budget"
    );
    let mut resp = text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "request bodies in flight are over this receiver's budget ({} bytes), retry later",
            budget.capacity()
        ),
    );
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

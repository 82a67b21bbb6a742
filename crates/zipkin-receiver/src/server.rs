//! The HTTP side: every path takes Zipkin v2 spans (JSON, or protobuf when the Content-Type
//! says `application/x-protobuf`), as otelcol's handler does; a path with `api/v1/spans` is
//! Zipkin v1, which Redline refuses with a message saying so.
//!
//! Answers are otelcol's: 202 when the spans are in the pipeline, 400 with the reason when
//! the body is not Zipkin, 500 when the pipeline refused them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, StatusCode};
use redline_http_server::body::{drain, UNREAD_BODY_DRAINED};
use redline_http_server::receive::{authenticate, header, read_request_body, text, BodyLimits};
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{Batch, ClientMetadata, Consumer, Signal};

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
    pub limits: BodyLimits,
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    pub auth: Option<Arc<dyn ServerAuthenticator>>,
    pub v1_logged: AtomicBool,
    /// `include_metadata`: each request's headers travel with its spans.
    pub include_metadata: bool,
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

async fn handle_inner(state: &ZipkinState, req: Request) -> Response {
    let req = match authenticate(state.auth.as_ref(), req, "zipkin").await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
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
    let client = state.include_metadata.then(|| {
        ClientMetadata::from_headers(req.headers(), req.uri().authority().map(|a| a.as_str()))
    });
    let body = match read_request_body(req, &state.limits).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
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
    ingest(state, request, client, counters)
}

/// Hands the translated spans to the pipeline.
fn ingest(
    state: &ZipkinState,
    encoded: translate::Encoded,
    client: Option<ClientMetadata>,
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
    let mut batch = Batch::new(Signal::Traces, Bytes::from(encoded.bytes), spans);
    batch.set_client(client);
    match state.next.reserve(&batch) {
        Ok(reservation) => {
            reservation.commit(batch);
            counters.accepted.fetch_add(spans as u64, Ordering::Relaxed);
            StatusCode::ACCEPTED.into_response()
        }
        Err(refused) => {
            counters.refused.fetch_add(spans as u64, Ordering::Relaxed);
            tracing::debug!(%refused, spans, "pipeline refused Zipkin spans");
            // otelcol's zipkin receiver answers a permanent error 400, so that the
            // reporter does not send the spans again.
            let (status, message) = match refused.permanent {
                true => (StatusCode::BAD_REQUEST, "Permanent error"),
                false => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "pipeline is full, retry later",
                ),
            };
            text(status, format!("{message}: {refused}"))
        }
    }
}

//! The answers of the OTLP/HTTP server. Errors of a request whose encoding is known carry a
//! `google.rpc.Status` in that encoding, as the OTLP/HTTP spec asks; the others are plain
//! text.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use prost::Message;
use redline_pipeline::rpc_status::{ExportResponse, PartialSuccess};

use super::body::Kind;
use crate::ingest::INVALID_IDS_MESSAGE;
use crate::rpc;

fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub(super) fn plain(code: StatusCode, message: String) -> Response {
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

pub(super) fn too_large(kind: Kind, limit: usize) -> Response {
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
        StatusCode::INTERNAL_SERVER_ERROR => rpc::CODE_INTERNAL,
        _ => rpc::CODE_INVALID_ARGUMENT,
    }
}

pub(super) fn status_response(kind: Kind, code: StatusCode, message: &str) -> Response {
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

/// 503 with RetryInfo in the body and Retry-After (whole seconds, rounded up) in the headers.
pub(super) fn retry_response(kind: Kind, message: &str, retry_after: Duration) -> Response {
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
    let mut resp = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()))],
        body,
    )
        .into_response();
    resp.headers_mut().insert(
        RETRY_AFTER,
        HeaderValue::from(retry_after_secs(retry_after)),
    );
    resp
}

/// 200 with the partial success, if any. Only spans are ever rejected (invalid ids).
pub(super) fn success(kind: Kind, rejected_spans: usize) -> Response {
    let body = match kind {
        Kind::Protobuf => {
            let partial_success = (rejected_spans > 0).then(|| PartialSuccess {
                rejected: rejected_spans as i64,
                error_message: INVALID_IDS_MESSAGE.to_owned(),
            });
            Bytes::from(ExportResponse { partial_success }.encode_to_vec())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 0);
    }
}

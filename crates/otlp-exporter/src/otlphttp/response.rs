//! What an OTLP/HTTP answer means, per the OTLP specification as otelcol reads it: a 2xx is
//! success, its body possibly a partial success; 429, 502, 503 and 504 are worth retrying,
//! after `Retry-After` when given; every other status is permanent. Error bodies are
//! `google.rpc.Status` messages (protobuf, or JSON from some servers) whose message goes to
//! the log.

use std::time::SystemTime;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use prost::Message;
use redline_http_client::{retry_after, Answer};
use redline_pipeline::rpc_status::{retry_delay, ExportResponse, PartialSuccess, RpcStatus};

use crate::retry::Verdict;
use crate::transport::Failure;

/// The answer to one attempt, judged.
pub(crate) fn judge(answer: Answer) -> Result<ExportResponse, Failure> {
    let Answer {
        status,
        headers,
        body,
    } = answer;
    if status.is_success() {
        return Ok(partial_success(&headers, &body));
    }
    let message = error_message(&headers, &body);
    let verdict = if retryable(status) {
        // The header is the spec's way; a RetryInfo in the Status body is gRPC's, which some
        // servers also send over HTTP.
        let delay = retry_after(&headers, SystemTime::now())
            .or_else(|| is_protobuf(&headers).then(|| retry_delay(&body)).flatten());
        Verdict::Retry { min_delay: delay }
    } else {
        Verdict::Permanent
    };
    Err(Failure {
        verdict,
        code: format!("HTTP {}", status.as_u16()),
        message,
    })
}

/// The statuses OTLP/HTTP clients retry (otelcol's list).
fn retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    matches!(
        media_type(headers).as_str(),
        "application/x-protobuf" | "application/protobuf"
    )
}

/// The partial success in a 2xx body. A body Redline cannot read counts as full success:
/// the server took the data, and sending it again would duplicate it (otelcol retries here).
fn partial_success(headers: &HeaderMap, body: &[u8]) -> ExportResponse {
    if body.is_empty() {
        return ExportResponse::default();
    }
    let decoded = match media_type(headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => {
            ExportResponse::decode(body).map_err(|e| e.to_string())
        }
        "application/json" => json_partial_success(body),
        // otelcol ignores bodies of other types.
        _ => Ok(ExportResponse::default()),
    };
    decoded.unwrap_or_else(|e| {
        tracing::warn!(
            error = %e,
            "the server accepted the export but its response cannot be read; counting everything as sent"
        );
        ExportResponse::default()
    })
}

/// `{"partialSuccess": {"rejectedSpans": "3", "errorMessage": "…"}}` and its metrics and logs
/// forms. int64 counts may be strings (the protobuf JSON mapping) or numbers.
fn json_partial_success(body: &[u8]) -> Result<ExportResponse, String> {
    let doc: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(p) = doc.get("partialSuccess").filter(|p| !p.is_null()) else {
        return Ok(ExportResponse::default());
    };
    let count = ["rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"]
        .iter()
        .find_map(|k| p.get(*k))
        .map(|v| match v {
            serde_json::Value::String(s) => s
                .parse::<i64>()
                .map_err(|_| format!("rejected count `{s}` is not a number")),
            other => other
                .as_i64()
                .ok_or_else(|| format!("rejected count `{other}` is not a number")),
        })
        .transpose()?
        .unwrap_or(0);
    let message = p
        .get("errorMessage")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok(ExportResponse {
        partial_success: Some(PartialSuccess {
            rejected: count,
            error_message: message,
        }),
    })
}

/// What went wrong, from the error body: a `google.rpc.Status` message when there is one,
/// else the (bounded) text.
fn error_message(headers: &HeaderMap, body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    if is_protobuf(headers) {
        if let Ok(status) = RpcStatus::decode(body) {
            return status.message;
        }
    }
    if media_type(headers) == "application/json" {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
        if let Some(m) = message {
            return m;
        }
    }
    const SHOWN: usize = 512;
    let text = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use bytes::Bytes;
    use http::HeaderValue;
    use redline_pipeline::rpc_status::encode_status;

    fn answer(status: u16, content_type: Option<&str>, body: &[u8]) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("ascii"));
        }
        Answer {
            status: StatusCode::from_u16(status).expect("status"),
            headers,
            body: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn statuses_are_judged_like_otelcol() {
        for s in [429, 502, 503, 504] {
            let f = judge(answer(s, None, b"")).expect_err("failure");
            assert_eq!(f.verdict, Verdict::Retry { min_delay: None }, "{s}");
        }
        for s in [400, 401, 403, 404, 405, 413, 500, 501, 301] {
            let f = judge(answer(s, None, b"")).expect_err("failure");
            assert_eq!(f.verdict, Verdict::Permanent, "{s}");
        }
        assert!(judge(answer(200, None, b"")).is_ok());
        assert!(judge(answer(202, Some("text/plain"), b"ok")).is_ok());
    }

    #[test]
    fn error_messages_come_from_status_bodies() {
        let body = encode_status(3, "bad span", None);
        let f = judge(answer(400, Some("application/x-protobuf"), &body)).expect_err("400");
        assert_eq!(
            (f.code.as_str(), f.message.as_str()),
            ("HTTP 400", "bad span")
        );
        let f = judge(answer(
            400,
            Some("application/json; charset=utf-8"),
            br#"{"code":3,"message":"json says no"}"#,
        ))
        .expect_err("400");
        assert_eq!(f.message, "json says no");
        let f = judge(answer(500, Some("text/html"), b"  <h1>oops</h1>\n")).expect_err("500");
        assert_eq!(f.message, "<h1>oops</h1>");
    }

    #[test]
    fn retry_info_in_the_body_is_honoured_without_the_header() {
        let body = encode_status(14, "later", Some(Duration::from_secs(7)));
        let f = judge(answer(503, Some("application/x-protobuf"), &body)).expect_err("503");
        assert_eq!(
            f.verdict,
            Verdict::Retry {
                min_delay: Some(Duration::from_secs(7))
            }
        );
    }

    #[test]
    fn partial_success_in_protobuf_and_json() {
        let proto = ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 4,
                error_message: "four bad".into(),
            }),
        }
        .encode_to_vec();
        let r = judge(answer(200, Some("application/x-protobuf"), &proto)).expect("ok");
        assert_eq!(r.partial_success.map(|p| p.rejected), Some(4));
        for body in [
            &br#"{"partialSuccess":{"rejectedLogRecords":"5","errorMessage":"m"}}"#[..],
            br#"{"partialSuccess":{"rejectedDataPoints":5}}"#,
        ] {
            let r = judge(answer(200, Some("application/json"), body)).expect("ok");
            assert_eq!(r.partial_success.map(|p| p.rejected), Some(5));
        }
        let r = judge(answer(
            200,
            Some("application/json"),
            br#"{"partialSuccess":{}}"#,
        ))
        .expect("ok");
        assert_eq!(r.partial_success.map(|p| p.rejected), Some(0));
        let r = judge(answer(200, Some("application/x-protobuf"), b"\xff\xff")).expect("ok");
        assert_eq!(r.partial_success, None, "unreadable counts as success");
    }
}

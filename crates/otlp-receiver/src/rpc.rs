//! The OTLP error bodies this receiver answers with (`redline_pipeline::rpc_status`), as
//! `Bytes` for the response body or the `grpc-status-details-bin` trailer.

use std::time::Duration;

use bytes::Bytes;
use redline_pipeline::rpc_status::encode_status;

pub(crate) use redline_pipeline::rpc_status::RETRY_INFO_TYPE_URL;

/// gRPC status codes used here (google.rpc.Code).
pub(crate) const CODE_INVALID_ARGUMENT: i32 = 3;
pub(crate) const CODE_RESOURCE_EXHAUSTED: i32 = 8;
pub(crate) const CODE_INTERNAL: i32 = 13;
pub(crate) const CODE_UNAVAILABLE: i32 = 14;
pub(crate) const CODE_UNAUTHENTICATED: i32 = 16;

/// An encoded google.rpc.Status carrying a RetryInfo detail, as OTLP asks for retryable
/// refusals.
pub(crate) fn status_with_retry(code: i32, message: &str, retry_after: Duration) -> Bytes {
    Bytes::from(encode_status(code, message, Some(retry_after)))
}

/// An encoded google.rpc.Status with no details.
pub(crate) fn status(code: i32, message: &str) -> Bytes {
    Bytes::from(encode_status(code, message, None))
}

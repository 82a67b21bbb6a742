//! The few `google.rpc` messages OTLP error answers carry, defined here rather than pulling in
//! tonic-types and prost-types for three structs.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;

/// `google.rpc.Status`: the body of OTLP/HTTP errors and gRPC's `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// gRPC status codes used here (google.rpc.Code).
pub(crate) const CODE_INVALID_ARGUMENT: i32 = 3;
pub(crate) const CODE_RESOURCE_EXHAUSTED: i32 = 8;
pub(crate) const CODE_UNAVAILABLE: i32 = 14;
pub(crate) const CODE_UNAUTHENTICATED: i32 = 16;

/// An encoded google.rpc.Status carrying a RetryInfo detail, as OTLP asks for retryable
/// refusals.
pub(crate) fn status_with_retry(code: i32, message: &str, retry_after: Duration) -> Bytes {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX),
            nanos: retry_after.subsec_nanos() as i32,
        }),
    };
    let status = RpcStatus {
        code,
        message: message.to_owned(),
        details: vec![Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: retry.encode_to_vec(),
        }],
    };
    Bytes::from(status.encode_to_vec())
}

/// An encoded google.rpc.Status with no details.
pub(crate) fn status(code: i32, message: &str) -> Bytes {
    Bytes::from(
        RpcStatus {
            code,
            message: message.to_owned(),
            details: Vec::new(),
        }
        .encode_to_vec(),
    )
}

//! When to retry a failed export, following the OTLP specification's table of retryable gRPC
//! codes and the server's RetryInfo. How long to wait is the pipeline's backoff
//! (`redline_pipeline::retry`).

use std::time::Duration;

use prost::Message;
use tonic::Code;

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, waiting at least `min_delay` (the server's RetryInfo) if given.
    Retry { min_delay: Option<Duration> },
    /// The server will refuse this data again: drop it.
    Permanent,
}

/// Classifies a gRPC status per the OTLP spec: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
/// OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when the
/// server says when to come back (RetryInfo), since otherwise it means "too big, never".
pub fn classify(code: Code, details: &[u8]) -> Verdict {
    let retry_info = retry_delay(details);
    match code {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Verdict::Retry {
            min_delay: retry_info,
        },
        Code::ResourceExhausted if retry_info.is_some() => Verdict::Retry {
            min_delay: retry_info,
        },
        _ => Verdict::Permanent,
    }
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The server's RetryInfo delay, if the status details carry one. Malformed details are
/// ignored: they come from the network and must not turn into an error of ours.
pub fn retry_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    status
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))
        .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay)
        .map(|d| {
            let secs = u64::try_from(d.seconds).unwrap_or(0);
            let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
            // A server asking for hours is capped: the elapsed-time limit still applies, and
            // an absurd value must not park a sender forever.
            Duration::new(secs.min(3600), nanos)
        })
}

/// Encodes a RetryInfo status detail; used by tests and fake servers.
pub fn encode_retry_info(code: Code, message: &str, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: vec![Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_like_the_otlp_spec() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(
                classify(code, &[]),
                Verdict::Retry { min_delay: None },
                "{code:?}"
            );
        }
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::NotFound,
            Code::Unimplemented,
            Code::Internal,
            Code::Unknown,
            Code::ResourceExhausted,
        ] {
            assert_eq!(classify(code, &[]), Verdict::Permanent, "{code:?}");
        }
        let details = encode_retry_info(
            Code::ResourceExhausted,
            "slow down",
            Duration::from_millis(1500),
        );
        assert_eq!(
            classify(Code::ResourceExhausted, &details),
            Verdict::Retry {
                min_delay: Some(Duration::from_millis(1500))
            }
        );
        assert_eq!(retry_delay(b"\xff\xff garbage"), None);
    }
}

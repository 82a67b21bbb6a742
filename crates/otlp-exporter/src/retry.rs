//! When to retry a failed export, following the OTLP specification's table of retryable gRPC
//! codes and the server's RetryInfo. How long to wait is the pipeline's backoff
//! (`redline_pipeline::retry`).

use std::time::Duration;

use redline_pipeline::rpc_status::encode_status;
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

/// The server's RetryInfo delay, if the status details carry one (capped at an hour).
pub use redline_pipeline::rpc_status::retry_delay;

/// Encodes a RetryInfo status detail; used by tests and fake servers.
pub fn encode_retry_info(code: Code, message: &str, delay: Duration) -> Vec<u8> {
    encode_status(code as i32, message, Some(delay))
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

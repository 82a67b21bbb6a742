//! OTLP's error model on the wire: `google.rpc.Status` with an optional `RetryInfo` detail,
//! the body of OTLP/HTTP errors and gRPC's `grpc-status-details-bin`. Receivers write it to
//! tell clients when to come back; exporters read it to know when Tempo wants them back.
//! Defined here, rather than pulling in tonic-types and prost-types for four small messages.

use std::time::Duration;

use prost::Message;

/// `google.rpc.Status`.
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

/// The longest wait a server's RetryInfo is taken at: a sender's elapsed-time limit still
/// applies, and an absurd value must not park it for hours.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// An encoded `google.rpc.Status`, with a RetryInfo detail when `retry_after` is given (what
/// OTLP asks for on retryable refusals).
pub fn encode_status(code: i32, message: &str, retry_after: Option<Duration>) -> Vec<u8> {
    let details = retry_after
        .map(|delay| {
            let info = RetryInfo {
                retry_delay: Some(ProtoDuration {
                    seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                    nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
                }),
            };
            Any {
                type_url: RETRY_INFO_TYPE_URL.to_owned(),
                value: info.encode_to_vec(),
            }
        })
        .into_iter()
        .collect();
    RpcStatus {
        code,
        message: message.to_owned(),
        details,
    }
    .encode_to_vec()
}

/// The RetryInfo delay in an encoded status, if it carries one, capped at
/// [`MAX_RETRY_DELAY`]. Malformed bytes are no delay: they come from the network and must not
/// turn into an error of ours.
pub fn retry_delay(status: &[u8]) -> Option<Duration> {
    if status.is_empty() {
        return None;
    }
    RpcStatus::decode(status)
        .ok()?
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("/google.rpc.RetryInfo"))
        .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay)
        .map(|d| {
            let secs = u64::try_from(d.seconds).unwrap_or(0);
            let nanos = u32::try_from(d.nanos).unwrap_or(0).min(999_999_999);
            Duration::new(secs, nanos).min(MAX_RETRY_DELAY)
        })
}

/// Any signal's export response. `ExportTraceServiceResponse`,
/// `ExportMetricsServiceResponse` and `ExportLogsServiceResponse` share one wire layout:
/// field 1 is the partial success, whose field 1 is the count rejected (`rejected_spans`,
/// `rejected_data_points`, `rejected_log_records`) and field 2 the message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

/// Any signal's partial success.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialSuccess {
    /// Items the server rejected and that must not be retried.
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_delay_survives_the_round_trip() {
        let bytes = encode_status(14, "busy", Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&bytes), Some(Duration::from_millis(1500)));
        let status = RpcStatus::decode(bytes.as_slice()).expect("decodes");
        assert_eq!((status.code, status.message.as_str()), (14, "busy"));

        let plain = encode_status(3, "bad", None);
        assert_eq!(retry_delay(&plain), None);
        assert!(RpcStatus::decode(plain.as_slice())
            .expect("decodes")
            .details
            .is_empty());
    }

    #[test]
    fn hostile_details_are_no_delay_or_a_capped_one() {
        assert_eq!(retry_delay(&[]), None);
        assert_eq!(retry_delay(&[0xff, 0xff, 0xff]), None);
        let forever = encode_status(14, "", Some(Duration::from_secs(u64::MAX / 2)));
        assert_eq!(retry_delay(&forever), Some(MAX_RETRY_DELAY));
        let negative = RpcStatus {
            code: 14,
            message: String::new(),
            details: vec![Any {
                type_url: RETRY_INFO_TYPE_URL.to_owned(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: -5,
                        nanos: -1,
                    }),
                }
                .encode_to_vec(),
            }],
        };
        assert_eq!(retry_delay(&negative.encode_to_vec()), Some(Duration::ZERO));
    }
}

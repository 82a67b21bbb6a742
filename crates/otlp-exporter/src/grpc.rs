//! The unary `Export` call, made directly on tonic's `Channel` (which keeps connecting, TLS and
//! the HTTP/2 connection): Redline frames and compresses the message itself (see `codec`), and
//! tonic's own `Streaming` decodes the answer, so status codes, trailers, `grpc-status-details-bin`
//! and compressed responses are handled exactly as by a tonic client.

use std::time::Duration;

use futures::future::poll_fn;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE};
use http::{HeaderMap, Method, Uri, Version};
use tonic::codec::{CompressionEncoding, Streaming};
use tonic::codegen::Service;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::codec::Message;
use redline_pipeline::rpc_status::ExportResponse;

const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Largest response accepted: tonic's default; an export response is tiny.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Sends `Export` calls of one signal on one channel with a fixed set of headers.
#[derive(Clone, Debug)]
pub struct ExportClient {
    channel: Channel,
    /// The signal's `Export` method.
    path: &'static str,
    /// Everything but `grpc-encoding`, which depends on the message.
    headers: HeaderMap,
}

impl ExportClient {
    /// `user_headers` are sent with every call; `timeout` is announced to the server as
    /// `grpc-timeout` (the caller enforces it too).
    pub fn new(
        channel: Channel,
        path: &'static str,
        mut user_headers: HeaderMap,
        timeout: Option<Duration>,
    ) -> Self {
        user_headers.insert(TE, HeaderValue::from_static("trailers"));
        user_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        user_headers.insert(
            GRPC_ACCEPT_ENCODING,
            HeaderValue::from_static("gzip,zstd,identity"),
        );
        if let Some(value) = timeout.and_then(grpc_timeout) {
            user_headers.insert(GRPC_TIMEOUT, value);
        }
        Self {
            channel,
            path,
            headers: user_headers,
        }
    }

    /// One attempt: sends `message` and returns the server's answer or its status.
    pub async fn export(&self, message: &Message) -> Result<ExportResponse, Status> {
        let mut request = http::Request::new(tonic::body::Body::new(message.body()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static(self.path);
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.headers.clone();
        if let Some(encoding) = message.encoding {
            request
                .headers_mut()
                .insert(GRPC_ENCODING, HeaderValue::from_static(encoding));
        }

        let mut channel = self.channel.clone();
        poll_fn(|cx| channel.poll_ready(cx))
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let response = channel
            .call(request)
            .await
            .map_err(|e| Status::from_error(e.into()))?;

        let encoding = response_encoding(response.headers())?;
        let http_status = response.status();
        // A "trailers-only" answer carries its grpc-status in the headers and no message.
        let trailers_only = Status::from_header_map(response.headers());
        if let Some(status) = &trailers_only {
            if status.code() != Code::Ok {
                return Err(status.clone());
            }
        }
        let decoder = tonic_prost::ProstDecoder::<ExportResponse>::default();
        let body = response.into_body();
        let mut stream = if trailers_only.is_some() {
            Streaming::new_empty(decoder, body)
        } else {
            Streaming::new_response(
                decoder,
                body,
                http_status,
                encoding,
                Some(MAX_RESPONSE_BYTES),
            )
        };
        let answer = stream
            .message()
            .await?
            .ok_or_else(|| Status::internal("the server sent no response message"))?;
        // A grpc-status sent after the message is only seen by reading the trailers.
        stream.trailers().await?;
        Ok(answer)
    }
}

/// How the response message is compressed, from its `grpc-encoding` header.
fn response_encoding(headers: &HeaderMap) -> Result<Option<CompressionEncoding>, Status> {
    match headers.get(GRPC_ENCODING).map(HeaderValue::as_bytes) {
        None | Some(b"identity") => Ok(None),
        Some(b"gzip") => Ok(Some(CompressionEncoding::Gzip)),
        Some(b"zstd") => Ok(Some(CompressionEncoding::Zstd)),
        Some(other) => Err(Status::unimplemented(format!(
            "the response is compressed with `{}`, which Redline did not ask for",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// `grpc-timeout` for `t`: at most 8 digits, in the finest unit that fits (gRPC's HTTP/2
/// spec), so a server never sees a later deadline than ours.
fn grpc_timeout(t: Duration) -> Option<HeaderValue> {
    const MAX: u128 = 99_999_999;
    let units: [(u128, char); 5] = [
        (t.as_nanos(), 'n'),
        (t.as_micros(), 'u'),
        (t.as_millis(), 'm'),
        (u128::from(t.as_secs()), 'S'),
        (u128::from(t.as_secs() / 60), 'M'),
    ];
    let value = units
        .iter()
        .find(|(v, _)| *v <= MAX)
        .map(|(v, unit)| format!("{v}{unit}"))
        .unwrap_or_else(|| format!("{}H", (t.as_secs() / 3600).min(MAX as u64)));
    HeaderValue::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_uses_the_finest_unit_with_at_most_8_digits() {
        let t = |d: Duration| {
            grpc_timeout(d)
                .map(|v| v.to_str().expect("ascii").to_owned())
                .expect("some")
        };
        assert_eq!(t(Duration::from_millis(50)), "50000000n");
        assert_eq!(t(Duration::from_secs(5)), "5000000u");
        assert_eq!(t(Duration::from_secs(30)), "30000000u");
        assert_eq!(t(Duration::from_secs(300)), "300000m");
        assert_eq!(t(Duration::from_secs(200_000)), "200000S");
        assert_eq!(t(Duration::from_secs(60 * 99_999_999 + 5)), "99999999M");
        assert_eq!(t(Duration::MAX), "99999999H");
    }

    #[test]
    fn response_encodings() {
        let mut h = HeaderMap::new();
        assert_eq!(response_encoding(&h).expect("none"), None);
        h.insert(GRPC_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(response_encoding(&h).expect("identity"), None);
        h.insert(GRPC_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            response_encoding(&h).expect("gzip"),
            Some(CompressionEncoding::Gzip)
        );
        h.insert(GRPC_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(
            response_encoding(&h).expect_err("unknown").code(),
            Code::Unimplemented
        );
    }
}

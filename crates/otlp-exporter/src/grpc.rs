//! The unary `Export` call, made directly on tonic's `Channel` (which keeps connecting, TLS and
//! the HTTP/2 connection): Redline frames and compresses the message itself (see `codec`), and
//! tonic's own `Streaming` decodes the answer, so status codes, trailers, `grpc-status-details-bin`
//! and compressed responses are handled exactly as by a tonic client. tonic has no snappy:
//! a snappy response (grpc-go answers in the request's encoding) is inflated here first.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::poll_fn;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE};
use http::{HeaderMap, Method, Uri, Version};
use http_body::Frame;
use http_body_util::BodyExt;
use tonic::codec::{CompressionEncoding, Streaming};
use tonic::codegen::Service;
use tonic::{Code, Status};

use crate::balance::{connection_backoff, is_connect_error, BoxError, Channels, ResolveIfDropped};
use crate::codec::Message;
use redline_pipeline::extension::ClientAuthenticator;
use redline_pipeline::rpc_status::ExportResponse;
use redline_pipeline::ClientMetadata;

const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Adds a call's credentials beside its configured headers, never over them, and ahead of a
/// configured value of the same name: grpc-go writes a call's per-RPC credentials first,
/// then the metadata the exporter set, so a server reading one value finds the credential.
fn put_credentials_first(headers: &mut HeaderMap, credentials: HeaderMap) {
    for name in credentials.keys() {
        let configured: Vec<HeaderValue> = match headers.entry(name) {
            http::header::Entry::Occupied(entry) => entry.remove_entry_mult().1.collect(),
            http::header::Entry::Vacant(_) => Vec::new(),
        };
        for value in credentials.get_all(name).iter().cloned().chain(configured) {
            headers.append(name.clone(), value);
        }
    }
}

/// Largest response accepted: tonic's default; an export response is tiny.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Sends `Export` calls of one signal on one channel with a fixed set of headers.
#[derive(Clone)]
pub(crate) struct ExportClient {
    channels: Channels,
    /// The signal's `Export` method.
    path: &'static str,
    /// grpc-go's `WaitForReady`: no failing fast while no connection can be made.
    wait_for_ready: bool,
    /// Everything but `grpc-encoding`, which depends on the message, and the credentials.
    headers: HeaderMap,
    /// Adds its credentials to every call (`auth`).
    auth: Option<Arc<dyn ClientAuthenticator>>,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportClient")
            .field("path", &self.path)
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl ExportClient {
    /// `user_headers` are sent with every call; `timeout` is announced to the server as
    /// `grpc-timeout` (the caller enforces it too).
    pub(crate) fn new(
        channels: Channels,
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
            channels,
            path,
            headers: user_headers,
            auth: None,
            wait_for_ready: false,
        }
    }

    /// Calls wait for a connection instead of failing while none can be made
    /// (`wait_for_ready`); the caller's timeout bounds the wait.
    pub(crate) fn waiting_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// Every call gets `auth`'s credentials too.
    pub fn with_auth(mut self, auth: Option<Arc<dyn ClientAuthenticator>>) -> Self {
        self.auth = auth;
        self
    }

    /// One attempt: sends `message` and returns the server's answer or its status. `client`
    /// is the metadata of the client whose data it carries, for the credentials.
    pub(crate) async fn export(
        &self,
        message: &Message,
        client: Option<&ClientMetadata>,
    ) -> Result<ExportResponse, Status> {
        let mut headers = self.headers.clone();
        if let Some(auth) = &self.auth {
            // `headers_setter`'s actions see only the credentials, which start empty.
            let mut credentials = HeaderMap::new();
            auth.add_credentials(&mut credentials, client)
                .map_err(|e| Status::unauthenticated(format!("no credentials to send: {e}")))?;
            put_credentials_first(&mut headers, credentials);
        }
        if let Some(encoding) = message.encoding {
            headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding));
        }
        let response = self.call_when_ready(message, headers).await?;

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
        let (body, encoding) = match encoding {
            ResponseEncoding::Snappy if trailers_only.is_none() => {
                (inflated_snappy_response(body).await?, None)
            }
            ResponseEncoding::Snappy => (body, None),
            ResponseEncoding::Tonic(encoding) => (body, encoding),
        };
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

    /// [`ExportClient::call`], again after grpc-go's connection backoff while no connection
    /// can be made, when the exporter waits for ready. Only the caller's timeout ends the
    /// wait, as the call's deadline ends grpc-go's.
    async fn call_when_ready(
        &self,
        message: &Message,
        headers: HeaderMap,
    ) -> Result<http::Response<tonic::body::Body>, Status> {
        if !self.wait_for_ready {
            return self
                .call(message, headers)
                .await
                .map_err(CallFailure::status);
        }
        let mut failures = 0;
        loop {
            match self.call(message, headers.clone()).await {
                Ok(response) => return Ok(response),
                Err(CallFailure::Failed(status)) => return Err(status),
                Err(CallFailure::NoConnection(status)) => {
                    failures += 1;
                    // Balanced, the next try is when an address's own backoff ends (or the
                    // name may be resolved again): grpc-go's reconnect schedule. One channel
                    // keeps no such state, so the call backs off as the channel would.
                    let wait = match &self.channels {
                        Channels::RoundRobin(rr) => rr.ready_in().max(Duration::from_millis(10)),
                        Channels::One(_) => connection_backoff(failures),
                    };
                    tracing::debug!(
                        %status,
                        wait_ms = wait.as_millis() as u64,
                        "waiting for a connection (wait_for_ready)"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Sends the call, on the next address in turn when balanced; an address that cannot be
    /// connected to had nothing sent, so the call goes on to the next one that is up.
    async fn call(
        &self,
        message: &Message,
        mut headers: HeaderMap,
    ) -> Result<http::Response<tonic::body::Body>, CallFailure> {
        let mut refused = Vec::new();
        loop {
            let picked = self
                .channels
                .pick(&refused)
                .await
                .map_err(CallFailure::NoConnection)?;
            // A copy only where another address may need the call again.
            let headers = match picked.fallback {
                true => headers.clone(),
                false => std::mem::take(&mut headers),
            };
            let mut channel = picked.channel;
            poll_fn(|cx| channel.poll_ready(cx)).await.map_err(|e| {
                CallFailure::Failed(Status::unavailable(format!("channel not ready: {e}")))
            })?;
            let mut request = http::Request::new(tonic::body::Body::new(message.body()));
            *request.method_mut() = Method::POST;
            *request.uri_mut() = Uri::from_static(self.path);
            *request.version_mut() = Version::HTTP_2;
            *request.headers_mut() = headers;
            let (Channels::RoundRobin(rr), Some(address)) = (&self.channels, picked.address) else {
                return channel
                    .call(request)
                    .await
                    .map_err(|e| CallFailure::of(BoxError::from(e)));
            };
            // Until it has an answer: a call given up (its timeout) may be stuck connecting.
            let unanswered = ResolveIfDropped::new(rr);
            let error = match channel.call(request).await {
                Ok(response) => {
                    unanswered.answered();
                    return Ok(response);
                }
                Err(error) => BoxError::from(error),
            };
            // Its connector has left the address out already; nothing was sent, so the
            // next address that is up takes the call.
            if is_connect_error(&*error) {
                if !picked.fallback {
                    return Err(CallFailure::NoConnection(rr.none_connects()));
                }
                refused.push(address.address);
                continue;
            }
            // Sent, and the connection broke: the exporter's retry decides.
            return Err(CallFailure::Failed(Status::from_error(error)));
        }
    }
}

/// Why a call got no response.
enum CallFailure {
    /// No connection could be made, or no address is known: nothing was sent.
    NoConnection(Status),
    /// Sent, or failed for another reason.
    Failed(Status),
}

impl CallFailure {
    fn of(error: BoxError) -> Self {
        match is_connect_error(&*error) {
            true => Self::NoConnection(Status::from_error(error)),
            false => Self::Failed(Status::from_error(error)),
        }
    }

    fn status(self) -> Status {
        match self {
            Self::NoConnection(status) | Self::Failed(status) => status,
        }
    }
}

/// How the response message is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResponseEncoding {
    /// Decoded by tonic (`None`: not compressed).
    Tonic(Option<CompressionEncoding>),
    /// The snappy framed format, inflated by [`inflated_snappy_response`].
    Snappy,
}

/// How the response message is compressed, from its `grpc-encoding` header.
fn response_encoding(headers: &HeaderMap) -> Result<ResponseEncoding, Status> {
    let tonic = |e| Ok(ResponseEncoding::Tonic(e));
    match headers.get(GRPC_ENCODING).map(HeaderValue::as_bytes) {
        None | Some(b"identity") => tonic(None),
        Some(b"gzip") => tonic(Some(CompressionEncoding::Gzip)),
        Some(b"zstd") => tonic(Some(CompressionEncoding::Zstd)),
        // grpc-go answers a snappy request in snappy, whatever the client accepts.
        Some(b"snappy") => Ok(ResponseEncoding::Snappy),
        Some(other) => Err(Status::unimplemented(format!(
            "the response is compressed with `{}`, which Redline did not ask for",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// A snappy response read whole (at most [`MAX_RESPONSE_BYTES`] as sent and per message
/// inflated) and handed to tonic as the same messages uncompressed, trailers kept.
async fn inflated_snappy_response(body: tonic::body::Body) -> Result<tonic::body::Body, Status> {
    let collected = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES + 5)
        .collect()
        .await
        .map_err(|e| Status::internal(format!("reading the snappy response: {e}")))?;
    let trailers = collected.trailers().cloned();
    let data = collected.to_bytes();
    let mut out = BytesMut::with_capacity(data.len() * 2);
    let mut rest = &data[..];
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_first_chunk::<5>() else {
            return Err(Status::internal(
                "the snappy response ends inside a message prefix",
            ));
        };
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        let Some((payload, tail)) = tail.split_at_checked(len) else {
            return Err(Status::internal(
                "the snappy response ends inside a message",
            ));
        };
        let mut message = Vec::new();
        if prefix[0] == 0 {
            message.extend_from_slice(payload);
        } else {
            snap::read::FrameDecoder::new(payload)
                .take(MAX_RESPONSE_BYTES as u64 + 1)
                .read_to_end(&mut message)
                .map_err(|e| {
                    Status::internal(format!(
                        "Error decompressing: {e}, while receiving response"
                    ))
                })?;
            if message.len() > MAX_RESPONSE_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "Error decompressing: size limit, of {MAX_RESPONSE_BYTES} bytes, exceeded while decompressing message"
                )));
            }
        }
        out.put_u8(0);
        out.put_u32(message.len() as u32);
        out.put_slice(&message);
        rest = tail;
    }
    let mut frames = vec![Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(
        out,
    )))];
    frames.extend(trailers.map(|t| Ok(Frame::trailers(t))));
    Ok(tonic::body::Body::new(http_body_util::StreamBody::new(
        futures::stream::iter(frames),
    )))
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
    fn credentials_go_ahead_of_configured_values_of_their_name() {
        let mut headers = HeaderMap::new();
        headers.insert("x-existing", HeaderValue::from_static("orig"));
        headers.insert("x-other", HeaderValue::from_static("kept"));
        let mut credentials = HeaderMap::new();
        credentials.append("x-existing", HeaderValue::from_static("set-1"));
        credentials.append("x-existing", HeaderValue::from_static("set-2"));
        credentials.insert("x-absent", HeaderValue::from_static("set"));
        put_credentials_first(&mut headers, credentials);
        let all = |name: &str| -> Vec<&str> {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().expect("text"))
                .collect()
        };
        assert_eq!(all("x-existing"), ["set-1", "set-2", "orig"]);
        assert_eq!(all("x-absent"), ["set"]);
        assert_eq!(all("x-other"), ["kept"]);
    }

    #[tokio::test]
    async fn snappy_responses_are_handed_to_tonic_uncompressed() {
        use std::io::Write;
        let answer = b"\x0a\x05\x08\x02\x12\x01x".repeat(40);
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(&answer).expect("in-memory write");
        let framed = w.into_inner().expect("in-memory flush");
        let mut wire = vec![1];
        wire.extend_from_slice(&(framed.len() as u32).to_be_bytes());
        wire.extend_from_slice(&framed);
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let frames = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(wire))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = tonic::body::Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        let out = inflated_snappy_response(body)
            .await
            .expect("inflates")
            .collect()
            .await
            .expect("infallible");
        assert_eq!(
            out.trailers().map(|t| t["grpc-status"].clone()),
            Some(HeaderValue::from_static("0"))
        );
        let mut want = vec![0];
        want.extend_from_slice(&(answer.len() as u32).to_be_bytes());
        want.extend_from_slice(&answer);
        assert_eq!(out.to_bytes(), want);
    }

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
        let tonic = ResponseEncoding::Tonic;
        assert_eq!(response_encoding(&h).expect("none"), tonic(None));
        h.insert(GRPC_ENCODING, HeaderValue::from_static("identity"));
        assert_eq!(response_encoding(&h).expect("identity"), tonic(None));
        h.insert(GRPC_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            response_encoding(&h).expect("gzip"),
            tonic(Some(CompressionEncoding::Gzip))
        );
        h.insert(GRPC_ENCODING, HeaderValue::from_static("snappy"));
        assert_eq!(
            response_encoding(&h).expect("snappy"),
            ResponseEncoding::Snappy
        );
        h.insert(GRPC_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(
            response_encoding(&h).expect_err("unknown").code(),
            Code::Unimplemented
        );
    }
}

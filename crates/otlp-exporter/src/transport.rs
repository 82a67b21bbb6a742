//! What a protocol (OTLP/gRPC or OTLP/HTTP) provides to the shared sending machinery: how the
//! batches of one request are encoded, and how one attempt is made and judged. Queueing,
//! coalescing, retrying with backoff, counting and draining are the same for both and live in
//! `exporter`.

use std::future::Future;

use bytes::Bytes;
use redline_pipeline::rpc_status::ExportResponse;

use crate::queue::Taken;
use crate::retry::Verdict;

/// Requests smaller than this are encoded on the sender's own task: handing them to the
/// blocking pool would cost more than the work itself.
const ENCODE_INLINE_BELOW: usize = 256 * 1024;

/// One protocol's way of sending an export request.
pub(crate) trait Transport: Send + Sync + 'static {
    /// A request ready to send, kept for all the attempts of one delivery.
    type Request: Send + Sync + 'static;

    /// Encodes (frames, converts, compresses) the batches of `taken` as one request, once for
    /// all its attempts: re-encoding on every retry would make retrying a slow server costly.
    fn encode(&self, taken: &Taken) -> impl Future<Output = Result<Self::Request, String>> + Send;

    /// One attempt: the server's answer, or why it failed and whether to try again. Must
    /// return within the configured timeout: a server that never answers must not hold a
    /// sender forever.
    fn send(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<ExportResponse, Failure>> + Send;

    /// Says where this transport sends, for the logs of failed attempts.
    fn describe(&self) -> &str;

    /// Whether `encode` sends a client's gzip frame ([`client_gzip_frame`]) when it has one:
    /// an exporter that never does lets go of them before queueing.
    fn forwards_gzip_frames(&self) -> bool;
}

/// A failed attempt.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub verdict: Verdict,
    /// The gRPC code or HTTP status, for logs.
    pub code: String,
    pub message: String,
}

/// The raw bytes of the batches of `taken`, in order.
pub(crate) fn raw_parts(taken: &Taken) -> Vec<Bytes> {
    taken.entries.iter().map(|e| e.batch.raw.clone()).collect()
}

/// The gzip member a client sent for the request `taken` is, when it is one batch whose
/// bytes are still the ones that member decompresses to. Several batches are one request
/// only concatenated, and the members' concatenation would be a multi-member gzip stream,
/// which not every receiver reads whole (tonic's gzip stops after the first member).
pub(crate) fn client_gzip_frame(taken: &Taken) -> Option<&Bytes> {
    match taken.entries.as_slice() {
        [only] => only.batch.gzip_frame(),
        _ => None,
    }
}

/// Runs `encode` on the blocking pool when the request is large (compressing or converting
/// megabytes takes milliseconds, which must not hold up receivers sharing the runtime's
/// workers), inline otherwise.
pub(crate) async fn encode_off_runtime<T, F>(len: usize, encode: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    if len < ENCODE_INLINE_BELOW {
        return encode();
    }
    tokio::task::spawn_blocking(encode)
        .await
        .unwrap_or_else(|e| Err(format!("the encoding task stopped: {e}")))
}

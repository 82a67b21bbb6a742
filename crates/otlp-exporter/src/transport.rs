//! What a protocol (OTLP/gRPC or OTLP/HTTP) provides to the shared sending machinery: how the
//! batches of one request are encoded, and how one attempt is made and judged. Queueing,
//! coalescing, retrying with backoff, counting and draining are the same for both and live in
//! `exporter`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use redline_pipeline::rpc_status::ExportResponse;
use redline_pipeline::ClientMetadata;
use tokio::time::{Instant, Sleep};

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

    /// One attempt: the server's answer, or why it failed and whether to try again. The
    /// sender bounds it by [`Transport::attempt_timeout`] (a server that never answers must
    /// not hold a sender forever).
    /// `client` is the metadata of the client whose data it carries, for the credentials.
    fn send(
        &self,
        request: &Self::Request,
        client: Option<&ClientMetadata>,
    ) -> impl Future<Output = Result<ExportResponse, Failure>> + Send;

    /// How long one attempt may take (`timeout`), `None` for no limit.
    fn attempt_timeout(&self) -> Option<Duration>;

    /// The failure of an attempt that had no answer within `timeout`.
    fn timed_out(&self, timeout: Duration) -> Failure;

    /// Says where this transport sends, for the logs of failed attempts.
    fn describe(&self) -> &str;

    /// Says where this transport sends, as labels of the exporter's counters.
    fn endpoint_labels(&self) -> Vec<(&'static str, String)>;

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

/// The timeout of a sender's attempts, on one timer the sender keeps for all of them.
///
/// A timer made for each attempt (`tokio::time::timeout`) is a new entry in the runtime's
/// timer wheel. At a steady load the wheel is often empty when the runtime parks (the last
/// request answered, its timer dropped), and adding an entry to an empty wheel wakes the
/// thread waiting on the I/O driver so that it re-arms its wait: a system call and a
/// cross-thread wake-up for every request (a third of Redline's wake-ups at 500 requests per
/// second; BENCHMARKS.md, "Issue 14 status", steady state). This timer stays in the wheel between
/// attempts, and moving it to a later deadline only updates it in place; tonic's own
/// `grpc-timeout` timer, always later than it, then wakes nobody either.
pub(crate) struct AttemptTimer {
    sleep: Pin<Box<Sleep>>,
}

impl AttemptTimer {
    pub(crate) fn new() -> Self {
        Self {
            // Not registered until first polled.
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// `attempt`'s output, or the `timeout` that passed first (`None`: no limit).
    pub(crate) async fn limit<F: Future>(
        &mut self,
        timeout: Option<Duration>,
        attempt: F,
    ) -> Result<F::Output, Duration> {
        let Some(t) = timeout else {
            return Ok(attempt.await);
        };
        self.sleep.as_mut().reset(Instant::now() + t);
        tokio::select! {
            biased;
            out = attempt => Ok(out),
            () = self.sleep.as_mut() => Err(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_attempt_is_cut_at_its_timeout_and_the_timer_serves_the_next() {
        let mut timer = AttemptTimer::new();
        let t = Some(Duration::from_secs(5));
        let quick = timer.limit(t, async { 7 }).await;
        assert_eq!(quick, Ok(7));

        // Long after the first attempt: the deadline is the new attempt's, not the first's.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let started = Instant::now();
        let hung = timer.limit(t, std::future::pending::<()>()).await;
        assert_eq!(hung, Err(Duration::from_secs(5)), "cut at the timeout");
        assert_eq!(started.elapsed(), Duration::from_secs(5));

        let slow = timer
            .limit(t, async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                "answer"
            })
            .await;
        assert_eq!(slow, Ok("answer"), "within its own 5 s");
        assert_eq!(
            timer.limit(None, async { 1 }).await,
            Ok(1),
            "no timeout: no limit"
        );
    }
}

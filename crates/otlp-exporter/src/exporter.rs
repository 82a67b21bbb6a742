//! The running exporter, whatever its protocol: the sending queue (in memory or on disk) and
//! `num_consumers` sender tasks that coalesce queued batches, send them through a
//! [`Transport`], retry, count and drain at shutdown.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use redline_pipeline::config::Secret;
use redline_pipeline::extension::{ClientAuthConfig, ClientAuthenticator};
use redline_pipeline::retry::RetryConfig;
use redline_pipeline::rpc_status::ExportResponse;
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentId, Consumer, Refused, Reservation, RunningComponent,
    ShutdownError, Signal,
};
use tokio::task::JoinHandle;

use crate::config::{QueueConfig, Sizer};
use crate::disk::DiskLog;
use crate::failure_log::FailureLog;
use crate::queue::{Limits, Queue, Taken};
use crate::retry::Verdict;
use crate::transport::{AttemptTimer, Transport};

/// Errors building the exporter; each becomes a `BuildError` naming the component.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
    #[error("endpoint: {0}")]
    Endpoint(String),
}

/// What a started exporter is made of: the consumer pipelines deliver to, and the handle
/// that shuts it down.
pub type Started = (Arc<dyn Consumer>, Box<dyn RunningComponent>);

/// The configured `headers` as sent with every request, marked sensitive so their values
/// stay out of HPACK's dynamic table and out of hyper's debug output. Errors name the key.
pub(crate) fn request_headers(
    headers: &BTreeMap<String, Secret>,
) -> Result<HeaderMap, ExporterError> {
    let mut map = HeaderMap::with_capacity(headers.len() + 4);
    for (name, value) in headers {
        let invalid = |reason: &str| ExporterError::Config {
            key: format!("headers.{name}"),
            reason: reason.to_owned(),
        };
        let key = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid("is not a valid header name"))?;
        let mut value = HeaderValue::try_from(value.expose())
            .map_err(|_| invalid("value must be visible ASCII"))?;
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

/// The client authenticator `auth` names, from the running extensions.
pub(crate) fn client_authenticator(
    id: &ComponentId,
    auth: Option<&ClientAuthConfig>,
    ctx: &BuildContext,
) -> Result<Option<Arc<dyn ClientAuthenticator>>, BuildError> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let fail = |reason: String| BuildError::new(id, format!("auth.authenticator: {reason}"));
    let ext = auth.id().map_err(fail)?;
    ctx.extensions
        .client_authenticator(&ext)
        .map(Some)
        .map_err(fail)
}

/// Starts the queue and the senders of one exporter and signal on `transport`. Must be called
/// within a tokio runtime.
pub(crate) fn launch<T: Transport>(
    id: &ComponentId,
    signal: Signal,
    ctx: &BuildContext,
    queue_config: &QueueConfig,
    retry: &RetryConfig,
    transport: T,
) -> Result<Started, BuildError> {
    let id_str = id.to_string();
    let counters = ctx.telemetry.exporter(&id_str, signal);
    counters.set_endpoint_labels(transport.endpoint_labels());
    let limits = limits(queue_config, retry);
    let queue = match &queue_config.storage {
        None => Queue::new(id_str.clone(), limits, counters),
        Some(storage) => {
            let log = open_disk_queue(id, storage, &limits, ctx, signal)?;
            Queue::persistent(id_str.clone(), limits, counters, log)
        }
    };
    // A disk queue writes the request alone, so a frame would not survive it anyway.
    let keeps_gzip_frames = transport.forwards_gzip_frames() && queue_config.storage.is_none();
    let sender = Arc::new(Sender {
        id: id_str.clone(),
        signal,
        transport,
        retry: retry.clone(),
        retries: FailureLog::default(),
        drops: FailureLog::default(),
    });
    let tasks = (0..queue_config.num_consumers)
        .map(|_| tokio::spawn(run_sender(queue.clone(), sender.clone())))
        .collect();
    Ok((
        Arc::new(Exporter {
            queue: queue.clone(),
            keeps_gzip_frames,
        }),
        Box::new(Running {
            id: id_str,
            signal,
            queue,
            tasks,
        }),
    ))
}

/// Bytes after which the disk queue starts a new segment file: small enough that space is
/// given back soon after Tempo recovers, large enough that files stay few.
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Upper bound on the bytes of recently committed batches kept in memory, so a healthy
/// exporter sends them without reading them back from disk.
const DISK_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Opens the exporter's queue directory on the storage extension named `storage`, and says
/// what a previous run left there.
fn open_disk_queue(
    id: &ComponentId,
    storage: &str,
    limits: &Limits,
    ctx: &BuildContext,
    signal: Signal,
) -> Result<DiskLog, BuildError> {
    let fail = |reason: String| BuildError::new(id, format!("sending_queue.storage: {reason}"));
    let ext = ComponentId::parse(storage).map_err(fail)?;
    let storage = ctx.extensions.storage(&ext).map_err(fail)?;
    let dir = storage
        .directory("exporter", id, signal.as_str())
        .map_err(|e| fail(format!("extension `{ext}` gave no directory: {e}")))?;
    let label = id.to_string();
    let cache = DISK_CACHE_BYTES.min(limits.capacity_bytes);
    let (log, found) = DiskLog::open(&dir, storage.fsync(), SEGMENT_BYTES, cache, &label)
        .map_err(|e| fail(format!("cannot open the queue in `{}`: {e}", dir.display())))?;
    let p = found.pending;
    if p.batches > 0 {
        tracing::info!(
            exporter = %label,
            directory = %dir.display(),
            batches = p.batches,
            spans = p.spans,
            bytes = p.bytes,
            skipped_already_sent = found.skipped_delivered,
            "sending queue: loaded the batches a previous run left on disk; sending them first"
        );
        if !found.clean {
            tracing::warn!(
                exporter = %label,
                batches = p.batches,
                "sending queue: the previous run did not stop cleanly; batches it delivered \
                 but had not yet marked as acknowledged are sent again (at-least-once), so \
                 Tempo may receive a few twice"
            );
        } else if found.possibly_delivered > 0 {
            tracing::warn!(
                exporter = %label,
                batches = found.possibly_delivered,
                "sending queue: these batches were being sent when the previous run stopped; \
                 they are sent again, and arrive twice if Tempo had taken them"
            );
        }
    }
    Ok(log)
}

fn limits(q: &QueueConfig, retry: &RetryConfig) -> Limits {
    let capacity_bytes = match q.sizer {
        Sizer::Bytes => q.queue_size,
        Sizer::Requests | Sizer::Items => q.queue_size_bytes,
    };
    let (max_request_bytes, max_request_items, min_request, min_sizer, flush_timeout) =
        match &q.batch {
            None => (
                crate::config::DEFAULT_MAX_REQUEST_BYTES,
                u64::MAX,
                0,
                Sizer::Items,
                Duration::ZERO,
            ),
            Some(b) => {
                let sizer = b.sizer.unwrap_or(q.sizer);
                let max = if b.max_size == 0 {
                    None
                } else {
                    Some(b.max_size)
                };
                let (bytes, items) = match sizer {
                    Sizer::Bytes => (
                        max.unwrap_or(crate::config::DEFAULT_MAX_REQUEST_BYTES),
                        u64::MAX,
                    ),
                    // Even with an item cap, never build a request Tempo would refuse.
                    Sizer::Items | Sizer::Requests => (
                        crate::config::DEFAULT_MAX_REQUEST_BYTES,
                        max.unwrap_or(u64::MAX),
                    ),
                };
                (bytes, items, b.min_size, sizer, b.flush_timeout)
            }
        };
    let retry_after = if retry.enabled {
        retry.initial_interval
    } else {
        Duration::from_secs(1)
    };
    Limits {
        sizer: q.sizer,
        capacity: q.queue_size,
        capacity_bytes,
        max_request_bytes,
        max_request_items,
        min_request,
        min_sizer,
        flush_timeout,
        retry_after,
    }
}

/// The consumer side handed to pipelines.
struct Exporter {
    queue: Arc<Queue>,
    /// Whether queued batches keep the client's gzip frame (the transport sends it, from
    /// memory); the queue's byte bound then counts it (`Batch::held_bytes`).
    keeps_gzip_frames: bool,
}

impl Consumer for Exporter {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if self.keeps_gzip_frames || !batch.holds_gzip_frame() {
            return self.queue.reserve(batch);
        }
        // Sized as the batch this exporter will hold: the request alone (a clone of the
        // same bytes, nothing copied).
        let alone = Batch::new(batch.signal, batch.raw.clone(), batch.items);
        let inner = self.queue.reserve(&alone)?;
        Ok(Box::new(WithoutGzipFrame(inner)))
    }
}

/// Lets go of the client's gzip frame before the batch is queued, for an exporter that
/// would never send it (another compression, JSON, a disk queue): it is not held, and not
/// counted against the queue's bytes.
struct WithoutGzipFrame(Box<dyn Reservation>);

impl Reservation for WithoutGzipFrame {
    fn commit(self: Box<Self>, mut batch: Batch) {
        batch.drop_gzip_frame();
        self.0.commit(batch);
    }
}

struct Running {
    id: String,
    signal: Signal,
    queue: Arc<Queue>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningComponent for Running {
    fn shutdown(
        mut self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let mut tasks = std::mem::take(&mut self.tasks);
        let queue = self.queue.clone();
        let id = self.id.clone();
        let signal = self.signal;
        Box::pin(async move {
            queue.begin_drain();
            let deadline = tokio::time::Instant::from_std(deadline);
            let all = futures::future::join_all(tasks.iter_mut());
            let in_time = tokio::time::timeout_at(deadline, all).await.is_ok();
            if !in_time {
                // Senders that finished within the deadline were already joined, and a
                // JoinHandle must not be polled again after it returned its output.
                tasks.retain(|t| !t.is_finished());
                for t in &tasks {
                    t.abort();
                }
                // Aborted tasks stop at their next await point; wait for that so that
                // nothing is counted after `close` below.
                futures::future::join_all(tasks).await;
            }
            let closed = queue.close();
            if closed.kept_batches > 0 {
                tracing::info!(
                    exporter = %id,
                    %signal,
                    batches = closed.kept_batches,
                    items = closed.kept_spans,
                    "not delivered yet; kept on disk for the next start"
                );
            }
            let (batches, spans) = (closed.dropped_batches, closed.dropped_spans);
            if spans == 0 && batches == 0 {
                return Ok(());
            }
            tracing::warn!(
                exporter = %id,
                %signal,
                batches,
                items = spans,
                "shutdown deadline reached; dropped data that was not delivered"
            );
            Err(ShutdownError {
                component: id,
                reason: format!(
                    "dropped {spans} {} ({batches} requests) of {signal} not delivered by the shutdown deadline",
                    signal.item_name()
                ),
            })
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Dropped without shutdown (e.g. a failed start of the service): do not leave
        // senders retrying forever in the background.
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn run_sender<T: Transport>(queue: Arc<Queue>, sender: Arc<Sender<T>>) {
    let mut timer = AttemptTimer::new();
    while let Some(taken) = queue.next_request().await {
        let _in_flight = queue.in_flight();
        match sender.deliver(&taken, &queue, &mut timer).await {
            Some((sent, failed)) => queue.complete(taken, sent, failed),
            // A persistent queue is stopping: the batches wait on disk for the next start.
            None => queue.requeue(taken),
        }
    }
}

/// Delivers requests on one transport, retrying as configured.
struct Sender<T> {
    id: String,
    signal: Signal,
    transport: T,
    retry: RetryConfig,
    /// Failures that will be retried, and failures that dropped data: each logged as its first
    /// of a kind, then once per interval with how many were not.
    retries: FailureLog,
    drops: FailureLog,
}

impl<T: Transport> Sender<T> {
    /// Sends one request, retrying as configured. Returns the (sent, failed) item counts, or
    /// `None` when a persistent queue began stopping while this request waited to be retried.
    async fn deliver(
        &self,
        taken: &Taken,
        queue: &Queue,
        timer: &mut AttemptTimer,
    ) -> Option<(u64, u64)> {
        let items = taken.spans;
        let request = match self.transport.encode(taken).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(
                    exporter = %self.id,
                    signal = %self.signal,
                    items,
                    error = %e,
                    "cannot encode the request; dropping the data"
                );
                return Some((0, items));
            }
        };
        let started = Instant::now();
        let mut backoff = self.retry.backoff();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let timeout = self.transport.attempt_timeout();
            let failure = match timer
                .limit(timeout, self.transport.send(&request, taken.client()))
                .await
            {
                Ok(Ok(response)) => return Some(self.accepted(response, items)),
                Ok(Err(f)) => f,
                Err(elapsed) => self.transport.timed_out(elapsed),
            };
            let (code, message) = (&failure.code, &failure.message);
            let endpoint = self.transport.describe();
            // What makes two failures "the same" for the log: the status and what the server said.
            let kind = format!("{code}: {message}");
            let min_delay = match failure.verdict {
                Verdict::Permanent => {
                    let why = "export failed with a permanent error; dropping the data";
                    self.log_drop(&kind, endpoint, items, code, message, attempts, why);
                    return Some((0, items));
                }
                Verdict::Retry { .. } if !self.retry.enabled => {
                    let why = "export failed and retry_on_failure is disabled; dropping the data";
                    self.log_drop(&kind, endpoint, items, code, message, attempts, why);
                    return Some((0, items));
                }
                Verdict::Retry { min_delay } => min_delay.unwrap_or_default(),
            };
            let delay = backoff.next_delay().max(min_delay);
            let max_elapsed = self.retry.max_elapsed_time;
            if !max_elapsed.is_zero() && started.elapsed() + delay > max_elapsed {
                let why =
                    "export failed and retries are exhausted (max_elapsed_time); dropping the data";
                self.log_drop(&kind, endpoint, items, code, message, attempts, why);
                return Some((0, items));
            }
            if let Some(not_logged) = self.retries.admit(&kind, Instant::now()) {
                tracing::info!(
                    exporter = %self.id,
                    signal = %self.signal,
                    endpoint,
                    items,
                    code = %code,
                    server_message = %message,
                    attempts,
                    retry_in = ?delay,
                    not_logged,
                    "export failed; will retry"
                );
            }
            if queue.is_persistent() {
                // Waiting out a dead server during shutdown gains nothing when the batch is
                // safe on disk: stop now and let the next start send it.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = queue.draining() => return None,
                }
            } else {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// Logs a request whose data is dropped, through the limiter of such lines.
    #[allow(clippy::too_many_arguments)]
    fn log_drop(
        &self,
        kind: &str,
        endpoint: &str,
        items: u64,
        code: &impl std::fmt::Display,
        message: &str,
        attempts: u32,
        why: &'static str,
    ) {
        if let Some(not_logged) = self.drops.admit(kind, Instant::now()) {
            tracing::error!(
                exporter = %self.id,
                signal = %self.signal,
                endpoint,
                items,
                code = %code,
                server_message = %message,
                attempts,
                not_logged,
                "{why}"
            );
        }
    }

    fn accepted(&self, response: ExportResponse, items: u64) -> (u64, u64) {
        let Some(partial) = response.partial_success else {
            return (items, 0);
        };
        // Rejected items would be rejected again: count them, never retry them (OTLP spec).
        let rejected = u64::try_from(partial.rejected).unwrap_or(0).min(items);
        if rejected > 0 {
            tracing::warn!(
                exporter = %self.id,
                signal = %self.signal,
                items,
                rejected,
                server_message = %partial.error_message,
                "server rejected part of the export"
            );
        } else if !partial.error_message.is_empty() {
            tracing::info!(
                exporter = %self.id,
                signal = %self.signal,
                items,
                server_message = %partial.error_message,
                "server accepted the export with a warning"
            );
        }
        (items - rejected, rejected)
    }
}

//! The running exporter: a lazily connected tonic channel, the sending queue, and
//! `num_consumers` sender tasks that coalesce, send, retry and count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::endpoint::parse_grpc_endpoint;
use redline_pipeline::retry::RetryConfig;
use redline_pipeline::tls::TlsError;
use redline_pipeline::{
    BuildContext, BuildError, ComponentId, Refused, Reservation, RunningComponent, ShutdownError,
    TracesBatch, TracesConsumer,
};
use tokio::task::JoinHandle;
use tonic::transport::{Endpoint, Identity};
use tonic::Status;

use crate::codec::{EncodeError, Message};
use crate::config::{Config, Sizer};
use crate::disk::DiskLog;
use crate::grpc::TraceClient;
use crate::queue::{Limits, Queue, Taken};
use crate::retry::{classify, Verdict};

/// Requests smaller than this are compressed on the sender's own task: handing them to the
/// blocking pool would cost more than compressing them.
const COMPRESS_INLINE_BELOW: usize = 256 * 1024;

/// Errors building the exporter; each becomes a `BuildError` naming the component.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("{key}: {reason}")]
    Config { key: String, reason: String },
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("tls: {0}")]
    Tls(String),
}

/// What a started exporter is made of: the consumer pipelines deliver to, and the handle
/// that shuts it down.
pub type Started = (Arc<dyn TracesConsumer>, Box<dyn RunningComponent>);

/// Builds and starts the exporter. Never connects: the channel connects on first use, so
/// Redline starts while Tempo is still down. Must be called within a tokio runtime.
pub fn start(id: &ComponentId, config: Config, ctx: &BuildContext) -> Result<Started, BuildError> {
    let id_str = id.to_string();
    let client = Client::new(&id_str, &config).map_err(|e| BuildError::new(id, e))?;
    let counters = ctx.telemetry.exporter(&id_str);
    let limits = limits(&config);
    let queue = match &config.sending_queue.storage {
        None => Queue::new(id_str.clone(), limits, counters),
        Some(storage) => {
            let log = open_disk_queue(id, storage, &limits, ctx)?;
            Queue::persistent(id_str.clone(), limits, counters, log)
        }
    };
    let client = Arc::new(client);
    let tasks = (0..config.sending_queue.num_consumers)
        .map(|_| tokio::spawn(run_sender(queue.clone(), client.clone())))
        .collect();
    tracing::debug!(
        exporter = %id_str,
        endpoint = %config.endpoint,
        tls = config.uses_tls(),
        compression = ?config.compression,
        gzip_level = ?config.gzip_level(),
        "otlp exporter started"
    );
    Ok((
        Arc::new(Exporter {
            queue: queue.clone(),
        }),
        Box::new(Running {
            id: id_str,
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
) -> Result<DiskLog, BuildError> {
    let fail = |reason: String| BuildError::new(id, format!("sending_queue.storage: {reason}"));
    let ext = ComponentId::parse(storage).map_err(fail)?;
    let storage = ctx.extensions.storage(&ext).map_err(fail)?;
    let dir = storage
        .directory("exporter", id, "traces")
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

fn limits(config: &Config) -> Limits {
    let q = &config.sending_queue;
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
    let retry_after = if config.retry_on_failure.enabled {
        config.retry_on_failure.initial_interval
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
}

impl TracesConsumer for Exporter {
    fn reserve(&self, batch: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        self.queue.reserve(batch)
    }
}

struct Running {
    id: String,
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
                    batches = closed.kept_batches,
                    spans = closed.kept_spans,
                    "not delivered yet; kept on disk for the next start"
                );
            }
            let (batches, spans) = (closed.dropped_batches, closed.dropped_spans);
            if spans == 0 && batches == 0 {
                return Ok(());
            }
            tracing::warn!(
                exporter = %id,
                batches,
                spans,
                "shutdown deadline reached; dropped spans that were not delivered"
            );
            Err(ShutdownError {
                component: id,
                reason: format!(
                    "dropped {spans} spans ({batches} requests) not delivered by the shutdown deadline"
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

async fn run_sender(queue: Arc<Queue>, client: Arc<Client>) {
    while let Some(taken) = queue.next_request().await {
        match client.deliver(&taken, &queue).await {
            Some((sent, failed)) => queue.complete(taken, sent, failed),
            // A persistent queue is stopping: the batches wait on disk for the next start.
            None => queue.requeue(taken),
        }
    }
}

struct Client {
    id: String,
    grpc: TraceClient,
    gzip_level: Option<u32>,
    timeout: Option<Duration>,
    retry: RetryConfig,
}

impl Client {
    fn new(id: &str, config: &Config) -> Result<Self, ExporterError> {
        config.check().map_err(|e| ExporterError::Config {
            key: e.key_path,
            reason: e.reason,
        })?;
        let target = parse_grpc_endpoint(&config.endpoint).map_err(ExporterError::Endpoint)?;
        let tls = config.uses_tls();
        let scheme = if tls { "https" } else { "http" };

        let user_agent = config
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("redline/{}", env!("CARGO_PKG_VERSION")));
        let timeout = (!config.timeout.is_zero()).then_some(config.timeout);
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", target.authority))
            .map_err(|e| ExporterError::Endpoint(e.to_string()))?
            .user_agent(user_agent)
            .map_err(|e| ExporterError::Config {
                key: "user_agent".into(),
                reason: e.to_string(),
            })?
            .tcp_nodelay(true)
            // A black-holed Tempo must fail an attempt, not hang it past its timeout.
            .connect_timeout(timeout.unwrap_or(Duration::from_secs(30)));
        if let Some(k) = &config.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(k.time)
                .keep_alive_timeout(k.timeout)
                .keep_alive_while_idle(k.permit_without_stream);
        }
        if let Some(authority) = &config.authority {
            let origin = format!("{scheme}://{authority}")
                .parse::<http::Uri>()
                .map_err(|e| ExporterError::Config {
                    key: "authority".into(),
                    reason: e.to_string(),
                })?;
            endpoint = endpoint.origin(origin);
        }
        if tls {
            endpoint = endpoint
                .tls_config(tonic_tls(&config.tls)?)
                .map_err(|e| ExporterError::Tls(e.to_string()))?;
        }

        let mut headers = HeaderMap::with_capacity(config.headers.len() + 4);
        for (name, value) in &config.headers {
            let invalid = |reason: &str| ExporterError::Config {
                key: format!("headers.{name}"),
                reason: reason.to_owned(),
            };
            let key = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| invalid("is not a valid header name"))?;
            let mut value = HeaderValue::try_from(value.expose())
                .map_err(|_| invalid("value must be visible ASCII"))?;
            // Keeps the value out of HPACK's dynamic table and out of hyper's debug output.
            value.set_sensitive(true);
            headers.insert(key, value);
        }

        Ok(Self {
            id: id.to_owned(),
            grpc: TraceClient::new(endpoint.connect_lazy(), headers, timeout),
            gzip_level: config.gzip_level(),
            timeout,
            retry: config.retry_on_failure.clone(),
        })
    }

    async fn attempt(&self, message: &Message) -> Result<ExportTraceServiceResponse, Status> {
        let call = self.grpc.export(message);
        match self.timeout {
            // Our own timer too: a server that never answers must not hold a sender forever.
            Some(t) => tokio::time::timeout(t, call).await.unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!(
                    "no answer within the {t:?} timeout"
                )))
            }),
            None => call.await,
        }
    }

    /// Frames (and compresses) the batches of `taken` as one message, once for all attempts.
    async fn encode(&self, taken: &Taken) -> Result<Message, EncodeError> {
        let raw: Vec<Bytes> = taken.entries.iter().map(|e| e.batch.raw.clone()).collect();
        let len: usize = raw.iter().map(Bytes::len).sum();
        let level = self.gzip_level;
        let encode = move || Message::encode(&raw.iter().collect::<Vec<_>>(), level);
        if level.is_none() || len < COMPRESS_INLINE_BELOW {
            return encode();
        }
        // Compressing megabytes takes milliseconds: off the runtime's workers, so receivers
        // sharing them are not held up.
        tokio::task::spawn_blocking(encode)
            .await
            .unwrap_or_else(|e| Err(EncodeError::Task(e.to_string())))
    }

    /// Sends one request, retrying as configured. Returns (sent, failed) span counts, or
    /// `None` when a persistent queue began stopping while this request waited to be retried.
    async fn deliver(&self, taken: &Taken, queue: &Queue) -> Option<(u64, u64)> {
        let spans = taken.spans;
        let message = match self.encode(taken).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(
                    exporter = %self.id,
                    spans,
                    error = %e,
                    "cannot encode the request; dropping the data"
                );
                return Some((0, spans));
            }
        };
        let started = Instant::now();
        let mut backoff = self.retry.backoff();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let status = match self.attempt(&message).await {
                Ok(response) => return Some(self.accepted(response, spans)),
                Err(status) => status,
            };
            let code = status.code();
            let min_delay = match classify(code, status.details()) {
                Verdict::Permanent => {
                    tracing::error!(
                        exporter = %self.id,
                        spans,
                        code = ?code,
                        message = %status.message(),
                        "export failed with a permanent error; dropping the data"
                    );
                    return Some((0, spans));
                }
                Verdict::Retry { .. } if !self.retry.enabled => {
                    tracing::error!(
                        exporter = %self.id,
                        spans,
                        code = ?code,
                        message = %status.message(),
                        "export failed and retry_on_failure is disabled; dropping the data"
                    );
                    return Some((0, spans));
                }
                Verdict::Retry { min_delay } => min_delay.unwrap_or_default(),
            };
            let delay = backoff.next_delay().max(min_delay);
            let max_elapsed = self.retry.max_elapsed_time;
            if !max_elapsed.is_zero() && started.elapsed() + delay > max_elapsed {
                tracing::error!(
                    exporter = %self.id,
                    spans,
                    code = ?code,
                    message = %status.message(),
                    attempts,
                    "export failed and retries are exhausted (max_elapsed_time); dropping the data"
                );
                return Some((0, spans));
            }
            tracing::info!(
                exporter = %self.id,
                spans,
                code = ?code,
                message = %status.message(),
                attempts,
                retry_in = ?delay,
                "export failed; will retry"
            );
            if queue.is_persistent() {
                // Waiting out a dead Tempo during shutdown gains nothing when the batch is
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

    fn accepted(&self, response: ExportTraceServiceResponse, spans: u64) -> (u64, u64) {
        let Some(partial) = response.partial_success else {
            return (spans, 0);
        };
        // Rejected spans would be rejected again: count them, never retry them (OTLP spec).
        let rejected = u64::try_from(partial.rejected_spans)
            .unwrap_or(0)
            .min(spans);
        if rejected > 0 {
            tracing::warn!(
                exporter = %self.id,
                spans,
                rejected,
                message = %partial.error_message,
                "server rejected part of the export"
            );
        } else if !partial.error_message.is_empty() {
            tracing::info!(
                exporter = %self.id,
                spans,
                message = %partial.error_message,
                "server accepted the export with a warning"
            );
        }
        (spans - rejected, rejected)
    }
}

/// The TLS settings as tonic takes them: the roots and client certificate read here, so a
/// missing or bad file fails the build naming its key.
fn tonic_tls(t: &ClientTlsConfig) -> Result<tonic::transport::ClientTlsConfig, ExporterError> {
    let tls_error = |e: TlsError| ExporterError::Config {
        key: format!("tls.{}", e.key),
        reason: e.reason,
    };
    let roots = t.root_store().map_err(|e| {
        // Without a CA of its own the only failure is finding no system roots, where a
        // plaintext connection may be what was meant.
        let hint = if t.has_ca() {
            ""
        } else {
            "; set tls.ca_file, or tls.insecure: true for a plaintext connection"
        };
        tls_error(TlsError {
            reason: e.reason + hint,
            ..e
        })
    })?;
    let mut cfg = tonic::transport::ClientTlsConfig::new().trust_anchors(roots.roots);
    if let Some(identity) = t.client_identity().map_err(tls_error)? {
        cfg = cfg.identity(Identity::from_pem(identity.cert_pem(), identity.key_pem()));
    }
    if let Some(name) = &t.server_name_override {
        cfg = cfg.domain_name(name.clone());
    }
    Ok(cfg)
}

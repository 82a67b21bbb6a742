//! The running debug exporter: a consumer that never refuses and never blocks, and a printing
//! task behind a bounded channel.
//!
//! Committing a batch counts it as sent (otelcol's debug exporter never fails an export) and
//! hands it to the printer. Decoding and formatting take far longer than forwarding, so when
//! the printer falls behind, batches are skipped (and the skips reported) rather than slowing
//! the pipeline: the debug output is a view of the data, not a destination for it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{
    Batch, BuildContext, ComponentId, Consumer, Refused, Reservation, RunningComponent,
    ShutdownError, Signal,
};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::config::Verbosity;
use crate::format::{render, Counts, Rendered};

/// Batches waiting to be printed, at most.
const QUEUE_BATCHES: usize = 256;
/// Bytes of batches waiting to be printed, at most: the backlog of a slow terminal must not
/// take much memory.
const QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Where the output goes.
pub enum Output {
    /// Redline's own log, at info (`use_internal_logger: true`, and always for `logging`).
    Logger,
    /// Written as otelcol's console encoder writes it, to each of these.
    Writers(Vec<Writer>),
}

pub enum Writer {
    Stdout,
    Stderr,
    File { path: String, file: File },
}

impl Writer {
    /// `stdout`, `stderr`, or a file opened for appending (created if missing).
    pub fn open(path: &str) -> std::io::Result<Self> {
        Ok(match path {
            "stdout" => Writer::Stdout,
            "stderr" => Writer::Stderr,
            _ => Writer::File {
                path: path.to_owned(),
                file: OpenOptions::new().create(true).append(true).open(path)?,
            },
        })
    }

    fn name(&self) -> &str {
        match self {
            Writer::Stdout => "stdout",
            Writer::Stderr => "stderr",
            Writer::File { path, .. } => path,
        }
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        match self {
            Writer::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Writer::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            Writer::File { file, .. } => file.write_all(text.as_bytes()),
        }
    }
}

/// What a debug exporter prints, resolved from its config.
pub struct Settings {
    pub verbosity: Verbosity,
    pub sampling_initial: u64,
    pub sampling_thereafter: u64,
    pub output: Output,
}

/// A started exporter: the consumer pipelines deliver to, and the handle that stops it.
pub type Started = (Arc<dyn Consumer>, Box<dyn RunningComponent>);

/// Starts the exporter of one signal. Must be called within a tokio runtime.
pub fn start(id: &ComponentId, signal: Signal, ctx: &BuildContext, settings: Settings) -> Started {
    let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
    let shared = Arc::new(Shared {
        counters: ctx.telemetry.exporter(&id.to_string(), signal),
        tx,
        closed: AtomicBool::new(false),
        queued_bytes: AtomicUsize::new(0),
        skipped_batches: AtomicU64::new(0),
        skipped_items: AtomicU64::new(0),
    });
    let printer = Arc::new(Mutex::new(Printer {
        id: id.to_string(),
        signal,
        verbosity: settings.verbosity,
        sampler: Sampler::new(settings.sampling_initial, settings.sampling_thereafter),
        output: settings.output,
    }));
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(print_loop(rx, printer, shared.clone(), stop.clone()));
    (
        Arc::new(DebugConsumer {
            shared: shared.clone(),
        }),
        Box::new(Running {
            id: id.to_string(),
            shared,
            stop,
            task: Some(task),
        }),
    )
}

/// Starts a `nop` exporter: counts what it is given and drops it.
pub fn start_nop(id: &ComponentId, signal: Signal, ctx: &BuildContext) -> Started {
    let counters = ctx.telemetry.exporter(&id.to_string(), signal);
    (
        Arc::new(NopConsumer { counters }),
        Box::new(redline_pipeline::component::NoopRunning),
    )
}

struct NopConsumer {
    counters: Arc<ExporterCounters>,
}

impl Consumer for NopConsumer {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let counters = self.counters.clone();
        Ok(Box::new(CommitFn(move |batch: Batch| {
            counters
                .sent
                .fetch_add(batch.items as u64, Ordering::Relaxed);
        })))
    }
}

/// What the consumer and the printer share.
struct Shared {
    counters: Arc<ExporterCounters>,
    tx: mpsc::Sender<Batch>,
    /// Set at shutdown: later batches are counted, not printed.
    closed: AtomicBool,
    queued_bytes: AtomicUsize,
    /// Batches not printed because the printer was behind, since last reported.
    skipped_batches: AtomicU64,
    skipped_items: AtomicU64,
}

impl Shared {
    fn commit(&self, mut batch: Batch) {
        // Printing reads the request; a client's gzip frame would only hold memory.
        batch.drop_gzip_frame();
        let items = batch.items as u64;
        self.counters.sent.fetch_add(items, Ordering::Relaxed);
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let len = batch.byte_len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        // One batch larger than the whole bound is still printed when nothing waits.
        let room = queued == 0 || queued + len <= QUEUE_BYTES;
        if room && self.tx.try_send(batch).is_ok() {
            return;
        }
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        self.skipped_batches.fetch_add(1, Ordering::Relaxed);
        self.skipped_items.fetch_add(items, Ordering::Relaxed);
    }

    /// The skips since the last call, as (batches, items).
    fn take_skipped(&self) -> (u64, u64) {
        (
            self.skipped_batches.swap(0, Ordering::Relaxed),
            self.skipped_items.swap(0, Ordering::Relaxed),
        )
    }
}

struct DebugConsumer {
    shared: Arc<Shared>,
}

impl Consumer for DebugConsumer {
    /// Never refuses: printing is best effort and must not push back on the pipeline.
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let shared = self.shared.clone();
        Ok(Box::new(CommitFn(move |batch: Batch| shared.commit(batch))))
    }
}

/// otelcol's sampling (zap's sampler, applied per batch): in each one-second window the first
/// `initial` batches are printed, then every `thereafter`-th (none when it is 0).
#[derive(Debug)]
pub(crate) struct Sampler {
    initial: u64,
    thereafter: u64,
    window: Option<Instant>,
    seen: u64,
}

impl Sampler {
    pub(crate) fn new(initial: u64, thereafter: u64) -> Self {
        Self {
            initial,
            thereafter,
            window: None,
            seen: 0,
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        match self.window {
            Some(start) if now.duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.seen = 0;
            }
        }
        self.seen += 1;
        self.seen <= self.initial
            || (self.thereafter > 0 && (self.seen - self.initial).is_multiple_of(self.thereafter))
    }
}

struct Printer {
    id: String,
    signal: Signal,
    verbosity: Verbosity,
    sampler: Sampler,
    output: Output,
}

impl Printer {
    fn print(&mut self, batch: &Batch) {
        if !self.sampler.admit(Instant::now()) {
            return;
        }
        match render(self.signal, &batch.raw, self.verbosity) {
            Ok(rendered) => self.emit(&rendered),
            Err(error) => tracing::warn!(
                exporter = %self.id,
                signal = %self.signal,
                %error,
                "cannot print a batch"
            ),
        }
    }

    fn emit(&mut self, r: &Rendered) {
        let (id, signal) = (&self.id, self.signal);
        match &mut self.output {
            Output::Logger => {
                match r.counts {
                    Counts::Traces {
                        resource_spans,
                        spans,
                    } => tracing::info!(
                        exporter = %id,
                        %signal,
                        "resource spans" = resource_spans,
                        spans,
                        "Traces"
                    ),
                    Counts::Metrics {
                        resource_metrics,
                        metrics,
                        data_points,
                    } => tracing::info!(
                        exporter = %id,
                        %signal,
                        "resource metrics" = resource_metrics,
                        metrics,
                        "data points" = data_points,
                        "Metrics"
                    ),
                    Counts::Logs {
                        resource_logs,
                        log_records,
                    } => tracing::info!(
                        exporter = %id,
                        %signal,
                        "resource logs" = resource_logs,
                        "log records" = log_records,
                        "Logs"
                    ),
                }
                if let Some(text) = &r.text {
                    // The text ends each line with a newline; the logger adds its own.
                    tracing::info!(exporter = %id, %signal, "{}", text.trim_end_matches('\n'));
                }
            }
            Output::Writers(writers) => {
                let text = r.console();
                for w in writers.iter_mut() {
                    if let Err(error) = w.write(&text) {
                        tracing::warn!(
                            exporter = %id,
                            output = w.name(),
                            %error,
                            "cannot write the debug output"
                        );
                    }
                }
            }
        }
    }

    fn report_skipped(&self, shared: &Shared) {
        let (batches, items) = shared.take_skipped();
        if batches > 0 {
            tracing::warn!(
                exporter = %self.id,
                signal = %self.signal,
                batches,
                items,
                "printing fell behind; these batches were exported (counted as sent) but not printed"
            );
        }
    }
}

async fn print_loop(
    mut rx: mpsc::Receiver<Batch>,
    printer: Arc<Mutex<Printer>>,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
) {
    let mut stopping = false;
    loop {
        let next = tokio::select! {
            batch = rx.recv() => batch,
            // What is already queued is still printed; nothing more is taken.
            _ = stop.notified(), if !stopping => {
                stopping = true;
                rx.close();
                continue;
            }
        };
        let Some(batch) = next else {
            break;
        };
        shared
            .queued_bytes
            .fetch_sub(batch.byte_len(), Ordering::Relaxed);
        let printer = printer.clone();
        let shared = shared.clone();
        // Formatting and writing block (a terminal, a pipe, a file): off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || {
            let mut p = printer.lock();
            p.print(&batch);
            p.report_skipped(&shared);
        })
        .await;
    }
}

struct Running {
    id: String,
    shared: Arc<Shared>,
    stop: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl RunningComponent for Running {
    fn shutdown(
        mut self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let task = self.task.take();
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        let id = self.id.clone();
        Box::pin(async move {
            shared.closed.store(true, Ordering::Relaxed);
            stop.notify_one();
            let Some(mut task) = task else {
                return Ok(());
            };
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                // Not data loss: every batch was counted as exported when it arrived.
                tracing::warn!(
                    exporter = %id,
                    "shutdown deadline reached before all queued batches were printed"
                );
            }
            Ok(())
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(capacity: usize) -> (Arc<Shared>, mpsc::Receiver<Batch>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            counters: Arc::new(ExporterCounters::default()),
            tx,
            closed: AtomicBool::new(false),
            queued_bytes: AtomicUsize::new(0),
            skipped_batches: AtomicU64::new(0),
            skipped_items: AtomicU64::new(0),
        });
        (shared, rx)
    }

    fn batch(bytes: usize, items: usize) -> Batch {
        Batch::new(Signal::Logs, vec![0u8; bytes].into(), items)
    }

    #[test]
    fn a_full_printer_skips_and_counts_instead_of_blocking() {
        let (shared, mut rx) = shared(2);
        let consumer = DebugConsumer {
            shared: shared.clone(),
        };
        for _ in 0..5 {
            consumer.consume(batch(10, 3)).expect("never refuses");
        }
        assert_eq!(
            shared.counters.sent.load(Ordering::Relaxed),
            15,
            "all exported"
        );
        assert_eq!(shared.take_skipped(), (3, 9), "two queued, three skipped");
        assert_eq!(shared.take_skipped(), (0, 0), "reported once");
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
    }

    #[test]
    fn a_queued_batch_lets_go_of_the_client_gzip_frame() {
        let (shared, mut rx) = shared(2);
        let raw = bytes::Bytes::from_static(b"request");
        let frame = bytes::Bytes::from_static(b"the client's gzip member");
        shared.commit(Batch::new(Signal::Logs, raw.clone(), 1).with_gzip_frame(&raw, frame));
        let queued = rx.try_recv().expect("queued");
        assert!(!queued.holds_gzip_frame());
        assert_eq!(
            shared.queued_bytes.load(Ordering::Relaxed),
            raw.len(),
            "the bound counts the request alone"
        );
    }

    #[test]
    fn the_byte_bound_skips_too_but_never_a_lone_batch() {
        let (shared, _rx) = shared(QUEUE_BATCHES);
        shared.commit(batch(QUEUE_BYTES + 1, 1));
        assert_eq!(
            shared.take_skipped(),
            (0, 0),
            "alone, even a huge batch is printed"
        );
        shared.commit(batch(1, 1));
        assert_eq!(shared.take_skipped(), (1, 1));
        shared.closed.store(true, Ordering::Relaxed);
        shared.commit(batch(1, 2));
        assert_eq!(
            shared.take_skipped(),
            (0, 0),
            "after shutdown: counted, not queued"
        );
        assert_eq!(shared.counters.sent.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn sampling_is_zaps() {
        let t0 = Instant::now();
        let mut s = Sampler::new(2, 3);
        let admitted: Vec<bool> = (0..9).map(|_| s.admit(t0)).collect();
        assert_eq!(
            admitted,
            [true, true, false, false, true, false, false, true, false]
        );
        assert!(
            s.admit(t0 + Duration::from_secs(1)),
            "a new second starts over"
        );
        let mut all = Sampler::new(2, 1);
        assert!(
            (0..100).all(|_| all.admit(t0)),
            "thereafter 1 prints everything"
        );
        let mut first = Sampler::new(1, 0);
        assert!(first.admit(t0));
        assert!(
            !(0..10).any(|_| first.admit(t0)),
            "thereafter 0 stops after initial"
        );
    }
}

//! `sending_queue`: otelcol's exporterhelper queue keys, Redline's byte bound, and how queued
//! requests are coalesced (`sending_queue.batch`).

use std::time::Duration;

use redline_pipeline::duration;
use redline_pipeline::only_bool::OnlyBool;
use serde::Deserialize;

use super::Invalid;

/// Largest request Redline sends when it coalesces queued batches, unless `sending_queue.batch`
/// says otherwise: Tempo (like every grpc-go server) refuses messages above 4 MiB by default,
/// and the limit applies to the decompressed message, so stay under it with some headroom.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024 - 64 * 1024;

/// Redline's byte bound on the sending queue when the sizer is not `bytes`: otelcol bounds the
/// queue only in requests, which lets 1000 large requests take gigabytes; Redline promises
/// bounded memory (docs/architecture.md §5).
pub const DEFAULT_QUEUE_SIZE_BYTES: u64 = 128 * 1024 * 1024;

/// How `queue_size` and batch sizes are measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// One unit per received request (one `Batch`).
    #[default]
    Requests,
    /// One unit per span.
    Items,
    /// One unit per byte of encoded request.
    Bytes,
}

impl Sizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Sizer::Requests => "requests",
            Sizer::Items => "items",
            Sizer::Bytes => "bytes",
        }
    }
}

/// otelcol's exporterhelper `sending_queue`, plus Redline's byte bound.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `true` only: a synchronous exporter would block receivers on Tempo.
    pub enabled: OnlyBool<true>,
    pub num_consumers: usize,
    /// In `sizer` units.
    pub queue_size: u64,
    pub sizer: Sizer,
    /// Redline extension: bound on the encoded bytes held (queued or being sent) when the
    /// sizer is not `bytes`.
    pub queue_size_bytes: u64,
    pub block_on_overflow: Option<OnlyBool<false>>,
    /// The pre-0.12x spelling of `block_on_overflow`.
    pub blocking: Option<OnlyBool<false>>,
    pub wait_for_result: Option<OnlyBool<false>>,
    /// Id of a storage extension (`file_storage`): the queue is then kept on disk, so
    /// batches accepted while Tempo is down survive a restart or crash of Redline.
    pub storage: Option<String>,
    /// How queued requests are coalesced into one send. Absent: whatever is queued when a
    /// sender becomes free is sent together, up to [`DEFAULT_MAX_REQUEST_BYTES`], with no wait.
    pub batch: Option<BatchConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: OnlyBool,
            num_consumers: 10,
            queue_size: 1000,
            sizer: Sizer::Requests,
            queue_size_bytes: DEFAULT_QUEUE_SIZE_BYTES,
            block_on_overflow: None,
            blocking: None,
            wait_for_result: None,
            storage: None,
            batch: None,
        }
    }
}

/// otelcol's `sending_queue.batch`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// How long a sender waits for `min_size` to accumulate before sending what it has.
    #[serde(deserialize_with = "duration::deserialize")]
    pub flush_timeout: Duration,
    /// `items` or `bytes`; absent: the queue's sizer.
    pub sizer: Option<Sizer>,
    pub min_size: u64,
    /// Zero: no limit other than [`DEFAULT_MAX_REQUEST_BYTES`].
    pub max_size: u64,
    /// Batch per combination of these client metadata keys. Redline never merges requests
    /// of different clients at all, so the keys are checked and otherwise change nothing.
    pub partition: Option<PartitionConfig>,
}

/// otelcol's `sending_queue.batch.partition`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    #[serde(default)]
    pub metadata_keys: Vec<String>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        // otelcol's defaults for an explicit `batch` section.
        Self {
            flush_timeout: Duration::from_millis(200),
            sizer: None,
            min_size: 8192,
            max_size: 0,
            partition: None,
        }
    }
}

impl QueueConfig {
    /// Every check serde cannot express; keys are given from the component (`sending_queue.…`).
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.num_consumers == 0 {
            return Err(Invalid::new(
                "sending_queue.num_consumers",
                "must be positive",
            ));
        }
        if self.num_consumers > 1024 {
            return Err(Invalid::new(
                "sending_queue.num_consumers",
                "must be at most 1024",
            ));
        }
        if self.queue_size == 0 {
            return Err(Invalid::new("sending_queue.queue_size", "must be positive"));
        }
        if let Some(storage) = &self.storage {
            redline_pipeline::ComponentId::parse(storage).map_err(|reason| {
                Invalid::new(
                    "sending_queue.storage",
                    format!("must name a storage extension, e.g. `file_storage`: {reason}"),
                )
            })?;
        }
        if self.queue_size_bytes == 0 {
            return Err(Invalid::new(
                "sending_queue.queue_size_bytes",
                "must be positive",
            ));
        }
        match &self.batch {
            Some(b) => self.check_batch(b),
            None => Ok(()),
        }
    }

    fn check_batch(&self, b: &BatchConfig) -> Result<(), Invalid> {
        let sizer = b.sizer.unwrap_or(self.sizer);
        if sizer == Sizer::Requests {
            return Err(Invalid::new(
                "sending_queue.batch.sizer",
                "must be `items` or `bytes`",
            ));
        }
        if b.flush_timeout.is_zero() {
            return Err(Invalid::new(
                "sending_queue.batch.flush_timeout",
                "must be positive",
            ));
        }
        if b.max_size > 0 && b.max_size < b.min_size {
            return Err(Invalid::new(
                "sending_queue.batch.max_size",
                "must be 0 (no limit) or not less than min_size",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let keys = b.partition.iter().flat_map(|p| &p.metadata_keys);
        for (i, key) in keys.enumerate() {
            let lower = key.to_ascii_lowercase();
            if !seen.insert(lower.clone()) {
                return Err(Invalid::new(
                    format!("sending_queue.batch.partition.metadata_keys[{i}]"),
                    format!("duplicate entry in metadata_keys: {lower:?} (case-insensitive)"),
                ));
            }
        }
        if sizer == self.sizer && b.min_size > self.queue_size {
            return Err(Invalid::new(
                "sending_queue.batch.min_size",
                "must not exceed queue_size, or the queue could never fill a batch",
            ));
        }
        Ok(())
    }
}

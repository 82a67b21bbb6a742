//! What the exporter tests share whatever the transport (gRPC in `common`, HTTP in
//! `http_sink`): the started exporter with its counters, fast retries, polling, and a CA made
//! per run (`pki`).

#![allow(dead_code)]

pub mod pki;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redline_otlp_exporter::config::RetryConfig;
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{Consumer, RunningComponent};

/// An exporter of one signal as a test drives it.
pub struct Started {
    pub consumer: Arc<dyn Consumer>,
    pub running: Box<dyn RunningComponent>,
    pub counters: Arc<ExporterCounters>,
}

impl Started {
    /// Items the exporter reports as sent.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::SeqCst)
    }

    /// Items the exporter reports as failed (dropped after its retries).
    pub fn failed(&self) -> u64 {
        self.counters.send_failed.load(Ordering::SeqCst)
    }

    /// Shuts down with a 10 s deadline, expecting a clean drain.
    pub async fn shutdown_ok(self) {
        self.running
            .shutdown(Instant::now() + Duration::from_secs(10))
            .await
            .expect("clean shutdown");
    }
}

/// Retries 10 to 50 ms apart for up to 20 s: tests wait for the retries, not the backoff.
pub fn fast_retries() -> RetryConfig {
    RetryConfig {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(50),
        max_elapsed_time: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}

/// Polls `cond` until it holds or 10 s pass; returns whether it held.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// A storage extension as the pipeline sees one: a directory per component under `root`.
pub struct DirStorage {
    pub root: std::path::PathBuf,
}

impl redline_pipeline::extension::Storage for DirStorage {
    fn directory(
        &self,
        kind: &str,
        component: &redline_pipeline::ComponentId,
        name: &str,
    ) -> Result<std::path::PathBuf, std::io::Error> {
        let dir = self.root.join(format!(
            "{kind}_{}_{name}",
            component.to_string().replace('/', "_")
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// [`DirStorage`] with `fsync: true`.
pub struct SyncedDirStorage(pub DirStorage);

impl redline_pipeline::extension::Storage for SyncedDirStorage {
    fn directory(
        &self,
        kind: &str,
        component: &redline_pipeline::ComponentId,
        name: &str,
    ) -> Result<std::path::PathBuf, std::io::Error> {
        self.0.directory(kind, component, name)
    }

    fn fsync(&self) -> bool {
        true
    }
}

//! What a processor crate's tests need to run a processor the way the pipeline does: its
//! config parsed from YAML, built for a signal in front of a sink that records every batch
//! it is handed, with the process telemetry it counts into. Test-only (no panics are guarded
//! against here: a broken fixture should fail the test loudly).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, Consumer, ProcessorFactory, Refused, Reservation, Signal,
};

/// Records the batches it is handed.
#[derive(Clone, Default)]
pub struct Sink(Arc<Mutex<Vec<Batch>>>);

impl Consumer for Sink {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let got = self.0.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            got.lock().expect("sink lock").push(b)
        })))
    }
}

impl Sink {
    /// The batches received so far, emptying the record.
    pub fn take(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.0.lock().expect("sink lock"))
    }
}

/// The config of processor id `p` whose YAML body (indented under `processors:`, starting
/// with `  p:` or `  type/name:`) is `body`.
pub fn component(body: &str) -> ComponentConfig {
    let text = format!(
        "processors:\n{body}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"
    );
    let cfg = redline_pipeline::config::load_str("test.yaml", &text).expect("config loads");
    cfg.processors.into_iter().next().expect("one processor")
}

/// A processor built for `signal` in front of a fresh [`Sink`], and the telemetry it counts
/// into; the build error as text when it fails.
pub fn build(
    factory: &dyn ProcessorFactory,
    config: &ComponentConfig,
    signal: Signal,
) -> Result<(Arc<dyn Consumer>, Sink, Telemetry), String> {
    let sink = Sink::default();
    let (consumer, telemetry) = build_before(factory, config, signal, Arc::new(sink.clone()))?;
    Ok((consumer, sink, telemetry))
}

/// A processor built for `signal` in front of `next`, and the telemetry it counts into.
pub fn build_before(
    factory: &dyn ProcessorFactory,
    config: &ComponentConfig,
    signal: Signal,
    next: Arc<dyn Consumer>,
) -> Result<(Arc<dyn Consumer>, Telemetry), String> {
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (consumer, _running) = rt
        .block_on(factory.build(config, &ctx, signal, next))
        .map_err(|e| e.to_string())?;
    Ok((consumer, telemetry))
}

/// Hands `raw` (an encoded request of `signal` with `items` items) to `consumer`.
pub fn send(consumer: &Arc<dyn Consumer>, signal: Signal, raw: Vec<u8>, items: usize) {
    consumer
        .consume(Batch::new(signal, Bytes::from(raw), items))
        .expect("the sink takes everything");
}

//! What a processor crate's tests need to run a processor the way the pipeline does: its
//! config parsed from YAML, built for a signal in front of a sink that records every batch
//! it is handed, requests to hand it, and the process telemetry it counts into with its
//! counters read back. Test-only (no panics are guarded against here: a broken fixture
//! should fail the test loudly).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod requests;

pub use requests::{kv, logs_request, metrics_request, span, string, traces_request};

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricsSink, MetricsSource,
    NumberPoint, SummaryPoint,
};
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

/// Refuses everything, as a full queue does: the client is told to retry.
pub struct Refusing;

impl Consumer for Refusing {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        Err(Refused {
            component: "next".into(),
            reason: "full".into(),
            retry_after: std::time::Duration::from_secs(1),
            permanent: false,
        })
    }
}

/// Refuses everything permanently, as a `batch` processor over its metadata cardinality
/// limit does: sending again would not help.
pub struct RefusingForGood;

impl Consumer for RefusingForGood {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        Err(Refused {
            component: "batch".into(),
            reason: "too many batcher metadata-value combinations".into(),
            retry_after: std::time::Duration::ZERO,
            permanent: true,
        })
    }
}

/// One counter series: family name, labels, value.
pub type CounterSeries = (String, Vec<(String, String)>, u64);

/// Every counter series `telemetry` serves, in the order it serves them.
pub fn counters(telemetry: &Telemetry) -> Vec<CounterSeries> {
    let mut sink = Counters::default();
    telemetry.collect(&mut sink);
    sink.series
}

#[derive(Default)]
struct Counters {
    family: String,
    series: Vec<CounterSeries>,
}

impl MetricsSink for Counters {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        desc.name.clone_into(&mut self.family);
    }
    fn counter(&mut self, labels: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.series.push((self.family.clone(), labels, value));
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}
    fn histogram(&mut self, _: &[(&str, &str)], _: &HistogramPoint<'_>) {}
    fn number(&mut self, _: &[(&str, &str)], _: &NumberPoint<'_>) {}
    fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {}
    fn exponential_histogram(&mut self, _: &[(&str, &str)], _: &ExponentialHistogramPoint<'_>) {}
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
    let raw = Bytes::from(raw);
    // As the receiver hands traces on: with the span names its validation recorded.
    let names = (signal == Signal::Traces)
        .then(|| redline_otlp_wire::validate_with_span_names(&raw).ok())
        .flatten();
    let batch = match names {
        Some((_, names)) => Batch::validated_traces(names, items),
        None => Batch::new(signal, raw, items),
    };
    consumer.consume(batch).expect("the sink takes everything");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use redline_pipeline::telemetry::CounterDesc;

    use super::*;

    #[test]
    fn counters_lists_every_counted_series_with_its_family() {
        let telemetry = Telemetry::new();
        let family = telemetry.counter_family(CounterDesc {
            name: "otelcol_things",
            description: "Things.",
            unit: "1",
        });
        family
            .series(&[("kind", "a")])
            .fetch_add(3, Ordering::Relaxed);
        telemetry
            .processor("p", Signal::Logs)
            .incoming
            .fetch_add(2, Ordering::Relaxed);
        let label = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let mut got = counters(&telemetry);
        got.sort();
        assert_eq!(
            got,
            [
                (
                    "otelcol_processor_incoming_items".to_owned(),
                    vec![label("otel_signal", "logs"), label("processor", "p")],
                    2
                ),
                (
                    "otelcol_processor_outgoing_items".to_owned(),
                    vec![label("otel_signal", "logs"), label("processor", "p")],
                    0
                ),
                ("otelcol_things".to_owned(), vec![label("kind", "a")], 3),
            ]
        );
    }
}

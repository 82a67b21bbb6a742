//! What the OTTL processors cost per span, through the same `EditingProcessor` the pipeline
//! runs them in, on 100-span requests:
//! - `none`: the consumer alone, the baseline;
//! - `transform_untouched`: `replace_pattern` on span names that never match (the dry run
//!   over the encoded request, then the original bytes travel on);
//! - `transform_rename`: `replace_pattern` changing every span name (decode, apply, encode);
//! - `filter_tenth`: a `filter` dropping ~10% of spans by name (dry run, decode, filter,
//!   encode).
//!
//! `validate` (the receiver's walk of the same requests, which also records where each span's
//! name lies) is there for scale: the untouched dry run should cost a small fraction of it.
//! The processors are handed what the receiver hands on: batches with those span names.
//!
//! `cargo bench -p redline-benches --bench processors`

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use redline_benches::clock::Clock;
use redline_benches::{Workload, SPANS_PER_REQUEST};
use redline_pipeline::config::load_str;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, Consumer, ProcessorFactory, Refused, Reservation, Signal,
};

/// Counts the spans it is handed, so no work is optimised away.
struct Count(Arc<AtomicUsize>);

impl Consumer for Count {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let n = self.0.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            n.fetch_add(b.items, Ordering::Relaxed);
        })))
    }
}

/// The processor `id` of `yaml` (a `processors:` section), built for traces in front of `next`.
fn processor(
    rt: &tokio::runtime::Runtime,
    factory: &dyn ProcessorFactory,
    yaml: &str,
    next: Arc<dyn Consumer>,
) -> Arc<dyn Consumer> {
    let text = format!(
        "receivers: {{otlp: {{protocols: {{grpc: }}}}}}\nprocessors:\n{yaml}\nexporters: {{debug: }}\n\
         service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [debug]}}}}}}\n"
    );
    let config = load_str("bench.yaml", &text).expect("bench config loads");
    let cfg = config.processors.first().expect("one processor");
    let ctx = BuildContext::new(Telemetry::new());
    let (consumer, _running) = rt
        .block_on(factory.build(cfg, &ctx, Signal::Traces, next))
        .expect("processor builds");
    consumer
}

const UNTOUCHED: &str =
    "  transform:\n    trace_statements:\n      - replace_pattern(span.name, \"\\\\?.*\", \"\")\n";
const RENAME: &str = "  transform:\n    trace_statements:\n      - replace_pattern(span.name, \"resource-[0-9]+\", \"resource-{id}\")\n";
const FILTER_TENTH: &str =
    "  filter:\n    traces:\n      span:\n        - IsMatch(name, \"resource-[0-9]*0$\")\n";

fn processors(c: &mut Criterion<Clock>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let requests = Workload::new(10_000).requests(8, 3);
    let spans = requests.len() * SPANS_PER_REQUEST;
    let seen = Arc::new(AtomicUsize::new(0));
    let sink: Arc<dyn Consumer> = Arc::new(Count(seen.clone()));
    let transform = redline_transform_processor::TransformProcessorFactory;
    let filter = redline_filter_processor::FilterProcessorFactory;
    let cases: [(&str, Arc<dyn Consumer>); 4] = [
        ("none", sink.clone()),
        (
            "transform_untouched",
            processor(&rt, &transform, UNTOUCHED, sink.clone()),
        ),
        (
            "transform_rename",
            processor(&rt, &transform, RENAME, sink.clone()),
        ),
        (
            "filter_tenth",
            processor(&rt, &filter, FILTER_TENTH, sink.clone()),
        ),
    ];

    let mut g = c.benchmark_group("processors");
    g.throughput(Throughput::Elements(spans as u64));
    g.bench_function("validate", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(redline_otlp_wire::validate_with_span_names(black_box(r)).ok());
            }
        })
    });
    let named: Vec<_> = requests
        .iter()
        .map(|r| {
            redline_otlp_wire::validate_with_span_names(r)
                .expect("loadgen's requests are valid")
                .1
        })
        .collect();
    let batch = |names: &redline_otlp_wire::SpanNames| {
        Batch::validated_traces(names.clone(), SPANS_PER_REQUEST)
    };
    for (name, consumer) in &cases {
        seen.store(0, Ordering::Relaxed);
        for names in &named {
            consumer.consume(batch(names)).expect("never refused");
        }
        println!(
            "{name}: {} of {spans} spans pass",
            seen.load(Ordering::Relaxed)
        );
        g.bench_function(*name, |b| {
            b.iter(|| {
                for names in &named {
                    black_box(consumer.consume(batch(names)).ok());
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = processors
}
criterion_main!(benches);

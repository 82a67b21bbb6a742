//! What the `jaeger` receiver pays per span to turn Jaeger Thrift into an OTLP request: the
//! load's 100-span requests written as Jaeger exporters write them (loadgen's
//! `--protocol jaeger` encoder: one binary-protocol `Batch` per resource), read and
//! translated; a prost decode of the same spans as OTLP for scale.
//!
//! `cargo bench -p redline-benches --bench jaeger`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_benches::clock::Clock;
use redline_benches::{Workload, SPANS_PER_REQUEST};
use redline_jaeger_receiver::{translate, ThriftFormat};

fn jaeger(c: &mut Criterion<Clock>) {
    let requests = Workload::new(10_000).requests(64, 5);
    let bodies: Vec<Vec<Vec<u8>>> = requests
        .iter()
        .map(|r| {
            let batches = redline_loadgen::jaeger::to_batches(r).expect("valid OTLP");
            batches.into_iter().map(|(body, _)| body).collect()
        })
        .collect();
    for batches in &bodies {
        let spans: usize = batches
            .iter()
            .map(|b| {
                let (otlp, spans) = translate(b, ThriftFormat::HttpBatch).expect("translates");
                let back = ExportTraceServiceRequest::decode(otlp.as_slice()).expect("valid OTLP");
                let decoded: usize = back
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len())
                    .sum();
                assert_eq!(decoded, spans);
                spans
            })
            .sum();
        assert_eq!(spans, SPANS_PER_REQUEST, "every span of the request");
    }
    let mean = |sizes: &mut dyn Iterator<Item = usize>, n: usize| sizes.sum::<usize>() / n;
    eprintln!(
        "jaeger: {} B of Thrift per request on average (in {} batches), {} B as OTLP",
        mean(
            &mut bodies.iter().map(|b| b.iter().map(Vec::len).sum()),
            bodies.len()
        ),
        mean(&mut bodies.iter().map(Vec::len), bodies.len()),
        mean(&mut requests.iter().map(|r| r.len()), requests.len()),
    );
    let mut group = c.benchmark_group("jaeger");
    group.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    let mut i = 0;
    group.bench_function("thrift_to_otlp", |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            for batch in &bodies[i] {
                black_box(translate(batch, ThriftFormat::HttpBatch)).ok();
            }
        })
    });
    group.bench_function("otlp_prost_decode", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(ExportTraceServiceRequest::decode(requests[i].as_ref()))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = jaeger
}
criterion_main!(benches);

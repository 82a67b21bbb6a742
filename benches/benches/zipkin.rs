//! What the `zipkin` receiver pays per span to turn Zipkin v2 JSON into an OTLP request:
//! the load's 100-span requests written as a Zipkin exporter writes them (loadgen's
//! `--protocol zipkin` encoder), read and translated; a prost decode of the same spans as
//! OTLP for scale.
//!
//! `cargo bench -p redline-benches --bench zipkin`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_benches::clock::Clock;
use redline_benches::{Workload, SPANS_PER_REQUEST};

fn zipkin(c: &mut Criterion<Clock>) {
    let requests = Workload::new(10_000).requests(64, 5);
    let bodies: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| redline_loadgen::zipkin::to_json(r).expect("the workload is valid OTLP"))
        .collect();
    for (body, request) in bodies.iter().zip(&requests) {
        let (otlp, _) = redline_zipkin_receiver::translate(body, false, false).expect("translates");
        let back = ExportTraceServiceRequest::decode(otlp.as_slice()).expect("valid OTLP");
        let spans: usize = back
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        assert_eq!(
            spans,
            SPANS_PER_REQUEST,
            "every span of {} bytes",
            request.len()
        );
    }
    let mean = |sizes: &mut dyn Iterator<Item = usize>, n: usize| sizes.sum::<usize>() / n;
    eprintln!(
        "zipkin: {} B of Zipkin JSON per request on average, {} B as OTLP",
        mean(&mut bodies.iter().map(Vec::len), bodies.len()),
        mean(&mut requests.iter().map(|r| r.len()), requests.len()),
    );
    let mut group = c.benchmark_group("zipkin");
    group.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    let mut i = 0;
    group.bench_function("json_to_otlp", |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            black_box(redline_zipkin_receiver::translate(&bodies[i], false, false))
        })
    });
    group.bench_function("json_to_otlp_typed_tags", |b| {
        b.iter(|| {
            i = (i + 1) % bodies.len();
            black_box(redline_zipkin_receiver::translate(&bodies[i], false, true))
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
    targets = zipkin
}
criterion_main!(benches);

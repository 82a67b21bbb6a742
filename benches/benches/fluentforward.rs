//! What the `fluent_forward` receiver pays per log record to turn a Fluent Forward event into
//! an OTLP request: loadgen's logs requests (`--signal logs`, ~43 KB, ~113 records each)
//! written as Fluent Bit's `forward` output writes them (loadgen's `--protocol fluent`
//! encoder: one PackedForward event per request), read and translated; a prost decode of the
//! same records as OTLP for scale.
//!
//! `cargo bench -p redline-benches --bench fluentforward`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use redline_benches::clock::Clock;
use redline_loadgen::model::ModelConfig;
use redline_loadgen::model_logs::LogsGenerator;

fn fluentforward(c: &mut Criterion<Clock>) {
    let generator = LogsGenerator::new(ModelConfig::default(), 7, 43_000).expect("the model");
    let mut requests = Vec::new();
    let mut events = Vec::new();
    let mut records = 0;
    for index in 0..64 {
        let (request, n) = generator.request(index, 1_700_000_000_000_000_000);
        let otlp = request.encode_to_vec();
        let (event, sent) = redline_loadgen::fluent::to_event(&otlp, "bench").expect("encodes");
        let (_, read) = redline_fluentforward_receiver::translate(&event).expect("reads");
        assert_eq!((sent, read), (n, n), "every record of request {index}");
        records += n;
        requests.push(otlp);
        events.push(event);
    }
    let per_request = records / events.len();
    let mean = |sizes: &mut dyn Iterator<Item = usize>, n: usize| sizes.sum::<usize>() / n;
    eprintln!(
        "fluentforward: {per_request} records and {} B of Forward event per request on average, {} B as OTLP",
        mean(&mut events.iter().map(Vec::len), events.len()),
        mean(&mut requests.iter().map(Vec::len), requests.len()),
    );
    let mut group = c.benchmark_group("fluentforward");
    group.throughput(Throughput::Elements(per_request as u64));
    let mut i = 0;
    group.bench_function("packed_forward_to_otlp", |b| {
        b.iter(|| {
            i = (i + 1) % events.len();
            black_box(redline_fluentforward_receiver::translate(&events[i]))
        })
    });
    group.bench_function("otlp_prost_decode", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(ExportLogsServiceRequest::decode(requests[i].as_slice()))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = fluentforward
}
criterion_main!(benches);

//! Decode cost per span: the lean walker's validation, its single-pass walk with a visitor
//! reading what spanmetrics reads, and a full prost decode for comparison.
//!
//! `cargo bench -p redline-benches --bench decode`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_benches::clock::Clock;
use redline_benches::{Workload, DIMENSION, SPANS_PER_REQUEST};
use redline_otlp_wire::{ResourceView, SpanView, TraceVisitor};

/// Reads every field the spanmetrics connector reads, and folds them into a checksum so
/// nothing is optimised away.
#[derive(Default)]
struct SpanmetricsFields<'a> {
    service: Option<&'a str>,
    sum: u64,
}

impl<'a> TraceVisitor<'a> for SpanmetricsFields<'a> {
    fn resource(&mut self, r: &ResourceView<'a>) {
        self.service = r.service_name();
    }

    fn span(&mut self, s: &SpanView<'a>) {
        let Some(service) = self.service else { return };
        let hit = s.attribute(DIMENSION).map_or(0, |v| v.str_or_empty().len());
        self.sum = self
            .sum
            .wrapping_add(service.len() as u64)
            .wrapping_add(s.name().len() as u64)
            .wrapping_add(s.kind() as u64)
            .wrapping_add(s.status_code() as u64)
            .wrapping_add(
                s.end_time_unix_nano()
                    .wrapping_sub(s.start_time_unix_nano()),
            )
            .wrapping_add(s.trace_id().first().copied().unwrap_or(0) as u64)
            .wrapping_add(s.span_id().len() as u64)
            .wrapping_add(hit as u64);
    }
}

fn decode(c: &mut Criterion<Clock>) {
    // 8 requests (~340 KB) stay in L2, as a request just received and decompressed does.
    let requests = Workload::new(10_000).requests(8, 1);
    let bytes: usize = requests.iter().map(|r| r.len()).sum();
    let spans = requests.len() * SPANS_PER_REQUEST;
    println!(
        "decode fixture: {} requests, {:.0} bytes/span",
        requests.len(),
        bytes as f64 / spans as f64
    );

    let mut g = c.benchmark_group("decode");
    // One iteration decodes all 8 requests; throughput is in spans so criterion prints
    // spans/s, and time/iter ÷ 800 is ns/span.
    g.throughput(Throughput::Elements(spans as u64));
    g.bench_function("validate", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(redline_otlp_wire::validate(black_box(r)).ok());
            }
        })
    });
    g.bench_function("walk_single_pass+spanmetrics_fields", |b| {
        b.iter(|| {
            let mut v = SpanmetricsFields::default();
            for r in &requests {
                black_box(redline_otlp_wire::walk_single_pass(black_box(r), &mut v).ok());
            }
            v.sum
        })
    });
    // BEFORE-BASELINE-SKIP-START
    g.bench_function("walk_validated+spanmetrics_fields", |b| {
        b.iter(|| {
            let mut v = SpanmetricsFields::default();
            for r in &requests {
                black_box(redline_otlp_wire::walk_validated(black_box(r), &mut v).ok());
            }
            v.sum
        })
    });
    // BEFORE-BASELINE-SKIP-END
    g.bench_function("walk(validate+walk)+spanmetrics_fields", |b| {
        b.iter(|| {
            let mut v = SpanmetricsFields::default();
            for r in &requests {
                black_box(redline_otlp_wire::walk(black_box(r), &mut v).ok());
            }
            v.sum
        })
    });
    g.bench_function("prost_decode", |b| {
        b.iter(|| {
            for r in &requests {
                black_box(ExportTraceServiceRequest::decode(black_box(&r[..])).ok());
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = decode
}
criterion_main!(benches);

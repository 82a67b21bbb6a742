//! servicegraph pairing of already-validated requests (`ServiceGraph::consume_validated`,
//! what the connector runs for every batch): 100-span requests of 50 client/server pairs
//! between 10 services, every pair completing within its request (the steady state: the
//! store stays empty, each pair takes two store-shard locks and one series-shard lock), with
//! and without two dimensions and sampling weights.
//!
//! `cargo bench -p redline-benches --bench servicegraph` (CPU time of the measuring thread;
//! `REDLINE_BENCH_CLOCK=wall` for wall time, see `benches/src/clock.rs`)

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_benches::clock::Clock;
use redline_servicegraph::{Config, ServiceGraph};

const PAIRS: usize = 50;
const REQUESTS: usize = 64;

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One request: `PAIRS` client spans (in the caller's resource) and their server spans (in
/// the callee's), ten attributes per span as the reference load has.
fn request(n: usize, trace_state: &str) -> Vec<u8> {
    let mut resources = Vec::new();
    for p in 0..PAIRS {
        let (caller, callee) = (format!("svc-{}", p % 10), format!("svc-{}", (p + 1) % 10));
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
        trace_id[8..].copy_from_slice(&(p as u64 + 1).to_le_bytes());
        let client_id = (2 * p as u64 + 1).to_le_bytes().to_vec();
        let server_id = (2 * p as u64 + 2).to_le_bytes().to_vec();
        let attrs: Vec<KeyValue> = (0..8)
            .map(|i| kv(&format!("attr.{i}"), "value"))
            .chain([kv("http.method", "GET"), kv("http.route", "/api/items")])
            .collect();
        let span = |id: Vec<u8>, parent: Vec<u8>, kind: i32| Span {
            trace_id: trace_id.to_vec(),
            span_id: id,
            parent_span_id: parent,
            trace_state: trace_state.into(),
            name: "GET /api/items".into(),
            kind,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_020_000_000,
            attributes: attrs.clone(),
            ..Default::default()
        };
        for (service, s) in [
            (caller, span(client_id.clone(), Vec::new(), 3)),
            (callee, span(server_id, client_id, 2)),
        ] {
            resources.push(ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", &service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![s],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: resources,
    }
    .encode_to_vec()
}

fn pairing(c: &mut Criterion<Clock>) {
    let mut g = c.benchmark_group("servicegraph");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(2 * PAIRS as u64));
    let cases = [
        ("plain", Config::default(), ""),
        (
            "dims_weighted",
            Config {
                dimensions: vec!["http.method".into(), "http.route".into()],
                ..Config::default()
            },
            "ot=th:e",
        ),
    ];
    for (name, config, trace_state) in cases {
        let graph = ServiceGraph::new(&config).expect("valid config");
        let reqs: Vec<Vec<u8>> = (0..REQUESTS).map(|n| request(n, trace_state)).collect();
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(graph.consume_validated(black_box(&reqs[i])).ok())
            })
        });
        assert_eq!(
            graph.store_len(),
            0,
            "every pair completes within its request"
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = pairing
}
criterion_main!(benches);

//! What forwarding costs per byte for each signal. The forward path is the same code for
//! traces, metrics and logs (reserve on the exporter's queue, concatenate, frame, send) except
//! for one step: the receiver's wire walker of the signal, which checks the request before it
//! becomes a batch. This measures that step per byte on requests of the same size and shape
//! as the reference load (attributes of ~20-byte strings), with a full prost decode of each
//! for scale.
//!
//! `cargo bench -p redline-benches --bench signals`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_benches::clock::Clock;
use redline_benches::Workload;

fn attrs(n: usize, seed: usize) -> Vec<KeyValue> {
    (0..n)
        .map(|i| KeyValue {
            key: format!("attribute.key.{i}"),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "value-{seed:08}-{i:04}-xyz"
                ))),
            }),
            ..Default::default()
        })
        .collect()
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attrs(6, 0),
        ..Default::default()
    })
}

/// Sums of 4 points and histograms of 2 points with 16 buckets, 4 attributes per point.
fn metrics_request(target_bytes: usize) -> Vec<u8> {
    let mut metrics = Vec::new();
    let mut req = ExportMetricsServiceRequest::default();
    let mut i = 0;
    while req.encoded_len() < target_bytes {
        let points = (0..4)
            .map(|p| NumberDataPoint {
                attributes: attrs(4, i * 4 + p),
                start_time_unix_nano: 1_700_000_000_000_000_000,
                time_unix_nano: 1_700_000_010_000_000_000,
                value: Some(number_data_point::Value::AsInt((i * p) as i64)),
                ..Default::default()
            })
            .collect();
        metrics.push(Metric {
            name: format!("app.requests.{i}"),
            unit: "{request}".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        });
        let hist = (0..2)
            .map(|p| HistogramDataPoint {
                attributes: attrs(4, i * 2 + p),
                count: 100,
                sum: Some(12.5),
                bucket_counts: vec![6; 16],
                explicit_bounds: (0..15).map(|b| b as f64 * 10.0).collect(),
                ..Default::default()
            })
            .collect();
        metrics.push(Metric {
            name: format!("app.latency.{i}"),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(
                opentelemetry_proto::tonic::metrics::v1::Histogram {
                    data_points: hist,
                    aggregation_temporality: 2,
                },
            )),
            ..Default::default()
        });
        req.resource_metrics = vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: metrics.clone(),
                ..Default::default()
            }],
            ..Default::default()
        }];
        i += 1;
    }
    req.encode_to_vec()
}

/// Log records with a ~120-byte body, 6 attributes and trace context.
fn logs_request(target_bytes: usize) -> Vec<u8> {
    let mut records = Vec::new();
    let mut req = ExportLogsServiceRequest::default();
    let mut i = 0;
    while req.encoded_len() < target_bytes {
        records.push(LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            observed_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "request {i:08} served from cache in 12 ms for GET /assets/app.js by edge node fra-01 ok"
                ))),
            }),
            attributes: attrs(6, i),
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            ..Default::default()
        });
        req.resource_logs = vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records.clone(),
                ..Default::default()
            }],
            ..Default::default()
        }];
        i += 1;
    }
    req.encode_to_vec()
}

fn signals(c: &mut Criterion<Clock>) {
    // One reference-load traces request (100 spans, ~43 KB), and metrics and logs requests
    // of at least its size.
    let traces = Workload::new(10_000).requests(1, 1).remove(0).to_vec();
    let metrics = metrics_request(traces.len());
    let logs = logs_request(traces.len());
    println!(
        "signals fixture: traces {} B, metrics {} B, logs {} B",
        traces.len(),
        metrics.len(),
        logs.len()
    );

    let mut g = c.benchmark_group("signals");
    for (name, raw) in [("traces", &traces), ("metrics", &metrics), ("logs", &logs)] {
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(format!("{name}/validate"), |b| {
            b.iter(|| match name {
                "traces" => black_box(redline_otlp_wire::validate(black_box(raw)).is_ok()),
                "metrics" => black_box(redline_otlp_wire::validate_metrics(black_box(raw)).is_ok()),
                _ => black_box(redline_otlp_wire::validate_logs(black_box(raw)).is_ok()),
            })
        });
        g.bench_function(format!("{name}/prost_decode"), |b| {
            b.iter(|| match name {
                "traces" => black_box(ExportTraceServiceRequest::decode(&raw[..]).is_ok()),
                "metrics" => black_box(ExportMetricsServiceRequest::decode(&raw[..]).is_ok()),
                _ => black_box(ExportLogsServiceRequest::decode(&raw[..]).is_ok()),
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = signals
}
criterion_main!(benches);

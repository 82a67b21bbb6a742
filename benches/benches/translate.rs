//! OTLP metrics into Prometheus series: what the `prometheus` exporter's accumulator costs per
//! data point, and what a scrape of its series costs.
//!
//! - `translate/accumulate`: one request of 100 data points (40 cumulative sums, 20 gauges,
//!   30 explicit histograms of 15 buckets, 10 exponential histograms of 40 buckets; 4
//!   attributes per point, ~20-byte values, a resource of 6 attributes) accumulated into a
//!   store that already holds its series: the steady state of an application exporting every
//!   interval. Throughput in data points.
//! - `translate/remote_write`: the stateless translation of the same request into a sink that
//!   only counts (remote write's path before encoding).
//!
//! `cargo bench -p redline-benches --bench translate`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, number_data_point, AggregationTemporality,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_benches::clock::Clock;
use redline_pipeline::{
    ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricsSink, NumberPoint, SummaryPoint,
};
use redline_prometheus_translate::{translate, Accumulator, Settings};

const T0: u64 = 1_700_000_000_000_000_000;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn attrs(seed: usize) -> Vec<KeyValue> {
    [
        "http.route",
        "http.request.method",
        "server.address",
        "net.peer.name",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| string_kv(k, format!("value-{seed:08}-{i:04}-xyz")))
    .collect()
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.to_owned(),
        description: format!("{name} of the bench"),
        unit: unit.to_owned(),
        data: Some(data),
        ..Default::default()
    }
}

/// 100 data points in 4 metrics, as described in the module docs.
pub fn request() -> Vec<u8> {
    let number = |i: usize| NumberDataPoint {
        attributes: attrs(i),
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 10_000_000_000,
        value: Some(number_data_point::Value::AsDouble(i as f64 * 1.5)),
        ..Default::default()
    };
    let sums = (0..40).map(number).collect();
    let gauges = (40..60).map(number).collect();
    let bounds: Vec<f64> = (1..=15).map(|b| f64::from(b) * 10.0).collect();
    let histograms = (60..90)
        .map(|i| HistogramDataPoint {
            attributes: attrs(i),
            start_time_unix_nano: T0,
            time_unix_nano: T0 + 10_000_000_000,
            count: 160,
            sum: Some(12_345.0),
            bucket_counts: vec![10; 16],
            explicit_bounds: bounds.clone(),
            ..Default::default()
        })
        .collect();
    let exponential = (90..100)
        .map(|i| ExponentialHistogramDataPoint {
            attributes: attrs(i),
            start_time_unix_nano: T0,
            time_unix_nano: T0 + 10_000_000_000,
            count: 200,
            sum: Some(5_000.0),
            scale: 3,
            zero_count: 0,
            positive: Some(Buckets {
                offset: 10,
                bucket_counts: vec![5; 40],
            }),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "checkout".into()),
                    string_kv("service.namespace", "shop".into()),
                    string_kv("service.instance.id", "pod-7f9c".into()),
                    string_kv("host.name", "node-12.prod".into()),
                    string_kv("k8s.pod.name", "checkout-7f9c-abcde".into()),
                    string_kv("deployment.environment", "production".into()),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "2.8.0".into(),
                    ..Default::default()
                }),
                metrics: vec![
                    metric(
                        "http.server.requests",
                        "{request}",
                        metric::Data::Sum(Sum {
                            data_points: sums,
                            aggregation_temporality: CUMULATIVE,
                            is_monotonic: true,
                        }),
                    ),
                    metric(
                        "http.server.active_requests",
                        "{request}",
                        metric::Data::Gauge(Gauge {
                            data_points: gauges,
                        }),
                    ),
                    metric(
                        "http.server.request.duration",
                        "ms",
                        metric::Data::Histogram(Histogram {
                            data_points: histograms,
                            aggregation_temporality: CUMULATIVE,
                        }),
                    ),
                    metric(
                        "http.server.response.size",
                        "By",
                        metric::Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: exponential,
                            aggregation_temporality: CUMULATIVE,
                        }),
                    ),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// Counts what it is given, so the translation cannot be optimised away.
#[derive(Default)]
struct Counting(u64);

impl MetricsSink for Counting {
    fn family(&mut self, _: &FamilyDesc<'_>) {}
    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        v: u64,
        _: u64,
        _: Option<&redline_pipeline::Exemplar>,
    ) {
        self.0 = self.0.wrapping_add(v + labels.len() as u64);
    }
    fn gauge(&mut self, labels: &[(&str, &str)], _: f64) {
        self.0 = self.0.wrapping_add(labels.len() as u64);
    }
    fn histogram(&mut self, labels: &[(&str, &str)], p: &HistogramPoint<'_>) {
        self.0 = self.0.wrapping_add(p.count + labels.len() as u64);
    }
    fn number(&mut self, labels: &[(&str, &str)], _: &NumberPoint<'_>) {
        self.0 = self.0.wrapping_add(labels.len() as u64);
    }
    fn summary(&mut self, labels: &[(&str, &str)], p: &SummaryPoint<'_>) {
        self.0 = self.0.wrapping_add(p.count + labels.len() as u64);
    }
    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        p: &ExponentialHistogramPoint<'_>,
    ) {
        self.0 = self.0.wrapping_add(p.count + labels.len() as u64);
    }
}

fn translate_bench(c: &mut Criterion<Clock>) {
    let raw = request();
    println!("translate fixture: {} B, 100 data points", raw.len());
    let mut g = c.benchmark_group("translate");
    g.throughput(Throughput::Elements(100));
    let acc = Accumulator::new(Settings::default(), Duration::from_secs(300));
    if let Err(e) = acc.accumulate(&raw) {
        panic!("fixture must accumulate: {e}");
    }
    g.bench_function("accumulate", |b| {
        b.iter(|| black_box(acc.accumulate(black_box(&raw)).map(|a| a.points)))
    });
    g.bench_function("remote_write", |b| {
        b.iter(|| {
            let mut sink = Counting::default();
            let t = translate(black_box(&raw), &Settings::default(), &mut sink);
            black_box((t.is_ok(), sink.0))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = translate_bench
}
criterion_main!(benches);

//! OTLP metrics batches through the exporter's consumer, scraped over HTTP.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use redline_pipeline::component::FactoryInfo as _;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ExporterFactory as _, Signal};

use crate::tests::{exporter_section, http_get};
use crate::tests_proto::decode_all;
use crate::PrometheusExporterFactory;

const START: u64 = 1_600_000_000_000_000_000;
const T: u64 = 1_700_000_000_123_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn request() -> ExportMetricsServiceRequest {
    let number = |attrs: Vec<KeyValue>, v: number_data_point::Value| NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: START,
        time_unix_nano: T,
        value: Some(v),
        ..NumberDataPoint::default()
    };
    let metrics = vec![
        Metric {
            name: "http.requests".into(),
            description: "Requests.".into(),
            unit: "1".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![number(
                    vec![kv("method", "GET")],
                    number_data_point::Value::AsInt(5),
                )],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Metric::default()
        },
        Metric {
            name: "room.temperature".into(),
            description: "Temp.".into(),
            unit: "Cel".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![number(vec![], number_data_point::Value::AsDouble(21.5))],
            })),
            ..Metric::default()
        },
        Metric {
            name: "latency".into(),
            description: "Latency.".into(),
            unit: "ms".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: START,
                    time_unix_nano: T,
                    count: 3,
                    sum: Some(30.0),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![10.0],
                    ..HistogramDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Metric::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.instance.id", "i-1"),
                    kv("host.name", "h1"),
                ],
                ..Resource::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    ..InstrumentationScope::default()
                }),
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

async fn scrape_after_commit(
    section: &str,
    accept: &str,
) -> (Telemetry, crate::tests::HttpResponse) {
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    let config = exporter_section(section);
    assert_eq!(PrometheusExporterFactory.type_name(), "prometheus");
    let (consumer, running) = PrometheusExporterFactory
        .build_metrics_reader(&config, &ctx, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("builds: {e}"));
    let raw = Bytes::from(request().encode_to_vec());
    consumer
        .consume(Batch::new(Signal::Metrics, raw, 3))
        .unwrap_or_else(|e| panic!("accepted: {e:?}"));
    let addr = running.local_addrs()[0].1;
    let r = http_get(addr, "/metrics", &[("Accept", accept)]).await;
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    (telemetry, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_batches_are_served_as_otelcol_serves_them() {
    let (telemetry, r) = scrape_after_commit(
        "    endpoint: 127.0.0.1:0\n    send_timestamps: true",
        "text/plain;version=0.0.4",
    )
    .await;
    assert_eq!(r.status, 200);
    let want = "\
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{host_name=\"h1\",job=\"checkout\",instance=\"i-1\"} 1
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method=\"GET\",otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\"} 5 1700000000123
# HELP latency_milliseconds Latency.
# TYPE latency_milliseconds histogram
latency_milliseconds_bucket{otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\",le=\"10\"} 1 1700000000123
latency_milliseconds_bucket{otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\",le=\"+Inf\"} 3 1700000000123
latency_milliseconds_sum{otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\"} 30 1700000000123
latency_milliseconds_count{otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\"} 3 1700000000123
# HELP room_temperature_celsius Temp.
# TYPE room_temperature_celsius gauge
room_temperature_celsius{otel_scope_name=\"lib\",otel_scope_version=\"1.0\",otel_scope_schema_url=\"\",job=\"checkout\",instance=\"i-1\"} 21.5 1700000000123
";
    // target_info has no timestamp even with send_timestamps, as in otelcol.
    assert_eq!(String::from_utf8_lossy(&r.body), want);
    let counters = telemetry.exporter("prometheus", Signal::Metrics);
    assert_eq!(counters.sent.load(Ordering::Relaxed), 3);
    assert_eq!(counters.send_failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_batches_over_protobuf_and_without_scope_info() {
    let (_, r) = scrape_after_commit(
        "    endpoint: 127.0.0.1:0\n    without_scope_info: true\n    resource_to_telemetry_conversion:\n      enabled: true",
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping=underscores")
    );
    let families = decode_all(&r.body);
    let names: Vec<&str> = families.iter().filter_map(|f| f.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            "target_info",
            "http_requests_total",
            "latency_milliseconds",
            "room_temperature_celsius"
        ]
    );
    let counter = &families[1].metric[0];
    let labels: Vec<(&str, &str)> = counter
        .label
        .iter()
        .map(|l| {
            (
                l.name.as_deref().unwrap_or(""),
                l.value.as_deref().unwrap_or(""),
            )
        })
        .collect();
    // Sorted by name; resource attributes as labels, no scope labels.
    assert_eq!(
        labels,
        [
            ("host_name", "h1"),
            ("instance", "i-1"),
            ("job", "checkout"),
            ("method", "GET"),
            ("service_instance_id", "i-1"),
            ("service_name", "checkout"),
        ]
    );
    let c = counter.counter.clone().unwrap_or_default();
    assert_eq!(c.value, Some(5.0));
    assert_eq!(
        c.created_timestamp,
        Some(crate::proto::Timestamp {
            seconds: 1_600_000_000,
            nanos: 0
        })
    );
}

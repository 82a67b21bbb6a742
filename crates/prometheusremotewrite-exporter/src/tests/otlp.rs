//! OTLP metrics batches through the exporter to the in-test receiver: translation as
//! otelcol's remote-write translator does it, counters, backpressure.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile, AggregationTemporality, Exemplar as OtlpExemplar,
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram as OtlpHistogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{Batch, Signal};

use super::loopback::{receiver, stop, wait_for, yaml};
use super::*;
use crate::config::Config;
use crate::proto::histogram::{Count, ResetHint, ZeroCount};
use crate::proto::{BucketSpan, Exemplar as PromExemplar, Histogram, Label, Sample, TimeSeries};

const T1: u64 = 1_700_000_000_100_000_000;
const T2: u64 = 1_700_000_000_200_000_000;
const T3: u64 = 1_700_000_000_300_999_999;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} help"),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

/// A gauge, a monotonic cumulative sum, a histogram, an exponential histogram and a summary
/// of one resource and scope.
fn request() -> Bytes {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = vec![
        metric(
            "queue.depth",
            "",
            Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("queue", "a")],
                    time_unix_nano: T1,
                    value: Some(number_data_point::Value::AsInt(7)),
                    ..Default::default()
                }],
            }),
        ),
        metric(
            "http.requests",
            "",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("http.method", "GET")],
                    start_time_unix_nano: 1,
                    time_unix_nano: T2,
                    value: Some(number_data_point::Value::AsDouble(12.5)),
                    exemplars: vec![OtlpExemplar {
                        time_unix_nano: T1,
                        value: Some(exemplar::Value::AsDouble(0.5)),
                        trace_id: TRACE.to_vec(),
                        span_id: SPAN.to_vec(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
                is_monotonic: true,
            }),
        ),
        metric(
            "latency",
            "ms",
            Data::Histogram(OtlpHistogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: T3,
                    count: 6,
                    sum: Some(500.0),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![10.0, 100.0],
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
        ),
        metric(
            "payload.size",
            "By",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: T1,
                    count: 4,
                    sum: Some(10.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: 0,
                        bucket_counts: vec![1, 2],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            }),
        ),
        metric(
            "rpc.duration",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T2,
                    count: 3,
                    sum: 1.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 0.4,
                        },
                        ValueAtQuantile {
                            quantile: 0.9,
                            value: 0.8,
                        },
                    ],
                    ..Default::default()
                }],
            }),
        ),
    ];
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "shop"),
                    kv("service.instance.id", "i-1"),
                    kv("host.name", "h1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

fn ms(nanos: u64) -> i64 {
    (nanos / 1_000_000) as i64
}

/// The labels every series of the request carries besides its name and own attributes.
fn with_common(name: &str, own: &[(&str, &str)]) -> Vec<Label> {
    let mut l: Vec<Label> = [
        ("__name__", name),
        ("instance", "i-1"),
        ("job", "shop"),
        ("otel_scope_name", "lib"),
        ("otel_scope_version", "1.0"),
    ]
    .iter()
    .chain(own)
    .map(|(n, v)| Label::new(*n, *v))
    .collect();
    l.sort();
    l
}

fn series(labels: Vec<Label>, value: f64, ts: i64) -> TimeSeries {
    TimeSeries {
        labels,
        samples: vec![Sample {
            value,
            timestamp: ts,
        }],
        exemplars: vec![],
        histograms: vec![],
    }
}

fn start(addr: std::net::SocketAddr, extra: &str) -> (crate::Running, Arc<ExporterCounters>) {
    let body = format!(
        "    endpoint: http://{addr}/api/v1/write\n    retry_on_failure:\n      initial_interval: 10ms\n      max_interval: 20ms\n{extra}"
    );
    let c: Config = yaml(&body).parse().expect("parses");
    let counters = Arc::new(ExporterCounters::default());
    let running = crate::start_counted(
        "prometheusremotewrite",
        c.settings().expect("valid"),
        vec![],
        counters.clone(),
    )
    .expect("starts");
    (running, counters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_otlp_batch_arrives_translated_as_otelcol_writes_it() {
    let (rx, addr) = receiver(&[]).await;
    let (running, counters) = start(addr, "    push_interval: 1h\n    send_metadata: true");
    running
        .consumer()
        .consume(Batch::new(Signal::Metrics, request(), 5))
        .expect("accepted");
    wait_for("the batch's request", || rx.got().len() == 1).await;
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    // An OTLP-only exporter makes no collected pushes.
    let got = rx.got();
    assert_eq!(got.len(), 1);
    let req = decode(&got[0].body);
    // The request's metrics only: otelcol lists no `target_info`.
    let families: Vec<&str> = req
        .metadata
        .iter()
        .map(|m| m.metric_family_name.as_str())
        .collect();
    assert_eq!(
        families,
        vec![
            "queue_depth",
            "http_requests_total",
            "latency_milliseconds",
            "payload_size_bytes",
            "rpc_duration_seconds"
        ]
    );
    let mut sent = req.timeseries;
    sent.sort_by(|a, b| a.labels.cmp(&b.labels));

    let latency = |suffix: &str, le: Option<&str>, v: f64| {
        let own: Vec<(&str, &str)> = le.map(|le| ("le", le)).into_iter().collect();
        series(
            with_common(&format!("latency_milliseconds{suffix}"), &own),
            v,
            ms(T3),
        )
    };
    let rpc = |suffix: &str, q: Option<&str>, v: f64| {
        let own: Vec<(&str, &str)> = q.map(|q| ("quantile", q)).into_iter().collect();
        series(
            with_common(&format!("rpc_duration_seconds{suffix}"), &own),
            v,
            ms(T2),
        )
    };
    let mut counter = series(
        with_common("http_requests_total", &[("http_method", "GET")]),
        12.5,
        ms(T2),
    );
    counter.exemplars = vec![PromExemplar {
        labels: vec![
            Label::new("trace_id", TRACE_HEX),
            Label::new("span_id", SPAN_HEX),
        ],
        value: 0.5,
        timestamp: ms(T1),
    }];
    let native = TimeSeries {
        labels: with_common("payload_size_bytes", &[]),
        samples: vec![],
        exemplars: vec![],
        histograms: vec![Histogram {
            count: Some(Count::CountInt(4)),
            sum: 10.0,
            schema: 0,
            zero_threshold: 1e-128,
            zero_count: Some(ZeroCount::ZeroCountInt(1)),
            negative_spans: vec![],
            negative_deltas: vec![],
            negative_counts: vec![],
            positive_spans: vec![BucketSpan {
                offset: 1,
                length: 2,
            }],
            positive_deltas: vec![1, 1],
            positive_counts: vec![],
            reset_hint: ResetHint::Unknown as i32,
            timestamp: ms(T1),
            custom_values: vec![],
        }],
    };
    // target_info: the resource's other attributes with job and instance, no scope labels,
    // at the newest point time of the resource.
    let target_info = series(
        vec![
            Label::new("__name__", "target_info"),
            Label::new("host_name", "h1"),
            Label::new("instance", "i-1"),
            Label::new("job", "shop"),
        ],
        1.0,
        ms(T3),
    );
    let mut want = vec![
        series(with_common("queue_depth", &[("queue", "a")]), 7.0, ms(T1)),
        counter,
        latency("_bucket", Some("10"), 1.0),
        latency("_bucket", Some("100"), 3.0),
        latency("_bucket", Some("+Inf"), 6.0),
        latency("_sum", None, 500.0),
        latency("_count", None, 6.0),
        native,
        rpc("", Some("0.5"), 0.4),
        rpc("", Some("0.9"), 0.8),
        rpc("_sum", None, 1.5),
        rpc("_count", None, 3.0),
        target_info,
    ];
    want.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(sent, want);
    assert_eq!(counters.sent.load(Ordering::Relaxed), 5);
    assert_eq!(counters.send_failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_settings_follow_the_config() {
    let (rx, addr) = receiver(&[]).await;
    let (running, _) = start(
        addr,
        "    push_interval: 1h\n    send_metadata: true\n    target_info:\n      enabled: false\n    disable_scope_info: true\n    resource_to_telemetry_conversion:\n      enabled: true",
    );
    running
        .consumer()
        .consume(Batch::new(Signal::Metrics, request(), 5))
        .expect("accepted");
    wait_for("the batch's request", || rx.got().len() == 1).await;
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let req = decode(&rx.got()[0].body);
    let names: Vec<&str> = req
        .timeseries
        .iter()
        .filter_map(|t| t.labels.iter().find(|l| l.name == "__name__"))
        .map(|l| l.value.as_str())
        .collect();
    assert!(!names.contains(&"target_info"), "{names:?}");
    let gauge = req
        .timeseries
        .iter()
        .find(|t| t.labels.iter().any(|l| l.value == "queue_depth"))
        .expect("the gauge");
    let labels: Vec<(&str, &str)> = gauge
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("__name__", "queue_depth"),
            ("host_name", "h1"),
            ("instance", "i-1"),
            ("job", "shop"),
            ("queue", "a"),
            ("service_instance_id", "i-1"),
            ("service_name", "shop"),
        ]
    );
    let types: Vec<(&str, i32)> = req
        .metadata
        .iter()
        .map(|m| (m.metric_family_name.as_str(), m.r#type))
        .collect();
    use crate::proto::MetricType as M;
    assert_eq!(
        types,
        vec![
            ("queue_depth", M::Gauge as i32),
            ("http_requests_total", M::Counter as i32),
            ("latency_milliseconds", M::Histogram as i32),
            ("payload_size_bytes", M::Histogram as i32),
            ("rpc_duration_seconds", M::Summary as i32),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_failures_are_counted() {
    // Without a queue one batch is in flight at a time; the endpoint keeps failing.
    let (rx, addr) = receiver(&[503; 1000]).await;
    let (running, counters) = start(
        addr,
        "    push_interval: 1h\n    remote_write_queue:\n      enabled: false",
    );
    let consumer = running.consumer();
    consumer
        .consume(Batch::new(Signal::Metrics, request(), 5))
        .expect("the first batch is taken");
    let refused = consumer
        .consume(Batch::new(Signal::Metrics, request(), 5))
        .expect_err("the second waits for the first");
    assert!(refused.reason.contains("full"), "{}", refused.reason);
    assert_eq!(counters.enqueue_failed.load(Ordering::Relaxed), 5);
    wait_for("retries", || rx.got().len() >= 2).await;
    stop(running, Duration::from_millis(300))
        .await
        .expect("stops once the retries give up at the deadline");
    assert_eq!(counters.sent.load(Ordering::Relaxed), 0);
    assert_eq!(counters.send_failed.load(Ordering::Relaxed), 5);
}

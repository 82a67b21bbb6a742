//! Metrics and logs next to traces, on 127.0.0.1:0: tonic's generated clients over gRPC and
//! hyper over HTTP (protobuf and JSON), the answers for a signal no pipeline takes, and CORS.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics,
};
use prost::Message;
use redline_otlp_receiver::CorsConfig;
use redline_pipeline::extension::Extensions;
use redline_pipeline::Signal;

use common::http_client::{post, send, PB};
use common::{loopback_config, loopback_config_with_http, Receiver, Recorder};

fn metrics_request() -> ExportMetricsServiceRequest {
    let gauge = Metric {
        name: "queue_depth".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..3)
                .map(|i| NumberDataPoint {
                    value: Some(number_data_point::Value::AsInt(i)),
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    };
    let histogram = Metric {
        name: "latency".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                count: 2,
                bucket_counts: vec![1, 1],
                explicit_bounds: vec![5.0],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge, histogram],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_request(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn all_signals(config: redline_otlp_receiver::Config) -> Receiver {
    Receiver::try_start_signals(
        config,
        Recorder::default(),
        Extensions::default(),
        &Signal::ALL,
    )
    .await
    .expect("starts")
}

#[tokio::test]
async fn grpc_metrics_and_logs_are_forwarded_as_received_and_counted_per_signal() {
    let r = all_signals(loopback_config()).await;
    let addr = format!("http://{}", r.grpc.expect("grpc"));
    let metrics = metrics_request();
    MetricsServiceClient::connect(addr.clone())
        .await
        .expect("connects")
        .export(metrics.clone())
        .await
        .expect("metrics accepted");
    let logs = logs_request(4);
    LogsServiceClient::connect(addr)
        .await
        .expect("connects")
        .export(logs.clone())
        .await
        .expect("logs accepted");
    let got = r.batches();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].signal, Signal::Metrics);
    assert_eq!(got[0].raw.as_ref(), metrics.encode_to_vec().as_slice());
    // Three gauge points and one histogram point.
    assert_eq!(got[0].items, 4);
    assert_eq!(got[1].signal, Signal::Logs);
    assert_eq!(got[1].raw.as_ref(), logs.encode_to_vec().as_slice());
    assert_eq!(got[1].items, 4);
    assert_eq!(r.accepted_of(Signal::Metrics, "grpc"), 4);
    assert_eq!(r.accepted_of(Signal::Logs, "grpc"), 4);
    assert_eq!(r.accepted_of(Signal::Traces, "grpc"), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn http_protobuf_and_json_metrics_and_logs() {
    let r = all_signals(loopback_config()).await;
    let metrics = metrics_request();
    let a = post(
        &r.http_url("/v1/metrics"),
        Some(PB),
        None,
        metrics.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    let json = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
        {"severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"disk"},
         "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
        {"body":{"kvlistValue":{}}}]}]}]}"#;
    let a = post(
        &r.http_url("/v1/logs"),
        Some("application/json"),
        None,
        json,
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let got = r.batches();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].raw.as_ref(), metrics.encode_to_vec().as_slice());
    let logs = ExportLogsServiceRequest::decode(got[1].raw.clone()).expect("protobuf");
    let records = &logs.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].severity_number, 13);
    assert_eq!(
        records[0].span_id,
        [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]
    );
    assert_eq!(r.accepted_of(Signal::Metrics, "http"), 4);
    assert_eq!(r.accepted_of(Signal::Logs, "http"), 2);
    let bad = post(&r.http_url("/v1/metrics"), Some(PB), None, vec![0x0a, 0xff]).await;
    assert_eq!(bad.status, 400);
    r.shutdown().await;
}

#[tokio::test]
async fn signals_without_a_pipeline_are_unimplemented_and_404() {
    // Traces only, as for a config with just a traces pipeline.
    let r = Receiver::both().await;
    let addr = format!("http://{}", r.grpc.expect("grpc"));
    let status = MetricsServiceClient::connect(addr)
        .await
        .expect("connects")
        .export(metrics_request())
        .await
        .expect_err("no metrics pipeline");
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(status
        .message()
        .contains("opentelemetry.proto.collector.metrics.v1.MetricsService"));
    let a = post(
        &r.http_url("/v1/logs"),
        Some(PB),
        None,
        logs_request(1).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 404);
    assert!(r.batches().is_empty());
    r.shutdown().await;
}

fn cors_config() -> redline_otlp_receiver::Config {
    loopback_config_with_http(|h| {
        h.cors = Some(CorsConfig {
            allowed_origins: vec!["https://*.example.com".into()],
            allowed_headers: vec![],
            max_age: 600,
            exposed_headers: vec![],
        })
    })
}

async fn preflight(r: &Receiver, origin: &str) -> common::http_client::HttpAnswer {
    let req = http::Request::builder()
        .method("OPTIONS")
        .uri(r.http_url("/v1/logs"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .expect("request");
    send(req).await
}

#[tokio::test]
async fn cors_preflight_and_request_from_an_allowed_origin() {
    let r = all_signals(cors_config()).await;
    let a = preflight(&r, "https://app.example.com").await;
    assert_eq!(a.status, 204);
    assert_eq!(
        a.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(a.headers["access-control-allow-methods"], "POST");
    assert_eq!(a.headers["access-control-allow-headers"], "content-type");
    assert_eq!(a.headers["access-control-max-age"], "600");
    assert!(r.batches().is_empty(), "a preflight delivers nothing");

    let req = http::Request::post(r.http_url("/v1/logs"))
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#,
        )))
        .expect("request");
    let a = send(req).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(a.headers["access-control-allow-credentials"], "true");
    assert_eq!(r.accepted_of(Signal::Logs, "http"), 1);
    r.shutdown().await;
}

#[tokio::test]
async fn cors_refuses_an_origin_not_listed() {
    let r = all_signals(cors_config()).await;
    let a = preflight(&r, "https://evil.org").await;
    assert_eq!(a.status, 204);
    assert!(a.headers.get("access-control-allow-origin").is_none());
    let req = http::Request::post(r.http_url("/v1/logs"))
        .header("origin", "https://evil.org")
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(logs_request(1).encode_to_vec())))
        .expect("request");
    let a = send(req).await;
    // The server takes it (CORS is the browser's check), but gives the browser nothing
    // that lets the page read the answer.
    assert_eq!(a.status, 200);
    assert!(a.headers.get("access-control-allow-origin").is_none());
    assert_eq!(a.headers["vary"], "Origin");
    r.shutdown().await;
}

#[tokio::test]
async fn json_metrics_with_temporality_names_keep_their_points_and_bad_data_is_refused() {
    let r = all_signals(loopback_config()).await;
    let named = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"pool.in_use","sum":{"dataPoints":[{"asDouble":-2.5,"timeUnixNano":"1700000060000000000"}],"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}]}]}]}"#;
    let a = post(
        &r.http_url("/v1/metrics"),
        Some("application/json"),
        None,
        named,
    )
    .await;
    assert_eq!(a.status, 200);
    let got = r.batches();
    assert_eq!(got.len(), 1);
    let req = ExportMetricsServiceRequest::decode(got[0].raw.clone()).expect("protobuf");
    match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(metric::Data::Sum(sum)) => {
            assert_eq!(sum.aggregation_temporality, 1);
            assert_eq!(sum.data_points.len(), 1);
        }
        other => panic!("the sum was lost: {other:?}"),
    }
    assert_eq!(r.accepted_of(Signal::Metrics, "http"), 1);
    // A data section serde cannot read must not be answered 200 and dropped.
    let bad = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","sum":{"dataPoints":"zz"}}]}]}]}"#;
    let a = post(
        &r.http_url("/v1/metrics"),
        Some("application/json"),
        None,
        bad,
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(
        String::from_utf8_lossy(&a.body).contains("`sum`"),
        "{:?}",
        a.body
    );
    assert_eq!(r.batches().len(), 1);
    r.shutdown().await;
}

#[tokio::test]
async fn json_point_and_exemplar_values_serde_cannot_read_are_refused_not_dropped() {
    let r = all_signals(loopback_config()).await;
    let metric = |point: &str| {
        format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g","gauge":{{"dataPoints":[{point}]}}}}]}}]}}]}}"#
        )
    };
    for bad in [
        r#"{"asInt":"notanumber"}"#,
        r#"{"asInt":"1","exemplars":[{"asDouble":"zz"}]}"#,
        r#"{"asDouble":"NaN"}"#,
    ] {
        let a = post(
            &r.http_url("/v1/metrics"),
            Some("application/json"),
            None,
            metric(bad),
        )
        .await;
        assert_eq!(a.status, 400, "{bad}");
    }
    assert!(r.batches().is_empty());
    // Numbers written as strings, as protojson allows, keep their value.
    let a = post(
        &r.http_url("/v1/metrics"),
        Some("application/json"),
        None,
        metric(r#"{"asDouble":"2.5","exemplars":[{"asInt":"7"}]}"#),
    )
    .await;
    assert_eq!(a.status, 200);
    let got = r.batches();
    let req = ExportMetricsServiceRequest::decode(got[0].raw.clone()).expect("protobuf");
    match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(metric::Data::Gauge(g)) => {
            assert_eq!(
                g.data_points[0].value,
                Some(number_data_point::Value::AsDouble(2.5))
            );
            assert_eq!(g.data_points[0].exemplars.len(), 1);
            assert!(g.data_points[0].exemplars[0].value.is_some());
        }
        other => panic!("{other:?}"),
    }
    r.shutdown().await;
}

//! The three formats against what otelcol-contrib v0.161's debug exporter printed.
//!
//! `tests/fixtures/<name>.pb` is a request as otelcol received it (captured from its
//! `otlp_http` exporter), and `<name>.<verbosity>.txt` what its debug exporter wrote for it
//! with `use_internal_logger: false` (the summary line, a tab, the fields, then the text).
//! The small cases below spell their expected text out.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_pipeline::Signal;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const FIXTURES: [(&str, Signal); 10] = [
    ("traces", Signal::Traces),
    ("traces_unusual", Signal::Traces),
    ("metrics", Signal::Metrics),
    ("metrics_metadata", Signal::Metrics),
    ("metrics_nonfinite", Signal::Metrics),
    ("exp_histograms", Signal::Metrics),
    ("exp_histogram_scales", Signal::Metrics),
    ("logs", Signal::Logs),
    ("logs_edge", Signal::Logs),
    ("logs_nonfinite", Signal::Logs),
];

fn check_fixtures(verbosity: Verbosity, suffix: &str) {
    for (name, signal) in FIXTURES {
        let raw = fixture(&format!("{name}.pb"));
        let ours = render(signal, &raw, verbosity).expect("renders").console();
        let theirs = String::from_utf8(fixture(&format!("{name}.{suffix}.txt"))).expect("utf-8");
        if ours != theirs {
            let line = ours
                .lines()
                .zip(theirs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(ours.lines().count().min(theirs.lines().count()));
            panic!(
                "{name} ({suffix}) differs from otelcol at line {}:\n  redline: {:?}\n  otelcol: {:?}",
                line + 1,
                ours.lines().nth(line),
                theirs.lines().nth(line)
            );
        }
    }
}

#[test]
fn basic_matches_otelcol() {
    check_fixtures(Verbosity::Basic, "basic");
}

#[test]
fn normal_matches_otelcol() {
    check_fixtures(Verbosity::Normal, "normal");
}

#[test]
fn detailed_matches_otelcol() {
    check_fixtures(Verbosity::Detailed, "detailed");
}

fn str_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![str_kv("service.name", "checkout")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "lib".into(),
        version: "1.0".into(),
        ..Default::default()
    })
}

fn one_span() -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: vec![Span {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    name: "GET /cart".into(),
                    kind: 2,
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    end_time_unix_nano: 1_700_000_000_250_000_000,
                    attributes: vec![str_kv("http.route", "/cart")],
                    status: Some(Status {
                        code: 2,
                        message: "boom".into(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn a_span_in_each_format() {
    let raw = one_span();
    let basic = render(Signal::Traces, &raw, Verbosity::Basic).expect("renders");
    assert_eq!(
        basic.console(),
        "Traces\t{\"resource spans\": 1, \"spans\": 1}\n"
    );
    let normal = render(Signal::Traces, &raw, Verbosity::Normal).expect("renders");
    assert_eq!(
        normal.text.as_deref(),
        Some(
            "ResourceTraces #0 service.name=checkout\n\
             ScopeTraces #0 lib@1.0\n\
             GET /cart abababababababababababababababab cdcdcdcdcdcdcdcd http.route=/cart\n"
        )
    );
    let detailed = render(Signal::Traces, &raw, Verbosity::Detailed).expect("renders");
    assert_eq!(
        detailed.text.as_deref(),
        Some(
            "ResourceSpans #0\n\
             Resource SchemaURL: \n\
             Resource attributes:\n     \
             -> service.name: Str(checkout)\n\
             ScopeSpans #0\n\
             ScopeSpans SchemaURL: \n\
             InstrumentationScope lib 1.0\n\
             Span #0\n    \
             Trace ID       : abababababababababababababababab\n    \
             Parent ID      : \n    \
             ID             : cdcdcdcdcdcdcdcd\n    \
             Name           : GET /cart\n    \
             Kind           : Server\n    \
             Start time     : 2023-11-14 22:13:20 +0000 UTC\n    \
             End time       : 2023-11-14 22:13:20.25 +0000 UTC\n    \
             Status code    : Error\n    \
             Status message : boom\n    \
             DroppedAttributesCount: 0\n    \
             DroppedEventsCount: 0\n    \
             DroppedLinksCount: 0\n\
             Attributes:\n     \
             -> http.route: Str(/cart)\n"
        )
    );
}

#[test]
fn metrics_in_each_format() {
    let raw = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    Metric {
                        name: "requests".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![str_kv("code", "200")],
                                time_unix_nano: 1_000_000_000,
                                value: Some(number_data_point::Value::AsInt(12)),
                                ..Default::default()
                            }],
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "latency".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                count: 3,
                                sum: Some(0.75),
                                bucket_counts: vec![1, 2],
                                explicit_bounds: vec![0.25],
                                ..Default::default()
                            }],
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let basic = render(Signal::Metrics, &raw, Verbosity::Basic).expect("renders");
    assert_eq!(
        basic.console(),
        "Metrics\t{\"resource metrics\": 1, \"metrics\": 2, \"data points\": 2}\n"
    );
    let normal = render(Signal::Metrics, &raw, Verbosity::Normal).expect("renders");
    assert_eq!(
        normal.text.as_deref(),
        Some(
            "ResourceMetrics #0 service.name=checkout\n\
             ScopeMetrics #0 lib@1.0\n\
             requests{code=200} 12\n\
             latency{} count=3 sum=0.75 le0.25=1 2\n"
        )
    );
    let detailed = render(Signal::Metrics, &raw, Verbosity::Detailed)
        .expect("renders")
        .text
        .unwrap_or_default();
    let expected_tail = "Metric #1\n\
         Descriptor:\n     \
         -> Name: latency\n     \
         -> Description: \n     \
         -> Unit: \n     \
         -> DataType: Histogram\n     \
         -> AggregationTemporality: Delta\n\
         HistogramDataPoints #0\n\
         StartTimestamp: 1970-01-01 00:00:00 +0000 UTC\n\
         Timestamp: 1970-01-01 00:00:00 +0000 UTC\n\
         Count: 3\n\
         Sum: 0.750000\n\
         ExplicitBounds #0: 0.250000\n\
         Buckets #0, Count: 1\n\
         Buckets #1, Count: 2\n";
    assert!(detailed.ends_with(expected_tail), "{detailed}");
    assert!(detailed.contains(
        "NumberDataPoints #0\n\
         Data point attributes:\n     \
         -> code: Str(200)\n\
         StartTimestamp: 1970-01-01 00:00:00 +0000 UTC\n\
         Timestamp: 1970-01-01 00:00:01 +0000 UTC\n\
         Value: 12\n"
    ));
}

#[test]
fn logs_in_each_format() {
    let raw = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: vec![LogRecord {
                    time_unix_nano: 1_000_000_000,
                    severity_number: 13,
                    severity_text: "WARN".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("disk almost full".into())),
                    }),
                    attributes: vec![str_kv("disk", "/dev/sda")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let basic = render(Signal::Logs, &raw, Verbosity::Basic).expect("renders");
    assert_eq!(
        basic.console(),
        "Logs\t{\"resource logs\": 1, \"log records\": 1}\n"
    );
    let normal = render(Signal::Logs, &raw, Verbosity::Normal).expect("renders");
    assert_eq!(
        normal.text.as_deref(),
        Some(
            "ResourceLog #0 service.name=checkout\n\
             ScopeLog #0 lib@1.0\n\
             disk almost full disk=/dev/sda\n"
        )
    );
    let detailed = render(Signal::Logs, &raw, Verbosity::Detailed).expect("renders");
    assert_eq!(
        detailed.text.as_deref(),
        Some(
            "ResourceLog #0\n\
             Resource SchemaURL: \n\
             Resource attributes:\n     \
             -> service.name: Str(checkout)\n\
             ScopeLogs #0\n\
             ScopeLogs SchemaURL: \n\
             InstrumentationScope lib 1.0\n\
             LogRecord #0\n\
             ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC\n\
             Timestamp: 1970-01-01 00:00:01 +0000 UTC\n\
             SeverityText: WARN\n\
             SeverityNumber: Warn(13)\n\
             Body: Str(disk almost full)\n\
             Attributes:\n     \
             -> disk: Str(/dev/sda)\n\
             Trace ID: \n\
             Span ID: \n\
             Flags: 0\n"
        )
    );
}

#[test]
fn an_undecodable_batch_is_an_error() {
    let err = render(Signal::Logs, b"\x0a\xff\xff", Verbosity::Basic).expect_err("truncated");
    assert!(
        err.to_string().contains("cannot decode the logs request"),
        "{err}"
    );
}

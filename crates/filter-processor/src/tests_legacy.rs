//! The legacy `include` / `exclude` sections as the pipeline runs them: what is dropped, what
//! travels on untouched, and the drop counter.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use redline_pipeline::Signal;
use redline_processor_testkit::{
    build, component, logs_request, metrics_request, send, traces_request,
};

use super::FilterProcessorFactory;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn with_resource<T>(attrs: Vec<KeyValue>, set: impl FnOnce(Option<Resource>) -> T) -> T {
    set(Some(Resource {
        attributes: attrs,
        ..Resource::default()
    }))
}

#[test]
fn spans_failing_include_or_matching_exclude_are_dropped() {
    let body = "  filter:\n    spans:\n      include:\n        match_type: regexp\n        services: [\"^shop\"]\n      exclude:\n        match_type: strict\n        span_names: [\"GET /health\"]\n        attributes:\n          - key: probe\n";
    let (p, sink, _) =
        build(&FilterProcessorFactory, &component(body), Signal::Traces).expect("builds");
    let span = |name: &str, attrs: Vec<KeyValue>| Span {
        name: name.into(),
        attributes: attrs,
        ..Span::default()
    };
    let mut req = traces_request(vec![
        span("GET /health", vec![kv("probe", "k8s")]),
        // Named like a health check but without the attribute: exclude needs both.
        span("GET /health", vec![]),
        span("GET /cart", vec![]),
    ]);
    req.resource_spans[0].resource = with_resource(vec![kv("service.name", "shop-api")], |r| r);
    send(&p, Signal::Traces, req.encode_to_vec(), 3);
    let mut other = traces_request(vec![span("GET /cart", vec![])]);
    other.resource_spans[0].resource = with_resource(vec![kv("service.name", "cdn")], |r| r);
    send(&p, Signal::Traces, other.encode_to_vec(), 1);
    let got = sink.take();
    assert_eq!(got.len(), 1, "the cdn request fails include and ends here");
    let out = ExportTraceServiceRequest::decode(got[0].raw.as_ref()).expect("decodes");
    let names: Vec<&str> = out.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["GET /health", "GET /cart"]);
    assert_eq!(got[0].items, 2);
}

fn gauge(name: &str, points: usize) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default(); points],
        })),
        ..Metric::default()
    }
}

#[test]
fn metrics_are_selected_by_name_and_resources_by_attributes_each_on_its_own() {
    let body = "  filter:\n    metrics:\n      include:\n        match_type: regexp\n        metric_names: [\"^http_\"]\n      exclude:\n        match_type: strict\n        resource_attributes:\n          - key: env\n            value: dev\n";
    let (p, sink, telemetry) =
        build(&FilterProcessorFactory, &component(body), Signal::Metrics).expect("builds");
    let req = metrics_request(vec![gauge("http_requests", 2), gauge("cpu", 3)]);
    send(&p, Signal::Metrics, req.encode_to_vec(), 5);
    let mut dev = metrics_request(vec![gauge("http_requests", 1)]);
    dev.resource_metrics[0].resource = with_resource(vec![kv("env", "dev")], |r| r);
    send(&p, Signal::Metrics, dev.encode_to_vec(), 1);
    let untouched = metrics_request(vec![gauge("http_latency", 1)]).encode_to_vec();
    send(&p, Signal::Metrics, untouched.clone(), 1);
    let got = sink.take();
    assert_eq!(
        got.len(),
        2,
        "the dev resource is dropped whatever its metrics"
    );
    let out = ExportMetricsServiceRequest::decode(got[0].raw.as_ref()).expect("decodes");
    let names: Vec<&str> = out.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!((names, got[0].items), (vec!["http_requests"], 2));
    assert_eq!(got[1].raw.as_ref(), untouched.as_slice(), "unchanged bytes");
    let dropped = super::tests::counter(&telemetry, "otelcol_processor_filter_datapoints_filtered");
    assert_eq!(dropped, Some(4));
}

#[test]
fn logs_are_selected_by_severity_and_body() {
    let body = "  filter:\n    logs:\n      include:\n        severity_number:\n          min: WARN\n          match_undefined: true\n      exclude:\n        match_type: regexp\n        bodies: [\"^noisy\"]\n";
    let (p, sink, _) =
        build(&FilterProcessorFactory, &component(body), Signal::Logs).expect("builds");
    let log = |severity: i32, body: &str| LogRecord {
        severity_number: severity,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body.into())),
        }),
        ..LogRecord::default()
    };
    let req = logs_request(vec![
        log(9, "info"),
        log(13, "warn"),
        log(0, "no severity"),
        log(17, "noisy error"),
    ]);
    send(&p, Signal::Logs, req.encode_to_vec(), 4);
    let got = sink.take();
    let out = ExportLogsServiceRequest::decode(got[0].raw.as_ref()).expect("decodes");
    let bodies: Vec<String> = out.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|l| body_text(l.body.as_ref()))
        .collect();
    assert_eq!(bodies, ["warn", "no severity"]);
}

fn body_text(body: Option<&AnyValue>) -> String {
    match body.and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}

#[test]
fn sections_that_test_nothing_leave_requests_as_they_are() {
    // otelcol builds no matcher for these, so not even empty scopes are dropped.
    for (signal, body, raw) in [
        (
            Signal::Metrics,
            "  filter:\n    metrics:\n      include:\n        match_type: strict\n",
            // A resource without scopes: a resource test would drop it.
            ExportMetricsServiceRequest {
                resource_metrics: vec![Default::default()],
            }
            .encode_to_vec(),
        ),
        (
            Signal::Logs,
            "  filter:\n    logs:\n      exclude:\n        match_type: strict\n",
            logs_request(vec![]).encode_to_vec(),
        ),
    ] {
        let (p, sink, _) =
            build(&FilterProcessorFactory, &component(body), signal).expect("builds");
        send(&p, signal, raw.clone(), 0);
        let got = sink.take();
        assert_eq!(got.len(), 1, "{body}");
        assert_eq!(got[0].raw.as_ref(), raw.as_slice(), "{body}");
    }
}

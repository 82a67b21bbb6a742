//! The processor as the pipeline runs it: config forms, validation messages, and what travels
//! on (the received bytes when nothing changed, the edited request otherwise).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::Signal;
use redline_processor_testkit::{
    build, component, logs_request, metrics_request, send, traces_request,
};

use super::TransformProcessorFactory;

fn span(name: &str) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        ..Span::default()
    }
}

fn traces(names: &[&str]) -> ExportTraceServiceRequest {
    traces_request(names.iter().map(|n| span(n)).collect())
}

fn validate(body: &str) -> Result<(), String> {
    TransformProcessorFactory
        .validate(&component(body))
        .map_err(|e| e.to_string())
}

#[test]
fn basic_and_advanced_forms_are_accepted_mixing_them_is_not() {
    validate("  transform:\n    trace_statements:\n      - set(span.name, \"x\")\n")
        .expect("basic form, context inferred from the prefix");
    validate(
        "  transform:\n    trace_statements:\n      - context: span\n        conditions: [kind == SPAN_KIND_SERVER]\n        statements:\n          - set(name, \"x\")\n",
    )
    .expect("advanced form");
    let mixed = validate(
        "  transform:\n    trace_statements:\n      - set(span.name, \"x\")\n      - context: span\n        statements:\n          - set(name, \"y\")\n",
    )
    .expect_err("mixed forms");
    assert!(mixed.contains("multiple configuration styles"), "{mixed}");
}

#[test]
fn every_bad_statement_is_named_with_its_column_and_place() {
    let err = validate(
        "  transform:\n    trace_statements:\n      - context: span\n        statements:\n          - set(name, \"ok\")\n          - set(nme, \"x\")\n          - sett(name, \"x\")\n",
    )
    .expect_err("two bad statements");
    assert!(err.contains("trace_statements[0].statements[1]"), "{err}");
    assert!(err.contains("column 5"), "{err}");
    assert!(err.contains("\"sett\""), "{err}");
    let err = validate(
        "  transform:\n    log_statements:\n      - context: span\n        statements:\n          - set(name, \"x\")\n",
    )
    .expect_err("span context on logs");
    assert!(err.contains("log_statements"), "{err}");
    let err = validate("  transform:\n    flatten_data: true\n").expect_err("flatten_data");
    assert!(err.contains("flatten_data"), "{err}");
}

#[test]
fn untouched_requests_travel_as_received_edited_ones_re_encoded() {
    let (p, sink, _) = build(
        &TransformProcessorFactory,
        &component(
            "  transform:\n    trace_statements:\n      - replace_pattern(span.name, \"/[0-9]+\", \"/{id}\")\n",
        ),
        Signal::Traces,
    )
    .expect("builds");
    let untouched = traces(&["GET /users", "GET /health"]).encode_to_vec();
    // The second time, the dry run answers from the names it remembered.
    send(&p, Signal::Traces, untouched.clone(), 2);
    send(&p, Signal::Traces, untouched.clone(), 2);
    let edited = traces(&["GET /users/12", "GET /users", "GET /orders/7/items"]).encode_to_vec();
    send(&p, Signal::Traces, edited, 3);
    let got = sink.take();
    assert_eq!(got[0].raw.as_ref(), untouched.as_slice());
    assert_eq!(got[1].raw.as_ref(), untouched.as_slice());
    let out = ExportTraceServiceRequest::decode(got[2].raw.as_ref()).expect("decodes");
    let names: Vec<&str> = out.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["GET /users/{id}", "GET /users", "GET /orders/{id}/items"]
    );
    assert_eq!(got[2].items, 3);
}

#[test]
fn error_mode_propagate_refuses_the_request_ignore_goes_on() {
    // Int("abc") fails at run time: propagate refuses (the client retries), ignore carries on
    // with the next statement.
    let body = |mode: &str| {
        format!(
            "  transform:\n    error_mode: {mode}\n    log_statements:\n      - context: log\n        statements:\n          - set(attributes[\"n\"], Int(body) * 2)\n          - set(attributes[\"seen\"], true)\n"
        )
    };
    let logs = logs_request(vec![LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(Default::default())),
        }),
        ..LogRecord::default()
    }])
    .encode_to_vec();
    let (p, _, _) = build(
        &TransformProcessorFactory,
        &component(&body("propagate")),
        Signal::Logs,
    )
    .expect("builds");
    let batch = redline_pipeline::Batch::new(Signal::Logs, logs.clone().into(), 1);
    assert!(p.consume(batch).is_err(), "propagate refuses");
    let (p, sink, _) = build(
        &TransformProcessorFactory,
        &component(&body("ignore")),
        Signal::Logs,
    )
    .expect("builds");
    send(&p, Signal::Logs, logs, 1);
    let out = ExportLogsServiceRequest::decode(sink.take()[0].raw.as_ref()).expect("decodes");
    let attrs: &Vec<KeyValue> = &out.resource_logs[0].scope_logs[0].log_records[0].attributes;
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].key, "seen");
}

#[test]
fn edited_metrics_travel_re_encoded_with_their_data_point_count() {
    let point = |value| NumberDataPoint {
        value: Some(number_data_point::Value::AsInt(value)),
        ..NumberDataPoint::default()
    };
    let metrics = metrics_request(vec![Metric {
        name: "queue.size".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point(1), point(2)],
        })),
        ..Metric::default()
    }])
    .encode_to_vec();
    let (p, sink, _) = build(
        &TransformProcessorFactory,
        &component(
            "  transform:\n    metric_statements:\n      - context: datapoint\n        statements:\n          - set(attributes[\"env\"], \"prod\")\n",
        ),
        Signal::Metrics,
    )
    .expect("builds");
    send(&p, Signal::Metrics, metrics, 2);
    let got = sink.take();
    assert_eq!(got[0].items, 2);
    let out = ExportMetricsServiceRequest::decode(got[0].raw.as_ref()).expect("decodes");
    let Some(metric::Data::Gauge(gauge)) =
        &out.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("a gauge: {out:?}");
    };
    let keys: Vec<&str> = gauge
        .data_points
        .iter()
        .flat_map(|p| p.attributes.iter().map(|kv| kv.key.as_str()))
        .collect();
    assert_eq!(keys, ["env", "env"]);
}

//! The processors end to end: config file section -> factory -> encoded batches in and out.

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_processor_testkit::{component, kv, logs_request, send, span, string as s, Sink};

use super::*;

fn resource(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Resource::default()
    })
}

fn build(
    factory: &dyn ProcessorFactory,
    config: &ComponentConfig,
    signal: Signal,
) -> Result<(Arc<dyn Consumer>, Sink), String> {
    redline_processor_testkit::build(factory, config, signal).map(|(p, sink, _)| (p, sink))
}

fn traces(resources: Vec<(Option<Resource>, Vec<Span>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(resource, spans)| ResourceSpans {
                resource,
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

const RESOURCE_README: &str = "  resource/p:\n    attributes:\n    - key: cloud.availability_zone\n      value: \"zone-1\"\n      action: upsert\n    - key: k8s.cluster.name\n      from_attribute: k8s-cluster\n      action: insert\n    - key: redundant-attribute\n      action: delete\n";

#[test]
fn resource_processor_edits_resources_and_keeps_items() {
    let config = component(RESOURCE_README);
    let (consumer, sink) =
        build(&ResourceProcessorFactory, &config, Signal::Traces).expect("builds");
    let spans = vec![span("a", vec![kv("x", Value::IntValue(1))])];
    let input = traces(vec![(
        resource(vec![
            kv("service.name", s("svc")),
            kv("k8s-cluster", s("c1")),
            kv("redundant-attribute", s("x")),
        ]),
        spans.clone(),
    )]);
    send(&consumer, Signal::Traces, input.encode_to_vec(), 1);
    let out = sink.take();
    let got = ExportTraceServiceRequest::decode(&out[0].raw[..]).expect("decodes");
    let want = traces(vec![(
        resource(vec![
            kv("service.name", s("svc")),
            kv("k8s-cluster", s("c1")),
            kv("k8s.cluster.name", s("c1")),
            kv("cloud.availability_zone", s("zone-1")),
        ]),
        spans.clone(),
    )]);
    assert_eq!(got, want);
    assert_eq!(out[0].items, 1);

    // Nothing to change: the original bytes travel on.
    let done = want.encode_to_vec();
    send(&consumer, Signal::Traces, done.clone(), 1);
    assert_eq!(sink.take()[0].raw, Bytes::from(done));
}

#[test]
fn resource_processor_adds_a_resource_to_logs_and_metrics_without_one() {
    let config = component(
        "  resource/p:\n    attributes:\n    - {key: env, value: prod, action: insert}\n",
    );
    let (logs, sink) = build(&ResourceProcessorFactory, &config, Signal::Logs).expect("builds");
    let records = vec![ScopeLogs {
        log_records: vec![LogRecord {
            body: Some(AnyValue {
                value: Some(s("hello")),
            }),
            ..LogRecord::default()
        }],
        ..ScopeLogs::default()
    }];
    let input = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: records.clone(),
            schema_url: "https://opentelemetry.io/schemas/1.9.0".into(),
        }],
    };
    send(&logs, Signal::Logs, input.encode_to_vec(), 1);
    let got = ExportLogsServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    assert_eq!(
        got.resource_logs[0].resource,
        resource(vec![kv("env", s("prod"))])
    );
    assert_eq!(got.resource_logs[0].scope_logs, records);
    assert_eq!(
        got.resource_logs[0].schema_url,
        "https://opentelemetry.io/schemas/1.9.0"
    );

    let (metrics, sink) =
        build(&ResourceProcessorFactory, &config, Signal::Metrics).expect("builds");
    let input = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics::default()],
    };
    send(&metrics, Signal::Metrics, input.encode_to_vec(), 0);
    let got = ExportMetricsServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    assert_eq!(
        got.resource_metrics[0].resource,
        resource(vec![kv("env", s("prod"))])
    );
}

const ATTRIBUTES_SPANS: &str = "  attributes/p:\n    include:\n      match_type: strict\n      services: [svcA]\n    exclude:\n      match_type: regexp\n      span_names: [\"^health\"]\n    actions:\n    - {key: db.table, action: delete}\n    - {key: redacted_span, value: true, action: upsert}\n    - {key: account_email, action: hash}\n";

#[test]
fn attributes_processor_on_spans_honours_include_and_exclude() {
    let config = component(ATTRIBUTES_SPANS);
    let (consumer, sink) =
        build(&AttributesProcessorFactory, &config, Signal::Traces).expect("builds");
    let secret = || vec![kv("db.table", s("users")), kv("account_email", s("foo"))];
    let input = traces(vec![
        (
            resource(vec![kv("service.name", s("svcA"))]),
            vec![span("GET /x", secret()), span("healthz", secret())],
        ),
        (
            resource(vec![kv("service.name", s("svcB"))]),
            vec![span("GET /x", secret())],
        ),
    ]);
    send(&consumer, Signal::Traces, input.encode_to_vec(), 3);
    let got = ExportTraceServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    let hashed = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    let want = traces(vec![
        (
            resource(vec![kv("service.name", s("svcA"))]),
            vec![
                span(
                    "GET /x",
                    vec![
                        kv("account_email", s(hashed)),
                        kv("redacted_span", Value::BoolValue(true)),
                    ],
                ),
                span("healthz", secret()),
            ],
        ),
        (
            resource(vec![kv("service.name", s("svcB"))]),
            vec![span("GET /x", secret())],
        ),
    ]);
    assert_eq!(got, want);
}

fn gauge(name: &str, points: usize) -> Metric {
    Metric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..points)
                .map(|i| NumberDataPoint {
                    attributes: vec![kv("i", Value::IntValue(i as i64))],
                    ..NumberDataPoint::default()
                })
                .collect(),
        })),
        ..Metric::default()
    }
}

fn metrics(list: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(vec![kv("service.name", s("svc"))]),
            scope_metrics: vec![ScopeMetrics {
                metrics: list,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

#[test]
fn attributes_processor_on_metrics_matches_names_and_ignores_resources() {
    let by_name = component("  attributes/p:\n    include:\n      match_type: regexp\n      metric_names: [\"^http\\\\.\"]\n    actions:\n    - {key: env, value: prod, action: insert}\n");
    let (consumer, sink) =
        build(&AttributesProcessorFactory, &by_name, Signal::Metrics).expect("builds");
    send(
        &consumer,
        Signal::Metrics,
        metrics(vec![gauge("http.requests", 2), gauge("cpu", 1)]).encode_to_vec(),
        3,
    );
    let got = ExportMetricsServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    let mut want_http = gauge("http.requests", 2);
    if let Some(metric::Data::Gauge(g)) = &mut want_http.data {
        for p in &mut g.data_points {
            p.attributes.push(kv("env", s("prod")));
        }
    }
    assert_eq!(got, metrics(vec![want_http, gauge("cpu", 1)]));

    // otelcol's metric matcher reads no `resources`: a section with only those filters
    // nothing, so every metric is processed.
    let by_resource = component("  attributes/p:\n    include:\n      match_type: strict\n      resources: [{key: service.name, value: other}]\n    actions:\n    - {key: i, action: delete}\n");
    let (consumer, sink) =
        build(&AttributesProcessorFactory, &by_resource, Signal::Metrics).expect("builds");
    send(
        &consumer,
        Signal::Metrics,
        metrics(vec![gauge("cpu", 1)]).encode_to_vec(),
        1,
    );
    let got = ExportMetricsServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    let mut bare = gauge("cpu", 1);
    if let Some(metric::Data::Gauge(g)) = &mut bare.data {
        g.data_points[0].attributes.clear();
    }
    assert_eq!(got, metrics(vec![bare]));
}

#[test]
fn attributes_processor_on_logs_matches_severity_and_converts() {
    let config = component("  attributes/p:\n    include:\n      match_type: strict\n      log_severity_number: {min: 9, match_undefined: false}\n    actions:\n    - {key: http.status_code, action: convert, converted_type: int}\n");
    let (consumer, sink) =
        build(&AttributesProcessorFactory, &config, Signal::Logs).expect("builds");
    let record = |severity: i32| LogRecord {
        severity_number: severity,
        attributes: vec![kv("http.status_code", s("503"))],
        ..LogRecord::default()
    };
    send(
        &consumer,
        Signal::Logs,
        logs_request(vec![record(17), record(5), record(0)]).encode_to_vec(),
        3,
    );
    let got = ExportLogsServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    let mut converted = record(17);
    converted.attributes = vec![kv("http.status_code", Value::IntValue(503))];
    assert_eq!(got, logs_request(vec![converted, record(5), record(0)]));
}

#[test]
fn properties_of_another_signal_fail_the_build_for_that_signal() {
    let config = component(ATTRIBUTES_SPANS);
    let err = build(&AttributesProcessorFactory, &config, Signal::Logs)
        .err()
        .expect("refused");
    assert!(
        err.contains(
            "services, span_names, span_kinds and metric_names are not valid for log records"
        ),
        "{err}"
    );
    let bad_type = component("  attributes/p:\n    include:\n      match_type: fuzzy\n      span_names: [a]\n    actions:\n    - {key: a, action: delete}\n");
    let err = build(&AttributesProcessorFactory, &bad_type, Signal::Traces)
        .err()
        .expect("refused");
    assert!(err.contains("unrecognized match_type: 'fuzzy'"), "{err}");
}

#[test]
fn validate_names_the_bad_key() {
    let err = |body: &str, factory: &dyn FactoryInfo| {
        factory
            .validate(&component(body))
            .expect_err("invalid")
            .to_string()
    };
    let e = err(
        "  resource/p:\n    attributes: []\n",
        &ResourceProcessorFactory,
    );
    assert!(
        e.contains("processors.resource/p.attributes") && e.contains("missing required field"),
        "{e}"
    );
    let e = err(
        "  attributes/p:\n    actions:\n    - {key: a, action: delete}\n    - {key: b, action: extract, pattern: \"(x)\"}\n",
        &AttributesProcessorFactory,
    );
    assert!(
        e.contains("processors.attributes/p.actions[1].pattern") && e.contains("unnamed group"),
        "{e}"
    );
    let e = err(
        "  attributes/p:\n    actions:\n    - {key: a, action: delete, colour: red}\n",
        &AttributesProcessorFactory,
    );
    assert!(e.contains("colour"), "{e}");
    assert!(AttributesProcessorFactory
        .warnings(&component(
            "  attributes/p:\n    actions:\n    - {key: t, from_context: metadata.tenant, default_value: x, action: upsert}\n"
        ))
        .is_empty());
}

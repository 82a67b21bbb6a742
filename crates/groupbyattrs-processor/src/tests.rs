#![allow(clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use redline_pipeline::Signal;
use redline_processor_testkit::{build, component, counters, kv, send, span, string};

use super::*;

fn resource(attributes: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes,
        dropped_attributes_count: 3,
        ..Resource::default()
    })
}

fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: version.into(),
        ..InstrumentationScope::default()
    })
}

fn keys(attributes: &[KeyValue]) -> Vec<&str> {
    attributes.iter().map(|kv| kv.key.as_str()).collect()
}

/// A resource's attribute keys, and per scope (`name@version`) its spans' names and
/// attribute keys.
type ResourceShape<'a> = (Vec<&'a str>, Vec<(String, Vec<(&'a str, Vec<&'a str>)>)>);

#[test]
fn spans_move_their_keys_to_a_copy_of_the_resource_and_equal_groups_merge() {
    let config = component("  groupbyattrs:\n    keys: [host, \"\", host, zone]");
    let (consumer, sink, telemetry) =
        build(&GroupByAttrsFactory, &config, Signal::Traces).expect("builds");
    let svc = |order: bool| {
        let (a, b) = (kv("service.name", string("shop")), kv("team", string("x")));
        if order {
            vec![a, b]
        } else {
            vec![b, a]
        }
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(svc(true)),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("lib", "1"),
                        spans: vec![
                            span(
                                "a",
                                vec![
                                    kv("host", string("h1")),
                                    kv("x", string("1")),
                                    kv("y", string("2")),
                                ],
                            ),
                            span("plain", vec![kv("x", string("1"))]),
                        ],
                        schema_url: "https://scope".into(),
                    },
                    ScopeSpans {
                        scope: scope("lib", "2"),
                        spans: vec![span("v2", vec![kv("host", string("h1"))])],
                        ..ScopeSpans::default()
                    },
                ],
                schema_url: "https://resource".into(),
            },
            // The same resource with its attributes in another order: one group.
            ResourceSpans {
                resource: resource(svc(false)),
                scope_spans: vec![ScopeSpans {
                    scope: scope("lib", "1"),
                    spans: vec![
                        span("b", vec![kv("zone", string("z")), kv("host", string("h1"))]),
                        span("c", vec![kv("host", string("h1")), kv("k", string("v"))]),
                    ],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            },
        ],
    };
    send(&consumer, Signal::Traces, request.encode_to_vec(), 5);
    let out = sink.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].items, 5);
    let got = ExportTraceServiceRequest::decode(out[0].raw.as_ref()).expect("decodes");
    let summary: Vec<ResourceShape<'_>> = got
        .resource_spans
        .iter()
        .map(|rs| {
            let r = rs.resource.as_ref().expect("resource");
            assert_eq!(r.dropped_attributes_count, 0, "only attributes carry over");
            assert!(rs.schema_url.is_empty());
            (
                keys(&r.attributes),
                rs.scope_spans
                    .iter()
                    .map(|ss| {
                        assert!(ss.schema_url.is_empty());
                        let s = ss.scope.as_ref().expect("scope");
                        (
                            format!("{}@{}", s.name, s.version),
                            ss.spans
                                .iter()
                                .map(|sp| (sp.name.as_str(), keys(&sp.attributes)))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                vec!["service.name", "team", "host"],
                vec![
                    // pdata's Remove: the last attribute takes the removed one's place.
                    (
                        "lib@1".into(),
                        vec![("a", vec!["y", "x"]), ("c", vec!["k"])]
                    ),
                    ("lib@2".into(), vec![("v2", vec![])]),
                ]
            ),
            (
                vec!["service.name", "team"],
                vec![("lib@1".into(), vec![("plain", vec!["x"])])]
            ),
            (
                vec!["team", "service.name", "host", "zone"],
                vec![("lib@1".into(), vec![("b", vec![])])]
            ),
        ]
    );
    let counted = counters(&telemetry);
    let value = |name: &str| {
        counted
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
    };
    assert_eq!(value(GROUPBYATTRS_NUM_GROUPED_SPANS), Some(4));
    assert_eq!(value(GROUPBYATTRS_NUM_NON_GROUPED_SPANS), Some(1));
}

#[test]
fn a_request_that_comes_out_as_it_came_in_travels_as_received() {
    let config = component("  groupbyattrs:");
    let (consumer, sink, _) = build(&GroupByAttrsFactory, &config, Signal::Logs).expect("builds");
    let compact = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", string("api"))],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: scope("lib", ""),
                log_records: vec![LogRecord::default(), LogRecord::default()],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let raw = compact.encode_to_vec();
    send(&consumer, Signal::Logs, raw.clone(), 2);
    let out = sink.take();
    assert_eq!(out[0].raw.as_ref(), &raw[..], "the client's bytes");

    // Two copies of the same resource and scope compact into one.
    let mut twice = compact.clone();
    twice.resource_logs.push(compact.resource_logs[0].clone());
    send(&consumer, Signal::Logs, twice.encode_to_vec(), 4);
    let got = ExportLogsServiceRequest::decode(sink.take()[0].raw.as_ref()).expect("decodes");
    assert_eq!(got.resource_logs.len(), 1);
    assert_eq!(got.resource_logs[0].scope_logs.len(), 1);
    assert_eq!(got.resource_logs[0].scope_logs[0].log_records.len(), 4);
}

#[test]
fn a_key_the_resource_has_takes_the_item_value_in_place() {
    let config = component("  groupbyattrs:\n    keys: [tenant]");
    let (consumer, sink, _) = build(&GroupByAttrsFactory, &config, Signal::Logs).expect("builds");
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(vec![
                kv("tenant", string("default")),
                kv("service.name", string("api")),
            ]),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    attributes: vec![kv("tenant", Value::IntValue(7))],
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    send(&consumer, Signal::Logs, request.encode_to_vec(), 1);
    let got = ExportLogsServiceRequest::decode(sink.take()[0].raw.as_ref()).expect("decodes");
    let r = got.resource_logs[0].resource.as_ref().expect("resource");
    assert_eq!(
        r.attributes,
        vec![
            kv("tenant", Value::IntValue(7)),
            kv("service.name", string("api"))
        ]
    );
    assert!(got.resource_logs[0].scope_logs[0].log_records[0]
        .attributes
        .is_empty());
}

fn point(host: &str, value: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("host", string(host))],
        value: Some(
            opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(value),
        ),
        ..NumberDataPoint::default()
    }
}

#[test]
fn metric_points_split_by_key_into_metrics_of_the_same_name_and_type() {
    let config = component("  groupbyattrs:\n    keys: [host]");
    let (consumer, sink, _) =
        build(&GroupByAttrsFactory, &config, Signal::Metrics).expect("builds");
    let sum = Metric {
        name: "requests".into(),
        description: "Requests.".into(),
        unit: "1".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![point("a", 1), point("b", 2), point("a", 3)],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Metric::default()
    };
    let gauge = Metric {
        name: "requests".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point("a", 9)],
        })),
        ..Metric::default()
    };
    let no_data = Metric {
        name: "nothing".into(),
        ..Metric::default()
    };
    let request = |metrics| ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(vec![]),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("m", ""),
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    send(
        &consumer,
        Signal::Metrics,
        request(vec![sum, no_data.clone(), gauge]).encode_to_vec(),
        4,
    );
    let out = sink.take();
    assert_eq!(out[0].items, 4);
    let got = ExportMetricsServiceRequest::decode(out[0].raw.as_ref()).expect("decodes");
    let shape: Vec<(String, Vec<(String, usize)>)> = got
        .resource_metrics
        .iter()
        .map(|rm| {
            let host = rm.resource.as_ref().expect("resource").attributes[0].clone();
            (
                format!("{:?}", host.value.and_then(|v| v.value)),
                rm.scope_metrics[0]
                    .metrics
                    .iter()
                    .map(|m| {
                        let kind = match &m.data {
                            Some(metric::Data::Sum(s)) => {
                                assert!(s.is_monotonic);
                                assert_eq!(
                                    s.aggregation_temporality,
                                    AggregationTemporality::Cumulative as i32
                                );
                                assert_eq!(
                                    (m.description.as_str(), m.unit.as_str()),
                                    ("Requests.", "1")
                                );
                                "sum"
                            }
                            Some(metric::Data::Gauge(_)) => "gauge",
                            other => panic!("unexpected {other:?}"),
                        };
                        (kind.to_owned(), group::point_count(m))
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (
                "Some(StringValue(\"a\"))".into(),
                vec![("sum".into(), 2), ("gauge".into(), 1)]
            ),
            ("Some(StringValue(\"b\"))".into(), vec![("sum".into(), 1)]),
        ],
        "the metric without data is gone"
    );

    // Nothing but a metric without data: nothing is left to send.
    send(
        &consumer,
        Signal::Metrics,
        request(vec![no_data]).encode_to_vec(),
        0,
    );
    assert!(sink.take().is_empty());
}

#[test]
fn unknown_keys_are_refused_and_repeated_keys_warned_about() {
    let bad = component("  groupbyattrs:\n    key: [host]");
    let error = GroupByAttrsFactory.validate(&bad).expect_err("unknown key");
    assert!(error.to_string().contains("key"), "{error}");
    let repeated = component("  groupbyattrs:\n    keys: [host, host]");
    assert_eq!(GroupByAttrsFactory.warnings(&repeated).len(), 1);
    assert!(GroupByAttrsFactory
        .warnings(&component("  groupbyattrs:\n    keys: [host]"))
        .is_empty());
}

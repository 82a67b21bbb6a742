#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConnectorFactory, Consumer, Refused, Reservation, Signal,
    SignalConsumers,
};

use super::*;

fn connector_config(body: &str) -> ComponentConfig {
    let text = format!(
        "connectors:\n  count:\n{body}\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [count]\n"
    );
    let cfg = redline_pipeline::config::load_str("test.yaml", &text).expect("config loads");
    cfg.connectors.into_iter().next().expect("one connector")
}

/// Records the metrics batches it is handed, or refuses them all.
#[derive(Clone, Default)]
struct Sink {
    got: Arc<Mutex<Vec<Batch>>>,
    refuse: bool,
}

impl Consumer for Sink {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if self.refuse {
            return Err(Refused {
                component: "next".into(),
                reason: "full".into(),
                retry_after: Duration::from_secs(1),
                permanent: false,
            });
        }
        let got = self.got.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            got.lock().expect("sink lock").push(b)
        })))
    }
}

impl Sink {
    fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        let batches = std::mem::take(&mut *self.got.lock().expect("sink lock"));
        batches
            .iter()
            .map(|b| {
                let request = ExportMetricsServiceRequest::decode(b.raw.as_ref()).expect("decodes");
                assert_eq!(b.items, point_total(&request), "items are the points");
                request
            })
            .collect()
    }
}

fn point_total(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(redline_ottl::point_count)
        .sum()
}

fn build(body: &str, sink: &Sink) -> Arc<dyn Consumer> {
    let config = connector_config(body);
    let next = SignalConsumers::default().with(Signal::Metrics, Arc::new(sink.clone()));
    let ctx = BuildContext::new(Telemetry::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(CountConnectorFactory.build(&config, &ctx, next))
        .expect("builds")
        .input
}

fn send(consumer: &Arc<dyn Consumer>, signal: Signal, raw: Vec<u8>) -> Result<(), Refused> {
    consumer.consume(Batch::new(signal, Bytes::from(raw), 1))
}

/// Hands the connector [`two_resources_of_spans`].
fn send_spans(consumer: &Arc<dyn Consumer>) -> Result<(), Refused> {
    send(
        consumer,
        Signal::Traces,
        two_resources_of_spans().encode_to_vec(),
    )
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", s(service))],
        ..Resource::default()
    })
}

fn span_at(name: &str, start: u64, end: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        name: name.into(),
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Span::default()
    }
}

fn event(time: u64, name: &str) -> span::Event {
    span::Event {
        time_unix_nano: time,
        name: name.into(),
        ..span::Event::default()
    }
}

/// (resource service, metric, attributes as text, value, start, time) of every point.
type Row = (String, String, String, i64, u64, u64);

fn rows(requests: &[ExportMetricsServiceRequest]) -> Vec<Row> {
    let mut out = Vec::new();
    for rm in requests.iter().flat_map(|r| &r.resource_metrics) {
        let service = rm
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| format!("{:?}", kv.value))
            .unwrap_or_default();
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().expect("scope");
            assert_eq!(scope.name, count::SCOPE_NAME);
            for m in &sm.metrics {
                let Some(metric::Data::Sum(sum)) = &m.data else {
                    panic!("{} is not a sum", m.name);
                };
                assert!(sum.is_monotonic);
                assert_eq!(
                    sum.aggregation_temporality,
                    AggregationTemporality::Delta as i32
                );
                for p in &sum.data_points {
                    let attrs: Vec<String> = p
                        .attributes
                        .iter()
                        .map(|kv| {
                            format!(
                                "{}={:?}",
                                kv.key,
                                kv.value.as_ref().and_then(|v| v.value.clone())
                            )
                        })
                        .collect();
                    let Some(number_data_point::Value::AsInt(v)) = p.value else {
                        panic!("not an int");
                    };
                    out.push((
                        service.clone(),
                        m.name.clone(),
                        attrs.join(","),
                        v,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

fn two_resources_of_spans() -> ExportTraceServiceRequest {
    let mut with_events = span_at("GET /", 100, 400, vec![kv("http.route", s("/"))]);
    with_events.events = vec![event(150, "exception"), event(0, "log"), event(120, "log")];
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("checkout"),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "a".into(),
                            attributes: vec![kv("tier", s("gold"))],
                            ..InstrumentationScope::default()
                        }),
                        spans: vec![with_events, span_at("GET /x", 50, 90, vec![])],
                        ..ScopeSpans::default()
                    },
                    ScopeSpans {
                        spans: vec![span_at(
                            "db",
                            0,
                            500,
                            vec![kv("retries", Value::IntValue(2))],
                        )],
                        ..ScopeSpans::default()
                    },
                ],
                ..ResourceSpans::default()
            },
            ResourceSpans {
                resource: resource("cart"),
                scope_spans: vec![ScopeSpans {
                    spans: vec![span_at("GET /cart", 1000, 2000, vec![])],
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            },
        ],
    }
}

fn svc(name: &str) -> String {
    format!(
        "{:?}",
        Some(AnyValue {
            value: Some(s(name))
        })
    )
}

#[test]
fn the_default_counts_spans_and_events_per_resource_over_their_times() {
    let sink = Sink::default();
    let count = build("", &sink);
    send_spans(&count).expect("accepted");
    let got = sink.requests();
    assert_eq!(got.len(), 1, "one metrics request per request");
    let descriptions: BTreeMap<String, String> = got[0]
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| (m.name.clone(), m.description.clone()))
        .collect();
    assert_eq!(
        descriptions,
        BTreeMap::from([
            (
                "trace.span.count".into(),
                "The number of spans observed.".into()
            ),
            (
                "trace.span.event.count".into(),
                "The number of span events observed.".into()
            ),
        ])
    );
    // The span times of a resource run from 0 (not a time) … 500; events' from 120 to 150.
    assert_eq!(
        rows(&got),
        vec![
            (
                svc("cart"),
                "trace.span.count".into(),
                String::new(),
                1,
                1000,
                2000
            ),
            (
                svc("checkout"),
                "trace.span.count".into(),
                String::new(),
                3,
                50,
                500
            ),
            (
                svc("checkout"),
                "trace.span.event.count".into(),
                String::new(),
                3,
                120,
                150
            ),
        ]
    );
}

#[test]
fn attributes_come_from_the_item_then_scope_then_resource_then_the_default() {
    let sink = Sink::default();
    let count = build(
        r#"    spans:
      by.route:
        description: Spans by route and tier.
        conditions: ['span.kind == SPAN_KIND_UNSPECIFIED', 'name == "never"']
        attributes:
          - key: http.route
            default_value: none
          - key: tier
          - key: service.name
      by.retries:
        attributes: [{key: retries}]
      twice:
        attributes: [{key: tier, default_value: x}, {key: tier, default_value: y}]
      only.db:
        conditions: ['name == "db"']"#,
        &sink,
    );
    send_spans(&count).expect("accepted");
    let got = rows(&sink.requests());
    let route = |v: &str| format!("http.route=Some(StringValue({v:?}))");
    let tier = "tier=Some(StringValue(\"gold\"))";
    let checkout = "service.name=Some(StringValue(\"checkout\"))";
    assert_eq!(
        got,
        vec![
            (
                svc("checkout"),
                "by.retries".into(),
                "retries=Some(IntValue(2))".into(),
                1,
                50,
                500
            ),
            (
                svc("checkout"),
                "by.route".into(),
                format!("{},{tier},{checkout}", route("/")),
                1,
                50,
                500
            ),
            (
                svc("checkout"),
                "by.route".into(),
                format!("{},{tier},{checkout}", route("none")),
                1,
                50,
                500
            ),
            (svc("checkout"), "only.db".into(), String::new(), 1, 50, 500),
            // The default spanevents metric stays when only spans are configured.
            (
                svc("checkout"),
                "trace.span.event.count".into(),
                String::new(),
                3,
                120,
                150
            ),
        ],
        "the db span has no tier and the cart span none either: not counted by route; a key \
         configured twice never counts"
    );
}

#[test]
fn logs_count_by_condition_and_fall_back_to_now_without_times() {
    let sink = Sink::default();
    let count = build(
        r#"    logs:
      warnings:
        conditions: ['severity_number >= SEVERITY_NUMBER_WARN']
        attributes: [{key: level, default_value: 0}]"#,
        &sink,
    );
    let log = |severity: i32, time: u64, attributes| LogRecord {
        severity_number: severity,
        time_unix_nano: time,
        observed_time_unix_nano: 7,
        attributes,
        ..LogRecord::default()
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("api"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    log(13, 0, vec![kv("level", Value::IntValue(3))]),
                    log(17, 0, vec![]),
                    log(9, 0, vec![]),
                ],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    send(&count, Signal::Logs, request.encode_to_vec()).expect("accepted");
    let got = rows(&sink.requests());
    assert_eq!(got.len(), 2);
    assert_eq!(
        got.iter().map(|r| (r.2.as_str(), r.3)).collect::<Vec<_>>(),
        vec![
            ("level=Some(IntValue(0))", 1),
            ("level=Some(IntValue(3))", 1)
        ]
    );
    for row in got {
        assert_eq!(row.4, row.5, "no record time: start and time are now");
        assert!(u128::from(row.4) >= before, "not the observed time");
    }
}

fn number(time: u64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: time,
        attributes,
        value: Some(number_data_point::Value::AsDouble(1.0)),
        ..NumberDataPoint::default()
    }
}

#[test]
fn metrics_and_data_points_of_every_kind_are_counted() {
    let sink = Sink::default();
    let count = build(
        r#"    datapoints:
      points.by.host:
        attributes: [{key: host}]
      all.points: {}
    metrics:
      sums:
        conditions: ['metric.type == METRIC_DATA_TYPE_SUM']
      all.metrics:"#,
        &sink,
    );
    let metric = |name: &str, data| Metric {
        name: name.into(),
        data,
        ..Metric::default()
    };
    let host = |h: &str| vec![kv("host", s(h))];
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("node"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric(
                        "g",
                        Some(metric::Data::Gauge(Gauge {
                            data_points: vec![number(10, host("a")), number(30, host("b"))],
                        })),
                    ),
                    metric(
                        "s",
                        Some(metric::Data::Sum(Sum {
                            data_points: vec![number(20, host("a"))],
                            ..Sum::default()
                        })),
                    ),
                    metric(
                        "h",
                        Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: 5,
                                ..HistogramDataPoint::default()
                            }],
                            ..Histogram::default()
                        })),
                    ),
                    metric(
                        "q",
                        Some(metric::Data::Summary(Summary {
                            data_points: vec![SummaryDataPoint {
                                time_unix_nano: 40,
                                attributes: host("a"),
                                ..SummaryDataPoint::default()
                            }],
                        })),
                    ),
                    // No data: a metric, with no points to count.
                    metric("empty", None),
                ],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    send(&count, Signal::Metrics, request.encode_to_vec()).expect("accepted");
    let got = rows(&sink.requests());
    let node = svc("node");
    let a = "host=Some(StringValue(\"a\"))".to_owned();
    let b = "host=Some(StringValue(\"b\"))".to_owned();
    let metric_rows: Vec<_> = got
        .iter()
        .filter(|r| r.1.ends_with("metrics") || r.1 == "sums")
        .collect();
    assert_eq!(
        metric_rows
            .iter()
            .map(|r| (r.1.as_str(), r.3, r.4 == r.5))
            .collect::<Vec<_>>(),
        vec![("all.metrics", 5, true), ("sums", 1, true)],
        "metrics have no times: start and time are both now"
    );
    let point_rows: Vec<_> = got.into_iter().filter(|r| r.1.contains("points")).collect();
    assert_eq!(
        point_rows,
        vec![
            (node.clone(), "all.points".into(), String::new(), 5, 5, 40),
            (node.clone(), "points.by.host".into(), a, 3, 5, 40),
            (node, "points.by.host".into(), b, 1, 5, 40),
        ]
    );
}

#[test]
fn nothing_counted_sends_nothing_and_a_refused_count_refuses_the_request() {
    let sink = Sink::default();
    let count = build("    spans:\n      none:\n        conditions: ['name == \"nothing\"']\n    spanevents:\n      none.either:\n        conditions: ['name == \"nothing\"']", &sink);
    send_spans(&count).expect("accepted");
    assert!(sink.requests().is_empty());

    let full = Sink {
        refuse: true,
        ..Sink::default()
    };
    let count = build("", &full);
    let refused = send_spans(&count).expect_err("the metrics pipeline is full");
    assert_eq!(refused.component, "next");
}

#[test]
fn an_evaluation_error_refuses_the_request() {
    let sink = Sink::default();
    let count = build(
        "    spans:\n      long.names:\n        conditions: ['Substring(name, 0, 50) == \"x\"']",
        &sink,
    );
    let refused = send_spans(&count).expect_err("names are shorter than 50 bytes");
    assert_eq!(refused.component, "count");
    assert!(refused.reason.contains("Substring"), "{}", refused.reason);
    assert!(sink.requests().is_empty());
}

#[test]
fn validate_names_every_problem_at_its_key() {
    let config = connector_config(
        r#"    spans:
      bad.condition:
        conditions: ['name ==']
      no.key:
        attributes: [{default_value: 1}]
      typo:
        conditon: ['name == "x"']
    metrics:
      with.attributes:
        attributes: [{key: a}]
    logs:
      fine:
        conditions: ['severity_number > 0']"#,
    );
    let problems: Vec<String> = CountConnectorFactory
        .validate_all(&config)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems.len(),
        1,
        "an unknown key stops the parse: {problems:?}"
    );
    assert!(problems[0].contains("conditon"), "{problems:?}");

    let config = connector_config(
        r#"    spans:
      bad.condition:
        conditions: ['name ==']
      no.key:
        attributes: [{default_value: 1}]
    metrics:
      with.attributes:
        attributes: [{key: a}]
    profiles:
      p:
        conditions: ['(']"#,
    );
    let problems: Vec<String> = CountConnectorFactory
        .validate_all(&config)
        .iter()
        .map(ToString::to_string)
        .collect();
    let keys = [
        "connectors.count.spans.bad.condition.conditions[0]",
        "connectors.count.spans.no.key.attributes[0].key",
        "connectors.count.metrics.with.attributes.attributes",
        "connectors.count.profiles.p.conditions[0]",
    ];
    assert_eq!(problems.len(), keys.len(), "{problems:#?}");
    for key in keys {
        assert!(
            problems.iter().any(|p| p.contains(key)),
            "{key} not named in {problems:#?}"
        );
    }
    assert_eq!(
        CountConnectorFactory.warnings(&config).len(),
        1,
        "profiles are not used"
    );
    assert!(CountConnectorFactory
        .warnings(&connector_config(""))
        .is_empty());
    let twice = connector_config(
        "    spans:\n      twice:\n        attributes: [{key: tier}, {key: zone}, {key: tier}]",
    );
    assert_eq!(
        CountConnectorFactory.warnings(&twice),
        [
            "spans.twice.attributes[2]: the key \"tier\" is listed twice, so the metric never \
          counts anything"
        ]
    );
}

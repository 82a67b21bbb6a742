//! Glob dimensions: every span attribute whose key matches becomes a label, then every
//! matching resource attribute the span does not have (otelcol's order), so spans of one
//! name carry different label sets.

mod common;

use common::*;
use redline_spanmetrics::config::Dimension;
use redline_spanmetrics::{Config, SpanMetrics};

const CALLS: &str = "traces.spanmetrics.calls";
const EVENTS: &str = "traces.spanmetrics.events";

fn glob(pattern: &str) -> Dimension {
    Dimension {
        glob: Some(pattern.into()),
        ..Dimension::default()
    }
}

fn config() -> Config {
    Config {
        namespace: "traces.spanmetrics".into(),
        dimensions: vec![
            dim("http.route", None),
            glob("k8s.*.name"),
            glob("db.**.name"),
        ],
        ..Config::default()
    }
}

fn labels_with(extra: &[(&str, &str)]) -> Labels {
    let mut l = labels(&[
        ("service.name", "api"),
        ("span.name", "GET"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", "STATUS_CODE_UNSET"),
    ]);
    for (k, v) in extra {
        l.insert((*k).into(), (*v).into());
    }
    l
}

#[test]
fn matching_span_then_resource_attributes_become_labels() {
    let m = SpanMetrics::new(&config()).expect("valid");
    let spans = vec![
        span("GET", SERVER, UNSET, MS, vec![kv("k8s.pod.name", s("p1"))]),
        // The span's value wins over the resource's; `*` does not cross a `.`.
        span(
            "GET",
            SERVER,
            UNSET,
            MS,
            vec![
                kv("k8s.node.name", s("from-span")),
                kv("k8s.cluster.label.name", s("no")),
                kv(
                    "db.a.b.name",
                    opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(7),
                ),
            ],
        ),
        span("GET", SERVER, UNSET, MS, vec![kv("k8s.pod.name", s("p1"))]),
    ];
    let rs = resource(
        vec![
            kv("service.name", s("api")),
            kv("k8s.node.name", s("n1")),
            kv("host.name", s("h")),
        ],
        spans,
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let sink = collect(&m);
    let calls = sink.family(CALLS);
    assert_eq!(
        calls.counter(&labels_with(&[
            ("k8s.pod.name", "p1"),
            ("k8s.node.name", "n1")
        ])),
        2
    );
    assert_eq!(
        calls.counter(&labels_with(&[
            ("k8s.node.name", "from-span"),
            ("db.a.b.name", "7")
        ])),
        1
    );
    assert_eq!(calls.label_sets().len(), 2);
}

#[test]
fn a_span_with_no_matching_attribute_has_no_glob_labels() {
    let m = SpanMetrics::new(&config()).expect("valid");
    let rs = service("api", vec![span("GET", SERVER, UNSET, MS, vec![])]);
    m.aggregate(&encode(vec![rs])).expect("valid request");
    assert_eq!(collect(&m).family(CALLS).counter(&labels_with(&[])), 1);
}

#[test]
fn events_take_the_event_attributes_ahead_of_the_resource() {
    let mut c = config();
    c.events.enabled = true;
    c.events.dimensions = vec![dim("exception.type", None)];
    let m = SpanMetrics::new(&c).expect("valid");
    let event = opentelemetry_proto::tonic::trace::v1::span::Event {
        name: "exception".into(),
        attributes: vec![
            kv("exception.type", s("E")),
            kv("k8s.node.name", s("from-event")),
        ],
        ..Default::default()
    };
    let with_event = opentelemetry_proto::tonic::trace::v1::Span {
        events: vec![event],
        ..span("GET", SERVER, UNSET, MS, vec![])
    };
    let rs = resource(
        vec![kv("service.name", s("api")), kv("k8s.node.name", s("n1"))],
        vec![with_event],
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let sink = collect(&m);
    let want = labels_with(&[("k8s.node.name", "from-event"), ("exception.type", "E")]);
    assert_eq!(sink.family(EVENTS).counter(&want), 1);
    // The span itself: the resource's value.
    let calls = labels_with(&[("k8s.node.name", "n1")]);
    assert_eq!(sink.family(CALLS).counter(&calls), 1);
}

#[test]
fn globs_of_calls_and_histogram_dimensions_label_their_family_only() {
    let c = Config {
        calls_dimensions: vec![glob("net.*")],
        histogram: redline_spanmetrics::config::HistogramConfig {
            dimensions: vec![glob("url.*")],
            ..Default::default()
        },
        ..config()
    };
    let m = SpanMetrics::new(&c).expect("valid");
    let attrs = vec![
        kv("k8s.pod.name", s("p1")),
        kv("net.peer", s("db")),
        kv("url.scheme", s("https")),
    ];
    let rs = service("api", vec![span("GET", SERVER, UNSET, MS, attrs)]);
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let sink = collect(&m);
    let calls = labels_with(&[("k8s.pod.name", "p1"), ("net.peer", "db")]);
    assert_eq!(sink.family(CALLS).counter(&calls), 1);
    let duration = labels_with(&[("k8s.pod.name", "p1"), ("url.scheme", "https")]);
    assert_eq!(
        sink.family("traces.spanmetrics.duration")
            .hist(&duration)
            .count,
        1
    );
}

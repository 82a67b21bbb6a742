//! `events.enabled`: one count per span event under the span's labels and the event
//! dimensions, each looked up in the span's attributes, then the event's, then the
//! resource's, then the dimension's default (otelcol's order).

mod common;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::Span;
use redline_spanmetrics::{Config, SpanMetrics};

const EVENTS: &str = "traces.spanmetrics.events";

fn config() -> Config {
    let mut c = Config {
        namespace: "traces.spanmetrics".into(),
        dimensions: vec![dim("http.route", None)],
        ..Config::default()
    };
    c.events.enabled = true;
    c.events.dimensions = vec![dim("exception.type", None), dim("region", Some("none"))];
    c
}

fn event(name: &str, attrs: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>) -> Event {
    Event {
        name: name.into(),
        time_unix_nano: 1_700_000_000_000_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

fn failing(route: Option<&str>, events: Vec<Event>) -> Span {
    let attrs = route
        .map(|r| vec![kv("http.route", s(r))])
        .unwrap_or_default();
    Span {
        events,
        ..span("GET /", SERVER, ERROR, 5 * MS, attrs)
    }
}

fn labels_of(route: Option<&str>, exception: Option<&str>, region: &str) -> Labels {
    let mut l = labels(&[
        ("service.name", "api"),
        ("span.name", "GET /"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", "STATUS_CODE_ERROR"),
        ("region", region),
    ]);
    if let Some(r) = route {
        l.insert("http.route".into(), r.into());
    }
    if let Some(e) = exception {
        l.insert("exception.type".into(), e.into());
    }
    l
}

#[test]
fn each_event_counts_under_the_span_labels_and_its_own_dimensions() {
    let m = SpanMetrics::new(&config()).expect("valid");
    let timeout = || event("exception", vec![kv("exception.type", s("Timeout"))]);
    let spans = vec![
        // Two exceptions on one span, one on another: three events.
        failing(Some("/a"), vec![timeout(), timeout()]),
        failing(Some("/a"), vec![timeout()]),
        // The event's value of a span dimension counts where the span has none.
        failing(
            None,
            vec![event(
                "exception",
                vec![
                    kv("http.route", s("/from-event")),
                    kv("exception.type", s("Io")),
                ],
            )],
        ),
        // A non-string value is written as otelcol writes it; an event without the
        // dimension has no label for it.
        failing(
            Some("/b"),
            vec![
                event("exception", vec![kv("exception.type", Value::IntValue(7))]),
                event("log", vec![]),
            ],
        ),
        // No events: no count.
        failing(Some("/c"), vec![]),
    ];
    let rs = resource(
        vec![kv("service.name", s("api")), kv("region", s("eu"))],
        spans,
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let sink = collect(&m);
    let events = sink.family(EVENTS);
    assert_eq!(
        events.counter(&labels_of(Some("/a"), Some("Timeout"), "eu")),
        3
    );
    assert_eq!(
        events.counter(&labels_of(Some("/from-event"), Some("Io"), "eu")),
        1
    );
    assert_eq!(events.counter(&labels_of(Some("/b"), Some("7"), "eu")), 1);
    assert_eq!(events.counter(&labels_of(Some("/b"), None, "eu")), 1);
    assert_eq!(events.label_sets().len(), 4);
    // calls are counted as before, one per span.
    assert_eq!(
        sink.family("traces.spanmetrics.calls")
            .label_sets()
            .iter()
            .map(|l| sink.family("traces.spanmetrics.calls").counter(l))
            .sum::<u64>(),
        5
    );
}

#[test]
fn the_span_wins_over_the_event_and_the_event_over_the_resource() {
    let m = SpanMetrics::new(&config()).expect("valid");
    let mut s1 = failing(
        Some("/a"),
        vec![event(
            "exception",
            vec![kv("exception.type", s("E")), kv("region", s("from-event"))],
        )],
    );
    s1.attributes.push(kv("exception.type", s("from-span")));
    let s2 = failing(
        Some("/a"),
        vec![event("exception", vec![kv("exception.type", s("E"))])],
    );
    let with_region = resource(
        vec![kv("service.name", s("api")), kv("region", s("eu"))],
        vec![s1],
    );
    let without = resource(vec![kv("service.name", s("api"))], vec![s2]);
    m.aggregate(&encode(vec![with_region, without]))
        .expect("valid request");
    let sink = collect(&m);
    let events = sink.family(EVENTS);
    assert_eq!(
        events.counter(&labels_of(Some("/a"), Some("from-span"), "from-event")),
        1
    );
    assert_eq!(
        events.counter(&labels_of(Some("/a"), Some("E"), "none")),
        1,
        "the default"
    );
    assert_eq!(events.label_sets().len(), 2);
}

#[test]
fn without_events_enabled_there_is_no_family() {
    let mut c = config();
    c.events.enabled = false;
    let m = SpanMetrics::new(&c).expect("valid");
    let rs = service(
        "api",
        vec![failing(Some("/a"), vec![event("exception", vec![])])],
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    assert!(!collect(&m).names().iter().any(|n| n == EVENTS));
}

#[test]
fn event_series_expire_with_the_span_series_and_are_counted_as_series() {
    let mut c = config();
    c.metrics_expiration = std::time::Duration::from_secs(60);
    let m = SpanMetrics::new(&c).expect("valid");
    let rs = service(
        "api",
        vec![failing(Some("/a"), vec![event("exception", vec![])])],
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    assert_eq!(m.series_count(), 2, "one calls series, one events series");
    m.advance_clock(std::time::Duration::from_secs(61));
    assert_eq!(m.expire_idle(), 2);
    assert_eq!(m.series_count(), 0);
    assert!(collect(&m).family(EVENTS).label_sets().is_empty());
}

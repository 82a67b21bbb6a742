//! `calls_dimensions` and `histogram.dimensions`: calls and the duration histogram each keyed
//! by `dimensions` plus their own, looked up in the span's attributes, then the resource's,
//! then the dimension's default (otelcol's order, as for `dimensions`).

mod common;

use common::*;
use redline_spanmetrics::config::HistogramConfig;
use redline_spanmetrics::{Config, SpanMetrics};

const CALLS: &str = "traces.spanmetrics.calls";
const ERRORS: &str = "traces.spanmetrics.errors";
const DURATION: &str = "traces.spanmetrics.duration";

fn config() -> Config {
    Config {
        namespace: "traces.spanmetrics".into(),
        dimensions: vec![dim("http.route", None)],
        calls_dimensions: vec![dim("http.url", Some("/ping"))],
        histogram: HistogramConfig {
            dimensions: vec![dim("url.scheme", None), dim("region", None)],
            ..HistogramConfig::default()
        },
        ..Config::default()
    }
}

fn labels_with(status: &str, extra: &[(&str, &str)]) -> Labels {
    let mut l = labels(&[
        ("service.name", "api"),
        ("span.name", "GET"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", status),
        ("http.route", "/a"),
    ]);
    for (k, v) in extra {
        l.insert((*k).into(), (*v).into());
    }
    l
}

#[test]
fn calls_and_duration_are_keyed_by_their_own_dimensions() {
    let m = SpanMetrics::new(&config()).expect("valid");
    let at = |url: Option<&str>, scheme: &str, status: i32, ms: u64| {
        let mut attrs = vec![kv("http.route", s("/a")), kv("url.scheme", s(scheme))];
        if let Some(u) = url {
            attrs.push(kv("http.url", s(u)));
        }
        span("GET", SERVER, status, ms * MS, attrs)
    };
    let spans = vec![
        at(Some("/x"), "https", UNSET, 3),
        at(Some("/x"), "http", UNSET, 7),
        at(Some("/y"), "https", UNSET, 60),
        at(None, "https", ERROR, 1),
    ];
    let rs = resource(
        vec![kv("service.name", s("api")), kv("region", s("eu"))],
        spans,
    );
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let sink = collect(&m);

    let calls = sink.family(CALLS);
    let unset = "STATUS_CODE_UNSET";
    assert_eq!(calls.counter(&labels_with(unset, &[("http.url", "/x")])), 2);
    assert_eq!(calls.counter(&labels_with(unset, &[("http.url", "/y")])), 1);
    let error = "STATUS_CODE_ERROR";
    assert_eq!(
        calls.counter(&labels_with(error, &[("http.url", "/ping")])),
        1,
        "the default"
    );
    assert_eq!(calls.label_sets().len(), 3);

    // Errors are the calls' (labels without status.code).
    let errors = sink.family(ERRORS);
    let mut no_status = labels_with(error, &[("http.url", "/ping")]);
    no_status.remove("status.code");
    assert_eq!(errors.counter(&no_status), 1);

    // The histogram's labels: its own dimensions, the region from the resource; no http.url.
    let duration = sink.family(DURATION);
    let https = labels_with(unset, &[("url.scheme", "https"), ("region", "eu")]);
    let h = duration.hist(&https);
    assert_eq!(h.count, 2);
    assert_eq!(h.sum, 63.0);
    let http = labels_with(unset, &[("url.scheme", "http"), ("region", "eu")]);
    assert_eq!(duration.hist(&http).count, 1);
    let failed = labels_with(error, &[("url.scheme", "https"), ("region", "eu")]);
    assert_eq!(duration.hist(&failed).count, 1);
    assert_eq!(duration.label_sets().len(), 3);

    // Families appear once each.
    let names = sink.names();
    for family in [CALLS, ERRORS, DURATION] {
        assert_eq!(
            names.iter().filter(|n| *n == family).count(),
            1,
            "{names:?}"
        );
    }
}

#[test]
fn each_family_has_its_own_cardinality_limit_and_expiry() {
    let c = Config {
        aggregation_cardinality_limit: 2,
        metrics_expiration: std::time::Duration::from_secs(60),
        ..config()
    };
    let m = SpanMetrics::new(&c).expect("valid");
    // Three urls over one scheme: calls overflow at the third, duration has one series.
    let spans = ["/1", "/2", "/3"]
        .iter()
        .map(|u| {
            let attrs = vec![
                kv("http.route", s("/a")),
                kv("http.url", s(u)),
                kv("url.scheme", s("https")),
            ];
            span("GET", SERVER, UNSET, MS, attrs)
        })
        .collect();
    m.aggregate(&encode(vec![service("api", spans)]))
        .expect("valid request");
    let sink = collect(&m);
    let overflow = labels(&[(redline_spanmetrics::OVERFLOW_LABEL, "true")]);
    assert_eq!(sink.family(CALLS).counter(&overflow), 1);
    assert_eq!(sink.family(CALLS).label_sets().len(), 3);
    let duration = sink.family(DURATION);
    assert_eq!(duration.label_sets().len(), 1, "no overflow in duration");
    assert_eq!(
        duration
            .hist(&labels_with(
                "STATUS_CODE_UNSET",
                &[("url.scheme", "https")]
            ))
            .count,
        3
    );
    assert_eq!(
        m.series_count(),
        3,
        "two calls series and one duration series"
    );
    m.advance_clock(std::time::Duration::from_secs(61));
    assert_eq!(m.expire_idle(), 3);
    assert_eq!(m.series_count(), 0);
    assert!(collect(&m).family(DURATION).label_sets().is_empty());
}

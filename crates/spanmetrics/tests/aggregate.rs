//! Exact-count scenarios: requests built with the prost types, aggregated, collected.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use redline_pipeline::MetricKind;
use redline_spanmetrics::config::{Dimension, DEFAULT_BUCKETS_MS};
use redline_spanmetrics::{Config, SpanMetrics};

const MS: u64 = 1_000_000;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const INTERNAL: i32 = 1;
const UNSET: i32 = 0;
const OK: i32 = 1;
const ERROR: i32 = 2;

fn l(service: &str, name: &str, kind: &str, status: Option<&str>, hit: Option<&str>) -> Labels {
    let mut v = vec![
        ("service.name", service),
        ("span.name", name),
        ("span.kind", kind),
    ];
    if let Some(s) = status {
        v.push(("status.code", s));
    }
    if let Some(h) = hit {
        v.push(("cdn.cache.hit", h));
    }
    labels(&v)
}

fn reference_request() -> Vec<u8> {
    let hit = |v: Value| vec![kv("cdn.cache.hit", v)];
    let mut negative = span("http.server", SERVER, ERROR, 0, vec![]);
    negative.end_time_unix_nano = negative.start_time_unix_nano - 5 * MS;
    encode(vec![
        resource(
            vec![
                kv("service.name", s("makiatto-web")),
                kv("host.name", s("a")),
            ],
            vec![
                span("http.server", SERVER, UNSET, 10 * MS, vec![]),
                span("http.server", SERVER, OK, 3 * MS, vec![]),
                span("http.server", SERVER, ERROR, 250 * MS, vec![]),
                negative,
                span(
                    "cdn.file.read",
                    CLIENT,
                    UNSET,
                    MS,
                    hit(Value::BoolValue(true)),
                ),
                span("cdn.file.read", CLIENT, UNSET, MS, hit(s("true"))),
                span(
                    "cdn.file.read",
                    CLIENT,
                    UNSET,
                    60 * MS,
                    hit(Value::BoolValue(false)),
                ),
                span("cdn.file.read", CLIENT, UNSET, 7 * MS, vec![]),
                span(
                    "wasm.invoke",
                    INTERNAL,
                    OK,
                    20_000 * MS,
                    hit(Value::IntValue(1)),
                ),
                span("odd", 9, 7, MS, vec![]),
            ],
        ),
        // Same service, another host: adds into the same series.
        resource(
            vec![
                kv("host.name", s("b")),
                kv("service.name", s("makiatto-web")),
            ],
            vec![span("http.server", SERVER, UNSET, 10 * MS + 1, vec![])],
        ),
        // No service.name: not counted.
        resource(
            vec![kv("host.name", s("c"))],
            vec![span("http.server", SERVER, UNSET, MS, vec![])],
        ),
        // Dimension from the resource; the span's own attribute wins.
        resource(
            vec![
                kv("service.name", s("makiatto-edge")),
                kv("cdn.cache.hit", s("resource")),
            ],
            vec![
                span("cdn.file.read", CLIENT, UNSET, 2 * MS, vec![]),
                span("cdn.file.read", CLIENT, UNSET, 2 * MS, hit(s("false"))),
            ],
        ),
    ])
}

#[test]
fn reference_scenario_exact_counts() {
    let m = SpanMetrics::new(&reference_config()).expect("valid config");
    let counted = m.aggregate(&reference_request()).expect("valid request");
    assert_eq!(counted, 13, "13 spans have a service.name");
    assert_eq!(m.series_count(), 10);

    let sink = collect(&m);
    assert_eq!(
        sink.names(),
        vec![
            "traces.spanmetrics.calls",
            "traces.spanmetrics.errors",
            "traces.spanmetrics.duration"
        ]
    );
    let calls = sink.family("traces.spanmetrics.calls");
    assert_eq!(
        (calls.unit.as_str(), calls.kind),
        ("1", MetricKind::Counter)
    );
    let errors = sink.family("traces.spanmetrics.errors");
    assert_eq!(
        (errors.unit.as_str(), errors.kind),
        ("1", MetricKind::Counter)
    );
    let duration = sink.family("traces.spanmetrics.duration");
    assert_eq!(
        (duration.unit.as_str(), duration.kind),
        ("ms", MetricKind::Histogram)
    );
    for f in &sink.families {
        assert!(!f.description.is_empty());
    }

    let web = |status| {
        l(
            "makiatto-web",
            "http.server",
            "SPAN_KIND_SERVER",
            Some(status),
            None,
        )
    };
    let expected_calls = [
        (web("STATUS_CODE_UNSET"), 2),
        (web("STATUS_CODE_OK"), 1),
        (web("STATUS_CODE_ERROR"), 2),
        (
            l(
                "makiatto-web",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("STATUS_CODE_UNSET"),
                Some("true"),
            ),
            2,
        ),
        (
            l(
                "makiatto-web",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("STATUS_CODE_UNSET"),
                Some("false"),
            ),
            1,
        ),
        (
            l(
                "makiatto-web",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("STATUS_CODE_UNSET"),
                None,
            ),
            1,
        ),
        (
            l(
                "makiatto-web",
                "wasm.invoke",
                "SPAN_KIND_INTERNAL",
                Some("STATUS_CODE_OK"),
                Some("1"),
            ),
            1,
        ),
        (
            // Kind 9 and status 7 are outside their enums: empty label values, as otelcol.
            l("makiatto-web", "odd", "", Some(""), None),
            1,
        ),
        (
            l(
                "makiatto-edge",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("STATUS_CODE_UNSET"),
                Some("resource"),
            ),
            1,
        ),
        (
            l(
                "makiatto-edge",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("STATUS_CODE_UNSET"),
                Some("false"),
            ),
            1,
        ),
    ];
    let mut want: Vec<Labels> = expected_calls.iter().map(|(l, _)| l.clone()).collect();
    want.sort();
    assert_eq!(calls.label_sets(), want);
    assert_eq!(duration.label_sets(), want);
    for (labels, n) in &expected_calls {
        assert_eq!(calls.counter(labels), *n, "{labels:?}");
        assert_eq!(duration.hist(labels).count, *n, "{labels:?}");
    }

    // Buckets: upper-inclusive, 10ms lands in le=10 (index 4), 10ms+1ns in le=50.
    let h = duration.hist(&web("STATUS_CODE_UNSET"));
    assert_eq!(h.bounds, DEFAULT_BUCKETS_MS.to_vec());
    let mut b = vec![0u64; 17];
    b[4] = 1;
    b[5] = 1;
    assert_eq!(h.counts, b);
    assert!((h.sum - 20.000001).abs() < 1e-9, "{}", h.sum);
    // ERROR: 250ms → (200,400] index 8, negative → 0 → index 0.
    let h = duration.hist(&web("STATUS_CODE_ERROR"));
    let mut b = vec![0u64; 17];
    b[0] = 1;
    b[8] = 1;
    assert_eq!(h.counts, b);
    assert_eq!(h.sum, 250.0);
    // 20s → +Inf bucket.
    let h = duration.hist(&l(
        "makiatto-web",
        "wasm.invoke",
        "SPAN_KIND_INTERNAL",
        Some("STATUS_CODE_OK"),
        Some("1"),
    ));
    assert_eq!(h.counts[16], 1);
    assert_eq!(h.sum, 20_000.0);

    // Errors: one point per group without status, 0 for groups without ERROR.
    let g = |svc, name, kind, hit| l(svc, name, kind, None, hit);
    let mut want_groups = vec![
        (
            g("makiatto-web", "http.server", "SPAN_KIND_SERVER", None),
            2,
        ),
        (
            g(
                "makiatto-web",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("true"),
            ),
            0,
        ),
        (
            g(
                "makiatto-web",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("false"),
            ),
            0,
        ),
        (
            g("makiatto-web", "cdn.file.read", "SPAN_KIND_CLIENT", None),
            0,
        ),
        (
            g(
                "makiatto-web",
                "wasm.invoke",
                "SPAN_KIND_INTERNAL",
                Some("1"),
            ),
            0,
        ),
        (g("makiatto-web", "odd", "", None), 0),
        (
            g(
                "makiatto-edge",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("resource"),
            ),
            0,
        ),
        (
            g(
                "makiatto-edge",
                "cdn.file.read",
                "SPAN_KIND_CLIENT",
                Some("false"),
            ),
            0,
        ),
    ];
    want_groups.sort();
    assert_eq!(
        errors.label_sets(),
        want_groups
            .iter()
            .map(|(l, _)| l.clone())
            .collect::<Vec<_>>()
    );
    for (labels, n) in &want_groups {
        assert_eq!(errors.counter(labels), *n, "{labels:?}");
    }

    // Exemplars: the most recent span, value 1 on counters and the duration on histograms.
    match calls.get(&web("STATUS_CODE_ERROR")) {
        Some(Point::Counter {
            exemplar: Some(e),
            start,
            ..
        }) => {
            assert_eq!(e.trace_id, [0xab; 16]);
            assert_eq!(e.span_id, [0xcd; 8]);
            assert_eq!(e.value, 1.0);
            assert!(*start > 0);
        }
        other => panic!("{other:?}"),
    }
    let h = duration.hist(&web("STATUS_CODE_ERROR"));
    assert_eq!(h.exemplars.len(), 1);
    assert_eq!(
        h.exemplars[0].value, 0.0,
        "the negative-duration span came last"
    );

    // Label order: defaults first, then dimensions.
    let (order, _) = calls
        .points
        .iter()
        .find(|(pl, _)| pl.len() == 5)
        .expect("a point with the dimension");
    let keys: Vec<&str> = order.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "service.name",
            "span.name",
            "span.kind",
            "status.code",
            "cdn.cache.hit"
        ]
    );

    // Aggregating again doubles everything.
    m.aggregate(&reference_request()).expect("valid");
    let sink = collect(&m);
    assert_eq!(
        sink.family("traces.spanmetrics.calls")
            .counter(&web("STATUS_CODE_UNSET")),
        4
    );
    assert_eq!(m.series_count(), 10);
}

#[test]
fn seconds_unit_and_default_namespace() {
    let mut c = Config::default();
    c.histogram.unit = "s".into();
    let m = SpanMetrics::new(&c).expect("valid");
    m.aggregate(&encode(vec![service(
        "svc",
        vec![span("x", SERVER, OK, 10 * MS, vec![])],
    )]))
    .expect("valid");
    let sink = collect(&m);
    assert_eq!(
        sink.names(),
        vec![
            "traces.span.metrics.calls",
            "traces.span.metrics.errors",
            "traces.span.metrics.duration"
        ]
    );
    let d = sink.family("traces.span.metrics.duration");
    assert_eq!(d.unit, "s");
    let h = d.hist(&labels(&[
        ("service.name", "svc"),
        ("span.name", "x"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", "STATUS_CODE_OK"),
    ]));
    assert_eq!(h.bounds[4], 0.01);
    assert_eq!(h.counts[4], 1, "10ms is in le=0.01");
    assert_eq!(h.sum, 0.01);
}

#[test]
fn histogram_disabled_and_empty_namespace() {
    let mut c = Config::default();
    c.histogram.disable = true;
    c.namespace = String::new();
    let m = SpanMetrics::new(&c).expect("valid");
    let req = encode(vec![service(
        "svc",
        vec![
            span("x", SERVER, ERROR, MS, vec![]),
            span("x", SERVER, ERROR, MS, vec![]),
            span("x", SERVER, OK, MS, vec![]),
        ],
    )]);
    m.aggregate(&req).expect("valid");
    let sink = collect(&m);
    assert_eq!(sink.names(), vec!["calls", "errors"]);
    let base = [
        ("service.name", "svc"),
        ("span.name", "x"),
        ("span.kind", "SPAN_KIND_SERVER"),
    ];
    let with = |st| {
        let mut v = base.to_vec();
        v.push(("status.code", st));
        labels(&v)
    };
    assert_eq!(sink.family("calls").counter(&with("STATUS_CODE_ERROR")), 2);
    assert_eq!(sink.family("calls").counter(&with("STATUS_CODE_OK")), 1);
    assert_eq!(sink.family("errors").counter(&labels(&base)), 2);
}

#[test]
fn dimension_defaults_and_exclusions() {
    let c = Config {
        dimensions: vec![
            Dimension {
                name: "region".into(),
                default: Some("unknown".into()),
                glob: None,
            },
            Dimension {
                name: "tier".into(),
                default: None,
                glob: None,
            },
        ],
        exclude_dimensions: vec!["span.kind".into(), "status.code".into()],
        ..Config::default()
    };
    let m = SpanMetrics::new(&c).expect("valid");
    let req = encode(vec![service(
        "svc",
        vec![
            span("a", SERVER, ERROR, MS, vec![]),
            span(
                "a",
                CLIENT,
                OK,
                MS,
                vec![kv("region", s("eu")), kv("tier", Value::DoubleValue(1.5))],
            ),
            span(
                "a",
                INTERNAL,
                ERROR,
                MS,
                vec![kv("region", s("eu")), kv("tier", Value::DoubleValue(1.5))],
            ),
        ],
    )]);
    m.aggregate(&req).expect("valid");
    let sink = collect(&m);
    let calls = sink.family("traces.span.metrics.calls");
    let a = labels(&[
        ("service.name", "svc"),
        ("span.name", "a"),
        ("region", "unknown"),
    ]);
    let b = labels(&[
        ("service.name", "svc"),
        ("span.name", "a"),
        ("region", "eu"),
        ("tier", "1.5"),
    ]);
    assert_eq!(calls.label_sets(), {
        let mut v = vec![a.clone(), b.clone()];
        v.sort();
        v
    });
    assert_eq!(calls.counter(&a), 1);
    assert_eq!(calls.counter(&b), 2);
    // status.code excluded: errors are still counted per series.
    let errors = sink.family("traces.span.metrics.errors");
    assert_eq!(errors.counter(&a), 1);
    assert_eq!(errors.counter(&b), 1);
}

#[test]
fn cardinality_limit_folds_into_overflow() {
    let c = Config {
        aggregation_cardinality_limit: 3,
        ..Config::default()
    };
    let m = SpanMetrics::new(&c).expect("valid");
    let names = ["a", "b", "c", "d", "e"];
    let spans = names
        .iter()
        .map(|n| span(n, SERVER, if *n == "e" { ERROR } else { OK }, MS, vec![]))
        .collect();
    m.aggregate(&encode(vec![service("svc", spans)]))
        .expect("valid");
    // Existing series keep counting after the limit is reached.
    m.aggregate(&encode(vec![service(
        "svc",
        vec![span("a", SERVER, OK, MS, vec![])],
    )]))
    .expect("valid");
    assert_eq!(m.series_count(), 3);
    assert!(m.overflow_active());

    let sink = collect(&m);
    let calls = sink.family("traces.span.metrics.calls");
    let overflow = labels(&[("otel.metric.overflow", "true")]);
    assert_eq!(calls.counter(&overflow), 2, "d and e overflowed");
    assert_eq!(calls.points.len(), 4);
    let total: u64 = calls
        .points
        .iter()
        .map(|(_, p)| match p {
            Point::Counter { value, .. } => *value,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 6, "nothing lost");
    assert_eq!(
        sink.family("traces.span.metrics.errors").counter(&overflow),
        1
    );
    assert_eq!(
        sink.family("traces.span.metrics.duration")
            .hist(&overflow)
            .count,
        2
    );
}

#[test]
fn idle_series_expire() {
    let c = Config {
        metrics_expiration: Duration::from_secs(300),
        ..Config::default()
    };
    let m = SpanMetrics::new(&c).expect("valid");
    let req = |n: &str| encode(vec![service("svc", vec![span(n, SERVER, OK, MS, vec![])])]);
    m.aggregate(&req("old")).expect("valid");
    m.advance_clock(Duration::from_secs(200));
    m.aggregate(&req("new")).expect("valid");
    m.advance_clock(Duration::from_secs(200));
    let sink = collect(&m);
    let calls = sink.family("traces.span.metrics.calls");
    assert_eq!(calls.points.len(), 1);
    assert_eq!(m.series_count(), 1);
    let new = labels(&[
        ("service.name", "svc"),
        ("span.name", "new"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", "STATUS_CODE_OK"),
    ]);
    assert_eq!(calls.counter(&new), 1);
    // The sweep removes the rest; a returning series starts again from 1.
    m.advance_clock(Duration::from_secs(300));
    assert_eq!(m.expire_idle(), 1);
    assert_eq!(m.series_count(), 0);
    m.aggregate(&req("new")).expect("valid");
    assert_eq!(
        collect(&m)
            .family("traces.span.metrics.calls")
            .counter(&new),
        1
    );
}

#[test]
fn malformed_requests_change_nothing() {
    let m = SpanMetrics::new(&Config::default()).expect("valid");
    let good = encode(vec![service(
        "svc",
        vec![span("x", SERVER, OK, MS, vec![]); 3],
    )]);
    for cut in [1, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad.truncate(cut);
        // Appending a broken field after a valid prefix must not count the prefix.
        let mut tail = good.clone();
        tail.extend_from_slice(&[0x0a, 0xff]);
        assert!(m.aggregate(&bad).is_err() || cut == 0);
        assert!(m.aggregate(&tail).is_err());
    }
    assert_eq!(m.series_count(), 0);
    assert!(collect(&m)
        .family("traces.span.metrics.calls")
        .points
        .is_empty());
}

#[test]
fn exponential_durations_fit_max_size_at_the_finest_scale() {
    let mut c: Config = reference_config();
    c.histogram.explicit = None;
    c.histogram.exponential =
        Some(redline_spanmetrics::config::ExponentialConfig { max_size: Some(8) });
    let m = SpanMetrics::new(&c).expect("valid");
    // 0 ms (zero bucket), then 1, 2, 3, 100 ms: 1..100 ms spans 6.6 powers of two, so at most
    // 8 buckets means scale 0 (one bucket per power of two).
    let durations = [0, 1, 2, 3, 100];
    let spans = durations
        .iter()
        .map(|ms| span("GET", SERVER, UNSET, ms * MS, vec![]))
        .collect();
    m.aggregate(&encode(vec![service("api", spans)]))
        .expect("valid");
    let sink = collect(&m);
    let f = sink.family("traces.spanmetrics.duration");
    assert_eq!(f.kind, MetricKind::ExponentialHistogram);
    let Some(Point::Exponential {
        scale,
        offset,
        counts,
        zero_count,
        count,
        sum,
    }) = f.get(&l(
        "api",
        "GET",
        "SPAN_KIND_SERVER",
        Some("STATUS_CODE_UNSET"),
        None,
    ))
    else {
        panic!("no exponential point: {:?}", f.points);
    };
    assert_eq!((*scale, *zero_count, *count), (0, 1, 5));
    assert_eq!(*sum, 106.0);
    // Scale 0: bucket i holds (2^i, 2^(i+1)]; 1 -> -1, 2 -> 0, 3 -> 1, 100 -> 6.
    assert_eq!(*offset, -1);
    assert_eq!(counts, &vec![1, 1, 1, 0, 0, 0, 0, 1]);
}

/// Every point's labels and values (times left out: two instances start apart).
fn values(sink: &Sink) -> Vec<String> {
    let mut out = Vec::new();
    for f in &sink.families {
        for (labels, point) in &f.points {
            let v = match point {
                Point::Counter { value, .. } => format!("{value}"),
                Point::Histogram(h) => format!("{:?} {} {}", h.counts, h.count, h.sum.to_bits()),
                Point::Exponential {
                    counts, count, sum, ..
                } => {
                    format!("{counts:?} {count} {}", sum.to_bits())
                }
            };
            out.push(format!("{} {labels:?} {v}", f.name));
        }
    }
    out.sort();
    out
}

/// The receiver's walk (a span tap) counts exactly what `aggregate` counts, and only once
/// committed.
#[test]
fn a_tap_walk_counts_as_aggregate_does_and_only_when_committed() {
    use redline_otlp_wire::SpanKeys;
    use redline_pipeline::{SpanTap, TapId, TapWalks};
    use std::sync::Arc;
    let raw = bytes::Bytes::from(reference_request());
    let tapped = Arc::new(SpanMetrics::new(&reference_config()).expect("valid config"));
    let taps: Vec<(TapId, Arc<dyn SpanTap>)> = vec![(TapId::unique(), tapped.clone())];

    let keys = TapWalks::keys_of(&taps);
    let dimensions: Vec<&[u8]> = keys.iter().collect();
    assert_eq!(
        dimensions,
        [&b"cdn.cache.hit"[..]],
        "the attribute dimension is noted by the walk"
    );
    let mut walks = TapWalks::begin(&taps, &keys, raw.len());
    redline_otlp_wire::validate_with_span_names_visiting(&raw, &mut walks).expect("valid");
    drop(walks);
    assert_eq!(
        tapped.series_count(),
        0,
        "a walk dropped uncommitted counts nothing"
    );

    for _ in 0..2 {
        let mut walks = TapWalks::begin(&taps, &keys, raw.len());
        redline_otlp_wire::validate_with_span_names_visiting(&raw, &mut walks).expect("valid");
        assert_eq!(walks.commit(), vec![taps[0].0]);
    }
    let direct = SpanMetrics::new(&reference_config()).expect("valid config");
    for _ in 0..2 {
        direct.aggregate(&raw).expect("valid");
    }
    // A walk that notes nothing: the tap scans each span's attributes itself.
    let scanning = Arc::new(SpanMetrics::new(&reference_config()).expect("valid config"));
    let scanning_taps: Vec<(TapId, Arc<dyn SpanTap>)> = vec![(TapId::unique(), scanning.clone())];
    for _ in 0..2 {
        let mut walks = TapWalks::begin(&scanning_taps, SpanKeys::none(), raw.len());
        redline_otlp_wire::validate_with_span_names_visiting(&raw, &mut walks).expect("valid");
        walks.commit();
    }
    assert_eq!(tapped.series_count(), 10);
    assert_eq!(values(&collect(&tapped)), values(&collect(&direct)));
    assert_eq!(values(&collect(&scanning)), values(&collect(&direct)));
}

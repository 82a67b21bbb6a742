//! Sampled spans count as their adjusted count; `tempo_red_table` serves the Tempo RED table's
//! series. Expected values are worked out by hand from the spans sent.

mod common;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use redline_pipeline::CheckAll;
use redline_pipeline::MetricKind;
use redline_spanmetrics::{Config, SpanMetrics};

const MS: u64 = 1_000_000;
const SERVER: i32 = 2;
const UNSET: i32 = 0;
const ERROR: i32 = 2;

fn sampled(mut s: Span, tracestate: &str) -> Span {
    s.trace_state = tracestate.into();
    s
}

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config {
        namespace: "traces.spanmetrics".into(),
        ..Config::default()
    };
    edit(&mut c);
    c
}

fn server(service: &str, status: &str) -> Labels {
    labels(&[
        ("service.name", service),
        ("span.name", "GET /"),
        ("span.kind", "SPAN_KIND_SERVER"),
        ("status.code", status),
    ])
}

#[test]
fn every_count_and_the_sum_are_weighted_by_the_adjusted_count() {
    let m = SpanMetrics::new(&config(|_| {})).expect("valid");
    let get = |status, ms| span("GET /", SERVER, status, ms * MS, vec![]);
    m.aggregate(&encode(vec![service(
        "api",
        vec![
            sampled(get(UNSET, 3), "ot=th:e"),          // 1/8 kept: counts 8
            sampled(get(UNSET, 3), "vendor=a,ot=th:c"), // 1/4: counts 4
            sampled(get(UNSET, 60), "ot=rv:01234567890abc"), // no threshold: 1
            get(UNSET, 60),                             // no tracestate: 1
            sampled(get(UNSET, 60), "ot=p:3"),          // older p-value 2^3
            sampled(get(ERROR, 500), "ot=th:0"),        // errors kept always: 1
            sampled(get(ERROR, 500), "ot=th:e"),        // 8
        ],
    )]))
    .expect("valid request");
    let out = collect(&m);

    let calls = out.family("traces.spanmetrics.calls");
    assert_eq!(
        calls.counter(&server("api", "STATUS_CODE_UNSET")),
        8 + 4 + 1 + 1 + 8
    );
    assert_eq!(calls.counter(&server("api", "STATUS_CODE_ERROR")), 9);
    let errors = out.family("traces.spanmetrics.errors");
    let no_status = labels(&[
        ("service.name", "api"),
        ("span.name", "GET /"),
        ("span.kind", "SPAN_KIND_SERVER"),
    ]);
    assert_eq!(errors.counter(&no_status), 9);

    let h = out
        .family("traces.spanmetrics.duration")
        .hist(&server("api", "STATUS_CODE_UNSET"));
    // Default buckets (ms): 3 ms falls in (2, 4], 60 ms in (50, 100].
    assert_eq!(h.counts[1], 12);
    assert_eq!(h.counts[6], 10);
    assert_eq!(h.counts.iter().sum::<u64>(), 22);
    assert_eq!(h.count, 22);
    assert_eq!(h.sum, 3.0 * 12.0 + 60.0 * 10.0);
}

#[test]
fn the_sampling_method_label_says_which_spans_were_extrapolated() {
    let m = SpanMetrics::new(&config(|c| c.enable_metrics_sampling_method = true)).expect("valid");
    let get = || span("GET /", SERVER, UNSET, MS, vec![]);
    m.aggregate(&encode(vec![service(
        "api",
        vec![
            sampled(get(), "ot=th:e"),
            get(),
            get(),
            sampled(get(), "ot=th:8"),
        ],
    )]))
    .expect("valid request");
    let calls = collect(&m);
    let calls = calls.family("traces.spanmetrics.calls");
    let with = |method| {
        let mut l = server("api", "STATUS_CODE_UNSET");
        l.insert("sampling.method".into(), String::from(method));
        l
    };
    assert_eq!(calls.counter(&with("extrapolated")), 10);
    assert_eq!(calls.counter(&with("counted")), 2);
    assert_eq!(calls.label_sets().len(), 2);
}

#[test]
fn a_multiplier_attribute_comes_before_the_tracestate() {
    let m = SpanMetrics::new(&config(|c| c.span_multiplier_key = Some("x-weight".into())))
        .expect("valid");
    let get = |attrs| span("GET /", SERVER, UNSET, MS, attrs);
    let resource_weighted = resource(
        vec![
            kv("service.name", s("api")),
            kv("x-weight", Value::IntValue(3)),
        ],
        vec![
            get(vec![]),
            get(vec![kv("x-weight", Value::DoubleValue(5.0))]),
        ],
    );
    m.aggregate(&encode(vec![
        service(
            "api",
            vec![
                sampled(get(vec![kv("x-weight", Value::IntValue(10))]), "ot=th:e"),
                sampled(get(vec![]), "ot=th:e"),
                get(vec![kv("x-weight", s("not a number"))]),
            ],
        ),
        resource_weighted,
    ]))
    .expect("valid request");
    let out = collect(&m);
    // 10 (attribute over th:e) + 8 (th:e) + 1 (unreadable multiplier) + 3 (resource) + 5.
    assert_eq!(
        out.family("traces.spanmetrics.calls")
            .counter(&server("api", "STATUS_CODE_UNSET")),
        27
    );
}

#[test]
fn tempo_red_table_adds_the_service_label_and_a_seconds_latency_histogram() {
    let m = SpanMetrics::new(&config(|c| c.tempo_red_table = true)).expect("valid");
    m.aggregate(&encode(vec![service(
        "checkout",
        vec![
            span("GET /", SERVER, UNSET, 3 * MS, vec![]),
            sampled(span("GET /", SERVER, UNSET, 60 * MS, vec![]), "ot=th:c"),
        ],
    )]))
    .expect("valid request");
    let out = collect(&m);
    let mut l = server("checkout", "STATUS_CODE_UNSET");
    l.insert("service".into(), "checkout".into());
    assert_eq!(out.family("traces.spanmetrics.calls").counter(&l), 5);

    let ms = out.family("traces.spanmetrics.duration").hist(&l).clone();
    let latency = out.family("traces.spanmetrics.latency");
    assert_eq!(latency.kind, MetricKind::Histogram);
    assert_eq!(latency.unit, "");
    let s = latency.hist(&l);
    assert_eq!(s.counts, ms.counts);
    assert_eq!(s.count, 5);
    assert_eq!(s.bounds.len(), ms.bounds.len());
    // The bounds print as Tempo's do (`le="1.4"`, not `1.4000000000000001`).
    let printed: Vec<String> = s.bounds.iter().map(f64::to_string).collect();
    let expected: Vec<String> = ms.bounds.iter().map(|b| (b / 1000.0).to_string()).collect();
    assert_eq!(printed, expected);
    assert!((s.sum - (0.003 + 4.0 * 0.060)).abs() < 1e-12, "{}", s.sum);
    let exemplar = s.exemplars.first().expect("exemplar");
    assert!((exemplar.value - 0.060).abs() < 1e-12);
}

#[test]
fn tempo_red_table_and_sampling_method_refuse_what_they_cannot_serve() {
    let bad = [
        config(|c| {
            c.tempo_red_table = true;
            c.histogram.exponential = Some(Default::default());
        }),
        config(|c| {
            c.tempo_red_table = true;
            c.exclude_dimensions = vec!["service.name".into()];
        }),
        config(|c| {
            c.tempo_red_table = true;
            c.dimensions = vec![redline_spanmetrics::config::Dimension {
                name: "service".into(),
                default: None,
                glob: None,
            }];
        }),
        config(|c| {
            c.enable_metrics_sampling_method = true;
            c.dimensions = vec![redline_spanmetrics::config::Dimension {
                name: "sampling.method".into(),
                default: None,
                glob: None,
            }];
        }),
        config(|c| c.span_multiplier_key = Some(String::new())),
    ];
    let paths: Vec<String> = bad
        .iter()
        .map(|c| c.settings().expect_err("refused").key_path)
        .collect();
    assert_eq!(
        paths,
        [
            "tempo_red_table",
            "tempo_red_table",
            "dimensions[0].name",
            "dimensions[0].name",
            "span_multiplier_key"
        ]
    );
}

#[test]
fn listed_instrumentation_scopes_label_their_spans() {
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;

    let m = SpanMetrics::new(&config(|c| {
        c.include_instrumentation_scope = vec!["io.opentelemetry.http".into(), "bare".into()];
        c.enable_metrics_sampling_method = true;
    }))
    .expect("valid");
    let scope = |name: &str, version: &str, n: usize| ScopeSpans {
        scope: Some(InstrumentationScope {
            name: name.into(),
            version: version.into(),
            ..Default::default()
        }),
        spans: (0..n)
            .map(|_| span("GET /", SERVER, UNSET, MS, vec![]))
            .collect(),
        ..Default::default()
    };
    let mut rs = service("api", vec![]);
    rs.scope_spans = vec![
        scope("io.opentelemetry.http", "2.1.0", 3),
        scope("unlisted", "9", 2),
        scope("bare", "", 1),
    ];
    m.aggregate(&encode(vec![rs])).expect("valid request");
    let calls = collect(&m);
    let calls = calls.family("traces.spanmetrics.calls");
    let with = |scope: Option<(&str, &str)>| {
        let mut l = server("api", "STATUS_CODE_UNSET");
        l.insert("sampling.method".into(), "counted".into());
        if let Some((name, version)) = scope {
            l.insert("span.instrumentation.scope.name".into(), name.into());
            if !version.is_empty() {
                l.insert("span.instrumentation.scope.version".into(), version.into());
            }
        }
        l
    };
    assert_eq!(
        calls.counter(&with(Some(("io.opentelemetry.http", "2.1.0")))),
        3
    );
    assert_eq!(
        calls.counter(&with(None)),
        2,
        "an unlisted scope adds no label"
    );
    assert_eq!(
        calls.counter(&with(Some(("bare", "")))),
        1,
        "no version, no version label"
    );
    assert_eq!(calls.label_sets().len(), 3);

    let e = SpanMetrics::new(&config(|c| {
        c.include_instrumentation_scope = vec!["a".into()];
        c.dimensions = vec![redline_spanmetrics::config::Dimension {
            name: "span.instrumentation.scope.name".into(),
            default: None,
            glob: None,
        }];
    }))
    .err()
    .expect("a clash");
    assert!(
        e.to_string().contains("include_instrumentation_scope"),
        "{e}"
    );
}

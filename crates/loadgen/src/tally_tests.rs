use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::*;
use crate::model::DEFAULT_BUCKETS_MS;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn span(name: &str, kind: i32, status: i32, ns: u64, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 1_000 + ns,
        attributes: attrs,
        status: Some(Status {
            code: status,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn spec(dims: &[&str]) -> TallySpec {
    TallySpec {
        dimensions: dims.iter().map(|d| d.parse().expect("dimension")).collect(),
        buckets: DEFAULT_BUCKETS_MS.to_vec(),
        unit: Unit::Ms,
    }
}

fn key(svc: &str, name: &str, kind: i32, status: i32, dims: &[Option<&str>]) -> SeriesKey {
    SeriesKey {
        service: svc.into(),
        span_name: name.into(),
        kind,
        status,
        dims: dims.iter().map(|d| d.map(str::to_owned)).collect(),
    }
}

#[test]
fn buckets_are_upper_inclusive_and_sums_exact() {
    let ms = 1_000_000u64;
    let q = DURATION_QUANTUM_NS;
    let req = request(
        vec![kv("service.name", s("api"))],
        vec![
            span("GET", 2, 0, 10 * ms, vec![]),     // le=10 (index 4)
            span("GET", 2, 0, 10 * ms + q, vec![]), // le=50 (index 5)
            span("GET", 2, 0, 0, vec![]),           // le=2 (index 0)
            span("GET", 2, 0, 20_000 * ms, vec![]), // +Inf (index 16)
            span("GET", 2, 2, 15_000 * ms, vec![]), // error series, le=15000 (index 15)
        ],
    );
    let c = contribution(&spec(&[]), &req);
    let ok = &c[&key("api", "GET", 2, 0, &[])];
    assert_eq!(ok.calls, 4);
    assert_eq!(ok.errors, 0);
    let mut want = vec![0u64; 17];
    want[0] = 1;
    want[4] = 1;
    want[5] = 1;
    want[16] = 1;
    assert_eq!(ok.buckets, want);
    assert_eq!(ok.sum(Unit::Ms), 20_020.015_625);
    let err = &c[&key("api", "GET", 2, 2, &[])];
    assert_eq!((err.calls, err.errors, err.buckets[15]), (1, 1, 1));
    assert_eq!(err.sum(Unit::Ms), 15_000.0);
    assert_eq!(err.sum(Unit::S), 15.0);
}

#[test]
fn dimensions_span_then_resource_then_default() {
    let req = request(
        vec![kv("service.name", s("edge")), kv("region", s("eu-west"))],
        vec![
            span(
                "read",
                1,
                0,
                1,
                vec![kv("cdn.cache.hit", any_value::Value::BoolValue(true))],
            ),
            span(
                "read",
                1,
                0,
                1,
                vec![kv("cdn.cache.hit", any_value::Value::BoolValue(false))],
            ),
            span(
                "read",
                1,
                0,
                1,
                vec![
                    kv("region", s("us")),
                    kv("code", any_value::Value::IntValue(404)),
                ],
            ),
            span("read", 1, 0, 1, vec![]),
        ],
    );
    let c = contribution(&spec(&["cdn.cache.hit", "region", "code=none"]), &req);
    assert_eq!(c.len(), 4);
    assert_eq!(
        c[&key(
            "edge",
            "read",
            1,
            0,
            &[Some("true"), Some("eu-west"), Some("none")]
        )]
            .calls,
        1
    );
    assert_eq!(
        c[&key(
            "edge",
            "read",
            1,
            0,
            &[Some("false"), Some("eu-west"), Some("none")]
        )]
            .calls,
        1
    );
    assert_eq!(
        c[&key("edge", "read", 1, 0, &[None, Some("us"), Some("404")])].calls,
        1
    );
    assert_eq!(
        c[&key("edge", "read", 1, 0, &[None, Some("eu-west"), Some("none")])].calls,
        1
    );
}

#[test]
fn spans_without_service_name_and_odd_enums() {
    let no_service = request(
        vec![kv("host.name", s("h"))],
        vec![span("x", 2, 0, 1, vec![])],
    );
    assert!(contribution(&spec(&[]), &no_service).is_empty());
    let odd = request(
        vec![kv("service.name", s("a"))],
        vec![span("x", 9, 7, 1, vec![]), {
            // Negative duration counts as 0.
            let mut sp = span("x", 9, 7, 0, vec![]);
            sp.start_time_unix_nano = 50;
            sp.end_time_unix_nano = 10;
            sp
        }],
    );
    let c = contribution(&spec(&[]), &odd);
    let st = &c[&key("a", "x", 0, 0, &[])];
    assert_eq!(st.calls, 2);
    assert_eq!(st.buckets[0], 2);
    assert_eq!(st.sum_ns, 1);
}

#[test]
fn tally_multiplies_contributions() {
    let r1 = request(
        vec![kv("service.name", s("a"))],
        vec![
            span("x", 2, 0, 3_000_000, vec![]),
            span("x", 2, 2, 60_000_000, vec![]),
        ],
    );
    let r2 = request(
        vec![kv("service.name", s("a"))],
        vec![span("x", 2, 0, 7_015_625, vec![])],
    );
    let sp = spec(&[]);
    let (c1, c2) = (contribution(&sp, &r1), contribution(&sp, &r2));
    let mut t = Tally::default();
    t.add(&c1, 3);
    t.add(&c2, 2);
    t.add(&c2, 0);
    assert_eq!(t.spans(), 3 * 2 + 2);
    assert_eq!(t.errors(), 3);
    let ok = &t.series[&key("a", "x", 2, 0, &[])];
    assert_eq!(ok.calls, 5);
    assert_eq!(ok.buckets[1], 3); // 3 ms -> le=4
    assert_eq!(ok.buckets[3], 2); // 7.015625 ms -> le=8
    assert_eq!(ok.sum(Unit::Ms), 3.0 * 3.0 + 2.0 * 7.015_625);
    let err = &t.series[&key("a", "x", 2, 2, &[])];
    assert_eq!((err.calls, err.errors, err.buckets[6]), (3, 3, 3));
}

#[test]
fn quantized_sums_are_order_independent() {
    // What a collector adding f64 durations in any order gets equals the integer tally.
    let mut rng = crate::rng::Rng::new(5, 5);
    let ds: Vec<u64> = (0..20_000)
        .map(|_| rng.below(4_000_000) * DURATION_QUANTUM_NS)
        .collect();
    let fwd: f64 = ds.iter().map(|d| *d as f64 / 1e6).sum();
    let rev: f64 = ds.iter().rev().map(|d| *d as f64 / 1e6).sum();
    let st = SeriesStats {
        sum_ns: ds.iter().map(|d| u128::from(*d)).sum(),
        ..Default::default()
    };
    assert_eq!(fwd, rev);
    assert_eq!(st.sum(Unit::Ms), fwd);
}

#[test]
fn dimension_syntax() {
    let d: Dimension = "cdn.cache.hit".parse().expect("plain");
    assert_eq!((d.name.as_str(), d.default), ("cdn.cache.hit", None));
    let d: Dimension = "region=eu=1".parse().expect("default");
    assert_eq!(d.default.as_deref(), Some("eu=1"));
    assert!("=x".parse::<Dimension>().is_err());
}

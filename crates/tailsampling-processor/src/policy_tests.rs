use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Status};

use super::*;

fn value(v: Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn attr(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(v),
        ..KeyValue::default()
    }
}

fn span(start: u64, end: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Span::default()
    }
}

fn trace(resource: Vec<KeyValue>, spans: Vec<Span>) -> TraceData {
    let mut t = TraceData::new([1; 16]);
    t.span_count = spans.len() as i64;
    t.batches = vec![ResourceSpans {
        resource: Some(Resource {
            attributes: resource,
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..ScopeSpans::default()
        }],
        schema_url: String::new(),
    }
    .encode_to_vec()
    .into()];
    t
}

fn decide(policy: &mut Policy, t: &mut TraceData) -> Decision {
    policy.evaluate(t).expect("evaluates")
}

#[test]
fn probabilistic_thresholds_are_go_big_float_products() {
    // Printed by otelcol's calculateThreshold (Go 1.26) for these percentages.
    for (percent, go) in [
        (0.0, 0),
        (0.001, 184_467_440_737_095),
        (1.0, 184_467_440_737_095_519),
        (10.0, 1_844_674_407_370_955_263),
        (25.0, 4_611_686_018_427_387_903),
        (33.333, 6_148_853_202_089_604_095),
        (50.0, 9_223_372_036_854_775_807),
        (99.99, 18_444_899_399_302_178_815),
        (100.0, u64::MAX),
        (150.0, u64::MAX),
        (1e-300, 0),
    ] {
        assert_eq!(ratio_of_max_u64(percent / 100.0), go, "{percent}%");
    }
}

#[test]
fn probabilistic_hashes_salt_then_trace_id() {
    let id: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
    // Go's fnv.New64a over "default-hash-seed" then the id.
    assert_eq!(
        fnv1a64(DEFAULT_HASH_SALT.as_bytes(), &id),
        15_838_989_281_584_434_349
    );
    let mut t = trace(vec![], vec![span(1, 2, vec![])]);
    t.id = id;
    let just_above = Policy::Probabilistic {
        salt: DEFAULT_HASH_SALT.into(),
        threshold: 15_838_989_281_584_434_349,
    };
    let just_below = Policy::Probabilistic {
        salt: DEFAULT_HASH_SALT.into(),
        threshold: 15_838_989_281_584_434_348,
    };
    assert_eq!(decide(&mut { just_above }, &mut t), Decision::Sampled);
    assert_eq!(decide(&mut { just_below }, &mut t), Decision::NotSampled);
}

#[test]
fn latency_checks_the_spread_seen_so_far_at_each_span() {
    let ms = 1_000_000;
    // 0..300 ms, then 100..700 ms: the spread reaches 700 ms at the second span.
    let mut t = trace(
        vec![],
        vec![
            span(1000 * ms, 1300 * ms, vec![]),
            span(1100 * ms, 1700 * ms, vec![]),
        ],
    );
    let mut over_500 = Policy::Latency {
        threshold_ms: 500,
        upper_threshold_ms: 0,
    };
    assert_eq!(decide(&mut over_500, &mut t), Decision::Sampled);
    // Within (200, 400]: the first span alone (300 ms) qualifies, so the trace is sampled
    // though its whole spread (700 ms) is past the upper bound, as otelcol decides.
    let mut band = Policy::Latency {
        threshold_ms: 200,
        upper_threshold_ms: 400,
    };
    assert_eq!(decide(&mut band, &mut t), Decision::Sampled);
    let mut over_700 = Policy::Latency {
        threshold_ms: 700,
        upper_threshold_ms: 0,
    };
    assert_eq!(decide(&mut over_700, &mut t), Decision::NotSampled);
}

#[test]
fn attribute_values_of_another_type_read_as_go_zero_values() {
    let mut numeric = Policy::NumericAttribute {
        key: "n".into(),
        min: i64::MIN,
        max: 0,
        invert: false,
    };
    // A double reads as 0, inside [MIN, 0].
    let mut t = trace(
        vec![],
        vec![span(1, 2, vec![attr("n", Value::DoubleValue(5.0))])],
    );
    assert_eq!(decide(&mut numeric, &mut t), Decision::Sampled);

    let mut boolean = Policy::BooleanAttribute {
        key: "b".into(),
        value: false,
        invert: false,
    };
    let mut t = trace(
        vec![],
        vec![span(
            1,
            2,
            vec![attr("b", Value::StringValue("true".into()))],
        )],
    );
    assert_eq!(decide(&mut boolean, &mut t), Decision::Sampled);

    let matches_anything = || Policy::StringAttribute {
        key: "s".into(),
        matcher: StringMatch::Regex(vec![Regex::new(".*").expect("regex")]),
        invert: false,
    };
    // On a span, a non-string value is never compared ...
    let mut t = trace(
        vec![],
        vec![span(1, 2, vec![attr("s", Value::IntValue(3))])],
    );
    assert_eq!(
        decide(&mut matches_anything(), &mut t),
        Decision::NotSampled
    );
    // ... on a resource it is, as "".
    let mut t = trace(
        vec![attr("s", Value::IntValue(3))],
        vec![span(1, 2, vec![])],
    );
    assert_eq!(decide(&mut matches_anything(), &mut t), Decision::Sampled);
}

#[test]
fn inverted_attribute_policies_sample_traces_free_of_the_match() {
    let exact = |invert| Policy::StringAttribute {
        key: "env".into(),
        matcher: StringMatch::Exact(["test".to_owned()].into_iter().collect()),
        invert,
    };
    let mut clean = trace(
        vec![attr("env", Value::StringValue("prod".into()))],
        vec![span(1, 2, vec![])],
    );
    let mut tainted = trace(
        vec![],
        vec![
            span(1, 2, vec![]),
            span(1, 2, vec![attr("env", Value::StringValue("test".into()))]),
        ],
    );
    assert_eq!(decide(&mut exact(true), &mut clean), Decision::Sampled);
    assert_eq!(decide(&mut exact(true), &mut tainted), Decision::NotSampled);
    assert_eq!(decide(&mut exact(false), &mut tainted), Decision::Sampled);
}

#[test]
fn status_trace_state_and_flags_look_at_every_span() {
    let mut error_span = span(1, 2, vec![]);
    error_span.status = Some(Status {
        code: 2,
        ..Status::default()
    });
    error_span.trace_state = "vendor=a,tenant=gold".into();
    error_span.flags = 0x101;
    let mut t = trace(vec![], vec![span(1, 2, vec![]), error_span]);
    assert_eq!(
        decide(&mut Policy::StatusCode(vec![2]), &mut t),
        Decision::Sampled
    );
    assert_eq!(
        decide(&mut Policy::StatusCode(vec![1]), &mut t),
        Decision::NotSampled
    );
    let mut gold = Policy::TraceState {
        key: "tenant".into(),
        values: ["gold".to_owned()].into_iter().collect(),
    };
    assert_eq!(decide(&mut gold, &mut t), Decision::Sampled);
    assert_eq!(decide(&mut Policy::TraceFlags, &mut t), Decision::Sampled);
    // An invalid tracestate (upper-case key) is read as none.
    t.decoded().expect("decodes")[0].scope_spans[0].spans[1].trace_state =
        "Tenant=gold,tenant=gold".into();
    assert_eq!(decide(&mut gold, &mut t), Decision::NotSampled);
}

#[test]
fn and_not_drop_combine_their_sub_policies() {
    let mut t = trace(vec![], vec![span(1, 2, vec![]), span(1, 2, vec![])]);
    let two_spans = || Policy::SpanCount { min: 2, max: 0 };
    let three_spans = || Policy::SpanCount { min: 3, max: 0 };
    let mut and = Policy::And(vec![two_spans(), Policy::AlwaysSample]);
    assert_eq!(decide(&mut and, &mut t), Decision::Sampled);
    let mut and = Policy::And(vec![two_spans(), three_spans()]);
    assert_eq!(decide(&mut and, &mut t), Decision::NotSampled);
    let mut not = Policy::Not(Box::new(three_spans()));
    assert_eq!(decide(&mut not, &mut t), Decision::Sampled);
    let mut drop = Policy::Drop(vec![two_spans(), Policy::AlwaysSample]);
    assert_eq!(decide(&mut drop, &mut t), Decision::Dropped);
    let mut drop = Policy::Drop(vec![two_spans(), three_spans()]);
    assert_eq!(decide(&mut drop, &mut t), Decision::NotSampled);
    let mut bounded = Policy::SpanCount { min: 1, max: 1 };
    assert_eq!(decide(&mut bounded, &mut t), Decision::NotSampled);
}

#[test]
fn limiter_starts_full_and_refuses_more_than_its_burst() {
    let mut limiter = Limiter::new(10, 20);
    assert!(limiter.allow(15));
    assert!(!limiter.allow(15), "5 tokens left");
    assert!(limiter.allow(5));
    assert!(!Limiter::new(10, 20).allow(21), "larger than the bucket");
    let mut never = Limiter::new(0, 0);
    assert!(!never.allow(1));
}

#[test]
fn composite_keeps_each_sub_policy_within_its_share() {
    let mut composite = Policy::Composite(Composite::new(
        10,
        vec![
            SubRate::new(Policy::SpanCount { min: 3, max: 0 }, 6),
            SubRate::new(Policy::AlwaysSample, 4),
        ],
    ));
    let mut big = trace(vec![], vec![span(1, 2, vec![]); 3]);
    let mut small = trace(vec![], vec![span(1, 2, vec![])]);
    // Within one second (the test runs well inside it most of the time; a second boundary
    // only resets the shares, which the asserts below tolerate by re-running).
    for _ in 0..3 {
        let first = decide(&mut composite, &mut big);
        let second = decide(&mut composite, &mut big);
        let third = decide(&mut composite, &mut big);
        let smalls: Vec<Decision> = (0..5).map(|_| decide(&mut composite, &mut small)).collect();
        if first == Decision::Sampled && second == Decision::Sampled {
            // The first sub-policy took 6 spans: a third big trace is refused, not passed on.
            assert_eq!(third, Decision::NotSampled);
            assert_eq!(&smalls[..4], &[Decision::Sampled; 4]);
            assert_eq!(smalls[4], Decision::NotSampled);
            return;
        }
    }
    panic!("three consecutive runs straddled a second boundary");
}

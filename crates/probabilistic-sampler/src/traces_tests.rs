//! Cases from otelcol-contrib's traces processor tests, run on encoded requests.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use redline_processor_testkit::traces_request;

use super::*;
use crate::config::{make_sampler, Mode};
use crate::test_support::{hex, kv};

const LOG: LogContext<'static> = LogContext {
    processor: "probabilistic_sampler",
    sampler: "traces sampler",
};
/// Samples at 50% and not at 49%: its randomness is 0x80000000000000.
const DEFAULT_TID: &str = "fefefefefefefefefe80000000000000";
/// Sampled at every probability.
const IMPROBABLE_TID: &str = "111111111111111111ffffffffffffff";

fn settings(sampler: Sampler, fail_closed: bool) -> Settings {
    Settings {
        sampler,
        fail_closed,
        precision: 4,
        sampling_priority: String::new(),
        from_attribute: String::new(),
    }
}

fn priority_attr(value: Value) -> Vec<KeyValue> {
    vec![kv(PRIORITY_ATTRIBUTE, value)]
}

fn span(tid: &str, tracestate: &str, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: hex(tid),
        span_id: vec![0, 0, 0, 0, 0xfe, 0xfe, 0xfe, 0xfe],
        trace_state: tracestate.into(),
        name: "span".into(),
        attributes,
        ..Default::default()
    }
}

/// The spans forwarded, or `None` when the request ends here.
fn run(settings: &Settings, req: &ExportTraceServiceRequest) -> (Option<Vec<Span>>, Tally) {
    let mut tally = Tally::default();
    let raw = req.encode_to_vec();
    let out = match sample_request(settings, &raw, LOG, &mut tally).expect("decodes") {
        Rewrite::Dropped => None,
        Rewrite::Unchanged => Some(raw),
        Rewrite::Replaced(bytes, items) => {
            let spans = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("re-encoded");
            let n: usize = spans
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            assert_eq!(n, items, "item count");
            Some(bytes)
        }
    };
    let spans = out.map(|bytes| {
        ExportTraceServiceRequest::decode(bytes.as_slice())
            .expect("valid")
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    });
    (spans, tally)
}

/// The kept span's tracestate, `None` when dropped.
fn kept(settings: &Settings, span: Span) -> Option<String> {
    let (spans, _) = run(settings, &traces_request(vec![span]));
    spans.map(|s| {
        assert_eq!(s.len(), 1);
        s[0].trace_state.clone()
    })
}

/// (name, trace id, percentage, precision (0: all 14 digits, as otelcol's tests leave it),
/// fail_closed, arriving tracestate, `sampling.priority`, tracestate written by equalizing,
/// by proportional; `None`: dropped).
type Case = (
    &'static str,
    &'static str,
    f32,
    u32,
    bool,
    &'static str,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
);

const D: &str = DEFAULT_TID;
const I: &str = IMPROBABLE_TID;

#[rustfmt::skip]
const CONSISTENT_CASES: [Case; 27] = [
    ("100 percent", D, 100.0, 0, false, "", None, Some("ot=th:0"), Some("ot=th:0")),
    ("50 percent sampled", D, 50.0, 0, false, "", None, Some("ot=th:8"), Some("ot=th:8")),
    ("25 percent sampled", "ddddddddddddddddddc0000000000000", 25.0, 0, false, "", None, Some("ot=th:c"), Some("ot=th:c")),
    ("25 percent unsampled", "ddddddddddddddddddb0000000000000", 25.0, 0, false, "", None, None, None),
    ("1 percent, upper-case r-value passes through", D, 1.0, 0, false, "ot=rv:FD70A3D70A3D71", None,
        Some("ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71"), Some("ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71")),
    ("1 percent, precision 4 rounds down and samples", D, 1.0, 4, false, "ot=rv:FD70A3D70A3D71", None,
        Some("ot=rv:FD70A3D70A3D71;th:fd70a"), Some("ot=rv:FD70A3D70A3D71;th:fd70a")),
    ("1 percent, precision 3 rounds up and does not", D, 1.0, 3, false, "ot=rv:FD70A3D70A3D71", None, None, None),
    ("1 percent not sampled with r-value", D, 1.0, 0, false, "ot=rv:FD70A3D70A3D70", None, None, None),
    ("49 percent not sampled", D, 49.0, 0, false, "", None, None, None),
    ("1 percent sampled with r-value", D, 1.0, 0, false, "ot=rv:fd70B000000000", None,
        Some("ot=rv:fd70B000000000;th:fd70a3d70a3d71"), Some("ot=rv:fd70B000000000;th:fd70a3d70a3d71")),
    ("1 percent sampled with trace id", "a0a0a0a0a0a0a0a0a0fe000000000000", 1.0, 4, false, "", None,
        Some("ot=th:fd70a"), Some("ot=th:fd70a")),
    ("sampled by priority", D, 1.0, 0, false, "", Some(2), Some("ot=th:0"), Some("ot=th:0")),
    ("not sampled by priority", D, 99.0, 0, false, "", Some(0), None, None),
    ("incoming 50 percent with r-value", D, 50.0, 0, false, "ot=rv:90000000000000;th:80000000000000", None,
        Some("ot=rv:90000000000000;th:8"), None),
    ("incoming 50 percent at 25 percent not sampled", D, 25.0, 0, false, "ot=th:8", None, None, None),
    ("incoming 50 percent at 25 percent sampled", "ffffffffffffffffffffffffffffffff", 25.0, 0, false, "ot=th:8", None,
        Some("ot=th:c"), Some("ot=th:e")),
    ("equalizing vs proportional", D, 50.0, 0, false, "ot=rv:c0000000000000;th:8", None,
        Some("ot=rv:c0000000000000;th:8"), Some("ot=rv:c0000000000000;th:c")),
    ("inconsistent arriving threshold", D, 100.0, 0, false, "ot=rv:40000000000000;th:8", None,
        Some("ot=rv:40000000000000;th:0"), Some("ot=rv:40000000000000;th:0")),
    ("inconsistent arriving threshold not sampled", D, 1.0, 0, true, "ot=rv:40000000000000;th:8", None, None, None),
    ("40 percent precision 3 with r-value", D, 40.0, 3, false, "ot=rv:a0000000000000", None,
        Some("ot=rv:a0000000000000;th:99a"), Some("ot=rv:a0000000000000;th:99a")),
    ("arriving 50 percent sampled at 40 percent precision 6", "a0a0a0a0a0a0a0a0a0d0000000000000", 40.0, 6, false,
        "ot=th:8", None, Some("ot=th:99999a"), Some("ot=th:cccccd")),
    ("arriving 50 percent at 40 percent partly sampled", "a0a0a0a0a0a0a0a0a0b0000000000000", 40.0, 3, false,
        "ot=th:8", None, Some("ot=th:99a"), None),
    ("arriving 50 percent at 40 percent not sampled", "a0a0a0a0a0a0a0a0a080000000000000", 40.0, 3, false,
        "ot=th:8", None, None, None),
    ("200 percent is 100 percent", D, 200.0, 0, false, "", None, Some("ot=th:0"), Some("ot=th:0")),
    ("tiny probability rounding", I, 100.0 / 16384.0, 0, false, "ot=th:fffc", None, Some("ot=th:fffc"), Some("ot=th:fffffff")),
    ("almost 100 percent", I, 99.99992, 10, false, "", None, Some("ot=th:00000cccccccd"), Some("ot=th:00000cccccccd")),
    ("probability underflow", I, 0.0625, 0, false, "ot=th:fffffffffffff8", None, Some("ot=th:fffffffffffff8"), None),
];

#[test]
fn consistent_modes_write_otelcols_tracestates() {
    for (
        name,
        tid,
        percentage,
        precision,
        fail_closed,
        tracestate,
        priority,
        equalizing,
        proportional,
    ) in CONSISTENT_CASES
    {
        for (mode, want) in [
            (Mode::Equalizing, equalizing),
            (Mode::Proportional, proportional),
        ] {
            let sampler = make_sampler(percentage, mode, precision, 4312, true, "");
            let mut s = settings(sampler, fail_closed);
            s.precision = precision;
            let attrs = priority
                .map(|p| priority_attr(Value::IntValue(p)))
                .unwrap_or_default();
            let got = kept(&s, span(tid, tracestate, attrs));
            assert_eq!(got.as_deref(), want, "{name} ({mode:?})");
        }
    }
}

#[test]
fn unreadable_or_inconsistent_state_fails_closed() {
    let cases = [
        ("00000000000000000000000000000000", ""),
        (DEFAULT_TID, "ot=rv:abababababababab"),
        (DEFAULT_TID, "ot=th:abababababababab"),
        (DEFAULT_TID, "ot=th:-1"),
        ("ffffffffffffffffff70000000000000", "ot=th:8"),
        (DEFAULT_TID, "ot=th:8;rv:70000000000000"),
    ];
    for mode in [Mode::Equalizing, Mode::Proportional] {
        let s = settings(make_sampler(100.0, mode, 4, 0, true, ""), true);
        for (tid, tracestate) in cases {
            assert_eq!(
                kept(&s, span(tid, tracestate, vec![])),
                None,
                "{tid} {tracestate:?} {mode:?}"
            );
        }
    }
}

#[test]
fn missing_randomness_in_every_mode() {
    // (percentage, fail_closed, kept): 0% never keeps; else only failing open keeps.
    let cases = [
        (0.0, true, false),
        (62.0, true, false),
        (100.0, true, false),
        (0.0, false, false),
        (62.0, false, true),
        (100.0, false, true),
    ];
    for mode in [Mode::HashSeed, Mode::Equalizing, Mode::Proportional] {
        for (percentage, fail_closed, want) in cases {
            let s = settings(
                make_sampler(percentage, mode, 4, 4312, true, ""),
                fail_closed,
            );
            let got = kept(&s, span("00000000000000000000000000000000", "", vec![]));
            assert_eq!(
                got.is_some(),
                want,
                "{percentage}% fail_closed={fail_closed} {mode:?}"
            );
        }
    }
}

#[test]
fn sampling_priority_overrides_every_mode() {
    // A trace id whose W3C randomness is 0: kept only at 100%.
    let tid = "01000000000000000000000000000000";
    let cases = [
        (0.0, PRIORITY_ATTRIBUTE, Value::IntValue(2), true),
        (0.0, PRIORITY_ATTRIBUTE, Value::DoubleValue(1.0), true),
        (
            0.0,
            PRIORITY_ATTRIBUTE,
            Value::StringValue("1".into()),
            true,
        ),
        (100.0, PRIORITY_ATTRIBUTE, Value::IntValue(0), false),
        (100.0, PRIORITY_ATTRIBUTE, Value::DoubleValue(0.0), false),
        (
            100.0,
            PRIORITY_ATTRIBUTE,
            Value::StringValue("0".into()),
            false,
        ),
        (0.0, "no.sampling.priority", Value::IntValue(2), false),
        (100.0, "no.sampling.priority", Value::IntValue(2), true),
    ];
    for mode in [Mode::HashSeed, Mode::Equalizing, Mode::Proportional] {
        for (percentage, key, value, want) in &cases {
            let s = settings(make_sampler(*percentage, mode, 4, 4312, true, ""), true);
            let attrs = vec![kv(key, value.clone())];
            let got = kept(&s, span(tid, "", attrs));
            assert_eq!(
                got.is_some(),
                *want,
                "{percentage}% {key}={value:?} {mode:?}"
            );
        }
    }
}

#[test]
fn priority_values() {
    let p = |value: Value| priority(&span(DEFAULT_TID, "", priority_attr(value)));
    assert_eq!(priority(&span(DEFAULT_TID, "", vec![])), Priority::Defer);
    assert_eq!(p(Value::BoolValue(true)), Priority::Defer);
    assert_eq!(p(Value::IntValue(0)), Priority::Drop);
    assert_eq!(p(Value::IntValue(1)), Priority::Keep);
    assert_eq!(p(Value::IntValue(-1)), Priority::Defer);
    assert_eq!(p(Value::DoubleValue(0.0)), Priority::Drop);
    assert_eq!(p(Value::DoubleValue(1.0)), Priority::Keep);
    assert_eq!(p(Value::DoubleValue(-1.0)), Priority::Defer);
    assert_eq!(p(Value::DoubleValue(f64::NAN)), Priority::Defer);
    assert_eq!(p(Value::StringValue("0.0".into())), Priority::Drop);
    assert_eq!(p(Value::StringValue("0.5".into())), Priority::Keep);
    assert_eq!(p(Value::StringValue("-0.5".into())), Priority::Defer);
    assert_eq!(p(Value::StringValue("NaN".into())), Priority::Defer);
    assert_eq!(p(Value::StringValue("high".into())), Priority::Defer);
}

#[test]
fn hash_seed_writes_randomness_and_threshold() {
    // (percentage, T-value): 14-bit thresholds.
    let cases = [
        (100.0, "0"),
        (75.0, "4"),
        (50.0, "8"),
        (25.0, "c"),
        (10.0, "e668"),
        (100.0 / 3.0, "aaac"),
    ];
    let tids = [
        "474a03c76d75951a4b4c537ced8f1122",
        "53a518291e91307e43cd8467bb06f986",
        DEFAULT_TID,
    ];
    for (percentage, tvalue) in cases {
        let s = settings(
            make_sampler(percentage, Mode::HashSeed, 4, 4312, true, ""),
            true,
        );
        for tid in tids {
            let rv = hashed_randomness(&hex(tid), 4312).rvalue();
            let want = format!("ot=rv:{rv};th:{tvalue},vendor=x");
            match kept(&s, span(tid, "vendor=x", vec![])) {
                Some(ts) => assert_eq!(ts, want),
                None => {
                    let t = Threshold::from_tvalue(tvalue).expect("valid");
                    assert!(!t.should_sample(hashed_randomness(&hex(tid), 4312)));
                }
            }
        }
    }
}

#[test]
fn hash_seed_leaves_consistent_sampling_state_alone() {
    let s = settings(make_sampler(100.0, Mode::HashSeed, 4, 0, true, ""), false);
    // Failing open keeps the spans with their tracestate as it came.
    for ts in ["ot=rv:c0000000000000", "ot=th:8", "ot=th:zz,a=b"] {
        assert_eq!(kept(&s, span(DEFAULT_TID, ts, vec![])).as_deref(), Some(ts));
    }
    let closed = settings(make_sampler(100.0, Mode::HashSeed, 4, 0, true, ""), true);
    assert_eq!(kept(&closed, span(DEFAULT_TID, "ot=th:8", vec![])), None);
}

#[test]
fn zero_percent_writes_back_what_it_could_read_when_forced() {
    let s = settings(Sampler::Never, true);
    let attrs = priority_attr(Value::IntValue(1));
    assert_eq!(
        kept(&s, span(DEFAULT_TID, " ot=th:8 , x=y", attrs.clone())).as_deref(),
        Some("ot=th:8,x=y")
    );
    assert_eq!(
        kept(&s, span(DEFAULT_TID, "x=y", attrs)).as_deref(),
        Some("ot=th:0,x=y")
    );
    // Failing open at 0% keeps a span whose tracestate is unreadable, with what was read.
    let open = settings(Sampler::Never, false);
    assert_eq!(
        kept(&open, span(DEFAULT_TID, "ot=rv:1;p:2,x=y", vec![])).as_deref(),
        Some("ot=th:0;p:2,x=y")
    );
    assert_eq!(kept(&open, span(DEFAULT_TID, "x=y", vec![])), None);
}

#[test]
fn emptied_scopes_and_resources_go_and_untouched_requests_stay_as_received() {
    let keep = span(IMPROBABLE_TID, "ot=th:0", vec![]);
    let drop = span("00000000000000000000000000000000", "", vec![]);
    let s = settings(make_sampler(100.0, Mode::Equalizing, 4, 0, true, ""), true);
    let req = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                scope_spans: vec![
                    ScopeSpans {
                        spans: vec![drop.clone()],
                        ..Default::default()
                    },
                    ScopeSpans {
                        spans: vec![keep.clone(), drop.clone()],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
            ResourceSpans {
                scope_spans: vec![ScopeSpans::default()],
                ..Default::default()
            },
            ResourceSpans::default(),
        ],
    };
    let mut tally = Tally::default();
    let raw = req.encode_to_vec();
    let Rewrite::Replaced(bytes, 1) = sample_request(&s, &raw, LOG, &mut tally).expect("decodes")
    else {
        panic!("one span left");
    };
    let out = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid");
    assert_eq!(out, traces_request(vec![keep.clone()]));
    assert_eq!(tally.count(Policy::TraceIdW3c, true), 1);
    assert_eq!(tally.count(Policy::MissingRandomness, false), 2);

    // Every span kept, each tracestate already what it would be written as: the bytes go on.
    let raw = traces_request(vec![keep.clone(), keep]).encode_to_vec();
    assert!(matches!(
        sample_request(&s, &raw, LOG, &mut tally),
        Ok(Rewrite::Unchanged)
    ));
    // Nothing kept, or nothing there: the request ends here.
    let raw = traces_request(vec![drop]).encode_to_vec();
    assert!(matches!(
        sample_request(&s, &raw, LOG, &mut tally),
        Ok(Rewrite::Dropped)
    ));
    let raw = ExportTraceServiceRequest::default().encode_to_vec();
    assert!(matches!(
        sample_request(&s, &raw, LOG, &mut tally),
        Ok(Rewrite::Dropped)
    ));
}

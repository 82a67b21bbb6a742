//! Random spans → aggregate (one thread, and split over two) → every series equals a naive
//! tally computed independently from the prost structs.

mod common;

use std::collections::BTreeMap;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use proptest::prelude::*;
use redline_spanmetrics::config::{Dimension, DEFAULT_BUCKETS_MS};
use redline_spanmetrics::{Config, SpanMetrics};

#[derive(Default, Debug, Clone, PartialEq)]
struct Tally {
    calls: u64,
    buckets: Vec<u64>,
    sum: f64,
}

fn as_string(v: &Value) -> String {
    match v {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        other => panic!("generator makes no {other:?}"),
    }
}

fn first<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

use redline_otlp_wire::enums::{SPAN_KIND_NAMES as KINDS, STATUS_CODE_NAMES as STATUSES};

/// The semantics, written plainly: first attribute wins, span before resource before default.
fn naive(reqs: &[Vec<ResourceSpans>]) -> BTreeMap<Labels, Tally> {
    let mut out: BTreeMap<Labels, Tally> = BTreeMap::new();
    for rs in reqs.iter().flatten() {
        let rattrs = rs
            .resource
            .as_ref()
            .map(|r| r.attributes.clone())
            .unwrap_or_default();
        let Some(svc) = first(&rattrs, "service.name") else {
            continue;
        };
        let svc = match svc {
            Value::StringValue(s) => s.clone(),
            _ => String::new(),
        };
        for sp in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            let mut l = Labels::new();
            l.insert("service.name".into(), svc.clone());
            l.insert("span.name".into(), sp.name.clone());
            // Numbers outside an enum get an empty label value.
            let kind = usize::try_from(sp.kind).ok().and_then(|k| KINDS.get(k));
            l.insert("span.kind".into(), kind.copied().unwrap_or("").into());
            let st = sp.status.as_ref().map_or(0, |s| s.code);
            let st = usize::try_from(st).ok().and_then(|k| STATUSES.get(k));
            l.insert("status.code".into(), st.copied().unwrap_or("").into());
            let v = first(&sp.attributes, "hit").or_else(|| first(&rattrs, "hit"));
            if let Some(v) = v {
                l.insert("hit".into(), as_string(v));
            }
            let zone = first(&sp.attributes, "zone")
                .or_else(|| first(&rattrs, "zone"))
                .map(as_string)
                .unwrap_or_else(|| "none".into());
            l.insert("zone".into(), zone);
            let ms = if sp.end_time_unix_nano > sp.start_time_unix_nano {
                (sp.end_time_unix_nano - sp.start_time_unix_nano) as f64 / 1e6
            } else {
                0.0
            };
            let t = out.entry(l).or_insert_with(|| Tally {
                buckets: vec![0; 17],
                ..Default::default()
            });
            t.calls += 1;
            t.sum += ms;
            let i = DEFAULT_BUCKETS_MS
                .iter()
                .position(|b| ms <= *b)
                .unwrap_or(16);
            t.buckets[i] += 1;
        }
    }
    out
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["true", "false", "x"]).prop_map(|s| Value::StringValue(s.into())),
        any::<bool>().prop_map(Value::BoolValue),
        (-2i64..3).prop_map(Value::IntValue),
    ]
}

fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (prop::sample::select(vec!["hit", "zone", "other"]), value()).prop_map(|(k, v)| kv(k, v)),
        0..3,
    )
}

fn gen_span() -> impl Strategy<Value = Span> {
    (
        prop::sample::select(vec!["http.server", "cdn.file.read", "wasm.invoke"]),
        -1i32..8,
        -1i32..4,
        prop_oneof![
            Just(10_000_000i64),
            Just(-5i64),
            -1_000_000i64..20_000_000_000,
        ],
        attrs(),
    )
        .prop_map(|(name, kind, status, dur, attrs)| {
            let mut s = span(name, kind, status, 0, attrs);
            s.end_time_unix_nano = (s.start_time_unix_nano as i64 + dur) as u64;
            s
        })
}

fn gen_resource() -> impl Strategy<Value = ResourceSpans> {
    (
        prop_oneof![
            Just(None),
            prop::sample::select(vec!["a", "b"]).prop_map(|s| Some(Value::StringValue(s.into()))),
            Just(Some(Value::IntValue(3))),
        ],
        attrs(),
        prop::collection::vec(gen_span(), 0..8),
    )
        .prop_map(|(svc, mut rattrs, spans)| {
            if let Some(v) = svc {
                rattrs.insert(0, kv("service.name", v));
            }
            resource(rattrs, spans)
        })
}

fn config() -> Config {
    Config {
        dimensions: vec![
            Dimension {
                name: "hit".into(),
                default: None,
                glob: None,
            },
            Dimension {
                name: "zone".into(),
                default: Some("none".into()),
                glob: None,
            },
        ],
        ..Config::default()
    }
}

fn check(m: &SpanMetrics, want: &BTreeMap<Labels, Tally>) {
    let sink = collect(m);
    let calls = sink.family("traces.span.metrics.calls");
    let duration = sink.family("traces.span.metrics.duration");
    let errors = sink.family("traces.span.metrics.errors");
    assert_eq!(calls.label_sets(), want.keys().cloned().collect::<Vec<_>>());
    let mut want_errors: BTreeMap<Labels, u64> = BTreeMap::new();
    for (l, t) in want {
        assert_eq!(calls.counter(l), t.calls, "{l:?}");
        let h = duration.hist(l);
        assert_eq!(h.counts, t.buckets, "{l:?}");
        assert_eq!(h.count, t.calls);
        assert!(
            (h.sum - t.sum).abs() <= 1e-9 * t.sum.max(1.0),
            "{} vs {}",
            h.sum,
            t.sum
        );
        let mut g = l.clone();
        let st = g.remove("status.code");
        *want_errors.entry(g).or_default() += if st.as_deref() == Some("STATUS_CODE_ERROR") {
            t.calls
        } else {
            0
        };
    }
    assert_eq!(
        errors.label_sets(),
        want_errors.keys().cloned().collect::<Vec<_>>()
    );
    for (l, n) in &want_errors {
        assert_eq!(errors.counter(l), *n, "{l:?}");
    }
    assert_eq!(m.series_count(), want.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matches_naive_tally(reqs in prop::collection::vec(prop::collection::vec(gen_resource(), 0..4), 1..6)) {
        let want = naive(&reqs);
        let encoded: Vec<Vec<u8>> = reqs.iter().map(|r| encode(r.clone())).collect();
        let expected_spans: usize = want.values().map(|t| t.calls as usize).sum();

        let one = SpanMetrics::new(&config()).expect("valid");
        let counted: usize = encoded.iter().map(|r| one.aggregate(r).expect("valid")).sum();
        prop_assert_eq!(counted, expected_spans);
        check(&one, &want);

        let two = SpanMetrics::new(&config()).expect("valid");
        std::thread::scope(|s| {
            for part in [0, 1] {
                let two = &two;
                let encoded = &encoded;
                s.spawn(move || {
                    // The connector's path: the receiver validated, so no second check.
                    for r in encoded.iter().skip(part).step_by(2) {
                        two.aggregate_validated(r).expect("valid");
                    }
                });
            }
        });
        check(&two, &want);
    }
}

//! The protobuf exposition, decoded back with the same messages and checked field by field
//! against what client_golang builds for otelcol's const metrics.

use std::sync::Arc;

use prost::Message as _;
use redline_pipeline::{
    Exemplar as Ex, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource,
};

use crate::proto::*;
use crate::render::StreamError;
use crate::render_proto::render_protobuf;
use crate::tests_kinds::{Otlp, SPAN, T, TRACE};
use crate::RenderOptions;

pub(crate) fn decode_all(mut buf: &[u8]) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        match MetricFamily::decode_length_delimited(&mut buf) {
            Ok(f) => out.push(f),
            Err(e) => panic!("bad delimited message: {e}"),
        }
    }
    out
}

fn rendered(
    sources: Vec<Arc<dyn MetricsSource>>,
    opts: &RenderOptions,
    merge: bool,
) -> (Result<(), StreamError>, Vec<MetricFamily>) {
    let mut out = Vec::new();
    let r = render_protobuf(&sources, opts, merge, &mut |c| {
        out.extend_from_slice(c);
        Ok(())
    });
    (r, decode_all(&out))
}

fn pair(name: &str, value: &str) -> LabelPair {
    LabelPair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn ids_exemplar(value: f64, seconds: i64, nanos: i32) -> Exemplar {
    Exemplar {
        label: vec![
            pair("trace_id", "abababababababababababababababab"),
            pair("span_id", "cdcdcdcdcdcdcdcd"),
        ],
        value: Some(value),
        timestamp: ts(seconds, nanos),
    }
}

fn family(name: &str, help: &str, t: MetricType, metric: Vec<Metric>) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(t as i32),
        metric,
    }
}

#[test]
fn every_kind_as_client_golang_builds_it() {
    let o = RenderOptions::new(None, [("env", "prod")], true).expect("valid");
    let (r, got) = rendered(vec![Arc::new(Otlp)], &o, false);
    assert!(r.is_ok(), "{r:?}");
    let env = pair("env", "prod");
    let bare_exemplar = Exemplar {
        label: vec![],
        value: Some(7.0),
        timestamp: ts(1_700_000_000, 123_456_789),
    };
    let want = vec![
        family(
            "http_requests_total",
            "Requests.",
            MetricType::Counter,
            vec![
                Metric {
                    label: vec![env.clone(), pair("method", "GET")],
                    counter: Some(Counter {
                        value: Some(12.5),
                        // The last exemplar, and the created timestamp of the start time.
                        exemplar: Some(ids_exemplar(2.5, 1_700_000_000, 500_000_000)),
                        created_timestamp: ts(1_600_000_000, 0),
                    }),
                    ..Metric::default()
                },
                Metric {
                    label: vec![env.clone(), pair("method", "POST")],
                    counter: Some(Counter {
                        value: Some(3e6),
                        exemplar: Some(bare_exemplar.clone()),
                        created_timestamp: None,
                    }),
                    ..Metric::default()
                },
            ],
        ),
        family(
            "temperature_celsius",
            "Temp.",
            MetricType::Gauge,
            vec![Metric {
                label: vec![env.clone()],
                gauge: Some(Gauge { value: Some(-1.0) }),
                ..Metric::default()
            }],
        ),
        family(
            "rpc_latency_seconds",
            "Latency.",
            MetricType::Summary,
            vec![Metric {
                label: vec![env.clone(), pair("svc", "a")],
                summary: Some(Summary {
                    sample_count: Some(2_000_000),
                    sample_sum: Some(1.25),
                    quantile: [(0.5, 1.0), (0.99, 5.0), (1.0, 9.0)]
                        .into_iter()
                        .map(|(q, v)| Quantile {
                            quantile: Some(q),
                            value: Some(v),
                        })
                        .collect(),
                    created_timestamp: ts(1_600_000_000, 0),
                }),
                ..Metric::default()
            }],
        ),
        family(
            "payload_bytes",
            "Sizes.",
            MetricType::Histogram,
            vec![Metric {
                label: vec![env.clone(), pair("svc", "a")],
                histogram: Some(Histogram {
                    sample_count: Some(6),
                    // No sum in the point: 0.
                    sample_sum: Some(0.0),
                    bucket: vec![],
                    schema: Some(3),
                    zero_threshold: Some(1e-128),
                    zero_count: Some(1),
                    // OTLP bucket 2 is Prometheus bucket 3.
                    positive_span: vec![BucketSpan {
                        offset: Some(3),
                        length: Some(3),
                    }],
                    positive_delta: vec![1, -1, 2],
                    negative_span: vec![BucketSpan {
                        offset: Some(0),
                        length: Some(1),
                    }],
                    negative_delta: vec![2],
                    created_timestamp: ts(1_600_000_000, 0),
                    exemplars: vec![bare_exemplar, ids_exemplar(2.5, 1_700_000_000, 500_000_000)],
                }),
                ..Metric::default()
            }],
        ),
        family(
            "op_duration_milliseconds",
            "Ops.",
            MetricType::Histogram,
            vec![Metric {
                label: vec![env],
                histogram: Some(Histogram {
                    sample_count: Some(2),
                    sample_sum: Some(3.0),
                    // No +Inf bucket: client_golang's const histograms leave it implicit.
                    bucket: vec![Bucket {
                        cumulative_count: Some(1),
                        upper_bound: Some(1.0),
                        exemplar: None,
                    }],
                    // A start time under one second is "unknown" to otelcol.
                    created_timestamp: None,
                    ..Histogram::default()
                }),
                ..Metric::default()
            }],
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn send_timestamps_sets_timestamp_ms() {
    let o = RenderOptions::new(None, [], true)
        .expect("valid")
        .with_send_timestamps(true);
    let (_, got) = rendered(vec![Arc::new(Otlp)], &o, false);
    let stamps: Vec<Option<i64>> = got
        .iter()
        .flat_map(|f| f.metric.iter().map(|m| m.timestamp_ms))
        .collect();
    assert_eq!(stamps, vec![Some(T as i64 / 1_000_000); 6]);
}

/// Histograms the text formats cannot show: exemplars past the last bound, a scale above 8,
/// no start time, and explicit and exponential histograms of one name in one family.
struct Histograms;

impl MetricsSource for Histograms {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let ex = |value: f64| Ex {
            value,
            time_unix_nano: T,
            trace_id: TRACE,
            span_id: SPAN,
        };
        sink.family(&FamilyDesc {
            name: "d",
            description: "D.",
            unit: "",
            kind: MetricKind::Histogram,
        });
        sink.histogram(
            &[("k", "classic")],
            &HistogramPoint {
                // Unsorted, with a repeated bound: otelcol sorts, and the first of equal
                // bounds keeps its count.
                bounds: &[5.0, 1.0, 5.0],
                bucket_counts: &[2, 1, 4, 3],
                sum: 20.0,
                count: 10,
                start_time_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: T,
                exemplars: &[ex(0.5), ex(3.0), ex(2.0), ex(9.0), ex(100.0)],
            },
        );
        sink.family(&FamilyDesc {
            name: "d",
            description: "D.",
            unit: "",
            kind: MetricKind::ExponentialHistogram,
        });
        sink.exponential_histogram(
            &[("k", "native")],
            &ExponentialHistogramPoint {
                scale: 10,
                count: 9,
                sum: Some(4.5),
                zero_count: 0,
                zero_threshold: 0.25,
                positive_offset: -5,
                positive_counts: &[1, 1, 1, 1, 5],
                negative_offset: 0,
                negative_counts: &[],
                start_time_unix_nano: 0,
                time_unix_nano: T,
                exemplars: &[],
            },
        );
    }
}

#[test]
fn classic_and_native_histograms() {
    let o = RenderOptions::new(None, [], true).expect("valid");
    // One source with one name twice: only the merging render can serve it.
    let (r, _) = rendered(vec![Arc::new(Histograms)], &o, false);
    assert!(matches!(r, Err(StreamError::NeedsMerge)) || r.is_ok());
    let (r, got) = rendered(vec![Arc::new(Histograms)], &o, true);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(got.len(), 1, "{got:?}");
    let f = &got[0];
    assert_eq!(
        (f.name.as_deref(), f.r#type),
        (Some("d"), Some(MetricType::Histogram as i32))
    );
    let classic = f.metric[0].histogram.clone().unwrap_or_default();
    let exemplar_value = |b: &Bucket| b.exemplar.as_ref().and_then(|e| e.value);
    let buckets: Vec<(Option<f64>, Option<u64>, Option<f64>)> = classic
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count, exemplar_value(b)))
        .collect();
    assert_eq!(
        buckets,
        vec![
            (Some(1.0), Some(1), Some(0.5)),
            // The later exemplar of a bucket replaces the earlier one.
            (Some(5.0), Some(3), Some(2.0)),
            // Past the last bound: a +Inf bucket with the count is added for it.
            (Some(f64::INFINITY), Some(10), Some(100.0)),
        ]
    );
    assert_eq!(classic.created_timestamp, ts(1_600_000_000, 0));
    let native = f.metric[1].histogram.clone().unwrap_or_default();
    assert_eq!(native.schema, Some(8));
    assert_eq!(native.zero_threshold, Some(0.25));
    assert_eq!(
        native.positive_span,
        vec![BucketSpan {
            offset: Some(-1),
            length: Some(2)
        }]
    );
    assert_eq!(native.positive_delta, vec![1, 7]);
    // No start time: client_golang still sets Go's zero time.
    assert_eq!(native.created_timestamp, ts(-62_135_596_800, 0));
    assert!(native.bucket.is_empty());
}

#[test]
fn a_family_coming_back_after_it_was_sent_needs_a_merge() {
    struct Big;
    impl MetricsSource for Big {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            // `b` comes back without points, which needs no merge; `a` comes back with one.
            for (name, points) in [("a", 1), ("b", 1), ("b", 0), ("a", 1)] {
                sink.family(&FamilyDesc {
                    name,
                    description: "",
                    unit: "",
                    kind: MetricKind::Gauge,
                });
                for _ in 0..points {
                    sink.gauge(&[], 1.0);
                }
            }
        }
    }
    struct Harmless;
    impl MetricsSource for Harmless {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            for (name, points) in [("a", 1), ("b", 1), ("a", 0)] {
                sink.family(&FamilyDesc {
                    name,
                    description: "",
                    unit: "",
                    kind: MetricKind::Gauge,
                });
                for _ in 0..points {
                    sink.gauge(&[], 1.0);
                }
            }
        }
    }
    let o = RenderOptions::new(None, [], true).expect("valid");
    let (r, got) = rendered(vec![Arc::new(Harmless)], &o, false);
    assert!(r.is_ok() && got.len() == 2, "{r:?} {got:?}");
    let (r, _) = rendered(vec![Arc::new(Big)], &o, false);
    assert!(matches!(r, Err(StreamError::NeedsMerge)), "{r:?}");
    let (r, got) = rendered(vec![Arc::new(Big)], &o, true);
    assert!(r.is_ok());
    let shape: Vec<(Option<String>, usize)> =
        got.into_iter().map(|f| (f.name, f.metric.len())).collect();
    assert_eq!(shape, vec![(Some("a".into()), 2), (Some("b".into()), 1)]);
}

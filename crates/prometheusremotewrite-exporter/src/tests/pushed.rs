//! Points with their own times (the OTLP kinds), decoded back to exact `TimeSeries`.

use std::sync::Arc;

use redline_pipeline::{
    ExponentialHistogramPoint, MetricsSource, NumberPoint, SummaryPoint, STALE_NAN,
};

use super::*;
use crate::encode::{encode, EncodeOptions};
use crate::proto::histogram::{Count, ResetHint, ZeroCount};
use crate::proto::{
    BucketSpan, Exemplar as PromExemplar, Histogram, Label, MetricType, Sample, TimeSeries,
};

const PUSH_MS: i64 = 1_800_000_000_000;
/// 1_700_000_000_123.456789 ms.
const T: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;

fn options() -> EncodeOptions {
    EncodeOptions {
        namespace: String::new(),
        add_metric_suffixes: true,
        external_labels: vec![("env".into(), "prod".into())],
        send_metadata: true,
        max_request_bytes: 3_000_000,
        export_created: false,
    }
}

/// Calls a closure with the sink: one source per test, written inline.
struct Points(fn(&mut dyn MetricsSink));

impl MetricsSource for Points {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        (self.0)(sink)
    }
}

fn run(f: fn(&mut dyn MetricsSink)) -> (Vec<TimeSeries>, Vec<MetricMetadata>, crate::Encoded) {
    let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Points(f))];
    let enc = encode(&sources, &options(), PUSH_MS);
    let mut series = Vec::new();
    let mut meta = Vec::new();
    for r in &enc.requests {
        let req = decode(&r.body);
        series.extend(req.timeseries);
        meta.extend(req.metadata);
    }
    (series, meta, enc)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
}

fn sample(labels_: &[(&str, &str)], value: f64, ts: i64) -> TimeSeries {
    TimeSeries {
        labels: labels(labels_),
        samples: vec![Sample {
            value,
            timestamp: ts,
        }],
        exemplars: vec![],
        histograms: vec![],
    }
}

fn family(sink: &mut dyn MetricsSink, name: &str, unit: &str, kind: MetricKind) {
    sink.family(&FamilyDesc {
        name,
        description: "d",
        unit,
        kind,
    });
}

const EX: Exemplar = Exemplar {
    value: 4.5,
    time_unix_nano: 1_700_000_000_001_999_999,
    trace_id: TRACE,
    span_id: SPAN,
};
const EX_NO_IDS: Exemplar = Exemplar {
    value: 9.0,
    time_unix_nano: 0,
    trace_id: [0; 16],
    span_id: [0; 8],
};

#[test]
fn numbers_keep_their_times_exemplars_and_stale_markers() {
    let (got, meta, _) = run(|sink| {
        family(sink, "http.requests", "1", MetricKind::Counter);
        let point = |value, time, exemplars| NumberPoint {
            value,
            start_time_unix_nano: 5,
            time_unix_nano: time,
            exemplars,
        };
        sink.number(&[("path", "/a")], &point(12.5, T, &[EX, EX_NO_IDS]));
        // The same series later in the same request is a second sample, not a duplicate.
        sink.number(&[("path", "/a")], &point(STALE_NAN, T + 1_000_000_000, &[]));
        family(sink, "temperature", "Cel", MetricKind::Gauge);
        // Time 0 is the push's time; a gauge point's exemplars (a non-monotonic sum's, in
        // otelcol) are written too.
        sink.number(&[("room", "b")], &point(-3.25, 0, &[EX]));
    });
    let counter = [
        ("__name__", "http_requests_total"),
        ("env", "prod"),
        ("path", "/a"),
    ];
    let mut first = sample(&counter, 12.5, T_MS);
    first.exemplars = vec![
        PromExemplar {
            labels: labels(&[("trace_id", TRACE_HEX), ("span_id", SPAN_HEX)]),
            value: 4.5,
            timestamp: 1_700_000_000_001,
        },
        PromExemplar {
            labels: vec![],
            value: 9.0,
            timestamp: 0,
        },
    ];
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0], first);
    assert_eq!(got[1].labels, labels(&counter));
    assert_eq!(got[1].samples.len(), 1);
    assert_eq!(got[1].samples[0].value.to_bits(), STALE_NAN.to_bits());
    assert_eq!(got[1].samples[0].timestamp, T_MS + 1000);
    let mut gauge = sample(
        &[
            ("__name__", "temperature_celsius"),
            ("env", "prod"),
            ("room", "b"),
        ],
        -3.25,
        PUSH_MS,
    );
    gauge.exemplars = vec![first.exemplars[0].clone()];
    assert_eq!(got[2], gauge);
    let types: Vec<(String, i32)> = meta
        .iter()
        .map(|m| (m.metric_family_name.clone(), m.r#type))
        .collect();
    assert_eq!(
        types,
        vec![
            ("http_requests_total".into(), MetricType::Counter as i32),
            ("temperature_celsius".into(), MetricType::Gauge as i32),
        ]
    );
}

#[test]
fn summaries_are_quantile_sum_and_count_series() {
    let (got, meta, _) = run(|sink| {
        family(sink, "rpc.latency", "s", MetricKind::Summary);
        let point = SummaryPoint {
            count: 10,
            sum: 3.5,
            quantiles: &[(0.5, 0.25), (0.99, 1.5), (1.0, 2.0)],
            start_time_unix_nano: 1,
            time_unix_nano: T,
        };
        // A `quantile` attribute would collide with the exporter's own label: dropped.
        sink.summary(&[("method", "Get"), ("quantile", "x")], &point);
    });
    let name = |n: &str| format!("rpc_latency_seconds{n}");
    let want = vec![
        sample(
            &[
                ("__name__", &name("_sum")),
                ("env", "prod"),
                ("method", "Get"),
            ],
            3.5,
            T_MS,
        ),
        sample(
            &[
                ("__name__", &name("_count")),
                ("env", "prod"),
                ("method", "Get"),
            ],
            10.0,
            T_MS,
        ),
        sample(
            &[
                ("__name__", &name("")),
                ("env", "prod"),
                ("method", "Get"),
                ("quantile", "0.5"),
            ],
            0.25,
            T_MS,
        ),
        sample(
            &[
                ("__name__", &name("")),
                ("env", "prod"),
                ("method", "Get"),
                ("quantile", "0.99"),
            ],
            1.5,
            T_MS,
        ),
        sample(
            &[
                ("__name__", &name("")),
                ("env", "prod"),
                ("method", "Get"),
                ("quantile", "1"),
            ],
            2.0,
            T_MS,
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].r#type, MetricType::Summary as i32);
    assert_eq!(meta[0].metric_family_name, name(""));
    assert_eq!(meta[0].unit, "seconds");
}

#[test]
fn stale_summary_marks_every_series() {
    let (got, _, _) = run(|sink| {
        family(sink, "s", "", MetricKind::Summary);
        let point = SummaryPoint {
            count: 0,
            sum: STALE_NAN,
            quantiles: &[(0.5, 1.0)],
            start_time_unix_nano: 0,
            time_unix_nano: T,
        };
        sink.summary(&[], &point);
    });
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|s| s.samples[0].value.to_bits() == STALE_NAN.to_bits()));
}

#[test]
fn exponential_histograms_are_native_histograms() {
    let (got, meta, enc) = run(|sink| {
        family(sink, "payload.size", "By", MetricKind::ExponentialHistogram);
        let point = ExponentialHistogramPoint {
            scale: 10,
            count: 30,
            sum: Some(1234.5),
            zero_count: 3,
            zero_threshold: 0.0,
            positive_offset: -3,
            positive_counts: &[1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6],
            negative_offset: 0,
            negative_counts: &[0, 0],
            start_time_unix_nano: 1,
            time_unix_nano: T,
            exemplars: &[EX],
        };
        sink.exponential_histogram(&[("host", "a")], &point);
        // Coarser than Prometheus' schema −4: left out, the rest still sent.
        let coarse = ExponentialHistogramPoint { scale: -5, ..point };
        sink.exponential_histogram(&[("host", "b")], &coarse);
    });
    assert_eq!(enc.skipped_points, 1);
    let want = TimeSeries {
        labels: labels(&[
            ("__name__", "payload_size_bytes"),
            ("env", "prod"),
            ("host", "a"),
        ]),
        samples: vec![],
        exemplars: vec![PromExemplar {
            labels: labels(&[("trace_id", TRACE_HEX), ("span_id", SPAN_HEX)]),
            value: 4.5,
            timestamp: 1_700_000_000_001,
        }],
        histograms: vec![Histogram {
            count: Some(Count::CountInt(30)),
            sum: 1234.5,
            // Scale 10 → schema 8: four OTel buckets per Prometheus bucket; OTel indices
            // −3..=13 land in Prometheus buckets 0..=4 (−3..=−1 in 0, 0..=3 in 1, …).
            schema: 8,
            zero_threshold: 1e-128,
            zero_count: Some(ZeroCount::ZeroCountInt(3)),
            // All-zero negative buckets still open a span, as in otelcol.
            negative_spans: vec![BucketSpan {
                offset: 1,
                length: 1,
            }],
            negative_deltas: vec![0],
            negative_counts: vec![],
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: 5,
            }],
            positive_deltas: vec![6, 9, -15, 0, 6],
            positive_counts: vec![],
            reset_hint: ResetHint::Unknown as i32,
            timestamp: T_MS,
            custom_values: vec![],
        }],
    };
    assert_eq!(got, vec![want]);
    assert_eq!(meta[0].r#type, MetricType::Histogram as i32);
}

#[test]
fn pushed_histograms_keep_their_time_and_every_exemplar() {
    let (got, _, _) = run(|sink| {
        family(sink, "lat", "ms", MetricKind::Histogram);
        let ex2 = Exemplar { value: 1.0, ..EX };
        let point = HistogramPoint {
            bounds: &[1.0, 5.0, 10.0],
            // One count short of the bounds: the translator writes only the paired buckets.
            bucket_counts: &[2, 3],
            sum: 20.0,
            count: 6,
            start_time_unix_nano: 1,
            time_unix_nano: T,
            exemplars: &[EX, ex2, EX_NO_IDS],
        };
        sink.histogram(&[], &point);
    });
    fn name(le: Option<&str>) -> Vec<(&str, &str)> {
        let mut v = vec![("__name__", "lat_milliseconds_bucket"), ("env", "prod")];
        v.extend(le.map(|le| ("le", le)));
        v
    }
    let ex = |value: f64, ts: i64, ids: bool| PromExemplar {
        labels: if ids {
            labels(&[("trace_id", TRACE_HEX), ("span_id", SPAN_HEX)])
        } else {
            vec![]
        },
        value,
        timestamp: ts,
    };
    let mut b1 = sample(&name(Some("1")), 2.0, T_MS);
    b1.exemplars = vec![ex(1.0, 1_700_000_000_001, true)];
    let mut b5 = sample(&name(Some("5")), 5.0, T_MS);
    b5.exemplars = vec![ex(4.5, 1_700_000_000_001, true)];
    let mut inf = sample(&name(Some("+Inf")), 6.0, T_MS);
    inf.exemplars = vec![ex(9.0, 0, false)];
    let want = vec![
        b1,
        b5,
        inf,
        sample(
            &[("__name__", "lat_milliseconds_sum"), ("env", "prod")],
            20.0,
            T_MS,
        ),
        sample(
            &[("__name__", "lat_milliseconds_count"), ("env", "prod")],
            6.0,
            T_MS,
        ),
    ];
    assert_eq!(got, want);
}

#[test]
fn colliding_labels_follow_the_translator_precedence() {
    let (got, _, _) = run(|sink| {
        family(sink, "g", "", MetricKind::Gauge);
        let point = NumberPoint {
            value: 1.0,
            start_time_unix_nano: 0,
            time_unix_nano: T,
            exemplars: &[],
        };
        // As `translate` orders them: point attributes sorted by key, then job/instance,
        // then scope labels.
        sink.number(
            &[
                ("a.b", "x"),
                ("a.c", "x"),
                ("a_b", "y"),
                ("a_c", "x"),
                ("job", "attr"),
                ("job", "svc"),
                ("otel_scope_name", "lib"),
            ],
            &point,
        );
    });
    assert_eq!(
        got,
        vec![sample(
            &[
                ("__name__", "g"),
                // Joined with `;`, a value equal to the current one written once.
                ("a_b", "x;y"),
                ("a_c", "x"),
                ("env", "prod"),
                // `job` from the resource replaces the point attribute.
                ("job", "svc"),
                ("otel_scope_name", "lib"),
            ],
            1.0,
            T_MS
        )]
    );
}

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as Any, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_pipeline::metrics::{
    ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
    NumberPoint, SummaryPoint,
};

use super::*;

#[derive(Debug, Clone, PartialEq)]
enum Rec {
    Family(String, MetricKind, String),
    Number(Vec<(String, String)>, f64, u64, u64),
    Histogram(Vec<(String, String)>, Vec<f64>, Vec<u64>, f64, u64),
    Exp(Vec<(String, String)>, i32, i32, Vec<u64>, u64, u64),
}

#[derive(Default)]
struct Recorder(Vec<Rec>);

fn own(labels: &[(&str, &str)]) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl MetricsSink for Recorder {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.0.push(Rec::Family(
            desc.name.into(),
            desc.kind,
            desc.description.into(),
        ));
    }
    fn counter(&mut self, _: &[(&str, &str)], _: u64, _: u64, _: Option<&Exemplar>) {
        panic!("translation uses number()");
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {
        panic!("translation uses number()");
    }
    fn histogram(&mut self, labels: &[(&str, &str)], p: &HistogramPoint<'_>) {
        self.0.push(Rec::Histogram(
            own(labels),
            p.bounds.to_vec(),
            p.bucket_counts.to_vec(),
            p.sum,
            p.count,
        ));
    }
    fn number(&mut self, labels: &[(&str, &str)], p: &NumberPoint<'_>) {
        self.0.push(Rec::Number(
            own(labels),
            p.value,
            p.start_time_unix_nano,
            p.time_unix_nano,
        ));
    }
    fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {}
    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        p: &ExponentialHistogramPoint<'_>,
    ) {
        self.0.push(Rec::Exp(
            own(labels),
            p.scale,
            p.positive_offset,
            p.positive_counts.to_vec(),
            p.zero_count,
            p.count,
        ));
    }
}

fn kv(k: &str, v: Any) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Any {
    Any::StringValue(v.into())
}

fn sum_point(attrs: Vec<KeyValue>, start: u64, time: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn sum(
    name: &str,
    temporality: AggregationTemporality,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    attributes: vec![kv("name", s("shadow")), kv("team", s("a"))],
                    ..Default::default()
                }),
                metrics,
                schema_url: "https://s".into(),
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

fn svc() -> Vec<KeyValue> {
    vec![
        kv("service.name", s("api")),
        kv("service.namespace", s("prod")),
        kv("service.instance.id", s("i-1")),
        kv("host.name", s("h")),
    ]
}

fn no_scope() -> Settings {
    Settings {
        scope_labels: false,
        ..Settings::default()
    }
}

fn collect(acc: &Accumulator, now: Instant) -> Vec<Rec> {
    let mut r = Recorder::default();
    acc.collect_at(now, &mut r);
    r.0
}

fn numbers(recs: &[Rec]) -> Vec<(f64, u64, u64)> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Number(l, v, st, t) if !l.iter().any(|(k, _)| k == "host.name") => {
                Some((*v, *st, *t))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn as_string_renders_like_pdata() {
    let cases: Vec<(Any, &str)> = vec![
        (s("x"), "x"),
        (Any::IntValue(-42), "-42"),
        (Any::BoolValue(true), "true"),
        (Any::DoubleValue(1.5), "1.5"),
        (Any::DoubleValue(100.0), "100"),
        (Any::DoubleValue(1e21), "1e+21"),
        (Any::DoubleValue(1e20), "100000000000000000000"),
        (Any::DoubleValue(1e-7), "1e-7"),
        (Any::DoubleValue(0.000001), "0.000001"),
        (Any::DoubleValue(1.2345e-10), "1.2345e-10"),
        (Any::DoubleValue(f64::NAN), "NaN"),
        (Any::DoubleValue(f64::NEG_INFINITY), "-Infinity"),
        (Any::BytesValue(vec![1, 2, 255]), "AQL/"),
        (
            Any::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(Any::IntValue(1)),
                    },
                    AnyValue {
                        value: Some(s("a<b\"\n")),
                    },
                    AnyValue { value: None },
                    AnyValue {
                        value: Some(Any::DoubleValue(0.5)),
                    },
                ],
            }),
            r#"[1,"a<b\"\n",null,0.5]"#,
        ),
        (
            Any::KvlistValue(KeyValueList {
                values: vec![
                    kv("b", Any::BoolValue(false)),
                    kv("a", Any::BytesValue(vec![0])),
                    kv("b", s("last")),
                ],
            }),
            r#"{"a":"AA==","b":"last"}"#,
        ),
        (
            Any::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Any::DoubleValue(f64::INFINITY)),
                }],
            }),
            "",
        ),
    ];
    for (v, want) in cases {
        let av = AnyValue { value: Some(v) };
        assert_eq!(redline_pdata_text::as_string(Some(&av)), want, "{av:?}");
    }
    assert_eq!(redline_pdata_text::as_string(None), "");
}

#[test]
fn delta_monotonic_sums_accumulate_and_reset() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let d = AggregationTemporality::Delta;
    let a = acc
        .accumulate_at(
            &request(
                svc(),
                vec![sum("c", d, true, vec![sum_point(vec![], 10, 20, 3.0)])],
            ),
            now,
        )
        .unwrap();
    assert_eq!(a.points, 1);
    // Aligned: start == previous time → added, start kept.
    acc.accumulate_at(
        &request(
            svc(),
            vec![sum("c", d, true, vec![sum_point(vec![], 20, 30, 4.0)])],
        ),
        now,
    )
    .unwrap();
    assert_eq!(numbers(&collect(&acc, now)), vec![(7.0, 10, 30)]);
    // Misaligned: a reset, the point replaces.
    acc.accumulate_at(
        &request(
            svc(),
            vec![sum("c", d, true, vec![sum_point(vec![], 35, 40, 2.0)])],
        ),
        now,
    )
    .unwrap();
    assert_eq!(numbers(&collect(&acc, now)), vec![(2.0, 35, 40)]);
    // Older than the stored one: ignored.
    let a = acc
        .accumulate_at(
            &request(
                svc(),
                vec![sum("c", d, true, vec![sum_point(vec![], 40, 39, 9.0)])],
            ),
            now,
        )
        .unwrap();
    assert_eq!((a.points, a.dropped_out_of_order), (0, 1));
    // Delta non-monotonic and unspecified temporality are refused.
    let a = acc
        .accumulate_at(
            &request(
                svc(),
                vec![
                    sum("g", d, false, vec![sum_point(vec![], 0, 1, 1.0)]),
                    sum(
                        "u",
                        AggregationTemporality::Unspecified,
                        true,
                        vec![sum_point(vec![], 0, 1, 1.0)],
                    ),
                ],
            ),
            now,
        )
        .unwrap();
    assert_eq!(
        (
            a.points,
            a.dropped_delta_non_monotonic,
            a.dropped_unspecified_temporality
        ),
        (0, 1, 1)
    );
}

#[test]
fn cumulative_replaced_and_gauge_keeps_newest() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let c = AggregationTemporality::Cumulative;
    acc.accumulate_at(
        &request(
            svc(),
            vec![sum("c", c, true, vec![sum_point(vec![], 1, 20, 5.0)])],
        ),
        now,
    )
    .unwrap();
    acc.accumulate_at(
        &request(
            svc(),
            vec![sum("c", c, true, vec![sum_point(vec![], 1, 30, 6.0)])],
        ),
        now,
    )
    .unwrap();
    acc.accumulate_at(
        &request(svc(), vec![gauge("g", vec![sum_point(vec![], 0, 50, 1.0)])]),
        now,
    )
    .unwrap();
    acc.accumulate_at(
        &request(svc(), vec![gauge("g", vec![sum_point(vec![], 0, 40, 2.0)])]),
        now,
    )
    .unwrap();
    assert_eq!(
        numbers(&collect(&acc, now)),
        vec![(6.0, 1, 30), (1.0, 0, 50)]
    );
}

#[test]
fn no_recorded_value_deletes_and_ends_the_metric() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let g = |points| request(svc(), vec![gauge("g", points)]);
    acc.accumulate_at(&g(vec![sum_point(vec![kv("k", s("a"))], 0, 1, 1.0)]), now)
        .unwrap();
    let mut gone = sum_point(vec![kv("k", s("a"))], 0, 2, 0.0);
    gone.flags = 1;
    let a = acc
        .accumulate_at(
            &g(vec![
                sum_point(vec![kv("k", s("b"))], 0, 2, 1.0),
                gone,
                sum_point(vec![kv("k", s("c"))], 0, 2, 1.0),
            ]),
            now,
        )
        .unwrap();
    // otelcol returns 0 for the metric and never reaches `c`.
    assert_eq!((a.points, a.deleted_no_recorded_value), (0, 1));
    assert_eq!(acc.series_count(), 1);
}

#[test]
fn expiration_drops_old_series() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(60));
    let t0 = Instant::now();
    acc.accumulate_at(
        &request(
            svc(),
            vec![gauge("old", vec![sum_point(vec![], 0, 1, 1.0)])],
        ),
        t0,
    )
    .unwrap();
    let t1 = t0 + Duration::from_secs(50);
    acc.accumulate_at(
        &request(
            svc(),
            vec![gauge("new", vec![sum_point(vec![], 0, 1, 1.0)])],
        ),
        t1,
    )
    .unwrap();
    let recs = collect(&acc, t0 + Duration::from_secs(61));
    let fams: Vec<_> = recs
        .iter()
        .filter_map(|r| match r {
            Rec::Family(n, ..) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(fams, vec!["target_info", "new"]);
    assert_eq!(acc.series_count(), 1);
}

#[test]
fn labels_job_instance_scope_and_target_info() {
    let acc = Accumulator::new(Settings::default(), Duration::from_secs(300));
    let now = Instant::now();
    acc.accumulate_at(
        &request(
            svc(),
            vec![gauge(
                "g",
                vec![sum_point(vec![kv("k", Any::IntValue(1))], 0, 1, 1.0)],
            )],
        ),
        now,
    )
    .unwrap();
    // Same job/instance, other attributes: one target_info; no instance: none.
    let mut other = svc();
    other[3] = kv("host.name", s("h2"));
    acc.accumulate_at(
        &request(other, vec![gauge("g2", vec![sum_point(vec![], 0, 1, 1.0)])]),
        now,
    )
    .unwrap();
    acc.accumulate_at(
        &request(
            vec![kv("service.name", s("x")), kv("a", s("b"))],
            vec![gauge("g3", vec![sum_point(vec![], 0, 1, 1.0)])],
        ),
        now,
    )
    .unwrap();
    let recs = collect(&acc, now);
    assert_eq!(
        recs[0],
        Rec::Family(
            "target_info".into(),
            MetricKind::Gauge,
            "Target metadata".into()
        )
    );
    let Rec::Number(l, v, _, _) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert_eq!(*v, 1.0);
    assert_eq!(l[1..], own(&[("job", "prod/api"), ("instance", "i-1")])[..]);
    assert!(matches!(&recs[2], Rec::Family(n, ..) if n == "g"));
    let Rec::Number(l, ..) = &recs[3] else {
        panic!("{recs:?}")
    };
    assert_eq!(
        *l,
        own(&[
            ("k", "1"),
            ("otel_scope_team", "a"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0"),
            ("otel_scope_schema_url", "https://s"),
            ("job", "prod/api"),
            ("instance", "i-1"),
        ])
    );
    let Some(Rec::Number(l, ..)) = recs.last() else {
        panic!()
    };
    assert_eq!(l.last(), Some(&("job".to_string(), "x".to_string())));
}

#[test]
fn resource_attributes_override_point_attributes() {
    let settings = Settings {
        resource_labels: crate::ResourceLabels::All,
        scope_labels: false,
        target_info: false,
    };
    let acc = Accumulator::new(settings, Duration::from_secs(300));
    let now = Instant::now();
    acc.accumulate_at(
        &request(
            vec![kv("host.name", s("res")), kv("zone", s("z"))],
            vec![gauge(
                "g",
                vec![sum_point(
                    vec![kv("a", s("1")), kv("host.name", s("pt"))],
                    0,
                    1,
                    1.0,
                )],
            )],
        ),
        now,
    )
    .unwrap();
    let recs = collect(&acc, now);
    let Rec::Number(l, ..) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert_eq!(*l, own(&[("a", "1"), ("host.name", "res"), ("zone", "z")]));
}

#[test]
fn selected_resource_attributes_become_labels_in_both_translations() {
    let (labels, _) = crate::ResourceLabels::resolve(
        &crate::ResourceLabelsConfig::default(),
        &crate::ResourceLabelsConfig {
            included: vec!["k8s.*".into(), "zone".into()],
            excluded: vec!["k8s.node.*".into()],
            ..Default::default()
        },
    )
    .expect("valid");
    let settings = Settings {
        resource_labels: labels,
        scope_labels: false,
        target_info: false,
    };
    let req = request(
        vec![
            kv("host.name", s("h")),
            kv("k8s.pod.name", s("p")),
            kv("k8s.node.name", s("n")),
            kv("zone", s("z")),
        ],
        vec![gauge(
            "g",
            vec![sum_point(vec![kv("a", s("1"))], 0, 1, 1.0)],
        )],
    );
    let want = own(&[("a", "1"), ("k8s.pod.name", "p"), ("zone", "z")]);

    let acc = Accumulator::new(settings.clone(), Duration::from_secs(300));
    let now = Instant::now();
    acc.accumulate_at(&req, now).unwrap();
    let recs = collect(&acc, now);
    let Rec::Number(l, ..) = &recs[1] else {
        panic!("{recs:?}")
    };
    assert_eq!(*l, want, "scrape");

    let mut r = Recorder::default();
    translate(&req, &settings, &mut r).unwrap();
    let Rec::Number(l, ..) = &r.0[1] else {
        panic!("{:?}", r.0)
    };
    assert_eq!(*l, want, "remote write");
}

#[test]
fn kind_conflicts_keep_the_first_type() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let c = AggregationTemporality::Cumulative;
    acc.accumulate_at(
        &request(svc(), vec![gauge("x", vec![sum_point(vec![], 0, 1, 1.0)])]),
        now,
    )
    .unwrap();
    let hist = Metric {
        name: "x".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: 1,
                ..Default::default()
            }],
            aggregation_temporality: c as i32,
        })),
        ..Default::default()
    };
    // A counter of the same name is another Prometheus family (`x_total`): kept.
    acc.accumulate_at(
        &request(
            svc(),
            vec![hist, sum("x", c, true, vec![sum_point(vec![], 0, 1, 1.0)])],
        ),
        now,
    )
    .unwrap();
    let kinds: Vec<_> = collect(&acc, now)
        .into_iter()
        .filter_map(|r| match r {
            Rec::Family(n, k, _) if n == "x" => Some(k),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![MetricKind::Counter, MetricKind::Gauge]);
}

fn hist_point(
    start: u64,
    time: u64,
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        explicit_bounds: bounds,
        bucket_counts: counts,
        ..Default::default()
    }
}

fn hist(points: Vec<HistogramDataPoint>, t: AggregationTemporality) -> Metric {
    Metric {
        name: "h".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: t as i32,
        })),
        ..Default::default()
    }
}

#[test]
fn delta_histograms() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let d = AggregationTemporality::Delta;
    let put = |p| {
        acc.accumulate_at(&request(svc(), vec![hist(vec![p], d)]), now)
            .unwrap()
    };
    put(hist_point(0, 10, vec![1.0, 2.0], vec![1, 2, 3], 5.0));
    put(hist_point(10, 20, vec![1.0, 2.0], vec![1, 1, 1], 1.0));
    let last_hist = |recs: Vec<Rec>| {
        recs.into_iter()
            .filter_map(|r| match r {
                Rec::Histogram(_, b, c, s, n) => Some((b, c, s, n)),
                _ => None,
            })
            .next_back()
    };
    assert_eq!(
        last_hist(collect(&acc, now)),
        Some((vec![1.0, 2.0], vec![2, 3, 4], 6.0, 9))
    );
    // Starts before the stored end: dropped.
    let a = put(hist_point(15, 30, vec![1.0, 2.0], vec![1, 1, 1], 1.0));
    assert_eq!(a.dropped_misaligned, 1);
    // Starts after: a reset.
    put(hist_point(25, 30, vec![5.0], vec![1, 1], 1.0));
    assert_eq!(
        last_hist(collect(&acc, now)),
        Some((vec![5.0], vec![1, 1], 1.0, 2))
    );
    // Aligned with other bounds: the newer point wins.
    put(hist_point(30, 40, vec![7.0], vec![0, 4], 2.0));
    assert_eq!(
        last_hist(collect(&acc, now)),
        Some((vec![7.0], vec![0, 4], 2.0, 4))
    );
}

#[test]
fn histogram_bounds_deduplicated_and_sorted() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let mut p = hist_point(0, 1, vec![5.0, 1.0, 5.0], vec![1, 2, 3, 4], 0.0);
    p.count = 10;
    acc.accumulate_at(
        &request(
            svc(),
            vec![hist(vec![p], AggregationTemporality::Cumulative)],
        ),
        now,
    )
    .unwrap();
    let h = collect(&acc, now).into_iter().find_map(|r| match r {
        Rec::Histogram(_, b, c, ..) => Some((b, c)),
        _ => None,
    });
    // Bound 1 takes count[1], bound 5 its first index's count[0]; +Inf the rest of 10.
    assert_eq!(h, Some((vec![1.0, 5.0], vec![2, 1, 7])));
}

#[test]
fn delta_exponential_histograms_merge() {
    let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
    let now = Instant::now();
    let eh = |start, time, scale, offset, counts: Vec<u64>| Metric {
        name: "e".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                scale,
                count: counts.iter().sum(),
                positive: Some(Buckets {
                    offset,
                    bucket_counts: counts,
                }),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    };
    acc.accumulate_at(
        &request(svc(), vec![eh(0, 10, 1, 0, vec![1, 2, 3, 4])]),
        now,
    )
    .unwrap();
    acc.accumulate_at(&request(svc(), vec![eh(10, 20, 0, 1, vec![5])]), now)
        .unwrap();
    let e = collect(&acc, now).into_iter().find_map(|r| match r {
        Rec::Exp(_, scale, off, c, _, n) => Some((scale, off, c, n)),
        _ => None,
    });
    // Scale 1 → 0: buckets 0,1 → 0 and 2,3 → 1; then bucket 1 += 5.
    assert_eq!(e, Some((0, 0, vec![3, 12], 15)));

    // A range that starts inside a merged bucket (odd offset at scale 1, and a negative
    // one): the buckets still add up to the count (otelcol counts the first one twice).
    for (offset, want_offset, want) in [(1, 0, vec![11, 5]), (-3, -2, vec![1, 15])] {
        let acc = Accumulator::new(no_scope(), Duration::from_secs(300));
        acc.accumulate_at(
            &request(svc(), vec![eh(0, 10, 1, offset, vec![1, 2, 3])]),
            now,
        )
        .unwrap();
        let cur_offset = if offset > 0 { 0 } else { -1 };
        acc.accumulate_at(
            &request(svc(), vec![eh(10, 20, 0, cur_offset, vec![10])]),
            now,
        )
        .unwrap();
        let e = collect(&acc, now).into_iter().find_map(|r| match r {
            Rec::Exp(_, scale, off, c, _, n) => Some((scale, off, c, n)),
            _ => None,
        });
        assert_eq!(e, Some((0, want_offset, want, 16)), "offset {offset}");
    }
}

#[test]
fn remote_write_translation() {
    let c = AggregationTemporality::Cumulative;
    let mut stale = sum_point(vec![kv("k", s("b"))], 0, 7_000_000, 1.0);
    stale.flags = 1;
    let req = request(
        svc(),
        vec![
            sum(
                "c",
                c,
                true,
                vec![
                    sum_point(
                        vec![kv("z", s("1")), kv("a", s("")), kv("k", s("a"))],
                        1,
                        5_000_000,
                        3.0,
                    ),
                    stale,
                ],
            ),
            sum(
                "d",
                AggregationTemporality::Delta,
                true,
                vec![sum_point(vec![], 0, 9_000_000, 1.0)],
            ),
        ],
    );
    let mut r = Recorder::default();
    let t = translate(&req, &Settings::default(), &mut r).unwrap();
    assert_eq!(
        (t.points, t.stale, t.target_info, t.dropped_not_cumulative),
        (3, 1, 1, 1)
    );
    assert_eq!(
        r.0[0],
        Rec::Family("c".into(), MetricKind::Counter, String::new())
    );
    let Rec::Number(l, v, _, time) = &r.0[1] else {
        panic!()
    };
    assert_eq!((*v, *time), (3.0, 5_000_000));
    assert_eq!(
        *l,
        own(&[
            ("k", "a"),
            ("z", "1"),
            ("job", "prod/api"),
            ("instance", "i-1"),
            ("otel_scope_name", "lib"),
            ("otel_scope_version", "1.0"),
            ("otel_scope_team", "a"),
        ])
    );
    let Rec::Number(_, v, ..) = &r.0[2] else {
        panic!()
    };
    assert_eq!(v.to_bits(), redline_pipeline::STALE_NAN.to_bits());
    // target_info with the newest time of the resource, the dropped delta metric included.
    let Rec::Number(l, v, _, time) = &r.0[4] else {
        panic!("{:?}", r.0)
    };
    assert_eq!((*v, *time), (1.0, 9_000_000));
    assert_eq!(
        *l,
        own(&[("host.name", "h"), ("job", "prod/api"), ("instance", "i-1")])
    );
}

#[test]
fn remote_write_histogram_buckets() {
    let mut p = hist_point(0, 1, vec![1.0, 2.0, 3.0], vec![1, 2], 4.0);
    p.count = 5;
    let req = request(
        vec![],
        vec![hist(vec![p], AggregationTemporality::Cumulative)],
    );
    let mut r = Recorder::default();
    translate(&req, &no_scope(), &mut r).unwrap();
    assert_eq!(
        r.0[1],
        Rec::Histogram(vec![], vec![1.0, 2.0], vec![1, 2, 2], 4.0, 5)
    );
    // No target_info: nothing but identifying attributes (here none at all).
    assert_eq!(r.0.len(), 2);
}

#[test]
fn decode_errors() {
    assert!(translate(
        &[0xff, 0xff],
        &Settings::default(),
        &mut Recorder::default()
    )
    .is_err());
    let acc = Accumulator::new(Settings::default(), Duration::from_secs(1));
    assert!(acc.accumulate(&[0xff, 0xff]).is_err());
    acc.collect(&mut Recorder::default());
}

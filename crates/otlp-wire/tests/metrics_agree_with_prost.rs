//! Property tests: `validate_metrics` accepts exactly what prost's decode of
//! `ExportMetricsServiceRequest` accepts, and counts what prost's decode holds.
//!
//! Case counts are modest so `cargo test` stays fast; raise them with
//! `PROPTEST_CASES=10000 cargo test -p redline-otlp-wire --release`.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used)]

mod support;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point, metric, number_data_point, summary_data_point,
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use redline_otlp_wire::{validate_metrics, MetricsStats};
use support::{
    attributes, bytes, cases, common, double, field_shapes, mutate, ops, resource, scope, scramble,
    text, wrap_path, Common, Kind, Rng, Schema,
};

/// What `validate_metrics` must report for a request prost decoded: pdata's
/// `DataPointCount()` over the decoded structs.
fn expected(req: &ExportMetricsServiceRequest) -> MetricsStats {
    let scopes = || req.resource_metrics.iter().flat_map(|r| &r.scope_metrics);
    let metrics = || scopes().flat_map(|s| &s.metrics);
    MetricsStats {
        resource_metrics: req.resource_metrics.len(),
        scope_metrics: scopes().count(),
        metrics: metrics().count(),
        data_points: metrics()
            .map(|m| match &m.data {
                None => 0,
                Some(metric::Data::Gauge(g)) => g.data_points.len(),
                Some(metric::Data::Sum(s)) => s.data_points.len(),
                Some(metric::Data::Histogram(h)) => h.data_points.len(),
                Some(metric::Data::ExponentialHistogram(e)) => e.data_points.len(),
                Some(metric::Data::Summary(s)) => s.data_points.len(),
            })
            .sum(),
    }
}

fn check_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    let theirs = ExportMetricsServiceRequest::decode(bytes);
    let ours = validate_metrics(bytes);
    prop_assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours {:?} theirs {:?}",
        ours,
        theirs.as_ref().err()
    );
    if let (Ok(stats), Ok(req)) = (ours, theirs) {
        prop_assert_eq!(stats, expected(&req));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn exemplars() -> impl Strategy<Value = Vec<Exemplar>> {
    let value = proptest::option::of(prop_oneof![
        double().prop_map(exemplar::Value::AsDouble),
        any::<i64>().prop_map(exemplar::Value::AsInt),
    ]);
    vec(
        (attributes(), any::<u64>(), bytes(10), bytes(18), value).prop_map(
            |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
                filtered_attributes,
                time_unix_nano,
                span_id,
                trace_id,
                value,
            },
        ),
        0..3,
    )
}

fn number_points() -> impl Strategy<Value = Vec<NumberDataPoint>> {
    let value = proptest::option::of(prop_oneof![
        double().prop_map(number_data_point::Value::AsDouble),
        any::<i64>().prop_map(number_data_point::Value::AsInt),
    ]);
    vec(
        (
            attributes(),
            any::<(u64, u64)>(),
            value,
            exemplars(),
            any::<u32>(),
        )
            .prop_map(|(attributes, (start, time), value, exemplars, flags)| {
                NumberDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    exemplars,
                    flags,
                    value,
                }
            }),
        0..3,
    )
}

fn histogram_points() -> impl Strategy<Value = Vec<HistogramDataPoint>> {
    let opt = || proptest::option::of(double());
    vec(
        (
            attributes(),
            any::<(u64, u64, u64)>(),
            (opt(), opt(), opt()),
            vec(any::<u64>(), 0..5),
            vec(double(), 0..4),
            exemplars(),
            any::<u32>(),
        )
            .prop_map(
                |(
                    attributes,
                    (start, time, count),
                    (sum, min, max),
                    bucket_counts,
                    explicit_bounds,
                    exemplars,
                    flags,
                )| HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count,
                    sum,
                    bucket_counts,
                    explicit_bounds,
                    exemplars,
                    flags,
                    min,
                    max,
                },
            ),
        0..3,
    )
}

fn buckets() -> impl Strategy<Value = Option<exponential_histogram_data_point::Buckets>> {
    proptest::option::of((any::<i32>(), vec(any::<u64>(), 0..5)).prop_map(
        |(offset, bucket_counts)| exponential_histogram_data_point::Buckets {
            offset,
            bucket_counts,
        },
    ))
}

fn exponential_points() -> impl Strategy<Value = Vec<ExponentialHistogramDataPoint>> {
    let opt = || proptest::option::of(double());
    vec(
        (
            attributes(),
            any::<(u64, u64, u64, u64)>(),
            (opt(), opt(), opt(), double()),
            (any::<i32>(), any::<u32>()),
            (buckets(), buckets()),
            exemplars(),
        )
            .prop_map(
                |(
                    attributes,
                    (start, time, count, zero_count),
                    (sum, min, max, zero_threshold),
                    (scale, flags),
                    (positive, negative),
                    exemplars,
                )| ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count,
                    sum,
                    scale,
                    zero_count,
                    positive,
                    negative,
                    flags,
                    exemplars,
                    min,
                    max,
                    zero_threshold,
                },
            ),
        0..3,
    )
}

fn summary_points() -> impl Strategy<Value = Vec<SummaryDataPoint>> {
    let quantiles = vec(
        (double(), double())
            .prop_map(|(quantile, value)| summary_data_point::ValueAtQuantile { quantile, value }),
        0..3,
    );
    vec(
        (
            attributes(),
            any::<(u64, u64, u64)>(),
            double(),
            quantiles,
            any::<u32>(),
        )
            .prop_map(
                |(attributes, (start, time, count), sum, quantile_values, flags)| {
                    SummaryDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        count,
                        sum,
                        quantile_values,
                        flags,
                    }
                },
            ),
        0..3,
    )
}

fn temporality() -> impl Strategy<Value = i32> {
    prop_oneof![0..3i32, any::<i32>()]
}

fn data() -> impl Strategy<Value = Option<metric::Data>> {
    use metric::Data as D;
    proptest::option::of(prop_oneof![
        number_points().prop_map(|data_points| D::Gauge(Gauge { data_points })),
        (number_points(), temporality(), any::<bool>()).prop_map(|(data_points, t, m)| {
            D::Sum(Sum {
                data_points,
                aggregation_temporality: t,
                is_monotonic: m,
            })
        }),
        (histogram_points(), temporality()).prop_map(|(data_points, t)| {
            D::Histogram(Histogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        (exponential_points(), temporality()).prop_map(|(data_points, t)| {
            D::ExponentialHistogram(ExponentialHistogram {
                data_points,
                aggregation_temporality: t,
            })
        }),
        summary_points().prop_map(|data_points| D::Summary(Summary { data_points })),
    ])
}

fn metric() -> impl Strategy<Value = Metric> {
    (text(), text(), text(), attributes(), data()).prop_map(
        |(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        },
    )
}

fn request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    let scope_metrics =
        (scope(), vec(metric(), 0..4), text()).prop_map(|(scope, metrics, schema_url)| {
            ScopeMetrics {
                scope,
                metrics,
                schema_url,
            }
        });
    let resource_metrics = (resource(), vec(scope_metrics, 0..3), text()).prop_map(
        |(resource, scope_metrics, schema_url)| ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        },
    );
    vec(resource_metrics, 0..3)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

// ---------------------------------------------------------------------------
// The schema, for the scrambler
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum M {
    Req,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExpHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExpPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    C(Common),
}

impl Schema for M {
    fn field(self, tag: u32) -> Option<Kind<M>> {
        use M::*;
        let msg = |m, singular| Some(Kind::Message(m, singular));
        match (self, tag) {
            (Req, 1) => msg(ResourceMetrics, false),
            (ResourceMetrics, 1) => msg(C(Common::Resource), true),
            (ResourceMetrics, 2) => msg(ScopeMetrics, false),
            (ScopeMetrics, 1) => msg(C(Common::Scope), true),
            (ScopeMetrics, 2) => msg(Metric, false),
            (Metric, 5) => msg(Gauge, true),
            (Metric, 7) => msg(Sum, true),
            (Metric, 9) => msg(Histogram, true),
            (Metric, 10) => msg(ExpHistogram, true),
            (Metric, 11) => msg(Summary, true),
            (Metric, 12) => msg(C(Common::Kv), false),
            (Gauge | Sum, 1) => msg(NumberPoint, false),
            (Histogram, 1) => msg(HistogramPoint, false),
            (ExpHistogram, 1) => msg(ExpPoint, false),
            (Summary, 1) => msg(SummaryPoint, false),
            (NumberPoint, 7) | (HistogramPoint, 9) | (ExpPoint, 1) | (SummaryPoint, 7) => {
                msg(C(Common::Kv), false)
            }
            (NumberPoint, 5) | (HistogramPoint, 8) | (ExpPoint, 11) => msg(Exemplar, false),
            (HistogramPoint, 6 | 7) => Some(Kind::Packed(1)),
            (ExpPoint, 8 | 9) => msg(Buckets, true),
            (Buckets, 2) => Some(Kind::Packed(0)),
            (SummaryPoint, 6) => msg(Quantile, false),
            (Exemplar, 7) => msg(C(Common::Kv), false),
            (C(c), tag) => common(c, tag, C),
            _ => None,
        }
    }
}

/// Where each message type sits: the field numbers leading to it from the request.
const PATHS: &[&[u32]] = &[
    &[],
    &[1],
    &[1, 1],
    &[1, 1, 1],
    &[1, 1, 3],
    &[1, 2],
    &[1, 2, 1],
    &[1, 2, 1, 3],
    &[1, 2, 2],
    &[1, 2, 2, 5],
    &[1, 2, 2, 5, 1],
    &[1, 2, 2, 5, 1, 5],
    &[1, 2, 2, 5, 1, 5, 7],
    &[1, 2, 2, 5, 1, 7],
    &[1, 2, 2, 7],
    &[1, 2, 2, 7, 1],
    &[1, 2, 2, 9],
    &[1, 2, 2, 9, 1],
    &[1, 2, 2, 9, 1, 8],
    &[1, 2, 2, 9, 1, 9],
    &[1, 2, 2, 10],
    &[1, 2, 2, 10, 1],
    &[1, 2, 2, 10, 1, 1],
    &[1, 2, 2, 10, 1, 8],
    &[1, 2, 2, 10, 1, 9],
    &[1, 2, 2, 10, 1, 11],
    &[1, 2, 2, 11],
    &[1, 2, 2, 11, 1],
    &[1, 2, 2, 11, 1, 6],
    &[1, 2, 2, 11, 1, 7],
    &[1, 2, 2, 12],
    &[1, 2, 2, 12, 2],
    &[1, 2, 2, 12, 2, 5],
    &[1, 2, 2, 12, 2, 5, 1],
    &[1, 2, 2, 12, 2, 6],
    &[1, 2, 2, 12, 2, 6, 1],
];

/// Every field number 1..=16 of every message type, in every wire shape, alone in its
/// message: accepted and counted exactly as prost does.
#[test]
fn every_field_in_every_wire_shape_agrees_with_prost() {
    let mut accepted = 0;
    let mut total = 0;
    for path in PATHS {
        for tag in 1..=16 {
            for shape in field_shapes(tag) {
                let bytes = wrap_path(path, &shape);
                if let Err(e) = check_agrees(&bytes) {
                    panic!("path {path:?} field {tag} shape {shape:02x?}: {e}");
                }
                total += 1;
                accepted += usize::from(validate_metrics(&bytes).is_ok());
            }
        }
    }
    // Both outcomes are well represented.
    assert!(
        accepted > total / 4 && accepted < total * 3 / 4,
        "{accepted}/{total}"
    );
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn counts_match_prost_struct(req in request()) {
        let bytes = req.encode_to_vec();
        let stats = validate_metrics(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(stats, expected(&req));
        check_agrees(&bytes)?;
    }

    #[test]
    fn scrambled_encodings_agree(req in request(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let bytes = scramble(M::Req, &req.encode_to_vec(), &mut rng);
        prop_assert!(ExportMetricsServiceRequest::decode(bytes.as_slice()).is_ok());
        check_agrees(&bytes)?;
    }

    #[test]
    fn mutated_encodings_accept_like_prost(req in request(), seed in any::<u64>(), ops in ops()) {
        let mut rng = Rng(seed | 1);
        let mut bytes = if seed % 2 == 0 {
            req.encode_to_vec()
        } else {
            scramble(M::Req, &req.encode_to_vec(), &mut rng)
        };
        mutate(&mut bytes, ops);
        check_agrees(&bytes)?;
    }

    /// Several encoded metrics concatenated are one metric to protobuf: the last `data`
    /// variant wins, and consecutive occurrences of it merge their data points.
    #[test]
    fn merged_metrics_count_like_prost(metrics in vec(metric(), 1..6)) {
        let merged: Vec<u8> = metrics.iter().flat_map(Message::encode_to_vec).collect();
        let bytes = wrap_path(&[1, 2, 2], &merged);
        let stats = validate_metrics(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(stats.metrics, 1);
        check_agrees(&bytes)?;
    }

    #[test]
    fn random_bytes_accept_like_prost(bytes in vec(any::<u8>(), 0..64)) {
        check_agrees(&bytes)?;
    }
}

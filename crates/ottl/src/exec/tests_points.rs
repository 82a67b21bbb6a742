//! End-to-end tests of the data point context on each point kind.

use opentelemetry_proto::tonic::common::v1::{any_value, ArrayValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};

use super::tests_metrics::{applied, entry, int, metric_group, metrics_of, sample_metrics, string};
use super::*;

fn numbers(m: &Metric) -> &[NumberDataPoint] {
    match &m.data {
        Some(Data::Sum(s)) => &s.data_points,
        Some(Data::Gauge(g)) => &g.data_points,
        other => panic!("not a number metric: {other:?}"),
    }
}

fn histograms(m: &Metric) -> &[HistogramDataPoint] {
    match &m.data {
        Some(Data::Histogram(h)) => &h.data_points,
        other => panic!("not a histogram: {other:?}"),
    }
}

fn exponentials(m: &Metric) -> &[ExponentialHistogramDataPoint] {
    match &m.data {
        Some(Data::ExponentialHistogram(e)) => &e.data_points,
        other => panic!("not an exponential histogram: {other:?}"),
    }
}

fn summaries(m: &Metric) -> &[SummaryDataPoint] {
    match &m.data {
        Some(Data::Summary(s)) => &s.data_points,
        other => panic!("not a summary: {other:?}"),
    }
}

/// The error a single statement returns on the sample under `propagate`.
fn failure(statement: &str) -> String {
    let mut req = sample_metrics();
    metric_group(
        Some(ContextKind::DataPoint),
        &[statement],
        ErrorMode::Propagate,
    )
    .apply_metrics(&mut req)
    .expect_err("fails")
    .to_string()
}

#[test]
fn every_point_kind_sees_its_metric_resource_and_scope() {
    let out = applied(
        ContextKind::DataPoint,
        &[
            r#"set(attributes["metric"], metric.name)"#,
            r#"set(attributes["host"], resource.attributes["host.name"]) where scope.name == "scope""#,
            "set(time_unix_nano, start_time_unix_nano + 1000)",
        ],
    );
    let m = metrics_of(&out);
    let tagged = |attrs: &[_], name: &str| {
        assert_eq!(entry(attrs, "metric"), string(name));
        assert_eq!(entry(attrs, "host"), string("localhost"));
    };
    numbers(&m[0])
        .iter()
        .for_each(|p| tagged(&p.attributes, "operationA"));
    histograms(&m[1])
        .iter()
        .for_each(|p| tagged(&p.attributes, "operationB"));
    exponentials(&m[2])
        .iter()
        .for_each(|p| tagged(&p.attributes, "operationC"));
    summaries(&m[3])
        .iter()
        .for_each(|p| tagged(&p.attributes, "operationD"));
    numbers(&m[4])
        .iter()
        .for_each(|p| tagged(&p.attributes, "operationE"));
    assert_eq!(numbers(&m[0])[0].time_unix_nano, 1_581_452_772_000_001_321);
    // The second summary point has no start time.
    assert_eq!(summaries(&m[3])[1].time_unix_nano, 1000);
}

#[test]
fn a_point_statement_edits_its_metric() {
    let out = applied(
        ContextKind::DataPoint,
        &[r#"set(metric.description, "has 3.7") where value_double == 3.7"#],
    );
    let m = metrics_of(&out);
    assert_eq!(m[0].description, "has 3.7");
    assert_eq!(m[4].description, "operationE description");
}

#[test]
fn histogram_points() {
    let out = applied(
        ContextKind::DataPoint,
        &[
            r#"set(count, count + 1) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(sum, 2.5) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(bucket_counts, [1, 2, 3]) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(explicit_bounds, [0.5, 1.0]) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(attributes["bounds"], explicit_bounds) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(attributes["buckets"], Len(bucket_counts)) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
            r#"set(attributes["text"], String(bucket_counts)) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#,
        ],
    );
    let points = histograms(&metrics_of(&out)[1]);
    assert_eq!(points.iter().map(|p| p.count).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(points[1].sum, Some(2.5));
    assert_eq!(points[0].bucket_counts, [1, 2, 3]);
    assert_eq!(points[0].explicit_bounds, [0.5, 1.0]);
    let doubles = |d: &[f64]| {
        Some(any_value::Value::ArrayValue(ArrayValue {
            values: d
                .iter()
                .map(|x| opentelemetry_proto::tonic::common::v1::AnyValue {
                    value: Some(any_value::Value::DoubleValue(*x)),
                })
                .collect(),
        }))
    };
    assert_eq!(entry(&points[0].attributes, "bounds"), doubles(&[0.5, 1.0]));
    assert_eq!(entry(&points[0].attributes, "buckets"), int(3));
    assert_eq!(entry(&points[0].attributes, "text"), string("[1,2,3]"));
}

#[test]
fn histogram_refusals() {
    assert_eq!(
        failure(r#"set(explicit_bounds, [1, 2]) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#),
        "failed to execute statement: set(explicit_bounds, [1, 2]) where metric.type == METRIC_DATA_TYPE_HISTOGRAM, invalid value type provided for a slice of float64: int64"
    );
    assert_eq!(
        failure(r#"set(attributes["b"], bucket_counts) where metric.type == METRIC_DATA_TYPE_HISTOGRAM"#),
        "failed to execute statement: set(attributes[\"b\"], bucket_counts) where metric.type == METRIC_DATA_TYPE_HISTOGRAM, unsupported type []uint64 for set operation; current value type is Empty"
    );
    assert_eq!(
        failure("set(bucket_counts, [1])"),
        "failed to execute statement: set(bucket_counts, [1]), expects pmetric.HistogramDataPoint but got pmetric.NumberDataPoint"
    );
    assert_eq!(
        failure("set(count, 1)"),
        "failed to execute statement: set(count, 1), unsupported data point type: pmetric.NumberDataPoint"
    );
}

#[test]
fn exponential_histogram_points() {
    let only = "where metric.type == METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM";
    let statements = [
        format!(r#"set(attributes["off"], negative.offset) {only}"#),
        format!("set(scale, 4) {only}"),
        format!("set(zero_count, zero_count + 6) {only}"),
        format!("set(positive.offset, -2) {only}"),
        format!("set(positive.bucket_counts, [1, 0, 3]) {only}"),
        format!("set(negative, positive) {only}"),
        format!(r#"set(attributes["n"], Len(negative.bucket_counts)) {only}"#),
    ];
    let texts: Vec<&str> = statements.iter().map(String::as_str).collect();
    let out = applied(ContextKind::DataPoint, &texts);
    let points = exponentials(&metrics_of(&out)[2]);
    let want = Some(Buckets {
        offset: -2,
        bucket_counts: vec![1, 0, 3],
    });
    for (p, offset_before) in points.iter().zip([1, 0]) {
        assert_eq!(p.scale, 4);
        assert_eq!(p.positive, want);
        assert_eq!(p.negative, want);
        assert_eq!(entry(&p.attributes, "off"), int(offset_before));
        assert_eq!(entry(&p.attributes, "n"), int(3));
    }
    assert_eq!(points[0].zero_count, 7);
    assert_eq!(points[1].zero_count, 6);
    assert_eq!(
        failure("set(positive, 1)"),
        "failed to execute statement: set(positive, 1), expects pmetric.ExponentialHistogramDataPointBuckets but got int64"
    );
    assert_eq!(
        failure("set(scale, 1)"),
        "failed to execute statement: set(scale, 1), expects pmetric.ExponentialHistogramDataPoint but got pmetric.NumberDataPoint"
    );
}

#[test]
fn summary_points() {
    let only = "where metric.type == METRIC_DATA_TYPE_SUMMARY";
    let statements = [
        format!(r#"set(attributes["q"], Len(quantile_values)) {only}"#),
        format!("set(quantile_values, nil) {only}"),
        format!("set(sum, sum * 2) {only}"),
        format!("set(count, 3) {only}"),
    ];
    let texts: Vec<&str> = statements.iter().map(String::as_str).collect();
    let out = applied(ContextKind::DataPoint, &texts);
    let points = summaries(&metrics_of(&out)[3]);
    assert_eq!(entry(&points[0].attributes, "q"), int(2));
    assert_eq!(entry(&points[1].attributes, "q"), int(0));
    assert!(points
        .iter()
        .all(|p| p.quantile_values.is_empty() && p.count == 3));
    assert_eq!(points[0].sum, 24.68);
    assert_eq!(points[1].sum, 86.42);
    assert_eq!(
        failure("set(exemplars, nil) where metric.type == METRIC_DATA_TYPE_SUMMARY"),
        "failed to execute statement: set(exemplars, nil) where metric.type == METRIC_DATA_TYPE_SUMMARY, unsupported data point type: pmetric.SummaryDataPoint"
    );
}

#[test]
fn flags_and_fields_other_kinds_lack() {
    let out = applied(
        ContextKind::DataPoint,
        &[
            r#"set(flags, FLAG_NO_RECORDED_VALUE) where attributes["attr1"] == "test1""#,
            // Fields a kind lacks read as nil.
            r#"set(attributes["no_sum"], true) where sum == nil"#,
            r#"set(attributes["no_value"], true) where value_int == nil"#,
        ],
    );
    let m = metrics_of(&out);
    assert_eq!(numbers(&m[0])[0].flags, 1);
    assert_eq!(histograms(&m[1])[1].flags, 1);
    assert_eq!(exponentials(&m[2])[0].flags, 1);
    assert_eq!(summaries(&m[3])[0].flags, 1);
    assert_eq!(summaries(&m[3])[1].flags, 0);
    let yes = Some(any_value::Value::BoolValue(true));
    assert_eq!(entry(&numbers(&m[4])[0].attributes, "no_sum"), yes);
    assert_eq!(entry(&histograms(&m[1])[0].attributes, "no_sum"), None);
    assert_eq!(entry(&histograms(&m[1])[0].attributes, "no_value"), yes);
    assert_eq!(entry(&numbers(&m[0])[1].attributes, "no_value"), None);
}

#[test]
fn error_modes_on_points() {
    let statements = [
        "set(value_double, 1.5)",
        r#"set(attributes["after"], true)"#,
    ];
    assert_eq!(
        failure(statements[0]),
        "failed to execute statement: set(value_double, 1.5), expects pmetric.NumberDataPoint but got pmetric.HistogramDataPoint"
    );
    for mode in [ErrorMode::Ignore, ErrorMode::Silent] {
        let mut req = sample_metrics();
        let g = metric_group(Some(ContextKind::DataPoint), &statements, mode);
        assert!(g.apply_metrics(&mut req).expect("errors are not returned"));
        let m = metrics_of(&req);
        assert_eq!(numbers(&m[0])[1].value, Some(NumberValue::AsDouble(1.5)));
        assert!(entry(&histograms(&m[1])[0].attributes, "after").is_some());
        assert!(entry(&summaries(&m[3])[1].attributes, "after").is_some());
    }
}

#[test]
fn group_conditions_pick_points() {
    let g = StatementGroup::compile(
        Some(ContextKind::DataPoint),
        Signal::Metrics,
        &[r#"set(attributes["picked"], true)"#.to_string()],
        &[
            r#"metric.name == "operationB""#.to_string(),
            "value_double == 1.0".to_string(),
        ],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let mut req = sample_metrics();
    assert!(g.apply_metrics(&mut req).expect("applies"));
    let m = metrics_of(&req);
    let picked = |attrs: &[_]| entry(attrs, "picked").is_some();
    assert!(picked(&numbers(&m[0])[0].attributes));
    assert!(!picked(&numbers(&m[0])[1].attributes));
    assert!(histograms(&m[1]).iter().all(|p| picked(&p.attributes)));
    assert!(!picked(&exponentials(&m[2])[0].attributes));
}

#[test]
fn emptying_data_points_from_a_point_ends_its_loop() {
    let statements = [
        "set(metric.data_points, nil) where value_double == 1.0",
        r#"set(attributes["after"], true)"#,
    ];
    // The point the statements ran on is gone: later statements on it fail.
    let mut req = sample_metrics();
    let err = metric_group(
        Some(ContextKind::DataPoint),
        &statements,
        ErrorMode::Propagate,
    )
    .apply_metrics(&mut req)
    .expect_err("the point is gone");
    assert_eq!(
        err.to_string(),
        "failed to execute statement: set(attributes[\"after\"], true), the data point is no longer part of its metric"
    );
    let mut req = sample_metrics();
    let g = metric_group(Some(ContextKind::DataPoint), &statements, ErrorMode::Silent);
    assert!(g.apply_metrics(&mut req).expect("applies"));
    let m = metrics_of(&req);
    assert!(numbers(&m[0]).is_empty());
    assert!(entry(&numbers(&m[4])[0].attributes, "after").is_some());
}

//! End-to-end tests of the metric context and of running groups over metrics: statements
//! compiled from text and applied to prost requests. The request is the filter processor's
//! test fixture (`constructMetrics`).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;
use crate::value::{kv, Value};

const START: u64 = 1_581_452_772_000_000_321;
const TIME: u64 = 1_615_584_433_000_000_322;

pub(crate) fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, &Value::str(v))).collect()
}

fn common_attrs() -> Vec<KeyValue> {
    attrs(&[("attr1", "test1"), ("attr2", "test2"), ("attr3", "test3")])
}

fn number(value: f64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: START,
        value: Some(NumberValue::AsDouble(value)),
        attributes: common_attrs(),
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: format!("{name} description"),
        unit: format!("{name} unit"),
        data: Some(data),
        ..Default::default()
    }
}

/// Sum (2 points), histogram (2), exponential histogram (2), summary (2), gauge (1).
pub(crate) fn sample_metrics() -> ExportMetricsServiceRequest {
    let sum = Data::Sum(Sum {
        data_points: vec![number(1.0), number(3.7)],
        aggregation_temporality: 2,
        is_monotonic: true,
    });
    let histogram = Data::Histogram(Histogram {
        data_points: vec![
            HistogramDataPoint {
                start_time_unix_nano: START,
                attributes: common_attrs(),
                count: 1,
                sum: Some(5.0),
                ..Default::default()
            },
            HistogramDataPoint {
                start_time_unix_nano: START,
                attributes: common_attrs(),
                count: 3,
                ..Default::default()
            },
        ],
        aggregation_temporality: 1,
    });
    let buckets = |offset| Buckets {
        offset,
        bucket_counts: Vec::new(),
    };
    let exponential = Data::ExponentialHistogram(ExponentialHistogram {
        data_points: vec![
            ExponentialHistogramDataPoint {
                start_time_unix_nano: START,
                attributes: common_attrs(),
                count: 1,
                scale: 1,
                zero_count: 1,
                positive: Some(buckets(1)),
                negative: Some(buckets(1)),
                ..Default::default()
            },
            ExponentialHistogramDataPoint {
                start_time_unix_nano: START,
                attributes: common_attrs(),
                ..Default::default()
            },
        ],
        aggregation_temporality: 0,
    });
    let quantile = |quantile, value| ValueAtQuantile { quantile, value };
    let summary = Data::Summary(Summary {
        data_points: vec![
            SummaryDataPoint {
                start_time_unix_nano: START,
                time_unix_nano: TIME,
                attributes: common_attrs(),
                count: 1234,
                sum: 12.34,
                quantile_values: vec![quantile(0.99, 123.0), quantile(0.95, 321.0)],
                ..Default::default()
            },
            SummaryDataPoint {
                sum: 43.21,
                ..Default::default()
            },
        ],
    });
    let gauge = Data::Gauge(Gauge {
        data_points: vec![number(2.0)],
    });
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: attrs(&[("host.name", "localhost")]),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "scope".into(),
                    ..Default::default()
                }),
                metrics: vec![
                    metric("operationA", sum),
                    metric("operationB", histogram),
                    metric("operationC", exponential),
                    metric("operationD", summary),
                    metric("operationE", gauge),
                ],
                ..Default::default()
            }],
            schema_url: "test_schema_url".into(),
        }],
    }
}

pub(crate) fn metric_group(
    context: Option<ContextKind>,
    statements: &[&str],
    mode: ErrorMode,
) -> StatementGroup {
    let texts: Vec<String> = statements.iter().map(|t| t.to_string()).collect();
    StatementGroup::compile(context, Signal::Metrics, &texts, &[], mode)
        .unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

/// Applies statements of one context (propagating errors) to the sample.
pub(crate) fn applied(context: ContextKind, statements: &[&str]) -> ExportMetricsServiceRequest {
    let mut req = sample_metrics();
    metric_group(Some(context), statements, ErrorMode::Propagate)
        .apply_metrics(&mut req)
        .unwrap_or_else(|e| panic!("applies: {e}"));
    req
}

pub(crate) fn metrics_of(req: &ExportMetricsServiceRequest) -> &[Metric] {
    &req.resource_metrics[0].scope_metrics[0].metrics
}

/// The value under `key` (`None` when absent or empty).
pub(crate) fn entry(kvs: &[KeyValue], key: &str) -> Option<any_value::Value> {
    kvs.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

pub(crate) fn string(s: &str) -> Option<any_value::Value> {
    Some(any_value::Value::StringValue(s.into()))
}

pub(crate) fn int(i: i64) -> Option<any_value::Value> {
    Some(any_value::Value::IntValue(i))
}

fn sum_of(m: &Metric) -> &Sum {
    match &m.data {
        Some(Data::Sum(s)) => s,
        other => panic!("not a sum: {other:?}"),
    }
}

#[test]
fn metric_names_descriptions_and_units() {
    let out = applied(
        ContextKind::Metric,
        &[
            r#"set(description, Concat([name, unit], "/")) where type == METRIC_DATA_TYPE_SUM"#,
            r#"set(unit, "s") where name == "operationE""#,
            r#"set(name, "renamed") where is_monotonic == true"#,
        ],
    );
    let m = metrics_of(&out);
    assert_eq!(m[0].name, "renamed");
    assert_eq!(m[0].description, "operationA/operationA unit");
    assert_eq!(m[1].name, "operationB");
    assert_eq!(m[1].description, "operationB description");
    assert_eq!(m[4].unit, "s");
}

#[test]
fn setting_the_type_changes_nothing() {
    let mut req = sample_metrics();
    let g = metric_group(
        Some(ContextKind::Metric),
        &["set(type, METRIC_DATA_TYPE_GAUGE)"],
        ErrorMode::Propagate,
    );
    // The editor ran (otelcol's setter accepts the value) but leaves the metric as it was.
    assert!(g.apply_metrics(&mut req).expect("applies"));
    assert_eq!(req, sample_metrics());
}

#[test]
fn aggregation_temporality_only_where_the_type_has_one() {
    let out = applied(
        ContextKind::Metric,
        &[
            r#"set(description, "none") where aggregation_temporality == nil"#,
            "set(aggregation_temporality, AGGREGATION_TEMPORALITY_DELTA)",
            r#"set(unit, "cumulative") where aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE"#,
        ],
    );
    let m = metrics_of(&out);
    assert_eq!(sum_of(&m[0]).aggregation_temporality, 1);
    assert!(matches!(&m[1].data, Some(Data::Histogram(h)) if h.aggregation_temporality == 1));
    assert!(
        matches!(&m[2].data, Some(Data::ExponentialHistogram(e)) if e.aggregation_temporality == 1)
    );
    let described: Vec<&str> = m.iter().map(|m| m.description.as_str()).collect();
    assert_eq!(
        described,
        [
            "operationA description",
            "operationB description",
            "operationC description",
            "none",
            "none"
        ]
    );
    assert!(m.iter().all(|m| m.unit != "cumulative"));
}

#[test]
fn is_monotonic_reads_and_writes_sums_only() {
    let out = applied(
        ContextKind::Metric,
        &[
            r#"set(description, "not a sum") where is_monotonic == nil"#,
            "set(is_monotonic, false)",
        ],
    );
    let m = metrics_of(&out);
    assert!(!sum_of(&m[0]).is_monotonic);
    assert_eq!(m[0].description, "operationA description");
    assert!(m[1..].iter().all(|m| m.description == "not a sum"));

    let mut req = sample_metrics();
    let err = metric_group(
        Some(ContextKind::Metric),
        &["set(is_monotonic, 1)"],
        ErrorMode::Propagate,
    )
    .apply_metrics(&mut req)
    .expect_err("an int is not a bool");
    assert_eq!(
        err.to_string(),
        "failed to execute statement: set(is_monotonic, 1), expects bool but got int64"
    );
}

#[test]
fn data_points_and_metadata() {
    let out = applied(
        ContextKind::Metric,
        &[
            r#"set(metadata["points"], Len(data_points))"#,
            r#"set(metadata["list"], IsList(data_points))"#,
            r#"set(data_points, nil) where name == "operationE""#,
        ],
    );
    let m = metrics_of(&out);
    let points: Vec<_> = m.iter().map(|m| entry(&m.metadata, "points")).collect();
    assert_eq!(points, [int(2), int(2), int(2), int(2), int(1)]);
    assert_eq!(
        entry(&m[0].metadata, "list"),
        Some(any_value::Value::BoolValue(true))
    );
    assert!(matches!(&m[4].data, Some(Data::Gauge(g)) if g.data_points.is_empty()));

    let mut req = sample_metrics();
    let err = metric_group(
        Some(ContextKind::Metric),
        &["set(data_points, metadata)"],
        ErrorMode::Propagate,
    )
    .apply_metrics(&mut req)
    .expect_err("a map is not a point slice");
    assert_eq!(
        err.to_string(),
        "failed to execute statement: set(data_points, metadata), expects pmetric.NumberDataPointSlice but got pcommon.Map"
    );
}

#[test]
fn metric_reads_resource_and_scope() {
    let out = applied(
        ContextKind::Metric,
        &[
            r#"set(metadata["host"], resource.attributes["host.name"])"#,
            r#"set(metadata["scope"], scope.name) where resource.schema_url == "test_schema_url""#,
            r#"delete_key(metadata, "host") where name == "operationB""#,
        ],
    );
    let m = metrics_of(&out);
    assert_eq!(entry(&m[0].metadata, "host"), string("localhost"));
    assert_eq!(entry(&m[4].metadata, "scope"), string("scope"));
    assert_eq!(entry(&m[1].metadata, "host"), None);
}

#[test]
fn nothing_ran_reports_false() {
    for context in [ContextKind::Metric, ContextKind::DataPoint] {
        let mut req = sample_metrics();
        let g = metric_group(
            Some(context),
            &[r#"set(metric.name, "x") where metric.name == "nope""#],
            ErrorMode::Propagate,
        );
        assert!(!g.apply_metrics(&mut req).expect("applies"));
        assert_eq!(req, sample_metrics());
    }
    let mut req = sample_metrics();
    let g = metric_group(
        Some(ContextKind::Resource),
        &[r#"set(attributes["a"], "b")"#],
        ErrorMode::Propagate,
    );
    assert!(g.apply_metrics(&mut req).expect("applies"));
    assert_eq!(
        entry(
            &req.resource_metrics[0]
                .resource
                .as_ref()
                .expect("resource")
                .attributes,
            "a"
        ),
        string("b")
    );
}

#[test]
fn inference_for_metrics() {
    let cases: &[(&str, ContextKind)] = &[
        (r#"set(metric.name, "x")"#, ContextKind::Metric),
        (
            r#"set(datapoint.attributes["a"], metric.name)"#,
            ContextKind::DataPoint,
        ),
        (
            r#"set(resource.attributes["a"], "b") where metric.name == "x""#,
            ContextKind::Metric,
        ),
        (r#"set(scope.name, "s")"#, ContextKind::Scope),
        (
            // The resource context has no enums: the first lower context with the symbol.
            r#"set(resource.attributes["a"], "b") where resource.attributes["t"] == METRIC_DATA_TYPE_SUM"#,
            ContextKind::DataPoint,
        ),
        (
            r#"set(metric.description, "d") where metric.type == METRIC_DATA_TYPE_SUM"#,
            ContextKind::Metric,
        ),
    ];
    for (statement, want) in cases {
        let g = metric_group(None, &[statement], ErrorMode::Propagate);
        assert_eq!(g.context(), *want, "{statement}");
    }
    let errors = StatementGroup::compile(
        None,
        Signal::Metrics,
        &[r#"set(span.name, "x")"#.to_string()],
        &[],
        ErrorMode::Propagate,
    )
    .expect_err("span is not a metrics context");
    assert_eq!(
        errors[0].message,
        r#"inferred context "span" is not a valid candidate, valid contexts: ["datapoint", "metric", "scope", "resource"]"#
    );
    let errors = StatementGroup::compile(
        Some(ContextKind::Log),
        Signal::Metrics,
        &[r#"set(attributes["a"], "b")"#.to_string()],
        &[],
        ErrorMode::Propagate,
    )
    .expect_err("log is not a metrics context");
    assert_eq!(
        errors[0].message,
        "context log is not available for Metrics"
    );
}

#[test]
fn point_paths_are_not_metric_paths() {
    let errors = StatementGroup::compile(
        Some(ContextKind::Metric),
        Signal::Metrics,
        &["set(value_double, 1.0)".to_string()],
        &[],
        ErrorMode::Propagate,
    )
    .expect_err("no such metric path");
    assert!(
        errors[0]
            .message
            .ends_with(r#"segment "value_double" from path "value_double" is not a valid path nor a valid OTTL keyword for the metric context; valid paths: name, description, unit, type, aggregation_temporality, is_monotonic, data_points, metadata, cache"#),
        "{}",
        errors[0]
    );
}

#[test]
fn context_names_from_configuration() {
    assert_eq!(
        ContextKind::from_name("DataPoint"),
        Some(ContextKind::DataPoint)
    );
    assert_eq!(ContextKind::from_name("metric"), Some(ContextKind::Metric));
    assert_eq!(
        ContextKind::from_name("SPANEVENT"),
        Some(ContextKind::SpanEvent)
    );
    assert_eq!(ContextKind::from_name("instrumentation_scope"), None);
    assert_eq!(ContextKind::from_name("exemplar"), None);
}

#[test]
fn number_value_kinds() {
    let out = applied(
        ContextKind::DataPoint,
        &[
            "set(value_double, value_double * 2) where metric.name == \"operationA\"",
            "set(value_int, 5) where metric.type == METRIC_DATA_TYPE_GAUGE",
            r#"set(attributes["double_now"], value_double) where metric.type == METRIC_DATA_TYPE_GAUGE"#,
        ],
    );
    let m = metrics_of(&out);
    let values: Vec<Option<NumberValue>> =
        sum_of(&m[0]).data_points.iter().map(|p| p.value).collect();
    assert_eq!(
        values,
        [
            Some(NumberValue::AsDouble(2.0)),
            Some(NumberValue::AsDouble(7.4))
        ]
    );
    let Some(Data::Gauge(g)) = &m[4].data else {
        panic!("gauge")
    };
    assert_eq!(g.data_points[0].value, Some(NumberValue::AsInt(5)));
    // pdata reads the double of an int point as zero.
    assert_eq!(
        entry(&g.data_points[0].attributes, "double_now"),
        Some(any_value::Value::DoubleValue(0.0))
    );
}

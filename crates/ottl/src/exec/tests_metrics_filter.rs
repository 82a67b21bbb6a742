//! The filter processor on metrics and on logs' resources, with cases from otelcol's
//! filter processor tests (`TestFilterMetricProcessorWithOTTL`). The sample holds 9 points.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Metric, Sum};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::tests_metrics::{attrs, metrics_of, sample_metrics};
use super::*;

fn set(context: ContextKind, conditions: &[&str], mode: ErrorMode) -> ConditionSet {
    let texts: Vec<String> = conditions.iter().map(|c| c.to_string()).collect();
    ConditionSet::compile(context, &texts, mode).unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

fn names(req: &ExportMetricsServiceRequest) -> Vec<&str> {
    metrics_of(req).iter().map(|m| m.name.as_str()).collect()
}

fn points_per_metric(req: &ExportMetricsServiceRequest) -> Vec<usize> {
    metrics_of(req)
        .iter()
        .map(crate::contexts::proto_metrics::point_count)
        .collect()
}

/// Filters the sample with one condition set at the given level.
fn filtered(
    level: ContextKind,
    conditions: &[&str],
) -> (FilterOutcome, ExportMetricsServiceRequest) {
    let conditions = set(level, conditions, ErrorMode::Ignore);
    let mut filters = MetricFilters::default();
    match level {
        ContextKind::Resource => filters.resource = Some(&conditions),
        ContextKind::Metric => filters.metric = Some(&conditions),
        _ => filters.data_point = Some(&conditions),
    }
    let mut req = sample_metrics();
    let outcome = filter_metrics(filters, &mut req).expect("filters");
    (outcome, req)
}

fn outcome(changed: bool, remaining_items: usize) -> FilterOutcome {
    FilterOutcome {
        changed,
        remaining_items,
    }
}

#[test]
fn resource_conditions_drop_whole_resources() {
    let (out, req) = filtered(
        ContextKind::Resource,
        &[r#"attributes["host.name"] == "localhost""#],
    );
    assert_eq!(out, outcome(true, 0));
    assert!(req.resource_metrics.is_empty());
    let (out, req) = filtered(ContextKind::Resource, &[r#"schema_url == "other""#]);
    assert_eq!(out, outcome(false, 9));
    assert_eq!(req, sample_metrics());
}

#[test]
fn metric_conditions_drop_metrics() {
    let (out, req) = filtered(ContextKind::Metric, &[r#"name == "operationA""#]);
    assert_eq!(out, outcome(true, 7));
    assert_eq!(
        names(&req),
        ["operationB", "operationC", "operationD", "operationE"]
    );
    let (out, req) = filtered(ContextKind::Metric, &[r#"IsMatch(name, "operation.*")"#]);
    assert_eq!(out, outcome(true, 0));
    assert!(req.resource_metrics.is_empty());
    let (out, _) = filtered(ContextKind::Metric, &["type == METRIC_DATA_TYPE_SUM"]);
    assert_eq!(out, outcome(true, 7));
    // Conditions are ORed; one reaching the resource is enough.
    let (out, req) = filtered(
        ContextKind::Metric,
        &[
            r#"resource.attributes["not real"] == "unknown""#,
            "type != nil",
        ],
    );
    assert_eq!(out, outcome(true, 0));
    assert!(req.resource_metrics.is_empty());
}

#[test]
fn data_point_conditions_drop_points_of_each_kind() {
    let cases: &[(&str, usize, [usize; 5])] = &[
        (
            "metric.type == METRIC_DATA_TYPE_SUM and value_double == 1.0",
            8,
            [1, 2, 2, 2, 1],
        ),
        (
            "metric.type == METRIC_DATA_TYPE_HISTOGRAM and count == 1",
            8,
            [2, 1, 2, 2, 1],
        ),
        (
            "metric.type == METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM and count == 1",
            8,
            [2, 2, 1, 2, 1],
        ),
        (
            "metric.type == METRIC_DATA_TYPE_SUMMARY and sum == 43.21",
            8,
            [2, 2, 2, 1, 1],
        ),
    ];
    for (condition, remaining, per_metric) in cases {
        let (out, req) = filtered(ContextKind::DataPoint, &[condition]);
        assert_eq!(out, outcome(true, *remaining), "{condition}");
        assert_eq!(points_per_metric(&req), per_metric, "{condition}");
    }
    // The gauge's only point is 2.0: nothing matches.
    let (out, req) = filtered(
        ContextKind::DataPoint,
        &["metric.type == METRIC_DATA_TYPE_GAUGE and value_double == 1.0"],
    );
    assert_eq!(out, outcome(false, 9));
    assert_eq!(req, sample_metrics());
}

#[test]
fn a_metric_left_without_points_is_removed() {
    let cases: &[(&str, usize, &[&str])] = &[
        (
            "metric.type == METRIC_DATA_TYPE_SUM",
            7,
            &["operationB", "operationC", "operationD", "operationE"],
        ),
        (
            "metric.type == METRIC_DATA_TYPE_GAUGE",
            8,
            &["operationA", "operationB", "operationC", "operationD"],
        ),
        (
            "metric.type == METRIC_DATA_TYPE_HISTOGRAM",
            7,
            &["operationA", "operationC", "operationD", "operationE"],
        ),
        (r#"attributes["attr1"] == "test1" or sum == 43.21"#, 0, &[]),
    ];
    for (condition, remaining, left) in cases {
        let (out, req) = filtered(ContextKind::DataPoint, &[condition]);
        assert_eq!(out, outcome(true, *remaining), "{condition}");
        if left.is_empty() {
            assert!(req.resource_metrics.is_empty(), "{condition}");
        } else {
            assert_eq!(names(&req), *left, "{condition}");
        }
    }
}

fn with_empty_sum() -> ExportMetricsServiceRequest {
    let mut req = sample_metrics();
    let metrics = &mut req.resource_metrics[0].scope_metrics[0].metrics;
    metrics.truncate(0);
    metrics.push(Metric {
        name: "operationA".into(),
        data: Some(Data::Sum(Sum::default())),
        ..Default::default()
    });
    metrics.push(Metric {
        name: "no type".into(),
        ..Default::default()
    });
    req
}

#[test]
fn pointless_metrics_go_only_under_a_data_point_filter() {
    let never = set(ContextKind::DataPoint, &["false"], ErrorMode::Ignore);
    let mut req = with_empty_sum();
    let out = filter_metrics(
        MetricFilters {
            data_point: Some(&never),
            ..MetricFilters::default()
        },
        &mut req,
    )
    .expect("filters");
    // The empty sum goes; a metric without a data type is kept.
    assert_eq!(out, outcome(true, 0));
    assert_eq!(names(&req), ["no type"]);

    let never = set(ContextKind::Metric, &["false"], ErrorMode::Ignore);
    let mut req = with_empty_sum();
    let out = filter_metrics(
        MetricFilters {
            metric: Some(&never),
            ..MetricFilters::default()
        },
        &mut req,
    )
    .expect("filters");
    assert_eq!(out, outcome(false, 0));
    assert_eq!(req, with_empty_sum());
}

#[test]
fn filter_error_modes() {
    // `Substring` past the end of the string fails at run time.
    let failing = [r#"Substring("", 0, 100) == "test""#];
    for mode in [ErrorMode::Ignore, ErrorMode::Silent] {
        let metric = set(ContextKind::Metric, &failing, mode);
        let mut req = sample_metrics();
        let filters = MetricFilters {
            metric: Some(&metric),
            ..MetricFilters::default()
        };
        assert_eq!(
            filter_metrics(filters, &mut req).expect("errors are not returned"),
            outcome(false, 9)
        );
    }
    let point = set(ContextKind::DataPoint, &failing, ErrorMode::Propagate);
    let mut req = sample_metrics();
    let filters = MetricFilters {
        data_point: Some(&point),
        ..MetricFilters::default()
    };
    let err = filter_metrics(filters, &mut req).expect_err("propagates");
    assert!(
        err.to_string()
            .starts_with(r#"failed to eval condition: Substring("", 0, 100) == "test", "#),
        "{err}"
    );
}

#[test]
fn all_levels_together() {
    let resource = set(
        ContextKind::Resource,
        &[r#"attributes["x"] == "y""#],
        ErrorMode::Ignore,
    );
    let metric = set(
        ContextKind::Metric,
        &[r#"name == "operationB""#],
        ErrorMode::Ignore,
    );
    let point = set(
        ContextKind::DataPoint,
        &[r#"metric.name == "operationB" or value_double == 3.7"#],
        ErrorMode::Ignore,
    );
    let mut req = sample_metrics();
    let out = filter_metrics(
        MetricFilters {
            resource: Some(&resource),
            metric: Some(&metric),
            data_point: Some(&point),
        },
        &mut req,
    )
    .expect("filters");
    assert_eq!(out, outcome(true, 6));
    assert_eq!(points_per_metric(&req), [1, 2, 2, 1]);
}

fn logs_from(hosts: &[&str]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: hosts
            .iter()
            .map(|host| ResourceLogs {
                resource: Some(Resource {
                    attributes: attrs(&[("host.name", host)]),
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        LogRecord {
                            severity_number: 9,
                            ..Default::default()
                        },
                        LogRecord {
                            severity_number: 17,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

#[test]
fn log_resources_and_records() {
    let resource = set(
        ContextKind::Resource,
        &[r#"attributes["host.name"] == "a""#],
        ErrorMode::Propagate,
    );
    let mut req = logs_from(&["a", "b", "c"]);
    let only_resources = LogFilters {
        resource: Some(&resource),
        ..LogFilters::default()
    };
    let out = filter_logs(only_resources, &mut req).expect("filters");
    assert_eq!(out, outcome(true, 4));
    assert_eq!(req, logs_from(&["b", "c"]));

    let info = set(
        ContextKind::Log,
        &["severity_number < SEVERITY_NUMBER_ERROR"],
        ErrorMode::Propagate,
    );
    let mut req = logs_from(&["a", "b"]);
    let both = LogFilters {
        resource: Some(&resource),
        log: Some(&info),
    };
    let out = filter_logs(both, &mut req).expect("filters");
    assert_eq!(out, outcome(true, 1));
    assert_eq!(req.resource_logs.len(), 1);
    assert_eq!(
        req.resource_logs[0].scope_logs[0].log_records[0].severity_number,
        17
    );

    let mut req = logs_from(&["b"]);
    let out = filter_logs(LogFilters::default(), &mut req).expect("filters");
    assert_eq!(out, outcome(false, 2));
}

//! Splitting one encoded walk into one `ResourceMetrics` per value of a label.
//!
//! A connector's store keys series by label set, and `service.name` is one of those labels;
//! OTLP consumers (Mimir, Tempo's generator, another collector) expect it on the resource,
//! where the spanmetrics connector of otelcol puts it.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::string_kv;

/// Regroups every point of `request` under a resource whose only attribute is `key` with the
/// point's value of that attribute (points without it go under a resource without
/// attributes). Points keep the attribute too, so nothing is lost for consumers that read
/// only points. Metric metadata and scope are copied into each group; groups are ordered by
/// value, points keep their order within a group.
pub fn group_by_resource_attribute(
    request: ExportMetricsServiceRequest,
    key: &str,
) -> ExportMetricsServiceRequest {
    let mut groups: BTreeMap<Option<String>, Vec<ScopeMetrics>> = BTreeMap::new();
    for rm in request.resource_metrics {
        for sm in rm.scope_metrics {
            let mut per_value: BTreeMap<Option<String>, Vec<Metric>> = BTreeMap::new();
            for m in sm.metrics {
                split_metric(m, key, &mut per_value);
            }
            for (value, metrics) in per_value {
                groups.entry(value).or_default().push(ScopeMetrics {
                    scope: sm.scope.clone(),
                    metrics,
                    schema_url: sm.schema_url.clone(),
                });
            }
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: groups
            .into_iter()
            .map(|(value, scope_metrics)| ResourceMetrics {
                resource: Some(Resource {
                    attributes: value.map(|v| string_kv(key, &v)).into_iter().collect(),
                    ..Resource::default()
                }),
                scope_metrics,
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn string_value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

/// Moves the points of `m` into a copy of `m` per value of `key`.
fn split_metric(m: Metric, key: &str, out: &mut BTreeMap<Option<String>, Vec<Metric>>) {
    let Metric {
        name,
        description,
        unit,
        metadata,
        data,
    } = m;
    let Some(data) = data else { return };
    // The copy of this metric in each group, by index in that group's list.
    let mut made: BTreeMap<Option<String>, usize> = BTreeMap::new();
    macro_rules! regroup {
        ($d:ident, $variant:ident) => {{
            let points = std::mem::take(&mut $d.data_points);
            let template = metric::Data::$variant($d);
            for p in points {
                let value = string_value(&p.attributes, key).map(str::to_owned);
                let list = out.entry(value.clone()).or_default();
                let i = *made.entry(value).or_insert_with(|| {
                    list.push(Metric {
                        name: name.clone(),
                        description: description.clone(),
                        unit: unit.clone(),
                        metadata: metadata.clone(),
                        data: Some(template.clone()),
                    });
                    list.len() - 1
                });
                if let Some(Metric {
                    data: Some(metric::Data::$variant(d)),
                    ..
                }) = list.get_mut(i)
                {
                    d.data_points.push(p);
                }
            }
        }};
    }
    match data {
        metric::Data::Sum(mut d) => regroup!(d, Sum),
        metric::Data::Gauge(mut d) => regroup!(d, Gauge),
        metric::Data::Histogram(mut d) => regroup!(d, Histogram),
        metric::Data::ExponentialHistogram(mut d) => regroup!(d, ExponentialHistogram),
        metric::Data::Summary(mut d) => regroup!(d, Summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, Sum};

    fn point(service: Option<&str>, value: i64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: service
                .map(|s| string_kv("service.name", s))
                .into_iter()
                .chain([string_kv("span.name", "GET")])
                .collect(),
            value: Some(
                opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(value),
            ),
            ..NumberDataPoint::default()
        }
    }

    #[test]
    fn points_move_under_one_resource_per_service() {
        let calls = Metric {
            name: "traces.span.metrics.calls".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![point(Some("b"), 1), point(Some("a"), 2), point(None, 3)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Metric::default()
        };
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![calls],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            }],
        };
        let grouped = group_by_resource_attribute(request, "service.name");
        let summary: Vec<(Vec<String>, Vec<i64>)> = grouped
            .resource_metrics
            .iter()
            .map(|rm| {
                let resource = rm
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .map(|kv| format!("{}={:?}", kv.key, kv.value))
                    .collect();
                let values = rm
                    .scope_metrics
                    .iter()
                    .flat_map(|sm| &sm.metrics)
                    .flat_map(|m| match &m.data {
                        Some(metric::Data::Sum(s)) => s.data_points.clone(),
                        _ => Vec::new(),
                    })
                    .map(|p| match p.value {
                        Some(
                            opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                                v,
                            ),
                        ) => v,
                        _ => -1,
                    })
                    .collect();
                (resource, values)
            })
            .collect();
        assert_eq!(summary.len(), 3);
        assert_eq!(summary[0], (vec![], vec![3]));
        assert!(summary[1].0[0].contains("\"a\""), "{summary:?}");
        assert_eq!(summary[1].1, vec![2]);
        assert!(summary[2].0[0].contains("\"b\""), "{summary:?}");
        assert_eq!(summary[2].1, vec![1]);
        // Every group keeps the metric's shape.
        for rm in &grouped.resource_metrics {
            let m = &rm.scope_metrics[0].metrics[0];
            assert_eq!(m.name, "traces.span.metrics.calls");
            assert!(
                matches!(&m.data, Some(metric::Data::Sum(s)) if s.is_monotonic && s.aggregation_temporality == 2)
            );
        }
    }
}

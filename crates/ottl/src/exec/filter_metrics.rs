//! The filter processor's OTTL mode on metrics (otelcol's `processSkipExpression`): resources,
//! then metrics, then data points matching a condition are dropped; a metric left without
//! points, and scopes and resources left empty, are removed.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};

use super::filter::{verdict, FilterOutcome};
use super::ConditionSet;
use crate::contexts::proto::{scoped, MetricParts, ProtoCtx, ResourceParts};
use crate::contexts::proto_metrics::{point_count, retain_points};
use crate::error::ExecError;

/// The condition sets of the filter processor's `metrics` section (`resource`, `metric`,
/// `datapoint`).
#[derive(Debug, Default, Clone, Copy)]
pub struct MetricFilters<'c> {
    pub resource: Option<&'c ConditionSet>,
    pub metric: Option<&'c ConditionSet>,
    pub data_point: Option<&'c ConditionSet>,
}

/// How many resources, scopes, metrics and data points a request holds: filtering only
/// removes, so any removal changes one of them.
fn totals(req: &ExportMetricsServiceRequest) -> [usize; 4] {
    let mut t = [req.resource_metrics.len(), 0, 0, 0];
    for sm in req.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics) {
        t[1] += 1;
        t[2] += sm.metrics.len();
        t[3] += sm.metrics.iter().map(point_count).sum::<usize>();
    }
    t
}

/// Filters a metrics request in place. `remaining_items` counts data points as pdata's
/// `DataPointCount` does. The first runtime error (error mode `propagate`) is returned
/// after the whole request has been filtered.
pub fn filter_metrics(
    filters: MetricFilters<'_>,
    req: &mut ExportMetricsServiceRequest,
) -> Result<FilterOutcome, ExecError> {
    let before = totals(req);
    let mut first_error = None;
    let below_resource = filters.metric.is_some() || filters.data_point.is_some();
    req.resource_metrics.retain_mut(|rm| {
        let ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        } = rm;
        if let Some(set) = filters.resource {
            let ctx = ProtoCtx::new(ResourceParts {
                resource: &mut *resource,
                schema_url: &mut *schema_url,
            });
            match verdict(&mut first_error, set.matches(&ctx)) {
                Some(true) => return false,
                Some(false) => {}
                // otelcol keeps a resource it could not judge, without looking inside.
                None => return true,
            }
        }
        if !below_resource {
            return !scope_metrics.is_empty();
        }
        scope_metrics.retain_mut(|sm| {
            let ScopeMetrics {
                scope,
                metrics,
                schema_url: scope_schema_url,
            } = sm;
            metrics.retain_mut(|metric| {
                if let Some(set) = filters.metric {
                    let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                    ctx.metric = Some(MetricParts {
                        metric: &mut *metric,
                        point: None,
                    });
                    match verdict(&mut first_error, set.matches(&ctx)) {
                        Some(true) => return false,
                        Some(false) => {}
                        None => return true,
                    }
                }
                let Some(set) = filters.data_point else {
                    return true;
                };
                // A metric without a data type has no points to judge and is kept.
                if metric.data.is_none() {
                    return true;
                }
                let count = point_count(metric);
                let mut keep = Vec::with_capacity(count);
                for i in 0..count {
                    let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                    ctx.metric = Some(MetricParts {
                        metric: &mut *metric,
                        point: Some(i),
                    });
                    // A point that fails to evaluate is kept.
                    keep.push(verdict(&mut first_error, set.matches(&ctx)) != Some(true));
                }
                retain_points(metric, &keep);
                point_count(metric) > 0
            });
            !metrics.is_empty()
        });
        !scope_metrics.is_empty()
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let after = totals(req);
    Ok(FilterOutcome {
        changed: after != before,
        remaining_items: after[3],
    })
}

//! Running statement groups over a metrics request, in the transform processor's order:
//! resources, scopes, metrics, or every data point of every metric.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};

use super::StatementGroup;
use crate::contexts::proto::{scoped, MetricParts, ProtoCtx, ResourceParts};
use crate::contexts::proto_metrics::point_count;
use crate::error::ExecError;
use crate::paths::ContextKind;

impl StatementGroup {
    /// Applies the group to every item of its context in the request. `Ok(true)` when an
    /// editor ran on some item; `Ok(false)` means the request is as it was.
    pub fn apply_metrics(&self, req: &mut ExportMetricsServiceRequest) -> Result<bool, ExecError> {
        let mut changed = false;
        for rm in &mut req.resource_metrics {
            let ResourceMetrics {
                resource,
                scope_metrics,
                schema_url,
            } = rm;
            if self.context == ContextKind::Resource {
                let mut ctx = ProtoCtx::new(ResourceParts {
                    resource,
                    schema_url,
                });
                changed |= self.run_item(&mut ctx)?;
                continue;
            }
            for sm in scope_metrics.iter_mut() {
                let ScopeMetrics {
                    scope,
                    metrics,
                    schema_url: scope_schema_url,
                } = sm;
                match self.context {
                    ContextKind::Scope => {
                        let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                        changed |= self.run_item(&mut ctx)?;
                    }
                    ContextKind::Metric => {
                        for metric in metrics.iter_mut() {
                            let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                            ctx.metric = Some(MetricParts {
                                metric,
                                point: None,
                            });
                            changed |= self.run_item(&mut ctx)?;
                        }
                    }
                    ContextKind::DataPoint => {
                        for metric in metrics.iter_mut() {
                            // The length is read again each time: a statement may empty
                            // `metric.data_points`, which ends the loop as in otelcol.
                            let mut i = 0;
                            while i < point_count(metric) {
                                let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                                ctx.metric = Some(MetricParts {
                                    metric: &mut *metric,
                                    point: Some(i),
                                });
                                changed |= self.run_item(&mut ctx)?;
                                i += 1;
                            }
                        }
                    }
                    other => return Err(ExecError::WrongSignal(other)),
                }
            }
        }
        Ok(changed)
    }
}

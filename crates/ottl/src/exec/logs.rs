//! Running statement groups over a logs request.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

use super::StatementGroup;
use crate::contexts::proto::{scoped, ProtoCtx, ResourceParts};
use crate::error::ExecError;
use crate::paths::ContextKind;

impl StatementGroup {
    /// Applies the group to every item of its context in the request. `Ok(true)` when an
    /// editor ran on some item.
    pub fn apply_logs(&self, req: &mut ExportLogsServiceRequest) -> Result<bool, ExecError> {
        let mut changed = false;
        for rl in &mut req.resource_logs {
            let ResourceLogs {
                resource,
                scope_logs,
                schema_url,
            } = rl;
            if self.context == ContextKind::Resource {
                let mut ctx = ProtoCtx::new(ResourceParts {
                    resource,
                    schema_url,
                });
                changed |= self.run_item(&mut ctx)?;
                continue;
            }
            for sl in scope_logs.iter_mut() {
                let ScopeLogs {
                    scope,
                    log_records,
                    schema_url: scope_schema_url,
                } = sl;
                match self.context {
                    ContextKind::Scope => {
                        let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                        changed |= self.run_item(&mut ctx)?;
                    }
                    ContextKind::Log => {
                        for log in log_records.iter_mut() {
                            let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                            ctx.log = Some(log);
                            changed |= self.run_item(&mut ctx)?;
                        }
                    }
                    other => return Err(ExecError::WrongSignal(other)),
                }
            }
        }
        Ok(changed)
    }
}

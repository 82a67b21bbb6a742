//! Running statement groups over a traces request: in place on prost messages, or as a dry
//! run on the encoded bytes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use redline_otlp_wire::{walk_lazy, LazySpanView, LazyTraceVisitor, ResourceView, ScopeView};

use super::StatementGroup;
use crate::contexts::proto::scoped as parts;
use crate::contexts::proto::{ProtoCtx, ResourceParts};
use crate::contexts::wire::WireCtx;
use crate::error::ExecError;
use crate::paths::ContextKind;

impl StatementGroup {
    /// Applies the group to every item of its context in the request. `Ok(true)` when an
    /// editor ran on some item (the request may have changed).
    pub fn apply_traces(&self, req: &mut ExportTraceServiceRequest) -> Result<bool, ExecError> {
        let mut changed = false;
        for rs in &mut req.resource_spans {
            let ResourceSpans {
                resource,
                scope_spans,
                schema_url,
            } = rs;
            if self.context == ContextKind::Resource {
                let mut ctx = ProtoCtx::new(ResourceParts {
                    resource,
                    schema_url,
                });
                changed |= self.run_item(&mut ctx)?;
                continue;
            }
            for ss in scope_spans.iter_mut() {
                let ScopeSpans {
                    scope,
                    spans,
                    schema_url: scope_schema_url,
                } = ss;
                match self.context {
                    ContextKind::Scope => {
                        let mut ctx = parts(resource, schema_url, scope, scope_schema_url);
                        changed |= self.run_item(&mut ctx)?;
                    }
                    ContextKind::Span => {
                        for span in spans.iter_mut() {
                            let mut ctx = parts(resource, schema_url, scope, scope_schema_url);
                            ctx.span = Some(span);
                            changed |= self.run_item(&mut ctx)?;
                        }
                    }
                    ContextKind::SpanEvent => {
                        for span in spans.iter_mut() {
                            for i in 0..span.events.len() {
                                let mut ctx = parts(resource, schema_url, scope, scope_schema_url);
                                ctx.span = Some(span);
                                ctx.event = Some(i);
                                changed |= self.run_item(&mut ctx)?;
                            }
                        }
                    }
                    _ => return Err(ExecError::WrongSignal(self.context)),
                }
            }
        }
        Ok(changed)
    }

    /// Dry run on an encoded request the receiver already validated: `false` only when
    /// [`StatementGroup::apply_traces`] would leave the request as it is. Evaluates `where`
    /// clauses and editors on borrowed views, without decoding.
    pub fn may_change_traces(&self, raw: &[u8]) -> Result<bool, ExecError> {
        if !matches!(
            self.context,
            ContextKind::Resource | ContextKind::Scope | ContextKind::Span | ContextKind::SpanEvent
        ) {
            return Err(ExecError::UnsupportedDryRun(self.context));
        }
        let mut visitor = DryRun {
            group: self,
            resource: None,
            scope: None,
            found: false,
        };
        walk_lazy(raw, &mut visitor)?;
        Ok(visitor.found)
    }
}

struct DryRun<'g, 'a> {
    group: &'g StatementGroup,
    resource: Option<ResourceView<'a>>,
    scope: Option<ScopeView<'a>>,
    found: bool,
}

impl<'a> LazyTraceVisitor<'a> for DryRun<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.resource = Some(*resource);
        if self.group.context == ContextKind::Resource && !self.found {
            self.found = self.group.item_may_change(&WireCtx {
                resource,
                scope: None,
                span: None,
                event: None,
            });
        }
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.scope = Some(*scope);
        if self.found || self.group.context != ContextKind::Scope {
            return;
        }
        if let Some(resource) = &self.resource {
            self.found = self.group.item_may_change(&WireCtx {
                resource,
                scope: Some(scope),
                span: None,
                event: None,
            });
        }
    }

    fn span(&mut self, span: &LazySpanView<'a>) {
        if self.found {
            return;
        }
        let Some(resource) = &self.resource else {
            return;
        };
        let base = WireCtx {
            resource,
            scope: self.scope.as_ref(),
            span: Some(span),
            event: None,
        };
        self.found = match self.group.context {
            ContextKind::Span => self.group.item_may_change(&base),
            ContextKind::SpanEvent => span.events().any(|event| {
                self.group.item_may_change(&WireCtx {
                    event: Some(&event),
                    ..base
                })
            }),
            _ => false,
        };
    }
}

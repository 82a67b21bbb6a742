//! Running statement groups over a traces request: in place on prost messages, or as a dry
//! run on the encoded bytes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use redline_otlp_wire::{
    walk_lazy, LazySpanView, LazyTraceVisitor, ResourceView, ScopeView, SpanNames,
};

use super::name_memo::{remember, Names};
use super::StatementGroup;
use crate::contexts::proto::scoped as parts;
use crate::contexts::proto::{ProtoCtx, ResourceParts};
use crate::contexts::wire::{NameOnly, WireCtx};
use crate::error::ExecError;
use crate::paths::ContextKind;
use std::sync::MutexGuard;

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
        self.dry_run(raw, None)
    }

    /// [`StatementGroup::may_change_traces`] on the request `names` was taken from: when the
    /// group's memo already knows every span name of it, the answer needs no walk at all.
    pub fn may_change_named_traces(&self, names: &SpanNames) -> Result<bool, ExecError> {
        self.dry_run(names.request(), Some(names))
    }

    fn dry_run(&self, raw: &[u8], span_names: Option<&SpanNames>) -> Result<bool, ExecError> {
        if !matches!(
            self.context,
            ContextKind::Resource | ContextKind::Scope | ContextKind::Span | ContextKind::SpanEvent
        ) {
            return Err(ExecError::UnsupportedDryRun(self.context));
        }
        // Only span statements consult the memo: other contexts leave the shard to other runs.
        let names = (self.context == ContextKind::Span)
            .then(|| self.names.shard())
            .flatten();
        if let (Some(span_names), Some(memo)) = (span_names, &names) {
            if all_remembered(span_names, memo) {
                return Ok(false);
            }
        }
        let mut visitor = DryRun {
            group: self,
            resource: None,
            scope: None,
            found: false,
            names,
            recent: RecentNames([&[]; RECENT_SLOTS]),
        };
        walk_lazy(raw, &mut visitor)?;
        Ok(visitor.found)
    }
}

/// Whether the memo holds every span name of a request, so that no span of it can change.
fn all_remembered(span_names: &SpanNames, memo: &Names) -> bool {
    let mut recent = RecentNames([&[]; RECENT_SLOTS]);
    span_names.iter().all(|name| {
        let Some(name) = name else { return false };
        if recent.contains(name) {
            return true;
        }
        let known = memo.contains(name);
        if known {
            recent.insert(name);
        }
        known
    })
}

struct DryRun<'g, 'a> {
    group: &'g StatementGroup,
    resource: Option<ResourceView<'a>>,
    scope: Option<ScopeView<'a>>,
    found: bool,
    /// The group's memo of unchanged span names, while it is worth consulting: dropped when
    /// an evaluation reads more than the name (then names alone do not decide this group).
    names: Option<MutexGuard<'g, Names>>,
    /// Names of this request found in the memo, compared before hashing into it.
    recent: RecentNames<'a>,
}

/// A direct-mapped set of names borrowed from the request: a span that repeats a name seen
/// in its request costs a comparison, not a hash of the name.
struct RecentNames<'a>([&'a [u8]; RECENT_SLOTS]);

const RECENT_SLOTS: usize = 32;

impl<'a> RecentNames<'a> {
    fn slot(name: &[u8]) -> usize {
        // Names of one service share prefixes: mix the length with bytes from the end.
        let len = name.len();
        let back = |n: usize| usize::from(name.get(len.wrapping_sub(n)).copied().unwrap_or(0));
        (len.wrapping_mul(31) ^ back(1).wrapping_mul(7) ^ back(2) ^ back(4).wrapping_mul(3))
            % RECENT_SLOTS
    }

    fn contains(&self, name: &[u8]) -> bool {
        // An empty slot never matches: an empty name always goes to the memo.
        let held = self.0[Self::slot(name)];
        !held.is_empty() && held == name
    }

    fn insert(&mut self, name: &'a [u8]) {
        self.0[Self::slot(name)] = name;
    }
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
        // Copies (views are a few pointers), so the context does not borrow `self`.
        let (Some(resource), scope) = (self.resource, self.scope) else {
            return;
        };
        let base = WireCtx {
            resource: &resource,
            scope: scope.as_ref(),
            span: Some(span),
            event: None,
        };
        self.found = match self.group.context {
            ContextKind::Span => self.span_may_change(span, &base),
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

impl<'a> DryRun<'_, 'a> {
    /// [`StatementGroup::item_may_change`] for a span, answered from the group's memo when
    /// the span's name alone decided an earlier span of the same name.
    fn span_may_change(&mut self, span: &LazySpanView<'a>, base: &WireCtx<'_, 'a>) -> bool {
        let Some(names) = &mut self.names else {
            return self.group.item_may_change(base);
        };
        let name = span.name_bytes();
        if self.recent.contains(name) {
            return false;
        }
        if names.contains(name) {
            self.recent.insert(name);
            return false;
        }
        // Validated bytes are always UTF-8; anything else is left to the real run.
        let Ok(text) = std::str::from_utf8(name) else {
            return true;
        };
        let reader = NameOnly::new(base, text);
        let verdict = self.group.item_may_change(&reader);
        if reader.read_other() {
            self.names = None;
        } else if !verdict {
            remember(names, name);
        }
        verdict
    }
}

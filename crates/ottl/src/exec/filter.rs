//! The filter processor's OTTL mode (otelcol's `processSkipExpression`) on traces and logs:
//! resources, then spans (log records), then span events matching a condition are dropped;
//! scopes and resources left empty are removed.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use redline_otlp_wire::{walk_lazy, LazySpanView, LazyTraceVisitor, ResourceView, ScopeView};

use super::ConditionSet;
use crate::contexts::proto::{scoped, ProtoCtx, ResourceParts};
use crate::contexts::wire::WireCtx;
use crate::error::ExecError;

/// The condition sets of the filter processor's `traces` section.
#[derive(Debug, Default, Clone, Copy)]
pub struct TraceFilters<'c> {
    pub resource: Option<&'c ConditionSet>,
    pub span: Option<&'c ConditionSet>,
    pub span_event: Option<&'c ConditionSet>,
}

/// What filtering did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterOutcome {
    /// Something was removed.
    pub changed: bool,
    /// Spans, log records or metric data points left.
    pub remaining_items: usize,
}

/// A condition set's verdict on one item, `None` when it failed: the first error is kept
/// (otelcol gathers them and returns them after filtering).
pub(super) fn verdict(first: &mut Option<ExecError>, r: Result<bool, ExecError>) -> Option<bool> {
    match r {
        Ok(m) => Some(m),
        Err(e) => {
            first.get_or_insert(e);
            None
        }
    }
}

/// Keeps the first error (otelcol gathers them and returns them after filtering).
fn note(first: &mut Option<ExecError>, r: Result<bool, ExecError>) -> bool {
    match r {
        Ok(m) => m,
        Err(e) => {
            first.get_or_insert(e);
            false
        }
    }
}

pub fn filter_traces(
    filters: TraceFilters<'_>,
    req: &mut ExportTraceServiceRequest,
) -> Result<FilterOutcome, ExecError> {
    let before: usize = span_count(req);
    let shape_before = trace_shape(req);
    let mut first_error = None;
    let item_filters = filters.span.is_some() || filters.span_event.is_some();
    let mut events_dropped = false;
    req.resource_spans.retain_mut(|rs| {
        let ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        } = rs;
        if let Some(set) = filters.resource {
            let ctx = ProtoCtx::new(ResourceParts {
                resource: &mut *resource,
                schema_url: &mut *schema_url,
            });
            if note(&mut first_error, set.matches(&ctx)) {
                return false;
            }
        }
        if !item_filters {
            return !scope_spans.is_empty();
        }
        scope_spans.retain_mut(|ss| {
            let ScopeSpans {
                scope,
                spans,
                schema_url: scope_schema_url,
            } = ss;
            spans.retain_mut(|span| {
                if let Some(set) = filters.span {
                    let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                    ctx.span = Some(&mut *span);
                    if note(&mut first_error, set.matches(&ctx)) {
                        return false;
                    }
                }
                if let Some(set) = filters.span_event {
                    let mut i = 0;
                    while i < span.events.len() {
                        let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                        ctx.span = Some(&mut *span);
                        ctx.event = Some(i);
                        if note(&mut first_error, set.matches(&ctx)) {
                            span.events.remove(i);
                            events_dropped = true;
                        } else {
                            i += 1;
                        }
                    }
                }
                true
            });
            !spans.is_empty()
        });
        !scope_spans.is_empty()
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let remaining = span_count(req);
    Ok(FilterOutcome {
        changed: remaining != before || events_dropped || trace_shape(req) != shape_before,
        remaining_items: remaining,
    })
}

/// Whether a span of `rs` matches `filters.span`, or one of its events `filters.span_event`,
/// looking at each span and then its events and stopping at the first match, as the tail
/// sampler's `ottl_condition` policy does. `filters.resource` is not read.
pub fn any_span_matches(
    filters: TraceFilters<'_>,
    rs: &mut ResourceSpans,
) -> Result<bool, ExecError> {
    let ResourceSpans {
        resource,
        scope_spans,
        schema_url,
    } = rs;
    for ss in scope_spans {
        let ScopeSpans {
            scope,
            spans,
            schema_url: scope_schema_url,
        } = ss;
        for span in spans {
            if let Some(set) = filters.span {
                let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                ctx.span = Some(&mut *span);
                if set.matches(&ctx)? {
                    return Ok(true);
                }
            }
            if let Some(set) = filters.span_event {
                for i in 0..span.events.len() {
                    let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                    ctx.span = Some(&mut *span);
                    ctx.event = Some(i);
                    if set.matches(&ctx)? {
                        return Ok(true);
                    }
                }
            }
        }
    }
    Ok(false)
}

fn span_count(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn trace_shape(req: &ExportTraceServiceRequest) -> Vec<usize> {
    req.resource_spans
        .iter()
        .map(|rs| rs.scope_spans.len())
        .collect()
}

/// Dry run of [`filter_traces`] on an encoded, validated request: `false` only when filtering
/// would leave it unchanged.
pub fn traces_may_drop(filters: TraceFilters<'_>, raw: &[u8]) -> Result<bool, ExecError> {
    let mut v = DropScan {
        filters,
        resource: None,
        scope: None,
        scopes_in_resource: 0,
        spans_in_scope: 0,
        found: false,
    };
    walk_lazy(raw, &mut v)?;
    v.close_resource();
    Ok(v.found)
}

struct DropScan<'c, 'a> {
    filters: TraceFilters<'c>,
    resource: Option<ResourceView<'a>>,
    scope: Option<ScopeView<'a>>,
    scopes_in_resource: usize,
    spans_in_scope: usize,
    found: bool,
}

impl DropScan<'_, '_> {
    fn item_filters(&self) -> bool {
        self.filters.span.is_some() || self.filters.span_event.is_some()
    }

    fn close_scope(&mut self) {
        if self.scope.take().is_some() && self.spans_in_scope == 0 && self.item_filters() {
            self.found = true;
        }
    }

    fn close_resource(&mut self) {
        self.close_scope();
        if self.resource.take().is_some() && self.scopes_in_resource == 0 {
            self.found = true;
        }
    }
}

impl<'a> LazyTraceVisitor<'a> for DropScan<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        self.close_resource();
        self.resource = Some(*resource);
        self.scopes_in_resource = 0;
        if self.found {
            return;
        }
        if let Some(set) = self.filters.resource {
            let ctx = WireCtx {
                resource,
                scope: None,
                span: None,
                event: None,
            };
            if set.may_match(&ctx) {
                self.found = true;
            }
        }
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        self.close_scope();
        self.scope = Some(*scope);
        self.scopes_in_resource += 1;
        self.spans_in_scope = 0;
    }

    fn span(&mut self, span: &LazySpanView<'a>) {
        self.spans_in_scope += 1;
        if self.found {
            return;
        }
        let Some(resource) = &self.resource else {
            return;
        };
        let ctx = WireCtx {
            resource,
            scope: self.scope.as_ref(),
            span: Some(span),
            event: None,
        };
        if self.filters.span.is_some_and(|set| set.may_match(&ctx)) {
            self.found = true;
            return;
        }
        if let Some(set) = self.filters.span_event {
            self.found = span.events().any(|event| {
                set.may_match(&WireCtx {
                    event: Some(&event),
                    ..ctx
                })
            });
        }
    }
}

/// The condition sets of the filter processor's `logs` section (`resource`, `log_record`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFilters<'c> {
    pub resource: Option<&'c ConditionSet>,
    pub log: Option<&'c ConditionSet>,
}

/// How many resources, scopes and log records a request holds: filtering only removes, so
/// any removal changes one of them.
fn log_totals(req: &ExportLogsServiceRequest) -> [usize; 3] {
    let mut t = [req.resource_logs.len(), 0, 0];
    for sl in req.resource_logs.iter().flat_map(|rl| &rl.scope_logs) {
        t[1] += 1;
        t[2] += sl.log_records.len();
    }
    t
}

/// The filter processor on logs: resources matching a condition are dropped, then records;
/// scopes and resources left empty are removed.
pub fn filter_logs(
    filters: LogFilters<'_>,
    req: &mut ExportLogsServiceRequest,
) -> Result<FilterOutcome, ExecError> {
    let before = log_totals(req);
    let mut first_error = None;
    req.resource_logs.retain_mut(|rl| {
        let ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        } = rl;
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
        if let Some(set) = filters.log {
            scope_logs.retain_mut(|sl| {
                let ScopeLogs {
                    scope,
                    log_records,
                    schema_url: scope_schema_url,
                } = sl;
                log_records.retain_mut(|log| {
                    let mut ctx = scoped(resource, schema_url, scope, scope_schema_url);
                    ctx.log = Some(log);
                    !note(&mut first_error, set.matches(&ctx))
                });
                !log_records.is_empty()
            });
        }
        !scope_logs.is_empty()
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    let after = log_totals(req);
    Ok(FilterOutcome {
        changed: after != before,
        remaining_items: after[2],
    })
}

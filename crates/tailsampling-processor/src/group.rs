//! A request split by trace: for each resource, one copy of it per trace with that trace's
//! spans under copies of their scopes, as otelcol's `groupSpansByTraceKey` and
//! `newResourceSpanFromSpanAndScopes` split it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

use crate::store::{TraceGroup, TraceId};

pub fn by_trace(request: ExportTraceServiceRequest) -> Vec<TraceGroup> {
    let mut groups = Vec::new();
    for rs in request.resource_spans {
        let first = groups.len();
        let ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        } = rs;
        for (scope_index, ss) in scope_spans.into_iter().enumerate() {
            let ScopeSpans {
                scope,
                spans,
                schema_url: scope_schema_url,
            } = ss;
            for span in spans {
                let id = trace_id(&span.trace_id);
                let slot = match groups[first..]
                    .iter()
                    .position(|g: &Grouping| g.group.id == id)
                {
                    Some(i) => first + i,
                    None => {
                        groups.push(Grouping {
                            group: TraceGroup {
                                id,
                                spans: ResourceSpans {
                                    resource: resource.clone(),
                                    scope_spans: Vec::new(),
                                    schema_url: schema_url.clone(),
                                },
                                span_count: 0,
                                size_bytes: 0,
                                has_root: false,
                            },
                            last_scope: None,
                        });
                        groups.len() - 1
                    }
                };
                let g = &mut groups[slot];
                if g.last_scope != Some(scope_index) {
                    g.last_scope = Some(scope_index);
                    g.group.spans.scope_spans.push(ScopeSpans {
                        scope: scope.clone(),
                        spans: Vec::new(),
                        schema_url: scope_schema_url.clone(),
                    });
                }
                g.group.span_count += 1;
                g.group.has_root |= span.parent_span_id.iter().all(|b| *b == 0);
                if let Some(ss) = g.group.spans.scope_spans.last_mut() {
                    ss.spans.push(span);
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let mut group = g.group;
            group.size_bytes = group.spans.encoded_len() as u64;
            group
        })
        .collect()
}

struct Grouping {
    group: TraceGroup,
    /// The scope of the request the group's last `ScopeSpans` copies.
    last_scope: Option<usize>,
}

/// The trace id as pdata holds it: 16 bytes (the receiver refuses any other length).
fn trace_id(bytes: &[u8]) -> TraceId {
    let mut id = [0u8; 16];
    let n = bytes.len().min(16);
    id[..n].copy_from_slice(&bytes[..n]);
    id
}

/// The groups as one request, and how many spans it holds.
pub fn request_of(groups: impl IntoIterator<Item = ResourceSpans>) -> (Vec<u8>, usize) {
    let request = ExportTraceServiceRequest {
        resource_spans: groups.into_iter().collect(),
    };
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    (request.encode_to_vec(), spans)
}

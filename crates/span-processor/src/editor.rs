//! The `span` processor as a batch editor: decodes a request, edits the spans its filter
//! selects, and re-encodes only when one changed.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_filter_match::Filter;
use redline_pipeline::edit::{undecodable, BatchEditor, Edited};
use redline_pipeline::{Batch, Refused};

use crate::rename::Rename;
use crate::Compiled;

pub struct SpanEditor {
    id: String,
    rename: Rename,
    filter: Filter,
}

impl SpanEditor {
    pub fn new(id: String, compiled: Compiled) -> Self {
        Self {
            id,
            rename: compiled.rename,
            filter: compiled.filter,
        }
    }

    fn edit_request(&self, request: &mut ExportTraceServiceRequest) -> bool {
        let mut changed = false;
        for rs in &mut request.resource_spans {
            let resource = rs.resource.as_ref();
            for ss in &mut rs.scope_spans {
                let scope = ss.scope.as_ref();
                for span in &mut ss.spans {
                    if self.filter.span(resource, scope, span) {
                        changed |= self.rename.apply(span);
                    }
                }
            }
        }
        changed
    }
}

impl BatchEditor for SpanEditor {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        let mut request = ExportTraceServiceRequest::decode(&batch.raw[..])
            .map_err(|e| undecodable(&self.id, e))?;
        if !self.edit_request(&mut request) {
            return Ok(Edited::Unchanged);
        }
        let raw = Bytes::from(request.encode_to_vec());
        Ok(Edited::Replaced(Batch::new(batch.signal, raw, batch.items)))
    }
}

//! The batch editors: `resource` rewrites only the resources of a request (spliced in place,
//! items untouched); `attributes` decodes the whole request, since its actions reach every
//! span, data point or log record.

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_otlp_wire::{splice_resources, ResourceEdit};
use redline_pipeline::edit::{undecodable, BatchEditor, Edited};
use redline_pipeline::{Batch, ClientMetadata, Refused, Signal};

use crate::action::AttrActions;
use redline_filter_match::Filter;

/// The `resource` processor's editor.
pub struct ResourceEditor {
    pub(crate) id: String,
    pub(crate) actions: AttrActions,
}

impl BatchEditor for ResourceEditor {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        let edited = splice_resources(&batch.raw, |slot| {
            let mut resource = Resource::default();
            for chunk in slot.resource {
                resource.merge(*chunk)?;
            }
            Ok::<_, prost::DecodeError>(
                self.actions
                    .apply(&mut resource.attributes, batch.client())
                    .then(|| ResourceEdit {
                        resource: Some(resource.encode_to_vec()),
                        schema_url: None,
                    }),
            )
        })
        .map_err(|e| undecodable(&self.id, e))?;
        Ok(match edited {
            Some(raw) => Edited::Replaced(Batch::new(batch.signal, Bytes::from(raw), batch.items)),
            None => Edited::Unchanged,
        })
    }
}

/// The `attributes` processor's editor for one signal.
pub struct AttributesEditor {
    pub(crate) id: String,
    pub(crate) signal: Signal,
    pub(crate) actions: AttrActions,
    pub(crate) filter: Filter,
}

impl BatchEditor for AttributesEditor {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        let raw = &batch.raw[..];
        let reencoded = match self.signal {
            Signal::Traces => {
                let mut req =
                    ExportTraceServiceRequest::decode(raw).map_err(|e| undecodable(&self.id, e))?;
                self.traces(&mut req, batch.client())
                    .then(|| req.encode_to_vec())
            }
            Signal::Metrics => {
                let mut req = ExportMetricsServiceRequest::decode(raw)
                    .map_err(|e| undecodable(&self.id, e))?;
                self.metrics(&mut req, batch.client())
                    .then(|| req.encode_to_vec())
            }
            Signal::Logs => {
                let mut req =
                    ExportLogsServiceRequest::decode(raw).map_err(|e| undecodable(&self.id, e))?;
                self.logs(&mut req, batch.client())
                    .then(|| req.encode_to_vec())
            }
        };
        Ok(match reencoded {
            Some(raw) => Edited::Replaced(Batch::new(batch.signal, Bytes::from(raw), batch.items)),
            None => Edited::Unchanged,
        })
    }
}

impl AttributesEditor {
    fn traces(&self, req: &mut ExportTraceServiceRequest, client: Option<&ClientMetadata>) -> bool {
        let mut changed = false;
        for rs in &mut req.resource_spans {
            let resource = rs.resource.as_ref();
            for ss in &mut rs.scope_spans {
                let scope = ss.scope.as_ref();
                for span in &mut ss.spans {
                    if self.filter.span(resource, scope, span) {
                        changed |= self.actions.apply(&mut span.attributes, client);
                    }
                }
            }
        }
        changed
    }

    fn logs(&self, req: &mut ExportLogsServiceRequest, client: Option<&ClientMetadata>) -> bool {
        let mut changed = false;
        for rl in &mut req.resource_logs {
            let resource = rl.resource.as_ref();
            for sl in &mut rl.scope_logs {
                let scope = sl.scope.as_ref();
                for record in &mut sl.log_records {
                    if self.filter.log(resource, scope, record) {
                        changed |= self.actions.apply(&mut record.attributes, client);
                    }
                }
            }
        }
        changed
    }

    fn metrics(
        &self,
        req: &mut ExportMetricsServiceRequest,
        client: Option<&ClientMetadata>,
    ) -> bool {
        let mut changed = false;
        for rm in &mut req.resource_metrics {
            for sm in &mut rm.scope_metrics {
                for metric in &mut sm.metrics {
                    if self.filter.metric(metric) {
                        changed |= self.data_points(metric, client);
                    }
                }
            }
        }
        changed
    }

    fn data_points(&self, metric: &mut Metric, client: Option<&ClientMetadata>) -> bool {
        let mut changed = false;
        let mut apply = |attrs: &mut Vec<_>| changed |= self.actions.apply(attrs, client);
        match &mut metric.data {
            Some(Data::Gauge(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| apply(&mut p.attributes)),
            Some(Data::Sum(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| apply(&mut p.attributes)),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter_mut()
                .for_each(|p| apply(&mut p.attributes)),
            Some(Data::ExponentialHistogram(h)) => h
                .data_points
                .iter_mut()
                .for_each(|p| apply(&mut p.attributes)),
            Some(Data::Summary(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| apply(&mut p.attributes)),
            None => {}
        }
        changed
    }
}

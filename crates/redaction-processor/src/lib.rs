//! otelcol-contrib's `redaction` processor: attributes whose keys are not allowed are removed,
//! values matching blocked patterns are masked (`****`) or hashed, and each item can carry a
//! summary of what was done, so that personal data never reaches Tempo or Loki. It redacts
//! resource, scope, span, span event, log record and data point attributes, and log bodies.
//!
//! It is a [`BatchEditor`](redline_pipeline::edit::BatchEditor): a request it leaves alone
//! travels on as the bytes the client sent; one it changed is re-encoded.

mod config;
mod mask;
mod redact;
mod scan;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::{build_editor, undecodable, BatchEditor, Edited};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, Refused,
    RunningComponent, Signal,
};

pub use config::RedactionConfig;
use config::Rules;

pub struct RedactionFactory;

impl FactoryInfo for RedactionFactory {
    fn type_name(&self) -> &'static str {
        "redaction"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::config::first_problem(self.validate_all(config))
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        config::compile(config).err().unwrap_or_default()
    }
}

impl ProcessorFactory for RedactionFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces, Signal::Metrics, Signal::Logs]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            config::compile(config)
                .map(|rules| Redaction {
                    id: config.id().to_string(),
                    signal,
                    rules,
                })
                .map_err(|errors| redline_pipeline::config::problems_text(&errors))
        })
    }
}

struct Redaction {
    id: String,
    signal: Signal,
    rules: Rules,
}

impl Redaction {
    fn resource(&self, resource: &mut Option<Resource>) -> bool {
        resource
            .as_mut()
            .is_some_and(|r| self.rules.attributes(&mut r.attributes))
    }

    fn scope(&self, scope: &mut Option<InstrumentationScope>) -> bool {
        scope
            .as_mut()
            .is_some_and(|s| self.rules.attributes(&mut s.attributes))
    }

    fn traces(&self, request: &mut ExportTraceServiceRequest) -> bool {
        let mut changed = false;
        for rs in &mut request.resource_spans {
            changed |= self.resource(&mut rs.resource);
            for ss in &mut rs.scope_spans {
                changed |= self.scope(&mut ss.scope);
                for span in &mut ss.spans {
                    changed |= self.rules.attributes(&mut span.attributes);
                    for event in &mut span.events {
                        changed |= self.rules.attributes(&mut event.attributes);
                    }
                }
            }
        }
        changed
    }

    fn logs(&self, request: &mut ExportLogsServiceRequest) -> bool {
        let mut changed = false;
        for rl in &mut request.resource_logs {
            changed |= self.resource(&mut rl.resource);
            for sl in &mut rl.scope_logs {
                changed |= self.scope(&mut sl.scope);
                for log in &mut sl.log_records {
                    changed |= self.rules.attributes(&mut log.attributes);
                    // The body's summary goes on the attributes just redacted.
                    changed |= self.rules.body(&mut log.body, &mut log.attributes);
                }
            }
        }
        changed
    }

    fn metrics(&self, request: &mut ExportMetricsServiceRequest) -> bool {
        let mut changed = false;
        for rm in &mut request.resource_metrics {
            changed |= self.resource(&mut rm.resource);
            for sm in &mut rm.scope_metrics {
                changed |= self.scope(&mut sm.scope);
                for m in &mut sm.metrics {
                    for attributes in point_attributes(m.data.as_mut()) {
                        changed |= self.rules.attributes(attributes);
                    }
                }
            }
        }
        changed
    }
}

/// The attributes of every data point of a metric, whatever its kind.
fn point_attributes(data: Option<&mut metric::Data>) -> Vec<&mut Vec<KeyValue>> {
    match data {
        None => Vec::new(),
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter_mut()
            .map(|p| &mut p.attributes)
            .collect(),
        Some(metric::Data::Sum(s)) => s
            .data_points
            .iter_mut()
            .map(|p| &mut p.attributes)
            .collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter_mut()
            .map(|p| &mut p.attributes)
            .collect(),
        Some(metric::Data::ExponentialHistogram(e)) => e
            .data_points
            .iter_mut()
            .map(|p| &mut p.attributes)
            .collect(),
        Some(metric::Data::Summary(s)) => s
            .data_points
            .iter_mut()
            .map(|p| &mut p.attributes)
            .collect(),
    }
}

impl BatchEditor for Redaction {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        let undecodable = |e: prost::DecodeError| undecodable(&self.id, e);
        let raw: &[u8] = &batch.raw;
        let encoded = match self.signal {
            Signal::Traces => {
                let may_change = self
                    .rules
                    .traces_may_change(raw)
                    .map_err(|e| redline_pipeline::edit::undecodable(&self.id, e))?;
                if !may_change {
                    return Ok(Edited::Unchanged);
                }
                let mut request = ExportTraceServiceRequest::decode(raw).map_err(undecodable)?;
                self.traces(&mut request).then(|| request.encode_to_vec())
            }
            Signal::Logs => {
                let mut request = ExportLogsServiceRequest::decode(raw).map_err(undecodable)?;
                self.logs(&mut request).then(|| request.encode_to_vec())
            }
            Signal::Metrics => {
                let mut request = ExportMetricsServiceRequest::decode(raw).map_err(undecodable)?;
                self.metrics(&mut request).then(|| request.encode_to_vec())
            }
        };
        Ok(match encoded {
            // Redaction removes attributes, never items: the count stays.
            Some(raw) => Edited::Replaced(Batch::new(self.signal, Bytes::from(raw), batch.items)),
            None => Edited::Unchanged,
        })
    }
}

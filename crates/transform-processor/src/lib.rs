//! otelcol's `transform` processor: OTTL statements edit spans, metrics and logs in place.
//!
//! Statements compile once when the processor is built. For traces, a dry run over the
//! encoded request (no decode, no allocation per span in the common case) decides whether any
//! statement could change it; a request no statement touches travels on as the received
//! bytes. Otherwise the request is decoded, every group applied in order, and re-encoded.
//! Metrics and logs are decoded to be evaluated, and forwarded as received when nothing
//! changed.

mod config;

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use redline_ottl::{CompileError, ContextKind, StatementGroup};
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::{build_editor, BatchEditor, Edited};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, Refused,
    RunningComponent, Signal,
};

pub use config::{ContextStatements, StatementLists, TransformConfig};

pub struct TransformProcessorFactory;

/// The statement groups of one signal, compiled.
struct Compiled {
    signal: Signal,
    groups: Vec<StatementGroup>,
}

fn ottl_signal(signal: Signal) -> redline_ottl::Signal {
    match signal {
        Signal::Traces => redline_ottl::Signal::Traces,
        Signal::Metrics => redline_ottl::Signal::Metrics,
        Signal::Logs => redline_ottl::Signal::Logs,
    }
}

fn key_of(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "trace_statements",
        Signal::Metrics => "metric_statements",
        Signal::Logs => "log_statements",
    }
}

/// Compiles the groups of `signal`; every bad statement of every group is reported, located
/// at the first one.
fn compile(
    config: &ComponentConfig,
    parsed: &TransformConfig,
    signal: Signal,
) -> Result<Compiled, ConfigError> {
    let lists = match signal {
        Signal::Traces => &parsed.trace_statements,
        Signal::Metrics => &parsed.metric_statements,
        Signal::Logs => &parsed.log_statements,
    };
    let mut groups = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    for (i, group) in lists.0.iter().enumerate() {
        if let Some(context) = group.context {
            if !context_allowed(signal, context) {
                problems.push((
                    format!("{}[{i}].context", key_of(signal)),
                    format!("context {context:?} is not available for {signal}"),
                ));
                continue;
            }
        }
        let mode = group.error_mode.unwrap_or(parsed.error_mode);
        match StatementGroup::compile(
            group.context,
            ottl_signal(signal),
            &group.statements,
            &group.conditions,
            mode,
        ) {
            Ok(g) => groups.push(g),
            Err(errors) => problems.extend(
                errors
                    .into_iter()
                    .map(|e| (statement_path(signal, i, group, &e), e.to_string())),
            ),
        }
    }
    match problems.first() {
        None => Ok(Compiled { signal, groups }),
        Some((path, _)) => {
            let all: Vec<String> = problems.iter().map(|(_, m)| m.clone()).collect();
            Err(config.invalid(path, all.join("; ")))
        }
    }
}

/// Where the statement of `error` sits in the file, for the error's line.
fn statement_path(
    signal: Signal,
    index: usize,
    group: &ContextStatements,
    error: &CompileError,
) -> String {
    let key = key_of(signal);
    let found = |list: &[String]| list.iter().position(|s| *s == error.statement);
    if let Some(j) = found(&group.statements) {
        format!("{key}[{index}].statements[{j}]")
    } else if let Some(j) = found(&group.conditions) {
        format!("{key}[{index}].conditions[{j}]")
    } else {
        format!("{key}[{index}]")
    }
}

fn context_allowed(signal: Signal, context: ContextKind) -> bool {
    use ContextKind::*;
    match signal {
        Signal::Traces => matches!(context, Resource | Scope | Span | SpanEvent),
        Signal::Metrics => matches!(context, Resource | Scope | Metric | DataPoint),
        Signal::Logs => matches!(context, Resource | Scope | Log),
    }
}

impl FactoryInfo for TransformProcessorFactory {
    fn type_name(&self) -> &'static str {
        "transform"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let parsed = config.parse::<TransformConfig>()?;
        for signal in Signal::ALL {
            compile(config, &parsed, signal)?;
        }
        Ok(())
    }
}

impl ProcessorFactory for TransformProcessorFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build_editor(config, ctx, signal, next, || {
            let parsed = config.parse::<TransformConfig>()?;
            Ok::<_, ConfigError>(Transform {
                id: config.id().to_string(),
                compiled: compile(config, &parsed, signal)?,
            })
        })
    }
}

struct Transform {
    id: String,
    compiled: Compiled,
}

impl Transform {
    fn refuse(&self, error: impl std::fmt::Display) -> Refused {
        Refused {
            component: self.id.clone(),
            reason: format!("failed processing {}: {error}", self.compiled.signal),
            retry_after: std::time::Duration::from_secs(1),
            permanent: false,
        }
    }

    fn decode_error(&self, error: prost::DecodeError) -> Refused {
        // The receiver validated the request, so this is a bug; refuse rather than lose it.
        self.refuse(error)
    }

    fn traces(&self, batch: &Batch) -> Result<Edited, Refused> {
        let groups = &self.compiled.groups;
        // A dry-run error counts as "may change": the full run then applies error_mode.
        let may_change = groups.iter().any(|g| {
            match batch.span_names() {
                Some(names) => g.may_change_named_traces(names),
                None => g.may_change_traces(&batch.raw),
            }
            .unwrap_or(true)
        });
        if !may_change {
            return Ok(Edited::Unchanged);
        }
        self.apply(batch, StatementGroup::apply_traces, |request, _| {
            Ok(request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum())
        })
    }

    fn metrics(&self, batch: &Batch) -> Result<Edited, Refused> {
        self.apply(batch, StatementGroup::apply_metrics, |_, raw| {
            // Counted as the receiver counts them (pdata's DataPointCount), from the new bytes.
            Ok(redline_otlp_wire::validate_metrics(raw)
                .map_err(|e| self.refuse(e))?
                .data_points)
        })
    }

    fn logs(&self, batch: &Batch) -> Result<Edited, Refused> {
        self.apply(batch, StatementGroup::apply_logs, |request, _| {
            Ok(request
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len())
                .sum())
        })
    }

    /// Decodes the request, applies every group in order and, when any changed it, forwards
    /// it re-encoded with the item count `items` takes from the request or its new bytes.
    fn apply<Q: Message + Default, E: std::fmt::Display>(
        &self,
        batch: &Batch,
        apply_group: impl Fn(&StatementGroup, &mut Q) -> Result<bool, E>,
        items: impl FnOnce(&Q, &Bytes) -> Result<usize, Refused>,
    ) -> Result<Edited, Refused> {
        let mut request = Q::decode(batch.raw.as_ref()).map_err(|e| self.decode_error(e))?;
        let mut changed = false;
        for group in &self.compiled.groups {
            changed |= apply_group(group, &mut request).map_err(|e| self.refuse(e))?;
        }
        if !changed {
            return Ok(Edited::Unchanged);
        }
        let raw = Bytes::from(request.encode_to_vec());
        let items = items(&request, &raw)?;
        Ok(Edited::Replaced(Batch::new(
            self.compiled.signal,
            raw,
            items,
        )))
    }
}

impl BatchEditor for Transform {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        if self.compiled.groups.is_empty() {
            return Ok(Edited::Unchanged);
        }
        match self.compiled.signal {
            Signal::Traces => self.traces(batch),
            Signal::Metrics => self.metrics(batch),
            Signal::Logs => self.logs(batch),
        }
    }
}

#[cfg(test)]
mod tests;

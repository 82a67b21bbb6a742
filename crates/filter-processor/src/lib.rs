//! otelcol's `filter` processor: items matching any OTTL condition of their context are
//! dropped (resources, spans, span events, metrics, data points, log records).
//!
//! The legacy `include`/`exclude` sections select items as otelcol's `filterspan`,
//! `filtermetric` and `filterlog` matchers do (`legacy.rs`).
//!
//! Conditions compile once when the processor is built. For traces, a dry run over the
//! encoded request decides whether anything would be dropped; a request the conditions spare
//! travels on as the received bytes. Otherwise the request is decoded, filtered and
//! re-encoded; a request with nothing left ends here, as otelcol skips an empty one.

mod config;
mod legacy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_ottl::{
    filter_logs, filter_metrics, filter_traces, traces_may_drop, ConditionSet, ContextKind,
    ErrorMode, ExecError, FilterOutcome, LogFilters, MetricFilters, TraceFilters,
};
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::edit::{build_editor, BatchEditor, Edited, OnCommit};
use redline_pipeline::telemetry::{
    CounterDesc, PROCESSOR_FILTER_DATAPOINTS_FILTERED, PROCESSOR_FILTER_LOGS_FILTERED,
    PROCESSOR_FILTER_SPANS_FILTERED,
};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, Consumer, ProcessorFactory, Refused,
    RunningComponent, Signal,
};

pub use config::{ContextConditions, FilterConfig};
use legacy::Legacy;

pub struct FilterProcessorFactory;

/// One filtering pass: the condition sets of one config group, by context. otelcol runs the
/// `traces`/`metrics`/`logs` section as one pass and each `*_conditions` group as a pass of
/// its own, in order.
#[derive(Default)]
struct Stage {
    resource: Option<ConditionSet>,
    span: Option<ConditionSet>,
    span_event: Option<ConditionSet>,
    metric: Option<ConditionSet>,
    data_point: Option<ConditionSet>,
    log: Option<ConditionSet>,
}

impl Stage {
    fn slot(&mut self, context: ContextKind) -> &mut Option<ConditionSet> {
        match context {
            ContextKind::Resource | ContextKind::Scope => &mut self.resource,
            ContextKind::Span => &mut self.span,
            ContextKind::SpanEvent => &mut self.span_event,
            ContextKind::Metric => &mut self.metric,
            ContextKind::DataPoint => &mut self.data_point,
            ContextKind::Log => &mut self.log,
        }
    }

    fn traces(&self) -> TraceFilters<'_> {
        TraceFilters {
            resource: self.resource.as_ref(),
            span: self.span.as_ref(),
            span_event: self.span_event.as_ref(),
        }
    }
}

/// A list of conditions as the config spells it: where it is, its context (`None`: inferred
/// from the paths), its error mode, and the pass it belongs to.
struct List {
    path: String,
    context: Option<ContextKind>,
    conditions: Vec<String>,
    error_mode: ErrorMode,
    stage: usize,
}

fn lists(parsed: &FilterConfig, signal: Signal) -> Result<Vec<List>, (String, String)> {
    let mode = parsed.error_mode;
    let fixed = |path: &str, context, conditions: &Vec<String>| List {
        path: path.to_owned(),
        context: Some(context),
        conditions: conditions.clone(),
        error_mode: mode,
        stage: 0,
    };
    let (section, grouped, key) = match signal {
        Signal::Traces => (
            vec![
                fixed(
                    "traces.resource",
                    ContextKind::Resource,
                    &parsed.traces.resource,
                ),
                fixed("traces.span", ContextKind::Span, &parsed.traces.span),
                fixed(
                    "traces.spanevent",
                    ContextKind::SpanEvent,
                    &parsed.traces.spanevent,
                ),
            ],
            &parsed.trace_conditions,
            "trace_conditions",
        ),
        Signal::Metrics => (
            vec![
                fixed(
                    "metrics.resource",
                    ContextKind::Resource,
                    &parsed.metrics.resource,
                ),
                fixed(
                    "metrics.metric",
                    ContextKind::Metric,
                    &parsed.metrics.metric,
                ),
                fixed(
                    "metrics.datapoint",
                    ContextKind::DataPoint,
                    &parsed.metrics.datapoint,
                ),
            ],
            &parsed.metric_conditions,
            "metric_conditions",
        ),
        Signal::Logs => (
            vec![
                fixed(
                    "logs.resource",
                    ContextKind::Resource,
                    &parsed.logs.resource,
                ),
                fixed("logs.log_record", ContextKind::Log, &parsed.logs.log_record),
            ],
            &parsed.log_conditions,
            "log_conditions",
        ),
    };
    let section: Vec<List> = section
        .into_iter()
        .filter(|l| !l.conditions.is_empty())
        .collect();
    if !section.is_empty() && !grouped.is_empty() {
        return Err((
            key.to_owned(),
            format!(
                "cannot use context inferred conditions `{key}` and the `{}` settings at the same time",
                signal.as_str()
            ),
        ));
    }
    let groups = grouped.iter().enumerate().map(|(i, g)| List {
        path: format!("{key}[{i}]"),
        context: g.context,
        conditions: g.conditions.clone(),
        error_mode: g.error_mode.unwrap_or(mode),
        stage: i,
    });
    Ok(section.into_iter().chain(groups).collect())
}

fn compile(
    config: &ComponentConfig,
    parsed: &FilterConfig,
    signal: Signal,
) -> Result<Vec<Stage>, ConfigError> {
    let lists = lists(parsed, signal).map_err(|(path, reason)| config.invalid(&path, reason))?;
    let mut stages: Vec<Stage> = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    for list in lists {
        let compiled = match list.context {
            Some(context) => ConditionSet::compile(context, &list.conditions, list.error_mode),
            None => ConditionSet::compile_inferred(
                ottl_signal(signal),
                &list.conditions,
                list.error_mode,
            ),
        };
        match compiled {
            Err(errors) => problems.extend(errors.into_iter().map(|e| {
                let at = match list.conditions.iter().position(|c| *c == e.statement) {
                    Some(j) if list.path.contains('[') => format!("{}.conditions[{j}]", list.path),
                    Some(j) => format!("{}[{j}]", list.path),
                    None => list.path.clone(),
                };
                (at, e.to_string())
            })),
            Ok(set) => {
                if !ContextKind::of_signal(ottl_signal(signal)).contains(&set.context())
                    || set.context() == ContextKind::Scope
                {
                    problems.push((
                        list.path.clone(),
                        format!("context {:?} cannot filter {signal}", set.context()),
                    ));
                    continue;
                }
                while stages.len() <= list.stage {
                    stages.push(Stage::default());
                }
                let context = set.context();
                *stages[list.stage].slot(context) = Some(set);
            }
        }
    }
    match problems.first() {
        None => Ok(stages),
        Some((path, _)) => {
            let all: Vec<String> = problems.iter().map(|(_, m)| m.clone()).collect();
            Err(config.invalid(path, all.join("; ")))
        }
    }
}

fn legacy(
    config: &ComponentConfig,
    parsed: &FilterConfig,
    signal: Signal,
) -> Result<Option<Legacy>, ConfigError> {
    Legacy::build(parsed, signal).map_err(|(path, reason)| config.invalid(&path, reason))
}

fn ottl_signal(signal: Signal) -> redline_ottl::Signal {
    match signal {
        Signal::Traces => redline_ottl::Signal::Traces,
        Signal::Metrics => redline_ottl::Signal::Metrics,
        Signal::Logs => redline_ottl::Signal::Logs,
    }
}

impl FactoryInfo for FilterProcessorFactory {
    fn type_name(&self) -> &'static str {
        "filter"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let parsed = config.parse::<FilterConfig>()?;
        for signal in Signal::ALL {
            compile(config, &parsed, signal)?;
            legacy(config, &parsed, signal)?;
        }
        Ok(())
    }
}

impl ProcessorFactory for FilterProcessorFactory {
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
            let parsed = config.parse::<FilterConfig>()?;
            let stages = compile(config, &parsed, signal)?;
            let legacy = legacy(config, &parsed, signal)?;
            let id = config.id().to_string();
            if signal == Signal::Traces && Legacy::ignored_spans(&parsed) {
                tracing::warn!(
                    processor = %id,
                    "spans.include / spans.exclude are ignored because trace_conditions are set, \
                     as otelcol ignores them"
                );
            }
            // otelcol's descriptions, stability tag included, so both serve the same HELP.
            let (name, description) = match signal {
                Signal::Traces => (
                    PROCESSOR_FILTER_SPANS_FILTERED,
                    "Number of spans dropped by the filter processor [Development]",
                ),
                Signal::Metrics => (
                    PROCESSOR_FILTER_DATAPOINTS_FILTERED,
                    "Number of metric data points dropped by the filter processor [Development]",
                ),
                Signal::Logs => (
                    PROCESSOR_FILTER_LOGS_FILTERED,
                    "Number of logs dropped by the filter processor [Development]",
                ),
            };
            let filtered = ctx
                .telemetry
                .counter_family(CounterDesc {
                    name,
                    description,
                    unit: "1",
                })
                .series_served_at_zero(&[("filter", &id)]);
            Ok::<_, ConfigError>(Filter {
                id,
                signal,
                stages,
                legacy,
                filtered,
            })
        })
    }
}

struct Filter {
    id: String,
    signal: Signal,
    stages: Vec<Stage>,
    /// The signal's legacy section; it has no OTTL stages then.
    legacy: Option<Legacy>,
    filtered: Arc<AtomicU64>,
}

impl Filter {
    fn refuse(&self, error: impl std::fmt::Display) -> Refused {
        Refused {
            component: self.id.clone(),
            reason: format!("failed processing {}: {error}", self.signal),
            retry_after: std::time::Duration::from_secs(1),
            permanent: false,
        }
    }

    /// What travels on after filtering, and the drop count to record once it is committed.
    fn outcome(
        &self,
        batch: &Batch,
        out: FilterOutcome,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> (Edited, Option<OnCommit>) {
        if !out.changed {
            return (Edited::Unchanged, None);
        }
        let dropped = batch.items.saturating_sub(out.remaining_items) as u64;
        let filtered = self.filtered.clone();
        let record: OnCommit = Box::new(move || {
            filtered.fetch_add(dropped, Ordering::Relaxed);
        });
        let edited = if out.remaining_items == 0 {
            Edited::Dropped
        } else {
            Edited::Replaced(Batch::new(
                self.signal,
                Bytes::from(encode()),
                out.remaining_items,
            ))
        };
        (edited, Some(record))
    }

    /// Runs every stage in order on the decoded request.
    fn run<R>(
        &self,
        request: &mut R,
        stage: impl Fn(&Stage, &mut R) -> Result<FilterOutcome, ExecError>,
    ) -> Result<FilterOutcome, Refused> {
        let mut total = FilterOutcome {
            changed: false,
            remaining_items: 0,
        };
        for s in &self.stages {
            let out = stage(s, request).map_err(|e| self.refuse(e))?;
            total.changed |= out.changed;
            total.remaining_items = out.remaining_items;
        }
        Ok(total)
    }

    fn traces(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        if let Some(Legacy::Spans(filter)) = &self.legacy {
            let mut request = ExportTraceServiceRequest::decode(batch.raw.as_ref())
                .map_err(|e| self.refuse(e))?;
            let out = legacy::filter_spans(filter, &mut request);
            return Ok(self.outcome(batch, out, || request.encode_to_vec()));
        }
        // A dry-run error counts as "may drop": the full run then applies error_mode. Each
        // stage sees the original bytes only while the stages before it dropped nothing,
        // which is all the dry run needs to know.
        let may_drop = self
            .stages
            .iter()
            .any(|s| traces_may_drop(s.traces(), &batch.raw).unwrap_or(true));
        if !may_drop {
            return Ok((Edited::Unchanged, None));
        }
        let mut request =
            ExportTraceServiceRequest::decode(batch.raw.as_ref()).map_err(|e| self.refuse(e))?;
        let out = self.run(&mut request, |s, r| filter_traces(s.traces(), r))?;
        Ok(self.outcome(batch, out, || request.encode_to_vec()))
    }

    fn metrics(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        let mut request =
            ExportMetricsServiceRequest::decode(batch.raw.as_ref()).map_err(|e| self.refuse(e))?;
        if let Some(Legacy::Metrics(m)) = &self.legacy {
            let out = legacy::filter_metrics(m, &mut request);
            return Ok(self.outcome(batch, out, || request.encode_to_vec()));
        }
        let out = self.run(&mut request, |s, r| {
            let filters = MetricFilters {
                resource: s.resource.as_ref(),
                metric: s.metric.as_ref(),
                data_point: s.data_point.as_ref(),
            };
            filter_metrics(filters, r)
        })?;
        Ok(self.outcome(batch, out, || request.encode_to_vec()))
    }

    fn logs(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        let mut request =
            ExportLogsServiceRequest::decode(batch.raw.as_ref()).map_err(|e| self.refuse(e))?;
        if let Some(Legacy::Logs(filter)) = &self.legacy {
            let out = legacy::filter_logs(filter, &mut request);
            return Ok(self.outcome(batch, out, || request.encode_to_vec()));
        }
        let out = self.run(&mut request, |s, r| {
            let filters = LogFilters {
                resource: s.resource.as_ref(),
                log: s.log.as_ref(),
            };
            filter_logs(filters, r)
        })?;
        Ok(self.outcome(batch, out, || request.encode_to_vec()))
    }
}

impl BatchEditor for Filter {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        self.edit_counted(batch).map(|(edited, _)| edited)
    }

    fn edit_counted(&self, batch: &Batch) -> Result<(Edited, Option<OnCommit>), Refused> {
        if self.stages.is_empty() && self.legacy.is_none() {
            return Ok((Edited::Unchanged, None));
        }
        match self.signal {
            Signal::Traces => self.traces(batch),
            Signal::Metrics => self.metrics(batch),
            Signal::Logs => self.logs(batch),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_legacy;

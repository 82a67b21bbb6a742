//! TEMPORARY until the OTTL metric contexts land: the metrics filter API shape.
#![allow(dead_code)]
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use redline_ottl::{ConditionSet, ContextKind, ExecError, FilterOutcome};

pub struct MetricFilters<'c> {
    pub resource: Option<&'c ConditionSet>,
    pub metric: Option<&'c ConditionSet>,
    pub data_point: Option<&'c ConditionSet>,
}

pub fn filter_metrics(
    _: MetricFilters<'_>,
    _: &mut ExportMetricsServiceRequest,
) -> Result<FilterOutcome, ExecError> {
    Err(ExecError::WrongSignal(ContextKind::Metric))
}

pub struct LogFilters<'c> {
    pub resource: Option<&'c ConditionSet>,
    pub log: Option<&'c ConditionSet>,
}

pub fn filter_logs(
    f: LogFilters<'_>,
    req: &mut ExportLogsServiceRequest,
) -> Result<FilterOutcome, ExecError> {
    redline_ottl::filter_logs(f.log, req)
}

pub fn context(name: &str) -> Option<ContextKind> {
    Some(match name.to_ascii_lowercase().as_str() {
        "resource" => ContextKind::Resource,
        "scope" => ContextKind::Scope,
        "span" => ContextKind::Span,
        "spanevent" => ContextKind::SpanEvent,
        "metric" => ContextKind::Metric,
        "datapoint" => ContextKind::DataPoint,
        "log" => ContextKind::Log,
        _ => return None,
    })
}

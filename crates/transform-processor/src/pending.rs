//! TEMPORARY until the OTTL metric contexts land.
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use redline_ottl::{ContextKind, ExecError, StatementGroup};

pub trait ApplyMetrics {
    fn apply_metrics(&self, req: &mut ExportMetricsServiceRequest) -> Result<bool, ExecError>;
}

impl ApplyMetrics for StatementGroup {
    fn apply_metrics(&self, _: &mut ExportMetricsServiceRequest) -> Result<bool, ExecError> {
        Err(ExecError::WrongSignal(ContextKind::Metric))
    }
}

//! Metric and data point fields on prost messages.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::Metric;

use crate::error::EvalError;
use crate::paths::{DataPointField, Field, MetricField};
use crate::value::Value;

/// A metric and, in the data point context, the index of the point in its data.
pub(crate) struct MetricParts<'a> {
    pub metric: &'a mut Metric,
    pub point: Option<usize>,
}

fn unsupported(what: &str) -> EvalError {
    EvalError::new(format!(
        "{what} is not supported yet in this implementation"
    ))
}

impl MetricParts<'_> {
    pub(crate) fn read_metric(&self, f: MetricField) -> Result<Value<'_>, EvalError> {
        let _ = (&self.metric, self.point, f);
        Err(unsupported("reading metric fields"))
    }

    pub(crate) fn read_point(&self, f: DataPointField) -> Result<Value<'_>, EvalError> {
        let _ = f;
        Err(unsupported("reading data point fields"))
    }

    pub(crate) fn write_metric(
        &mut self,
        f: MetricField,
        v: Value<'static>,
    ) -> Result<(), EvalError> {
        let _ = (f, v);
        Err(unsupported("writing metric fields"))
    }

    pub(crate) fn write_point(
        &mut self,
        f: DataPointField,
        v: Value<'static>,
    ) -> Result<(), EvalError> {
        let _ = (f, v);
        Err(unsupported("writing data point fields"))
    }

    pub(crate) fn map_mut(&mut self, f: Field) -> Result<&mut Vec<KeyValue>, EvalError> {
        let _ = f;
        Err(unsupported("metric maps"))
    }
}

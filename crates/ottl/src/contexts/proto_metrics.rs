//! Metric fields on prost messages (otelcol's `ctxmetric`), and the way to the data point a
//! data point statement runs on.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};

use super::proto_points::{read_point, write_point};
use crate::error::EvalError;
use crate::paths::{DataPointField, Field, MetricField};
use crate::value::{MapRef, OpaqueKind, Value};
use crate::write::{expect_bool, expect_int, expect_string};

/// A metric and, in the data point context, the index of the point in its data.
pub(crate) struct MetricParts<'a> {
    pub metric: &'a mut Metric,
    pub point: Option<usize>,
}

/// A data point of any of the four kinds.
#[derive(Clone, Copy)]
pub(crate) enum PointRef<'m> {
    Number(&'m NumberDataPoint),
    Histogram(&'m HistogramDataPoint),
    Exponential(&'m ExponentialHistogramDataPoint),
    Summary(&'m SummaryDataPoint),
}

/// A data point of any of the four kinds, to edit.
pub(crate) enum PointMut<'m> {
    Number(&'m mut NumberDataPoint),
    Histogram(&'m mut HistogramDataPoint),
    Exponential(&'m mut ExponentialHistogramDataPoint),
    Summary(&'m mut SummaryDataPoint),
}

/// pdata's `MetricType` numbering, which the `METRIC_DATA_TYPE_*` symbols name.
pub(crate) fn metric_type(m: &Metric) -> i64 {
    match &m.data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    }
}

/// How many points the metric holds (its share of pdata's `DataPointCount`).
pub fn point_count(m: &Metric) -> usize {
    match &m.data {
        None => 0,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(e)) => e.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    }
}

/// Keeps the points whose flag in `keep` is set (points past its end are kept).
pub(crate) fn retain_points(m: &mut Metric, keep: &[bool]) {
    fn retain<P>(points: &mut Vec<P>, keep: &[bool]) {
        let mut flags = keep.iter();
        points.retain(|_| flags.next().copied().unwrap_or(true));
    }
    match &mut m.data {
        None => {}
        Some(Data::Gauge(g)) => retain(&mut g.data_points, keep),
        Some(Data::Sum(s)) => retain(&mut s.data_points, keep),
        Some(Data::Histogram(h)) => retain(&mut h.data_points, keep),
        Some(Data::ExponentialHistogram(e)) => retain(&mut e.data_points, keep),
        Some(Data::Summary(s)) => retain(&mut s.data_points, keep),
    }
}

fn points_kind(data: &Data) -> OpaqueKind {
    match data {
        Data::Gauge(_) | Data::Sum(_) => OpaqueKind::NumberDataPoints,
        Data::Histogram(_) => OpaqueKind::HistogramDataPoints,
        Data::ExponentialHistogram(_) => OpaqueKind::ExponentialHistogramDataPoints,
        Data::Summary(_) => OpaqueKind::SummaryDataPoints,
    }
}

fn clear_points(data: &mut Data) {
    match data {
        Data::Gauge(g) => g.data_points.clear(),
        Data::Sum(s) => s.data_points.clear(),
        Data::Histogram(h) => h.data_points.clear(),
        Data::ExponentialHistogram(e) => e.data_points.clear(),
        Data::Summary(s) => s.data_points.clear(),
    }
}

/// The point is gone when an earlier statement emptied `metric.data_points`.
fn no_point() -> EvalError {
    EvalError::new("the data point is no longer part of its metric")
}

fn read_metric(m: &Metric, f: MetricField) -> Value<'_> {
    match f {
        MetricField::Name => Value::str(&m.name),
        MetricField::Description => Value::str(&m.description),
        MetricField::Unit => Value::str(&m.unit),
        MetricField::Type => Value::Int(metric_type(m)),
        MetricField::AggregationTemporality => match &m.data {
            Some(Data::Sum(s)) => Value::Int(s.aggregation_temporality.into()),
            Some(Data::Histogram(h)) => Value::Int(h.aggregation_temporality.into()),
            Some(Data::ExponentialHistogram(e)) => Value::Int(e.aggregation_temporality.into()),
            _ => Value::Nil,
        },
        MetricField::IsMonotonic => match &m.data {
            Some(Data::Sum(s)) => Value::Bool(s.is_monotonic),
            _ => Value::Nil,
        },
        MetricField::DataPoints => match &m.data {
            Some(data) => Value::Opaque {
                kind: points_kind(data),
                len: point_count(m),
            },
            None => Value::Nil,
        },
        MetricField::Metadata => Value::Map(MapRef::Proto(&m.metadata)),
    }
}

fn write_metric(m: &mut Metric, f: MetricField, v: Value<'static>) -> Result<(), EvalError> {
    match f {
        MetricField::Name => m.name = expect_string(v)?,
        MetricField::Description => m.description = expect_string(v)?,
        MetricField::Unit => m.unit = expect_string(v)?,
        // otelcol accepts any value and changes nothing: converting between data types is
        // left to dedicated functions.
        MetricField::Type => {}
        MetricField::AggregationTemporality => {
            // Go converts int64 to the int32 enum by truncation.
            let temporality = expect_int(&v)? as i32;
            match &mut m.data {
                Some(Data::Sum(s)) => s.aggregation_temporality = temporality,
                Some(Data::Histogram(h)) => h.aggregation_temporality = temporality,
                Some(Data::ExponentialHistogram(e)) => e.aggregation_temporality = temporality,
                _ => {}
            }
        }
        MetricField::IsMonotonic => {
            let monotonic = expect_bool(&v)?;
            if let Some(Data::Sum(s)) = &mut m.data {
                s.is_monotonic = monotonic;
            }
        }
        MetricField::DataPoints => {
            let Some(data) = &mut m.data else {
                return Ok(());
            };
            let kind = points_kind(data);
            match v {
                Value::Nil => clear_points(data),
                // Only this metric's own points can be read here: copying them onto
                // themselves changes nothing.
                Value::Opaque { kind: given, .. } if given == kind => {}
                other => {
                    return Err(EvalError::new(format!(
                        "expects {} but got {}",
                        kind.type_name(),
                        other.type_name()
                    )))
                }
            }
        }
        MetricField::Metadata => {
            return Err(EvalError::new(
                "internal: metric.metadata is written through its map",
            ))
        }
    }
    Ok(())
}

impl MetricParts<'_> {
    pub(crate) fn read_metric(&self, f: MetricField) -> Result<Value<'_>, EvalError> {
        Ok(read_metric(self.metric, f))
    }

    pub(crate) fn point(&self) -> Result<PointRef<'_>, EvalError> {
        let i = self
            .point
            .ok_or_else(|| EvalError::new("internal: no data point in this context"))?;
        let found = match &self.metric.data {
            None => None,
            Some(Data::Gauge(g)) => g.data_points.get(i).map(PointRef::Number),
            Some(Data::Sum(s)) => s.data_points.get(i).map(PointRef::Number),
            Some(Data::Histogram(h)) => h.data_points.get(i).map(PointRef::Histogram),
            Some(Data::ExponentialHistogram(e)) => e.data_points.get(i).map(PointRef::Exponential),
            Some(Data::Summary(s)) => s.data_points.get(i).map(PointRef::Summary),
        };
        found.ok_or_else(no_point)
    }

    fn point_mut(&mut self) -> Result<PointMut<'_>, EvalError> {
        let i = self
            .point
            .ok_or_else(|| EvalError::new("internal: no data point in this context"))?;
        let found = match &mut self.metric.data {
            None => None,
            Some(Data::Gauge(g)) => g.data_points.get_mut(i).map(PointMut::Number),
            Some(Data::Sum(s)) => s.data_points.get_mut(i).map(PointMut::Number),
            Some(Data::Histogram(h)) => h.data_points.get_mut(i).map(PointMut::Histogram),
            Some(Data::ExponentialHistogram(e)) => {
                e.data_points.get_mut(i).map(PointMut::Exponential)
            }
            Some(Data::Summary(s)) => s.data_points.get_mut(i).map(PointMut::Summary),
        };
        found.ok_or_else(no_point)
    }

    pub(crate) fn read_point(&self, f: DataPointField) -> Result<Value<'_>, EvalError> {
        Ok(read_point(self.point()?, f))
    }

    pub(crate) fn write_metric(
        &mut self,
        f: MetricField,
        v: Value<'static>,
    ) -> Result<(), EvalError> {
        write_metric(self.metric, f, v)
    }

    pub(crate) fn write_point(
        &mut self,
        f: DataPointField,
        v: Value<'static>,
    ) -> Result<(), EvalError> {
        write_point(self.point_mut()?, f, v)
    }

    /// The map behind `metric.metadata` or `datapoint.attributes`.
    pub(crate) fn map_mut(&mut self, f: Field) -> Result<&mut Vec<KeyValue>, EvalError> {
        match f {
            Field::Metric(MetricField::Metadata) => Ok(&mut self.metric.metadata),
            Field::DataPoint(DataPointField::Attributes) => Ok(match self.point_mut()? {
                PointMut::Number(p) => &mut p.attributes,
                PointMut::Histogram(p) => &mut p.attributes,
                PointMut::Exponential(p) => &mut p.attributes,
                PointMut::Summary(p) => &mut p.attributes,
            }),
            _ => Err(EvalError::new("internal: not a metric map field")),
        }
    }
}

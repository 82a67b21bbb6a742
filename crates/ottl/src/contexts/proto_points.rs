//! Data point fields on prost messages (otelcol's `ctxdatapoint`): which fields each of the
//! number, histogram, exponential histogram and summary points has, and pdata's rules for
//! reading (nil where the point lacks the field) and writing them.

use std::borrow::Cow;

use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, ExponentialHistogramDataPoint};

use super::int_of;
use super::proto_metrics::{PointMut, PointRef};
use crate::error::EvalError;
use crate::paths::DataPointField as F;
use crate::value::{MapRef, OpaqueKind, Value};
use crate::write::{expect_float, expect_int};

impl<'m> PointRef<'m> {
    fn exemplars(self) -> Option<&'m [Exemplar]> {
        match self {
            PointRef::Number(p) => Some(&p.exemplars),
            PointRef::Histogram(p) => Some(&p.exemplars),
            PointRef::Exponential(p) => Some(&p.exemplars),
            PointRef::Summary(_) => None,
        }
    }
}

impl PointMut<'_> {
    /// The Go type of the point, as otelcol's messages print it.
    fn type_name(&self) -> &'static str {
        match self {
            PointMut::Number(_) => "pmetric.NumberDataPoint",
            PointMut::Histogram(_) => "pmetric.HistogramDataPoint",
            PointMut::Exponential(_) => "pmetric.ExponentialHistogramDataPoint",
            PointMut::Summary(_) => "pmetric.SummaryDataPoint",
        }
    }

    /// `ctxutil.ExpectType[pmetric.<want>]` on the point itself.
    fn wrong_point(&self, want: &str) -> EvalError {
        EvalError::new(format!(
            "expects pmetric.{want} but got {}",
            self.type_name()
        ))
    }

    fn unsupported(&self) -> EvalError {
        EvalError::new(format!("unsupported data point type: {}", self.type_name()))
    }
}

fn exponential(p: PointMut<'_>) -> Result<&mut ExponentialHistogramDataPoint, EvalError> {
    match p {
        PointMut::Exponential(p) => Ok(p),
        other => Err(other.wrong_point("ExponentialHistogramDataPoint")),
    }
}

// pdata's absent buckets read as offset 0 with no counts.
fn bucket_offset(b: Option<&Buckets>) -> Value<'static> {
    Value::Int(b.map_or(0, |b| b.offset).into())
}

fn bucket_counts(b: Option<&Buckets>) -> Value<'_> {
    Value::Counts(Cow::Borrowed(b.map_or(&[][..], |b| &b.bucket_counts)))
}

fn opaque(kind: OpaqueKind, len: usize) -> Value<'static> {
    Value::Opaque { kind, len }
}

/// A field's value, nil where the point's kind lacks it (as otelcol's getters).
pub(crate) fn read_point(p: PointRef<'_>, f: F) -> Value<'_> {
    use PointRef as P;
    match (f, p) {
        (F::Attributes, P::Number(p)) => Value::Map(MapRef::Proto(&p.attributes)),
        (F::Attributes, P::Histogram(p)) => Value::Map(MapRef::Proto(&p.attributes)),
        (F::Attributes, P::Exponential(p)) => Value::Map(MapRef::Proto(&p.attributes)),
        (F::Attributes, P::Summary(p)) => Value::Map(MapRef::Proto(&p.attributes)),
        (F::StartTimeUnixNano, P::Number(p)) => int_of(p.start_time_unix_nano),
        (F::StartTimeUnixNano, P::Histogram(p)) => int_of(p.start_time_unix_nano),
        (F::StartTimeUnixNano, P::Exponential(p)) => int_of(p.start_time_unix_nano),
        (F::StartTimeUnixNano, P::Summary(p)) => int_of(p.start_time_unix_nano),
        (F::TimeUnixNano, P::Number(p)) => int_of(p.time_unix_nano),
        (F::TimeUnixNano, P::Histogram(p)) => int_of(p.time_unix_nano),
        (F::TimeUnixNano, P::Exponential(p)) => int_of(p.time_unix_nano),
        (F::TimeUnixNano, P::Summary(p)) => int_of(p.time_unix_nano),
        (F::Flags, P::Number(p)) => int_of(p.flags.into()),
        (F::Flags, P::Histogram(p)) => int_of(p.flags.into()),
        (F::Flags, P::Exponential(p)) => int_of(p.flags.into()),
        (F::Flags, P::Summary(p)) => int_of(p.flags.into()),
        // pdata reads the value of the other kind as zero.
        (F::ValueDouble, P::Number(p)) => Value::Double(match p.value {
            Some(NumberValue::AsDouble(d)) => d,
            _ => 0.0,
        }),
        (F::ValueInt, P::Number(p)) => Value::Int(match p.value {
            Some(NumberValue::AsInt(i)) => i,
            _ => 0,
        }),
        (F::Exemplars, p) => match p.exemplars() {
            Some(e) => opaque(OpaqueKind::Exemplars, e.len()),
            None => Value::Nil,
        },
        (F::Count, P::Histogram(p)) => int_of(p.count),
        (F::Count, P::Exponential(p)) => int_of(p.count),
        (F::Count, P::Summary(p)) => int_of(p.count),
        (F::Sum, P::Histogram(p)) => Value::Double(p.sum.unwrap_or(0.0)),
        (F::Sum, P::Exponential(p)) => Value::Double(p.sum.unwrap_or(0.0)),
        (F::Sum, P::Summary(p)) => Value::Double(p.sum),
        (F::BucketCounts, P::Histogram(p)) => Value::Counts(Cow::Borrowed(&p.bucket_counts)),
        (F::ExplicitBounds, P::Histogram(p)) => Value::Bounds(Cow::Borrowed(&p.explicit_bounds)),
        (F::Scale, P::Exponential(p)) => Value::Int(p.scale.into()),
        (F::ZeroCount, P::Exponential(p)) => int_of(p.zero_count),
        (F::Positive, P::Exponential(_)) => opaque(OpaqueKind::PositiveBuckets, 0),
        (F::Negative, P::Exponential(_)) => opaque(OpaqueKind::NegativeBuckets, 0),
        (F::PositiveOffset, P::Exponential(p)) => bucket_offset(p.positive.as_ref()),
        (F::PositiveBucketCounts, P::Exponential(p)) => bucket_counts(p.positive.as_ref()),
        (F::NegativeOffset, P::Exponential(p)) => bucket_offset(p.negative.as_ref()),
        (F::NegativeBucketCounts, P::Exponential(p)) => bucket_counts(p.negative.as_ref()),
        (F::QuantileValues, P::Summary(p)) => {
            opaque(OpaqueKind::QuantileValues, p.quantile_values.len())
        }
        _ => Value::Nil,
    }
}

/// `ctxutil.SetCommonIntSliceValues[uint64]`: nil empties, a list must hold only ints.
fn counts_of(v: Value<'static>) -> Result<Vec<u64>, EvalError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Counts(c) => Ok(c.into_owned()),
        Value::Slice(items) => items
            .elements()
            // Go converts each int64 to uint64 by reinterpreting its bits.
            .map(|item| match item {
                Value::Int(i) => Ok(i as u64),
                other => Err(EvalError::new(format!(
                    "invalid value type provided for a slice of uint64: {}, expected int64",
                    other.type_name()
                ))),
            })
            .collect(),
        other => Err(EvalError::new(format!(
            "cannot set a slice of {} from a value type: uint64",
            other.type_name()
        ))),
    }
}

/// `ctxutil.SetCommonTypedSliceValues[float64]`: nil empties, a list must hold only floats.
fn bounds_of(v: Value<'static>) -> Result<Vec<f64>, EvalError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Bounds(b) => Ok(b.into_owned()),
        Value::Slice(items) => items
            .elements()
            .map(|item| match item {
                Value::Double(d) => Ok(d),
                other => Err(EvalError::new(format!(
                    "invalid value type provided for a slice of float64: {}",
                    other.type_name()
                ))),
            })
            .collect(),
        other => Err(EvalError::new(format!(
            "invalid type provided for setting a slice of {}: float64",
            other.type_name()
        ))),
    }
}

/// `ctxutil.SetPSliceValue` for a pdata slice only its own path yields: nil empties it,
/// the same slice copied onto itself changes nothing, anything else is refused.
fn clear_or_keep<T>(items: &mut Vec<T>, kind: OpaqueKind, v: &Value<'_>) -> Result<(), EvalError> {
    match v {
        Value::Nil => items.clear(),
        Value::Opaque { kind: given, .. } if *given == kind => {}
        other => {
            return Err(EvalError::new(format!(
                "expects {} but got {}",
                kind.type_name(),
                other.type_name()
            )))
        }
    }
    Ok(())
}

fn set_number(p: PointMut<'_>, value: NumberValue) -> Result<(), EvalError> {
    match p {
        PointMut::Number(p) => {
            p.value = Some(value);
            Ok(())
        }
        other => Err(other.wrong_point("NumberDataPoint")),
    }
}

/// Sets a field as otelcol's setters do: the value's type is checked first, then whether
/// the point has the field.
pub(crate) fn write_point(p: PointMut<'_>, f: F, v: Value<'static>) -> Result<(), EvalError> {
    use PointMut as P;
    match f {
        F::Attributes => {
            return Err(EvalError::new(
                "internal: datapoint.attributes is written through its map",
            ))
        }
        F::StartTimeUnixNano => {
            let t = expect_int(&v)? as u64;
            match p {
                P::Number(p) => p.start_time_unix_nano = t,
                P::Histogram(p) => p.start_time_unix_nano = t,
                P::Exponential(p) => p.start_time_unix_nano = t,
                P::Summary(p) => p.start_time_unix_nano = t,
            }
        }
        F::TimeUnixNano => {
            let t = expect_int(&v)? as u64;
            match p {
                P::Number(p) => p.time_unix_nano = t,
                P::Histogram(p) => p.time_unix_nano = t,
                P::Exponential(p) => p.time_unix_nano = t,
                P::Summary(p) => p.time_unix_nano = t,
            }
        }
        F::Flags => {
            // pdata's flags are a uint32: Go truncates the int64.
            let flags = expect_int(&v)? as u32;
            match p {
                P::Number(p) => p.flags = flags,
                P::Histogram(p) => p.flags = flags,
                P::Exponential(p) => p.flags = flags,
                P::Summary(p) => p.flags = flags,
            }
        }
        F::ValueDouble => set_number(p, NumberValue::AsDouble(expect_float(&v)?))?,
        F::ValueInt => set_number(p, NumberValue::AsInt(expect_int(&v)?))?,
        F::Exemplars => match p {
            P::Number(p) => clear_or_keep(&mut p.exemplars, OpaqueKind::Exemplars, &v)?,
            P::Histogram(p) => clear_or_keep(&mut p.exemplars, OpaqueKind::Exemplars, &v)?,
            P::Exponential(p) => clear_or_keep(&mut p.exemplars, OpaqueKind::Exemplars, &v)?,
            other @ P::Summary(_) => return Err(other.unsupported()),
        },
        F::Count => {
            let count = expect_int(&v)? as u64;
            match p {
                P::Histogram(p) => p.count = count,
                P::Exponential(p) => p.count = count,
                P::Summary(p) => p.count = count,
                other @ P::Number(_) => return Err(other.unsupported()),
            }
        }
        F::Sum => {
            let sum = expect_float(&v)?;
            match p {
                P::Histogram(p) => p.sum = Some(sum),
                P::Exponential(p) => p.sum = Some(sum),
                P::Summary(p) => p.sum = sum,
                other @ P::Number(_) => return Err(other.unsupported()),
            }
        }
        F::BucketCounts | F::ExplicitBounds => {
            let P::Histogram(p) = p else {
                return Err(p.wrong_point("HistogramDataPoint"));
            };
            if f == F::BucketCounts {
                p.bucket_counts = counts_of(v)?;
            } else {
                p.explicit_bounds = bounds_of(v)?;
            }
        }
        F::Scale => {
            let scale = expect_int(&v)? as i32;
            exponential(p)?.scale = scale;
        }
        F::ZeroCount => {
            let zero_count = expect_int(&v)? as u64;
            exponential(p)?.zero_count = zero_count;
        }
        F::Positive | F::Negative => {
            let source = match v {
                Value::Opaque {
                    kind: kind @ (OpaqueKind::PositiveBuckets | OpaqueKind::NegativeBuckets),
                    ..
                } => kind,
                Value::Nil => {
                    return Err(EvalError::new("setting a value to nil is not supported"))
                }
                other => {
                    return Err(EvalError::new(format!(
                        "expects pmetric.ExponentialHistogramDataPointBuckets but got {}",
                        other.type_name()
                    )))
                }
            };
            // Buckets can only be read from this same point: copy one side onto the other.
            let e = exponential(p)?;
            let copied = if source == OpaqueKind::PositiveBuckets {
                e.positive.clone()
            } else {
                e.negative.clone()
            };
            if f == F::Positive {
                e.positive = copied;
            } else {
                e.negative = copied;
            }
        }
        F::PositiveOffset | F::NegativeOffset => {
            let offset = expect_int(&v)? as i32;
            let e = exponential(p)?;
            let side = if f == F::PositiveOffset {
                &mut e.positive
            } else {
                &mut e.negative
            };
            side.get_or_insert_with(Buckets::default).offset = offset;
        }
        F::PositiveBucketCounts | F::NegativeBucketCounts => {
            let e = exponential(p)?;
            let counts = counts_of(v)?;
            let side = if f == F::PositiveBucketCounts {
                &mut e.positive
            } else {
                &mut e.negative
            };
            side.get_or_insert_with(Buckets::default).bucket_counts = counts;
        }
        F::QuantileValues => match p {
            P::Summary(p) => clear_or_keep(&mut p.quantile_values, OpaqueKind::QuantileValues, &v)?,
            other => return Err(other.wrong_point("SummaryDataPoint")),
        },
    }
    Ok(())
}

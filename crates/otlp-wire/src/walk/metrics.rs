//! `ExportMetricsServiceRequest`: validated with prost's rules (opentelemetry-proto
//! `metrics/v1`), counting metrics and data points the way the OpenTelemetry Collector does.
//!
//! Every message is read by one function with a `match` on the field number, as in `trace`.
//! Scalars are only type-checked; `repeated` scalars (bucket counts, bounds) are accepted
//! packed or not, as prost accepts them.

use super::attributes::key_value;
use super::envelope::{self, Names};
use super::fields::{Elements, Field, Fields};
use crate::cursor::Cursor;
use crate::error::{WireError, WireType};

/// Counts gathered while validating an `ExportMetricsServiceRequest`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MetricsStats {
    /// `ResourceMetrics` messages.
    pub resource_metrics: usize,
    /// `ScopeMetrics` messages.
    pub scope_metrics: usize,
    /// `Metric` messages (with or without data).
    pub metrics: usize,
    /// Data points, counted as pdata's `Metrics.DataPointCount()` counts them (what the
    /// Collector reports as `otelcol_receiver_accepted_metric_points`): the points of each
    /// metric's gauge, sum, histogram, exponential histogram or summary; a metric without
    /// data counts 0. When the `data` oneof occurs several times on the wire, protobuf keeps
    /// the last variant, merging consecutive occurrences of it; so does this count.
    pub data_points: usize,
}

/// Validates an encoded `ExportMetricsServiceRequest` and counts its metrics and data points.
///
/// Accepts exactly what `prost` accepts when decoding it into the opentelemetry-proto types:
/// same wire rules, UTF-8 checks on `string` fields (not on `bytes`), packed and unpacked
/// repeated scalars, unknown fields skipped, recursion limit of
/// [`RECURSION_LIMIT`](crate::RECURSION_LIMIT). Never panics and does not allocate unless
/// the request is invalid.
///
/// ```
/// use redline_otlp_wire::{validate_metrics, WireErrorKind};
///
/// // resource_metrics { scope_metrics { metrics { name: "up", gauge { data_points {} } } } }
/// let gauge = [0x2a, 0x02, 0x0a, 0x00];
/// let metric = [&[0x0a, 0x02, b'u', b'p'][..], &gauge].concat();
/// let scope = [&[0x12, metric.len() as u8][..], &metric].concat();
/// let resource = [&[0x12, scope.len() as u8][..], &scope].concat();
/// let request = [&[0x0a, resource.len() as u8][..], &resource].concat();
/// let stats = validate_metrics(&request).unwrap();
/// assert_eq!((stats.metrics, stats.data_points), (1, 1));
///
/// // The same with the name cut into invalid UTF-8.
/// let bad = [&request[..8], &[0xff][..], &request[9..]].concat();
/// assert_eq!(validate_metrics(&bad).unwrap_err().kind(), &WireErrorKind::InvalidUtf8);
/// ```
pub fn validate_metrics(raw: &[u8]) -> Result<MetricsStats, WireError> {
    let names = Names {
        resources: "resource_metrics",
        scopes: "scope_metrics",
        items: "metrics",
        item: "metric",
    };
    let mut data_points = 0usize;
    let counts = envelope::request(Cursor::new(raw), &names, &mut |c, r| {
        data_points += metric(c, r)?;
        Ok(())
    })?;
    Ok(MetricsStats {
        resource_metrics: counts.resources,
        scope_metrics: counts.scopes,
        metrics: counts.items,
        data_points,
    })
}

/// `Metric`: returns its number of data points.
fn metric(c: Cursor<'_>, r: u32) -> Result<usize, WireError> {
    let mut metadata = Elements::new("metadata", "metadata entry");
    let mut data = DataOneof::default();
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_string("name")?,
            2 => f.check_string("description")?,
            3 => f.check_string("unit")?,
            5 => data.occurrence(
                5,
                f.singular("gauge", |c, r| points(c, r, number_point, &[]))?,
            ),
            7 => data.occurrence(
                7,
                f.singular("sum", |c, r| {
                    let varints = [(2, "aggregation_temporality"), (3, "is_monotonic")];
                    points(c, r, number_point, &varints)
                })?,
            ),
            9 => data.occurrence(
                9,
                f.singular("histogram", |c, r| {
                    points(c, r, histogram_point, &[(2, "aggregation_temporality")])
                })?,
            ),
            10 => data.occurrence(
                10,
                f.singular("exponential_histogram", |c, r| {
                    points(c, r, exponential_point, &[(2, "aggregation_temporality")])
                })?,
            ),
            11 => data.occurrence(
                11,
                f.singular("summary", |c, r| points(c, r, summary_point, &[]))?,
            ),
            12 => metadata.read::<true>(f, |c, r| key_value(c, r))?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(data.points)
}

/// The `Metric.data` oneof as prost decodes it: the variant last seen and its data points.
/// A different variant replaces the current one; another occurrence of the same variant
/// merges into it (its repeated `data_points` concatenate). Other fields change nothing.
#[derive(Default)]
struct DataOneof {
    variant: u32,
    points: usize,
}

impl DataOneof {
    fn occurrence(&mut self, variant: u32, points: usize) {
        if variant == self.variant {
            self.points += points;
        } else {
            self.variant = variant;
            self.points = points;
        }
    }
}

/// `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram` or `Summary`: `data_points` (field 1)
/// read by `point`, plus the varint fields `varints` (enums and bools). Returns the number
/// of data points.
fn points<'a>(
    c: Cursor<'a>,
    r: u32,
    point: impl Fn(Cursor<'a>, u32) -> Result<(), WireError>,
    varints: &[(u32, &'static str)],
) -> Result<usize, WireError> {
    let mut data_points = Elements::new("data_points", "data_point");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        if f.tag == 1 {
            data_points.read::<true>(f, &point)?;
        } else if let Some((_, name)) = varints.iter().find(|(tag, _)| *tag == f.tag) {
            f.check_type(WireType::Varint, name)?;
        } else {
            fields.skip_unknown(f)?;
        }
    }
    Ok(data_points.count())
}

/// A `fixed64`, `sfixed64` or `double` field (all of wire type I64).
#[inline]
fn i64_field(f: Field<'_>, name: &str) -> Result<(), WireError> {
    f.check_type(WireType::Fixed64, name)
}

/// `NumberDataPoint`.
fn number_point(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut exemplars = Elements::new("exemplars", "exemplar");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            7 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            2 => i64_field(f, "start_time_unix_nano")?,
            3 => i64_field(f, "time_unix_nano")?,
            // The `value` oneof: both variants are scalars, so merging changes nothing here.
            4 => i64_field(f, "as_double")?,
            6 => i64_field(f, "as_int")?,
            5 => exemplars.read::<true>(f, exemplar)?,
            8 => f.check_type(WireType::Varint, "flags")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `HistogramDataPoint`.
fn histogram_point(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut exemplars = Elements::new("exemplars", "exemplar");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            9 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            2 => i64_field(f, "start_time_unix_nano")?,
            3 => i64_field(f, "time_unix_nano")?,
            4 => i64_field(f, "count")?,
            5 => i64_field(f, "sum")?,
            6 => f.check_repeated_scalar(WireType::Fixed64, "bucket_counts")?,
            7 => f.check_repeated_scalar(WireType::Fixed64, "explicit_bounds")?,
            8 => exemplars.read::<true>(f, exemplar)?,
            10 => f.check_type(WireType::Varint, "flags")?,
            11 => i64_field(f, "min")?,
            12 => i64_field(f, "max")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `ExponentialHistogramDataPoint`.
fn exponential_point(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut exemplars = Elements::new("exemplars", "exemplar");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            2 => i64_field(f, "start_time_unix_nano")?,
            3 => i64_field(f, "time_unix_nano")?,
            4 => i64_field(f, "count")?,
            5 => i64_field(f, "sum")?,
            // sint32: any varint (zigzag-decoded from its low 32 bits).
            6 => f.check_type(WireType::Varint, "scale")?,
            7 => i64_field(f, "zero_count")?,
            8 => f.singular("positive", buckets)?,
            9 => f.singular("negative", buckets)?,
            10 => f.check_type(WireType::Varint, "flags")?,
            11 => exemplars.read::<true>(f, exemplar)?,
            12 => i64_field(f, "min")?,
            13 => i64_field(f, "max")?,
            14 => i64_field(f, "zero_threshold")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `ExponentialHistogramDataPoint.Buckets`.
fn buckets(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_type(WireType::Varint, "offset")?,
            2 => f.check_repeated_scalar(WireType::Varint, "bucket_counts")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `SummaryDataPoint`.
fn summary_point(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut quantiles = Elements::new("quantile_values", "quantile");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            7 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            2 => i64_field(f, "start_time_unix_nano")?,
            3 => i64_field(f, "time_unix_nano")?,
            4 => i64_field(f, "count")?,
            5 => i64_field(f, "sum")?,
            6 => quantiles.read::<true>(f, value_at_quantile)?,
            8 => f.check_type(WireType::Varint, "flags")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `SummaryDataPoint.ValueAtQuantile`.
fn value_at_quantile(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => i64_field(f, "quantile")?,
            2 => i64_field(f, "value")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `Exemplar`.
fn exemplar(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("filtered_attributes", "attribute");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            7 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            2 => i64_field(f, "time_unix_nano")?,
            // The `value` oneof, as in `NumberDataPoint`.
            3 => i64_field(f, "as_double")?,
            6 => i64_field(f, "as_int")?,
            4 => f.check_type(WireType::Len, "span_id")?,
            5 => f.check_type(WireType::Len, "trace_id")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

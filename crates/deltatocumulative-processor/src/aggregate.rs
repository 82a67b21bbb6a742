//! One delta point added to its stream's running total, with otelcol's rules: the first
//! point of a stream is the total; a point that starts before the total or is not newer
//! than it is dropped; a histogram whose bounds changed starts over from that point.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
};

use crate::expo;

/// Why a point was dropped, named as otelcol's `otelcol_deltatocumulative_datapoints`
/// counter names it in its `error` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// It starts before the stream's first point (another process sending the same series?).
    OlderStart,
    /// It is not newer than the last point of its stream.
    OutOfOrder,
    /// A new stream while `max_streams` are tracked.
    Limit,
}

impl Dropped {
    pub fn label(self) -> &'static str {
        match self {
            Self::OlderStart => "delta.ErrOlderStart",
            Self::OutOfOrder => "delta.ErrOutOfOrder",
            Self::Limit => "limit",
        }
    }
}

/// A data point that can be summed over time.
pub trait Point: Clone + Default {
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    fn set_time(&mut self, time: u64);
    /// Adds `dp` (newer than `self`) into `self`; whether `dp` replaced the total instead (a
    /// histogram whose bounds changed starts over).
    fn add(&mut self, dp: Self) -> bool;
    /// Moves out what a total keeps only from the point that started it: otelcol forwards
    /// the attributes (in that point's order) and exemplars of the point its total was
    /// copied from.
    fn take_extras(&mut self) -> (Vec<KeyValue>, Vec<Exemplar>);
    fn set_extras(&mut self, attributes: Vec<KeyValue>, exemplars: Vec<Exemplar>);
}

/// How a point went into its total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Summed into the total.
    Summed,
    /// The point is the total now (the first of its stream, or a histogram starting over).
    Replaced,
}

/// Adds `dp` to `total`, which becomes what is forwarded in its place.
pub fn aggregate<P: Point>(total: &mut P, dp: P) -> Result<Added, Dropped> {
    if total.time() == 0 {
        *total = dp;
        return Ok(Added::Replaced);
    }
    if dp.start() < total.start() {
        return Err(Dropped::OlderStart);
    }
    if dp.time() <= total.time() {
        return Err(Dropped::OutOfOrder);
    }
    let time = dp.time();
    let replaced = total.add(dp);
    total.set_time(time);
    Ok(if replaced {
        Added::Replaced
    } else {
        Added::Summed
    })
}

macro_rules! times {
    () => {
        fn take_extras(&mut self) -> (Vec<KeyValue>, Vec<Exemplar>) {
            (
                std::mem::take(&mut self.attributes),
                std::mem::take(&mut self.exemplars),
            )
        }
        fn set_extras(&mut self, attributes: Vec<KeyValue>, exemplars: Vec<Exemplar>) {
            self.attributes = attributes;
            self.exemplars = exemplars;
        }
        fn start(&self) -> u64 {
            self.start_time_unix_nano
        }
        fn time(&self) -> u64 {
            self.time_unix_nano
        }
        fn set_time(&mut self, time: u64) {
            self.time_unix_nano = time;
        }
    };
}

impl Point for NumberDataPoint {
    times!();

    /// The point's type wins: a double added to an int total reads the total as 0.0, as
    /// pdata reads a value of the other type.
    fn add(&mut self, dp: Self) -> bool {
        self.value = match (self.value, dp.value) {
            (Some(Value::AsDouble(a)), Some(Value::AsDouble(b))) => Some(Value::AsDouble(a + b)),
            (_, Some(Value::AsDouble(b))) => Some(Value::AsDouble(0.0 + b)),
            (Some(Value::AsInt(a)), Some(Value::AsInt(b))) => Some(Value::AsInt(a.wrapping_add(b))),
            (_, Some(Value::AsInt(b))) => Some(Value::AsInt(b)),
            (total, None) => total,
        };
        false
    }
}

impl Point for HistogramDataPoint {
    times!();

    fn add(&mut self, dp: Self) -> bool {
        if self.explicit_bounds != dp.explicit_bounds {
            *self = dp;
            return true;
        }
        for (total, n) in self.bucket_counts.iter_mut().zip(&dp.bucket_counts) {
            *total = total.wrapping_add(*n);
        }
        self.count = self.count.wrapping_add(dp.count);
        self.sum = self.sum.zip(dp.sum).map(|(a, b)| a + b);
        self.min = self.min.zip(dp.min).map(|(a, b)| go_min(a, b));
        self.max = self.max.zip(dp.max).map(|(a, b)| go_max(a, b));
        false
    }
}

impl Point for ExponentialHistogramDataPoint {
    times!();

    fn add(&mut self, mut dp: Self) -> bool {
        expo::merge_buckets(self, &mut dp);
        self.count = self.count.wrapping_add(dp.count);
        self.zero_count = self.zero_count.wrapping_add(dp.zero_count);
        self.sum = self.sum.zip(dp.sum).map(|(a, b)| a + b);
        self.min = self.min.zip(dp.min).map(|(a, b)| go_min(a, b));
        self.max = self.max.zip(dp.max).map(|(a, b)| go_max(a, b));
        false
    }
}

/// Go's `math.Min`: NaN if either is, and -0 below +0.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else {
        a.min(b)
    }
}

/// Go's `math.Max`: NaN if either is, and +0 above -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_positive() {
            a
        } else {
            b
        }
    } else {
        a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(start: u64, time: u64, value: Value) -> NumberDataPoint {
        NumberDataPoint {
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(value),
            ..NumberDataPoint::default()
        }
    }

    #[test]
    fn sums_keep_the_first_start_and_take_the_latest_time() {
        let mut total = NumberDataPoint::default();
        assert_eq!(
            aggregate(&mut total, number(10, 20, Value::AsInt(3))),
            Ok(Added::Replaced)
        );
        assert_eq!(
            aggregate(&mut total, number(20, 30, Value::AsInt(4))),
            Ok(Added::Summed)
        );
        assert_eq!(total, number(10, 30, Value::AsInt(7)));
        assert_eq!(
            aggregate(&mut total, number(5, 40, Value::AsInt(1))),
            Err(Dropped::OlderStart)
        );
        assert_eq!(
            aggregate(&mut total, number(30, 30, Value::AsInt(1))),
            Err(Dropped::OutOfOrder)
        );
        // A double after ints: the int total reads as 0.0.
        assert_eq!(
            aggregate(&mut total, number(30, 50, Value::AsDouble(0.5))),
            Ok(Added::Summed)
        );
        assert_eq!(total, number(10, 50, Value::AsDouble(0.5)));
    }

    #[test]
    fn histograms_add_buckets_and_start_over_when_bounds_change() {
        let h =
            |start, time, bounds: &[f64], counts: &[u64], sum: Option<f64>| HistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                count: counts.iter().sum(),
                sum,
                bucket_counts: counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
                min: Some(1.0),
                max: Some(time as f64),
                ..HistogramDataPoint::default()
            };
        let mut total = HistogramDataPoint::default();
        aggregate(&mut total, h(1, 2, &[1.0], &[1, 2], Some(3.0))).expect("first");
        aggregate(&mut total, h(2, 3, &[1.0], &[4, 0], None)).expect("second");
        let mut want = h(1, 3, &[1.0], &[5, 2], None);
        want.max = Some(3.0);
        assert_eq!(total, want);
        let third = aggregate(&mut total, h(3, 4, &[2.0], &[1, 1], Some(2.0)));
        assert_eq!(third, Ok(Added::Replaced));
        assert_eq!(total, h(3, 4, &[2.0], &[1, 1], Some(2.0)));
    }

    #[test]
    fn min_and_max_follow_go() {
        assert!(go_min(f64::NAN, 1.0).is_nan() && go_max(1.0, f64::NAN).is_nan());
        assert!(go_min(0.0, -0.0).is_sign_negative() && go_max(-0.0, 0.0).is_sign_positive());
    }
}

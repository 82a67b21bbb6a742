//! Points with their own time, as an OTLP request carries them, written the way otelcol's
//! remote-write translator writes them (`pkg/translator/prometheusremotewrite`):
//!
//! - every sample carries its point's timestamp (ms, truncated); a point without one (0, a
//!   connector's live state) takes the push's;
//! - OTLP's "no recorded value" arrives as [`STALE_NAN`] (a number's value, a histogram's or
//!   summary's sum) and then every sample of the point is the stale marker;
//! - exemplars keep their own time (0 stays 0) and are all sent, with or without ids: on the
//!   number's series (the source gives none for gauges), on the first bucket whose bound
//!   holds their value, or on the native histogram's series;
//! - summaries are `name{quantile}`, `name_sum`, `name_count`; exponential histograms are
//!   native histograms under the bare family name (see [`crate::native`]).
//!
//! Live histograms (time 0) keep the scrape exporter's exemplar rules instead (one per
//! bucket, none without ids), so a spanmetrics series looks the same scraped or pushed.

use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, HistogramPoint, MetricKind, NumberPoint, SummaryPoint,
    STALE_NAN,
};

use super::{nanos_to_ms, Body, Encoder, ExOut, Which, LE};
use crate::native;

const QUANTILE: &[u8] = b"quantile";

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN.to_bits()
}

/// An exemplar as the translator writes it: its own time, whatever ids it has.
fn pushed(e: &Exemplar) -> ExOut {
    ExOut::new(e, nanos_to_ms(e.time_unix_nano))
}

impl Encoder<'_> {
    /// The point's time in ms, or the push's for live state.
    fn point_ms(&self, time_unix_nano: u64) -> i64 {
        if time_unix_nano == 0 {
            self.timestamp_ms
        } else {
            nanos_to_ms(time_unix_nano)
        }
    }

    pub(super) fn put_number(&mut self, labels: &[(&str, &str)], point: &NumberPoint<'_>) {
        let counter = self.accepts(MetricKind::Counter);
        if !counter && !self.accepts(MetricKind::Gauge) {
            return;
        }
        let ts = self.point_ms(point.time_unix_nano);
        if !self.begin_series(labels, None, Some(ts)) {
            return;
        }
        // Which points carry exemplars is the source's call: otelcol's translator attaches
        // them to every sum (a non-monotonic one is a gauge here) and to no gauge.
        let exemplars: Vec<ExOut> = point.exemplars.iter().map(pushed).collect();
        let value = Body::Sample(point.value);
        self.put_series(Which::Sample, None, value, ts, &exemplars);
        if counter {
            self.put_created(point.start_time_unix_nano, ts);
        }
    }

    pub(super) fn put_summary(&mut self, labels: &[(&str, &str)], point: &SummaryPoint<'_>) {
        if !self.accepts(MetricKind::Summary) {
            return;
        }
        let ts = self.point_ms(point.time_unix_nano);
        if !self.begin_series(labels, Some(QUANTILE), Some(ts)) {
            return;
        }
        let stale = is_stale(point.sum);
        let or_stale = |v: f64| Body::Sample(if stale { STALE_NAN } else { v });
        self.put_series(Which::Sum, None, or_stale(point.sum), ts, &[]);
        self.put_series(Which::Count, None, or_stale(point.count as f64), ts, &[]);
        let quantiles: Vec<f64> = point.quantiles.iter().map(|(q, _)| *q).collect();
        self.prepare_le(&quantiles);
        for (i, (_, value)) in point.quantiles.iter().enumerate() {
            self.put_series(Which::Quantile, Some(i), or_stale(*value), ts, &[]);
        }
    }

    pub(super) fn put_exponential(
        &mut self,
        labels: &[(&str, &str)],
        point: &ExponentialHistogramPoint<'_>,
    ) {
        if !self.accepts(MetricKind::ExponentialHistogram) {
            return;
        }
        let ts = self.point_ms(point.time_unix_nano);
        let histogram = match native::to_native(point, ts) {
            Ok(h) => h,
            Err(e) => {
                // otelcol drops the point, sends the rest and counts a translation failure.
                tracing::debug!(error = %e, "exponential histogram point skipped");
                self.out.skipped_points += 1;
                return;
            }
        };
        if !self.begin_series(labels, None, Some(ts)) {
            return;
        }
        let exemplars: Vec<ExOut> = point.exemplars.iter().map(pushed).collect();
        self.put_series(
            Which::Sample,
            None,
            Body::Native(&histogram),
            ts,
            &exemplars,
        );
    }

    pub(super) fn put_histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        if !self.accepts(MetricKind::Histogram) {
            return;
        }
        let live = point.time_unix_nano == 0;
        let ts = self.point_ms(point.time_unix_nano);
        if !self.begin_series(labels, Some(LE), (!live).then_some(ts)) {
            return;
        }
        self.prepare_le(point.bounds);
        // Live state writes every bound (a missing count is 0); the translator stops at the
        // shorter of bounds and counts.
        let n = if live {
            point.bounds.len()
        } else {
            point.bounds.len().min(point.bucket_counts.len())
        };
        let per_bucket = if live {
            live_exemplars(point, n, ts)
        } else {
            pushed_exemplars(point, n)
        };
        let stale = is_stale(point.sum);
        let or_stale = |v: f64| Body::Sample(if stale { STALE_NAN } else { v });
        let mut cumulative: u64 = 0;
        for i in 0..=n {
            cumulative = if i == n {
                // The +Inf bucket is the point's count, as otelcol and the Go client write it.
                point.count
            } else {
                cumulative.saturating_add(point.bucket_counts.get(i).copied().unwrap_or(0))
            };
            let ex = per_bucket.get(i).map_or(&[][..], Vec::as_slice);
            let le = (i < n).then_some(i);
            self.put_series(Which::Bucket, le, or_stale(cumulative as f64), ts, ex);
        }
        self.put_series(Which::Sum, None, or_stale(point.sum), ts, &[]);
        self.put_series(Which::Count, None, or_stale(point.count as f64), ts, &[]);
        self.put_created(point.start_time_unix_nano, ts);
    }
}

/// The scrape exporter's rule: each exemplar goes to the bucket its value falls in (bounds
/// are upper-inclusive); a later one for the same bucket replaces an earlier one.
fn live_exemplars(point: &HistogramPoint<'_>, n: usize, ts: i64) -> Vec<Vec<ExOut>> {
    let mut slots: Vec<Option<&Exemplar>> = Vec::new();
    if point.exemplars.is_empty() {
        return Vec::new();
    }
    slots.resize(n + 1, None);
    for e in point.exemplars {
        if e.value.is_nan() {
            continue;
        }
        let b = point.bounds[..n].partition_point(|&bound| bound < e.value);
        if let Some(slot) = slots.get_mut(b) {
            *slot = Some(e);
        }
    }
    slots
        .into_iter()
        .map(|e| ExOut::live(e, ts).into_iter().collect())
        .collect()
}

/// The translator's rule: every exemplar goes to the bucket with the smallest bound at or
/// above its value (+Inf last), several per bucket in arrival order; a NaN goes nowhere.
fn pushed_exemplars(point: &HistogramPoint<'_>, n: usize) -> Vec<Vec<ExOut>> {
    if point.exemplars.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Vec<ExOut>> = (0..=n).map(|_| Vec::new()).collect();
    for e in point.exemplars {
        // The translator sorts the buckets by bound before matching, so unsorted bounds still
        // give the smallest bound that holds the value.
        let best = point.bounds[..n]
            .iter()
            .enumerate()
            .filter(|(_, &b)| e.value <= b)
            .min_by(|(_, a), (_, b)| a.total_cmp(b))
            .map(|(i, _)| i)
            .or((e.value <= f64::INFINITY).then_some(n));
        if let Some(slot) = best.and_then(|i| out.get_mut(i)) {
            slot.push(pushed(e));
        }
    }
    out
}

//! The point kinds OTLP brings besides spanmetrics' (float counters and gauges, summaries,
//! exponential histograms) and `send_timestamps`, rendered as client_golang renders otelcol's
//! const metrics.

use redline_pipeline::{
    ExponentialHistogramPoint, FamilyDesc, MetricKind, NumberPoint, SummaryPoint,
};

use super::{push_series_start, target_buf, Format, Renderer};
use crate::exemplar::push_exemplar;
use crate::native;
use crate::numfmt::{push_go_float, push_om_float, push_text_count, push_u64};

/// Now, for points that carry no time.
pub(crate) fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// otelcol builds `target_info` without `NewMetricWithTimestamp`: it never has a timestamp.
pub(crate) fn is_target_info(desc: &FamilyDesc<'_>) -> bool {
    desc.kind == MetricKind::Gauge && desc.name == redline_prometheus_translate::TARGET_INFO
}

/// A float sample: Go's `%g` in the text format, with `.0` added in OpenMetrics.
#[inline]
fn push_float(out: &mut Vec<u8>, format: Format, v: f64) {
    match format {
        Format::Text => push_go_float(out, v),
        Format::OpenMetrics => push_om_float(out, v),
    }
}

/// A count: a float in the text format (as the Go client writes it), an integer in
/// OpenMetrics.
#[inline]
fn push_count(out: &mut Vec<u8>, format: Format, v: u64) {
    match format {
        Format::Text => push_text_count(out, v),
        Format::OpenMetrics => push_u64(out, v),
    }
}

impl Renderer<'_> {
    /// Renders a series' label block; false when client_golang would refuse the series (two
    /// labels of one name after translation), which otelcol then leaves out.
    pub(super) fn series_labels(&mut self, labels: &[(&str, &str)]) -> bool {
        self.labels.render(labels, self.opts);
        if !self.labels.collided() {
            return true;
        }
        if !self.warned_collision {
            self.warned_collision = true;
            let metric = self.current.as_ref().map_or("", |c| c.name.as_str());
            tracing::warn!(
                metric,
                "series with a label name repeated after translation left out (as otelcol does)"
            );
        }
        false
    }

    /// Sets `stamp` for a point observed at `time_unix_nano` (0: the scrape's time).
    pub(super) fn set_stamp(&mut self, time_unix_nano: u64) {
        if !self.opts.send_timestamps() {
            return;
        }
        if self.unstamped {
            self.stamp.clear();
            return;
        }
        let t = if time_unix_nano == 0 {
            self.now_unix_nano
        } else {
            time_unix_nano
        };
        // client_golang keeps milliseconds (`TimestampMs`); OpenMetrics writes them as
        // seconds through a float.
        let ms = t / 1_000_000;
        self.stamp.clear();
        self.stamp.push(b' ');
        match self.format {
            Format::Text => push_u64(&mut self.stamp, ms),
            Format::OpenMetrics => push_om_float(&mut self.stamp, ms as f64 / 1000.0),
        }
    }

    pub(super) fn number_point(&mut self, labels: &[(&str, &str)], p: &NumberPoint<'_>) {
        let kind = match &self.current {
            Some(c) if !c.skip && matches!(c.kind, MetricKind::Counter | MetricKind::Gauge) => {
                c.kind
            }
            _ => return,
        };
        if self.spill_error.is_some() {
            return;
        }
        if !self.series_labels(labels) {
            return;
        }
        self.set_stamp(p.time_unix_nano);
        let format = self.format;
        let Renderer {
            out,
            written,
            current,
            labels,
            stamp,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        push_series_start(out, &cur.line_name, labels.as_bytes());
        push_float(out, format, p.value);
        out.extend_from_slice(stamp);
        // A counter shows its last exemplar (client_golang), and OpenMetrics only writes one
        // that has labels.
        if let (true, MetricKind::Counter, Some(e)) = (cur.exemplars, kind, p.exemplars.last()) {
            if e.trace_id != [0; 16] || e.span_id != [0; 8] {
                push_exemplar(out, e);
            }
        }
        out.push(b'\n');
        self.maybe_spill();
    }

    pub(super) fn summary_point(&mut self, labels: &[(&str, &str)], p: &SummaryPoint<'_>) {
        if !self.accepts(MetricKind::Summary) {
            return;
        }
        if !self.series_labels(labels) {
            return;
        }
        self.set_stamp(p.time_unix_nano);
        // otelcol puts the quantiles in a map (a repeated quantile keeps its last value) and
        // client_golang sorts them.
        self.quantiles.clear();
        for &(q, v) in p.quantiles {
            match self.quantiles.iter_mut().find(|(k, _)| *k == q) {
                Some(slot) => slot.1 = v,
                None => self.quantiles.push((q, v)),
            }
        }
        self.quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        let format = self.format;
        let Renderer {
            out,
            written,
            current,
            labels,
            stamp,
            quantiles,
            bucket_head,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        let label_block = labels.as_bytes();
        bucket_head.clear();
        bucket_head.extend_from_slice(&cur.line_name);
        if label_block.is_empty() {
            bucket_head.push(b'{');
        } else {
            bucket_head.extend_from_slice(label_block);
            bucket_head.push(b',');
        }
        for &(q, v) in quantiles.iter() {
            out.extend_from_slice(bucket_head);
            out.extend_from_slice(b"quantile=\"");
            push_float(out, format, q);
            out.extend_from_slice(b"\"} ");
            push_float(out, format, v);
            out.extend_from_slice(stamp);
            out.push(b'\n');
        }
        push_series_start(out, &cur.sum_name, label_block);
        push_float(out, format, p.sum);
        out.extend_from_slice(stamp);
        out.push(b'\n');
        push_series_start(out, &cur.count_name, label_block);
        push_count(out, format, p.count);
        out.extend_from_slice(stamp);
        out.push(b'\n');
        self.maybe_spill();
    }

    /// The text formats cannot carry native buckets: client_golang writes only the `+Inf`
    /// bucket, the sum and the count of a native histogram.
    pub(super) fn native_histogram_point(
        &mut self,
        labels: &[(&str, &str)],
        p: &ExponentialHistogramPoint<'_>,
    ) {
        if !self.accepts(MetricKind::ExponentialHistogram) {
            return;
        }
        let native = match native::check(p) {
            Ok(n) => n,
            Err(e) => {
                let metric = self.current.as_ref().map_or("", |c| c.name.as_str());
                tracing::warn!(metric, error = %e, "exponential histogram point skipped");
                return;
            }
        };
        if !self.series_labels(labels) {
            return;
        }
        self.set_stamp(p.time_unix_nano);
        let format = self.format;
        let Renderer {
            out,
            written,
            current,
            labels,
            stamp,
            ..
        } = self;
        let Some((cur, out)) = target_buf(out, written, current) else {
            return;
        };
        let label_block = labels.as_bytes();
        out.extend_from_slice(&cur.line_name);
        if label_block.is_empty() {
            out.push(b'{');
        } else {
            out.extend_from_slice(label_block);
            out.push(b',');
        }
        out.extend_from_slice(b"le=\"+Inf\"} ");
        push_count(out, format, p.count);
        out.extend_from_slice(stamp);
        out.push(b'\n');
        push_series_start(out, &cur.sum_name, label_block);
        push_float(out, format, native.sum);
        out.extend_from_slice(stamp);
        out.push(b'\n');
        push_series_start(out, &cur.count_name, label_block);
        push_count(out, format, p.count);
        out.extend_from_slice(stamp);
        out.push(b'\n');
        self.maybe_spill();
    }
}

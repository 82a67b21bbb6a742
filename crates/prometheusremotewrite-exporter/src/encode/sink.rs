//! The [`MetricsSink`] the sources walk into: family bookkeeping (names, type conflicts,
//! metadata) here, the points in the parent module and [`super::pushed`].

use redline_pipeline::prom_names::{self, FamilyNames};
use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    NumberPoint, SummaryPoint,
};

use super::{Body, Encoder, ExOut, Family, Which};
use crate::proto::{MetricMetadata, MetricType};

impl MetricsSink for Encoder<'_> {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.current = None;
        let Some(FamilyNames { sample, unit }) = prom_names::family_names(
            desc.name,
            desc.unit,
            desc.kind,
            &self.opts.namespace,
            self.opts.add_metric_suffixes,
        ) else {
            tracing::warn!(
                metric = desc.name,
                "metric name has no valid Prometheus form; skipped"
            );
            self.out.skipped_families += 1;
            return;
        };
        match self.kinds.get(&sample) {
            Some(kind) if *kind != desc.kind => {
                tracing::warn!(metric = %sample, "metric family exported twice with different types; the second is skipped");
                self.out.skipped_families += 1;
                return;
            }
            Some(_) => {}
            None => {
                self.kinds.insert(sample.clone(), desc.kind);
                // otelcol's metadata lists the request's metrics, which `target_info` is not.
                let target_info = desc.name == redline_prometheus_translate::TARGET_INFO
                    && desc.description == redline_prometheus_translate::TARGET_INFO_DESCRIPTION;
                if self.opts.send_metadata && !target_info {
                    self.metadata.push(MetricMetadata {
                        r#type: metadata_type(desc.kind) as i32,
                        metric_family_name: sample.clone(),
                        help: desc.description.to_owned(),
                        unit,
                    });
                }
            }
        }
        let with = |suffix: &str| format!("{sample}{suffix}").into_bytes();
        self.current = Some(Family {
            kind: desc.kind,
            bucket: with("_bucket"),
            sum: with("_sum"),
            count: with("_count"),
            created: with("_created"),
            sample: sample.into_bytes(),
        });
    }

    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        value: u64,
        start_time_unix_nano: u64,
        exemplar: Option<&Exemplar>,
    ) {
        if !self.accepts(MetricKind::Counter) || !self.begin_series(labels, None, None) {
            return;
        }
        let ts = self.timestamp_ms;
        let ex = ExOut::live(exemplar, ts);
        self.put_series(
            Which::Sample,
            None,
            Body::Sample(value as f64),
            ts,
            ex.as_slice(),
        );
        self.put_created(start_time_unix_nano, ts);
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        if !self.accepts(MetricKind::Gauge) || !self.begin_series(labels, None, None) {
            return;
        }
        let ts = self.timestamp_ms;
        self.put_series(Which::Sample, None, Body::Sample(value), ts, &[]);
    }

    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        self.put_histogram(labels, point);
    }

    fn number(&mut self, labels: &[(&str, &str)], point: &NumberPoint<'_>) {
        self.put_number(labels, point);
    }

    fn summary(&mut self, labels: &[(&str, &str)], point: &SummaryPoint<'_>) {
        self.put_summary(labels, point);
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        point: &ExponentialHistogramPoint<'_>,
    ) {
        self.put_exponential(labels, point);
    }
}

/// The metadata type otelcol's translator gives each kind: an exponential histogram is a
/// (native) histogram.
fn metadata_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Histogram | MetricKind::ExponentialHistogram => MetricType::Histogram,
        MetricKind::Summary => MetricType::Summary,
    }
}

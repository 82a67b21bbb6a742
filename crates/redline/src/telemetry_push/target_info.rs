//! The resource of Redline's own metrics on the pull endpoint: otelcol's Prometheus reader
//! serves it as one `target_info` series whose labels are the resource attributes (it does
//! not put them on every series). Pushed OTLP carries the resource itself, so the push
//! leaves the family out.

use redline_pipeline::metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint,
};

pub const NAME: &str = "target_info";

/// The `target_info` family of a resource.
pub struct TargetInfo {
    pub labels: Vec<(String, String)>,
}

impl MetricsSource for TargetInfo {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: NAME,
            description: "Target metadata",
            unit: "",
            kind: MetricKind::Gauge,
        });
        let labels: Vec<(&str, &str)> = self
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sink.gauge(&labels, 1.0);
    }
}

/// A source without its `target_info` family.
pub struct WithoutTargetInfo<S>(pub S);

impl<S: MetricsSource> MetricsSource for WithoutTargetInfo<S> {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        self.0.collect(&mut Skip {
            inner: sink,
            skipping: false,
        });
    }
}

struct Skip<'a> {
    inner: &'a mut dyn MetricsSink,
    skipping: bool,
}

impl MetricsSink for Skip<'_> {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.skipping = desc.name == NAME;
        if !self.skipping {
            self.inner.family(desc);
        }
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64, start: u64, e: Option<&Exemplar>) {
        if !self.skipping {
            self.inner.counter(labels, value, start, e);
        }
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        if !self.skipping {
            self.inner.gauge(labels, value);
        }
    }

    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        if !self.skipping {
            self.inner.histogram(labels, point);
        }
    }

    fn number(&mut self, labels: &[(&str, &str)], point: &NumberPoint<'_>) {
        if !self.skipping {
            self.inner.number(labels, point);
        }
    }

    fn summary(&mut self, labels: &[(&str, &str)], point: &SummaryPoint<'_>) {
        if !self.skipping {
            self.inner.summary(labels, point);
        }
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        point: &ExponentialHistogramPoint<'_>,
    ) {
        if !self.skipping {
            self.inner.exponential_histogram(labels, point);
        }
    }
}

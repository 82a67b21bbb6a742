//! Span metrics as OTLP batches, for metrics pipelines whose exporters cannot read the store
//! in place (`otlp`, `otlphttp`, `debug`, a `forward` connector).
//!
//! otelcol's connector pushes its state every `metrics_flush_interval`; so does this task,
//! with cumulative temporality (the store's own), one resource per `service.name` and the
//! scope otelcol uses. A push the pipeline refuses is logged and skipped: the next one
//! carries the same totals, so nothing is lost but freshness. A last push on shutdown
//! delivers what arrived since the previous one (connectors stop before exporters).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;
use redline_otlp_metrics_encode::{group_by_resource_attribute, Encoder, Target, Temporality};
use redline_pipeline::{Batch, Consumer, Signal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SERVICE_NAME;
use crate::SpanMetrics;

/// otelcol's spanmetrics connector names its scope so.
const SCOPE_NAME: &str = "spanmetricsconnector";

pub(crate) struct Pusher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Pusher {
    pub(crate) fn spawn(
        metrics: Arc<SpanMetrics>,
        next: Arc<dyn Consumer>,
        interval: Duration,
        component: String,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut encoder = Encoder::new(Temporality::Cumulative);
            let target = Target {
                scope_name: SCOPE_NAME.to_owned(),
                ..Target::default()
            };
            let start = now_unix_nano();
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stopped => {
                        push(&mut encoder, &target, start, &metrics, next.as_ref(), &component);
                        break;
                    }
                }
                push(
                    &mut encoder,
                    &target,
                    start,
                    &metrics,
                    next.as_ref(),
                    &component,
                );
            }
        });
        Self { stop, task }
    }

    /// Makes the last push and waits for it (bounded by the caller's deadline).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn push(
    encoder: &mut Encoder,
    target: &Target,
    start: u64,
    metrics: &SpanMetrics,
    next: &dyn Consumer,
    component: &str,
) {
    let request = encoder.request(metrics, target, start, now_unix_nano());
    let request = group_by_resource_attribute(request, SERVICE_NAME);
    let points = data_points(&request);
    if points == 0 {
        return;
    }
    let batch = Batch::new(Signal::Metrics, request.encode_to_vec().into(), points);
    match next.reserve(&batch) {
        Ok(reservation) => reservation.commit(batch),
        Err(refused) => tracing::warn!(
            component,
            refused_by = %refused.component,
            reason = %refused.reason,
            points,
            "spanmetrics: push refused; the next one carries the same totals"
        ),
    }
}

fn data_points(
    request: &redline_otlp_metrics_encode::proto::collector::metrics::v1::ExportMetricsServiceRequest,
) -> usize {
    use redline_otlp_metrics_encode::proto::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(d)) => d.data_points.len(),
            Some(Data::Gauge(d)) => d.data_points.len(),
            Some(Data::Histogram(d)) => d.data_points.len(),
            Some(Data::ExponentialHistogram(d)) => d.data_points.len(),
            Some(Data::Summary(d)) => d.data_points.len(),
            None => 0,
        })
        .sum()
}

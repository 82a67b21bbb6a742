//! Span metrics as OTLP batches, for metrics pipelines whose exporters cannot read the store
//! in place (`otlp`, `otlphttp`, `debug`, a `forward` connector).
//!
//! otelcol's connector pushes its state every `metrics_flush_interval`; so does this task,
//! with cumulative temporality (the store's own), one resource per `service.name` and the
//! scope otelcol uses. A push the pipeline refuses is logged and skipped: the next one
//! carries the same totals, so nothing is lost but freshness. A last push on shutdown
//! delivers what arrived since the previous one (connectors stop before exporters).

use std::sync::Arc;
use std::time::Duration;

use redline_otlp_metrics_encode::{group_by_resource_attribute, Encoder, Target, Temporality};
use redline_pipeline::Consumer;
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
            let start = redline_pipeline::telemetry::now_unix_nano();
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

fn push(
    encoder: &mut Encoder,
    target: &Target,
    start: u64,
    metrics: &SpanMetrics,
    next: &dyn Consumer,
    component: &str,
) {
    let request = encoder.request(
        metrics,
        target,
        start,
        redline_pipeline::telemetry::now_unix_nano(),
    );
    let request = group_by_resource_attribute(request, SERVICE_NAME);
    redline_otlp_metrics_encode::hand_over(&request, next, component, "spanmetrics");
}

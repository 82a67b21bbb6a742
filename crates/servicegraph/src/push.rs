//! The edge metrics as OTLP batches, for metrics pipelines whose exporters cannot read the
//! state in place (`otlp`, `otlphttp`, `debug`, a `forward` connector).
//!
//! Every `metrics_flush_interval` (with 0: after every batch of spans, as otelcol), with
//! cumulative temporality, an empty resource and otelcol's scope `traces_service_graph`;
//! points are stamped `now - metrics_timestamp_offset`. A refused push is logged and skipped:
//! the next one carries the same totals. A last push on shutdown delivers what came since the
//! previous one.

use std::sync::Arc;
use std::time::Duration;

use redline_otlp_metrics_encode::{Encoder, Target, Temporality};
use redline_pipeline::Consumer;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::graph::ServiceGraph;

/// otelcol's connector names its scope so.
const SCOPE_NAME: &str = "traces_service_graph";

pub(crate) struct Pusher {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// Woken after every batch when the interval is 0.
    pub(crate) batch_done: Option<Arc<Notify>>,
}

impl Pusher {
    pub(crate) fn spawn(
        graph: Arc<ServiceGraph>,
        next: Arc<dyn Consumer>,
        component: String,
    ) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let interval = graph.settings.flush_interval;
        let offset = graph.settings.timestamp_offset;
        let batch_done = interval.is_zero().then(|| Arc::new(Notify::new()));
        let woken = batch_done.clone();
        let task = tokio::spawn(async move {
            let mut encoder = Encoder::new(Temporality::Cumulative);
            let target = Target {
                scope_name: SCOPE_NAME.to_owned(),
                ..Target::default()
            };
            // With interval 0 the ticker only stands in for a never-firing branch.
            let period = if interval.is_zero() {
                Duration::from_secs(3600)
            } else {
                interval
            };
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let flush = |encoder: &mut Encoder| {
                push(encoder, &target, offset, &graph, next.as_ref(), &component)
            };
            loop {
                tokio::select! {
                    _ = tick.tick(), if woken.is_none() => {}
                    _ = async { if let Some(n) = &woken { n.notified().await } }, if woken.is_some() => {}
                    _ = &mut stopped => {
                        flush(&mut encoder);
                        break;
                    }
                }
                flush(&mut encoder);
            }
        });
        Self {
            stop,
            task,
            batch_done,
        }
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
    offset: Duration,
    graph: &ServiceGraph,
    next: &dyn Consumer,
    component: &str,
) {
    let now = redline_pipeline::telemetry::now_unix_nano();
    let time = now.saturating_sub(u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX));
    let request = encoder.request(graph, target, graph.start_unix_nano, time);
    redline_otlp_metrics_encode::hand_over(&request, next, component, "servicegraph");
}

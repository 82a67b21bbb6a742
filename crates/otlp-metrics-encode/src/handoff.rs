//! Handing a pushed request to the next consumer: what connectors that push their cumulative
//! state (spanmetrics, servicegraph) do every flush interval.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use redline_pipeline::{Batch, Consumer, Signal};

/// Data points in a request: the item count its batch carries.
pub fn data_points(request: &ExportMetricsServiceRequest) -> usize {
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

/// Encodes `request` and gives it to `next` unless it is empty. A refusal is logged and not
/// retried: the state is cumulative, so the next push carries the same totals.
pub fn hand_over(
    request: &ExportMetricsServiceRequest,
    next: &dyn Consumer,
    component: &str,
    connector: &'static str,
) {
    let points = data_points(request);
    if points == 0 {
        return;
    }
    let batch = Batch::new(Signal::Metrics, request.encode_to_vec().into(), points);
    match next.reserve(&batch) {
        Ok(reservation) => reservation.commit(batch),
        Err(refused) => tracing::warn!(
            component,
            connector,
            refused_by = %refused.component,
            reason = %refused.reason,
            points,
            "push refused; the next one carries the same totals"
        ),
    }
}

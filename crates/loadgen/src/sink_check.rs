//! The sink's `--check`: every request decoded with prost too, independently of the wire
//! walkers, its item count compared with theirs, and spans' (trace id, span id) pairs
//! tracked for duplicates.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tonic::Status;

use super::State;
use crate::signal::Signal;

impl State {
    /// Full prost decode (independent of the walker): the same item count, and for spans
    /// duplicate id tracking.
    pub(super) fn check(
        &self,
        signal: Signal,
        body: &Bytes,
        walker_items: usize,
    ) -> Result<(), Status> {
        let malformed = |e: prost::DecodeError| {
            self.c.malformed_requests.fetch_add(1, Relaxed);
            Status::invalid_argument(format!("prost decode failed: {e}"))
        };
        let n = match signal {
            Signal::Traces => {
                let req = ExportTraceServiceRequest::decode(body.clone()).map_err(malformed)?;
                self.track_ids(&req)?
            }
            Signal::Metrics => {
                let req = ExportMetricsServiceRequest::decode(body.clone()).map_err(malformed)?;
                data_points(&req)
            }
            Signal::Logs => {
                let req = ExportLogsServiceRequest::decode(body.clone()).map_err(malformed)?;
                req.resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .map(|s| s.log_records.len())
                    .sum()
            }
        };
        if n != walker_items {
            self.c.malformed_requests.fetch_add(1, Relaxed);
            return Err(Status::internal(format!(
                "prost saw {n} {}, the walker {walker_items}",
                signal.items()
            )));
        }
        Ok(())
    }

    /// Counts the spans and records their (trace id, span id) pairs.
    fn track_ids(&self, req: &ExportTraceServiceRequest) -> Result<usize, Status> {
        let spans = req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans);
        let mut n = 0usize;
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Status::internal("sink state poisoned"))?;
        for s in spans {
            n += 1;
            if s.trace_id.len() != 16 || s.span_id.len() != 8 {
                continue;
            }
            let mut key = [0u8; 24];
            key[..16].copy_from_slice(&s.trace_id);
            key[16..].copy_from_slice(&s.span_id);
            if seen.contains(&key) {
                self.c.duplicate_ids.fetch_add(1, Relaxed);
            } else if seen.len() < self.cfg.check_max_ids {
                seen.insert(key);
                self.c.ids_tracked.fetch_add(1, Relaxed);
            }
        }
        Ok(n)
    }
}

/// Data points as the Collector counts them (`Metrics.DataPointCount()`).
pub fn data_points(req: &ExportMetricsServiceRequest) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

//! The processor as a consumer: each request's delta metrics converted under the streams'
//! lock, the result reserved downstream, and the change undone if that is refused. Like
//! otelcol's, it counts its points in `otelcol_deltatocumulative_datapoints`, not in the
//! processor item counters of processors built on `processorhelper`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
use prost::Message;
use redline_otlp_metrics_encode::data_points;
use redline_pipeline::edit::undecodable;
use redline_pipeline::telemetry::CounterFamily;
use redline_pipeline::{Batch, Consumer, Refused, Reservation};

use crate::aggregate::Dropped;
use crate::streams::{push_attributes, push_str, Attributed, Converting, Streams, Tracked, Undo};

const DELTA: i32 = AggregationTemporality::Delta as i32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

pub(crate) struct DeltaToCumulative {
    pub(crate) id: String,
    pub(crate) next: Arc<dyn Consumer>,
    pub(crate) streams: Arc<Streams>,
    pub(crate) datapoints: CounterFamily,
}

/// What converting one request did to its delta points.
#[derive(Default)]
struct Tally {
    converted: u64,
    dropped: Vec<(Dropped, u64)>,
    /// Whether the request differs from what was sent.
    changed: bool,
}

impl Tally {
    fn drop_point(&mut self, why: Dropped) {
        match self.dropped.iter_mut().find(|(w, _)| *w == why) {
            Some((_, n)) => *n += 1,
            None => self.dropped.push((why, 1)),
        }
    }
}

impl DeltaToCumulative {
    fn convert_request(&self, request: &mut ExportMetricsServiceRequest) -> (Tally, Undo) {
        let mut tally = Tally::default();
        let mut streams = self.streams.convert();
        for rm in &mut request.resource_metrics {
            let mut resource_key = Vec::new();
            push_attributes(
                &mut resource_key,
                rm.resource.as_ref().map_or(&[][..], |r| &r.attributes),
            );
            for sm in &mut rm.scope_metrics {
                let mut scope_key = resource_key.clone();
                let scope = sm.scope.as_ref();
                push_str(&mut scope_key, scope.map_or("", |s| &s.name));
                push_str(&mut scope_key, scope.map_or("", |s| &s.version));
                push_attributes(&mut scope_key, scope.map_or(&[][..], |s| &s.attributes));
                let before = sm.metrics.len();
                sm.metrics
                    .retain_mut(|m| convert_metric(&scope_key, m, &mut streams, &mut tally));
                tally.changed |= sm.metrics.len() != before;
            }
            // otelcol drops every scope and resource left without metrics, even one sent so.
            let before = rm.scope_metrics.len();
            rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
            tally.changed |= rm.scope_metrics.len() != before;
        }
        let before = request.resource_metrics.len();
        request
            .resource_metrics
            .retain(|rm| !rm.scope_metrics.is_empty());
        tally.changed |= request.resource_metrics.len() != before;
        (tally, streams.finish())
    }
}

/// Converts one metric if it is a delta sum or histogram; whether it keeps any point.
fn convert_metric(
    scope_key: &[u8],
    metric: &mut Metric,
    streams: &mut Converting<'_>,
    tally: &mut Tally,
) -> bool {
    let (kind, monotonic) = match &metric.data {
        Some(Data::Sum(s)) if s.aggregation_temporality == DELTA => (1, s.is_monotonic),
        Some(Data::Histogram(h)) if h.aggregation_temporality == DELTA => (2, true),
        Some(Data::ExponentialHistogram(h)) if h.aggregation_temporality == DELTA => (3, true),
        _ => return true,
    };
    // The metric's identity: its scope's, its name and unit, its type and monotonicity.
    let mut key = scope_key.to_vec();
    push_str(&mut key, &metric.name);
    push_str(&mut key, &metric.unit);
    key.extend([kind, u8::from(monotonic)]);
    let kept = match &mut metric.data {
        Some(Data::Sum(sum)) => {
            sum.aggregation_temporality = CUMULATIVE;
            convert_points(&key, &mut sum.data_points, streams, tally)
        }
        Some(Data::Histogram(h)) => {
            h.aggregation_temporality = CUMULATIVE;
            convert_points(&key, &mut h.data_points, streams, tally)
        }
        Some(Data::ExponentialHistogram(h)) => {
            h.aggregation_temporality = CUMULATIVE;
            convert_points(&key, &mut h.data_points, streams, tally)
        }
        _ => return true,
    };
    tally.changed = true;
    kept > 0
}

/// Replaces each point by its stream's total, dropping those otelcol drops; how many remain.
fn convert_points<P: Tracked + Attributed>(
    metric_key: &[u8],
    points: &mut Vec<P>,
    streams: &mut Converting<'_>,
    tally: &mut Tally,
) -> usize {
    let taken = std::mem::take(points);
    let mut metric = streams.metric(metric_key);
    for dp in taken {
        match streams.add(&mut metric, dp) {
            Ok(total) => {
                tally.converted += 1;
                points.push(total);
            }
            Err(why) => tally.drop_point(why),
        }
    }
    points.len()
}

impl Consumer for DeltaToCumulative {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let mut request = ExportMetricsServiceRequest::decode(&batch.raw[..])
            .map_err(|e| undecodable(&self.id, e))?;
        let (tally, undo) = self.convert_request(&mut request);
        let outcome = if !tally.changed {
            Outcome::Unchanged
        } else if request.resource_metrics.is_empty() {
            Outcome::Emptied
        } else {
            let items = data_points(&request);
            let raw = Bytes::from(request.encode_to_vec());
            Outcome::Converted(batch.replacing(raw, items))
        };
        let reserved = match &outcome {
            Outcome::Unchanged => self.next.reserve(batch).map(Some),
            Outcome::Converted(converted) => self.next.reserve(converted).map(Some),
            // Nothing left: otelcol passes nothing on and answers success.
            Outcome::Emptied => Ok(None),
        };
        let inner = match reserved {
            Ok(inner) => inner,
            Err(refused) => {
                self.streams.undo(undo);
                return Err(refused);
            }
        };
        let replacement = match outcome {
            Outcome::Converted(converted) => Some(converted),
            Outcome::Unchanged | Outcome::Emptied => None,
        };
        Ok(Box::new(Converted {
            inner,
            replacement,
            undo: Some(undo),
            streams: self.streams.clone(),
            datapoints: self.datapoints.clone(),
            tally,
        }))
    }
}

/// What converting left of a request.
enum Outcome {
    /// No delta metric and nothing dropped: the request's own bytes go on.
    Unchanged,
    Converted(Batch),
    /// Every point was dropped.
    Emptied,
}

/// A converted request reserved downstream: committing it keeps the new totals, dropping it
/// uncommitted puts the old ones back.
struct Converted {
    inner: Option<Box<dyn Reservation>>,
    replacement: Option<Batch>,
    undo: Option<Undo>,
    streams: Arc<Streams>,
    datapoints: CounterFamily,
    tally: Tally,
}

impl Reservation for Converted {
    fn commit(mut self: Box<Self>, batch: Batch) {
        self.undo = None;
        let tally = std::mem::take(&mut self.tally);
        if tally.converted > 0 {
            self.datapoints
                .series(&[])
                .fetch_add(tally.converted, Ordering::Relaxed);
        }
        for (why, n) in tally.dropped {
            self.datapoints
                .series(&[("error", why.label())])
                .fetch_add(n, Ordering::Relaxed);
        }
        let batch = self.replacement.take().unwrap_or(batch);
        if let Some(inner) = self.inner.take() {
            inner.commit(batch);
        }
    }
}

impl Drop for Converted {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            self.streams.undo(undo);
        }
    }
}

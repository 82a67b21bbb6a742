//! What both transports do with a request body once they have it: validate it with the
//! wire walker of its signal, drop spans with invalid ids (the slow path, traces only),
//! reserve on the pipeline, commit, and count.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_wire::SpanKeys;
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{
    Batch, ClientMetadata, Consumer, Refused, Signal, SpanTap, TapId, TapWalks,
};

use crate::wire;

/// Why spans were dropped on the slow path, for `partial_success.error_message`.
pub(crate) const INVALID_IDS_MESSAGE: &str = "spans with an invalid trace_id (must be 16 bytes, \
     not all zero) or span_id (must be 8 bytes, not all zero) were rejected";

/// A request that was handled: its valid items (if any) are in the pipeline.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// Spans, metric points or log records now in the pipeline.
    pub accepted: usize,
    /// Spans dropped for invalid ids; non-zero means a partial success.
    pub rejected: usize,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum IngestError {
    /// Not a well-formed export request: nothing was counted or forwarded.
    #[error("{0}")]
    Malformed(String),
    /// The pipeline is full: the client should retry after `retry_after`.
    #[error("pipeline refused the request: {0}")]
    Refused(Refused),
}

/// What one signal's requests go through, shared by the gRPC and HTTP servers of one
/// receiver.
pub(crate) struct Ingest {
    signal: Signal,
    next: Arc<dyn Consumer>,
    /// The consumers that read traces requests during validation. Asked once: the service
    /// binds every connector's output before it builds the receivers, so the graph behind
    /// `next` no longer changes.
    taps: Vec<(TapId, Arc<dyn SpanTap>)>,
    /// The span attribute keys the taps look up, noted by the validating walk.
    span_keys: SpanKeys,
}

impl Ingest {
    pub(crate) fn new(signal: Signal, next: Arc<dyn Consumer>) -> Self {
        let mut taps = Vec::new();
        if signal == Signal::Traces {
            next.span_taps(&mut taps);
        }
        let span_keys = TapWalks::keys_of(&taps);
        Self {
            signal,
            next,
            taps,
            span_keys,
        }
    }

    pub(crate) fn signal(&self) -> Signal {
        self.signal
    }

    /// Handles one encoded request, counting into `counters`. `gzip_member`: the one gzip
    /// member the client sent that decompressed to exactly `raw`, kept in the batch for an
    /// exporter that would gzip these same bytes (dropped if the request is re-encoded).
    /// `client`: the sender's metadata, when the receiver keeps it (`include_metadata`).
    pub(crate) fn ingest(
        &self,
        raw: Bytes,
        gzip_member: Option<Bytes>,
        client: Option<ClientMetadata>,
        counters: &ReceiverCounters,
    ) -> Result<Accepted, IngestError> {
        let gzip = gzip_member.map(|member| (raw.clone(), member));
        // Consumers that read traces requests as they arrive do it during validation: the
        // request is walked once. Their walks count only once the request is accepted.
        let request = raw.clone();
        let mut walks = TapWalks::begin(&self.taps, &self.span_keys, request.len());
        let (batch, rejected) = match self.signal {
            Signal::Traces => {
                let (stats, names) =
                    wire::validate(&request, &mut walks).map_err(IngestError::Malformed)?;
                if stats.spans_with_invalid_ids > 0 {
                    // Slow path, only for requests that need it: the fast path never decodes.
                    // The taps saw the spans about to be dropped: their walks go unused.
                    walks = TapWalks::default();
                    let filtered = drop_invalid_spans(&raw).map_err(IngestError::Malformed)?;
                    let batch = Batch::new(Signal::Traces, filtered.raw, filtered.kept);
                    (batch, filtered.rejected)
                } else {
                    (Batch::validated_traces(names, stats.spans), 0)
                }
            }
            Signal::Metrics => {
                let points = wire::validate_metrics(&raw).map_err(IngestError::Malformed)?;
                (Batch::new(Signal::Metrics, raw, points), 0)
            }
            Signal::Logs => {
                let records = wire::validate_logs(&raw).map_err(IngestError::Malformed)?;
                (Batch::new(Signal::Logs, raw, records), 0)
            }
        };
        // Kept only when the batch still holds `raw` itself (not a re-encoding).
        let mut batch = match gzip {
            Some((of, member)) => batch.with_gzip_frame(&of, member),
            None => batch,
        };
        batch.set_client(client);
        let items = batch.items;
        if rejected > 0 {
            counters
                .refused
                .fetch_add(rejected as u64, Ordering::Relaxed);
        }
        if items == 0 {
            // An empty request is valid OTLP; there is nothing to forward or count.
            return Ok(Accepted {
                accepted: 0,
                rejected,
            });
        }
        match self.next.reserve(&batch) {
            Ok(reservation) => {
                let batch = batch.with_tap_receipt(walks.commit());
                reservation.commit(batch);
                counters.accepted.fetch_add(items as u64, Ordering::Relaxed);
                Ok(Accepted {
                    accepted: items,
                    rejected,
                })
            }
            Err(refused) => {
                counters.refused.fetch_add(items as u64, Ordering::Relaxed);
                tracing::debug!(%refused, signal = %self.signal, items, "pipeline refused a request");
                Err(IngestError::Refused(refused))
            }
        }
    }
}

/// Ids a span must have to be forwarded, per the OTLP data model: a 16-byte trace id and an
/// 8-byte span id, neither all zero.
pub(crate) fn valid_ids(trace_id: &[u8], span_id: &[u8]) -> bool {
    trace_id.len() == 16
        && span_id.len() == 8
        && trace_id.iter().any(|&b| b != 0)
        && span_id.iter().any(|&b| b != 0)
}

pub(crate) struct Filtered {
    pub raw: Bytes,
    pub kept: usize,
    pub rejected: usize,
}

/// Decodes, drops spans with invalid ids (and the scopes and resources left empty), and
/// re-encodes. Unknown fields do not survive the round trip: acceptable for requests that
/// were already partly invalid.
pub(crate) fn drop_invalid_spans(raw: &[u8]) -> Result<Filtered, String> {
    let mut req = ExportTraceServiceRequest::decode(raw).map_err(|e| e.to_string())?;
    let mut kept = 0;
    let mut rejected = 0;
    for rs in &mut req.resource_spans {
        for ss in &mut rs.scope_spans {
            let before = ss.spans.len();
            ss.spans.retain(|s| valid_ids(&s.trace_id, &s.span_id));
            kept += ss.spans.len();
            rejected += before - ss.spans.len();
        }
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    req.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
    Ok(Filtered {
        raw: Bytes::from(req.encode_to_vec()),
        kept,
        rejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use parking_lot::Mutex;
    use redline_pipeline::consumer::CommitFn;
    use redline_pipeline::Reservation;
    use std::time::Duration;

    fn span(trace_id: Vec<u8>, span_id: Vec<u8>) -> Span {
        Span {
            trace_id,
            span_id,
            name: "s".into(),
            ..Default::default()
        }
    }

    fn request(groups: Vec<Vec<Span>>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: groups
                .into_iter()
                .map(|spans| ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }

    struct Refuser;
    impl Consumer for Refuser {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            Err(Refused {
                component: "unused".into(),
                reason: String::new(),
                retry_after: Duration::ZERO,
                permanent: false,
            })
        }
    }

    struct Collect(Arc<Mutex<Vec<Batch>>>);
    impl Consumer for Collect {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            let got = self.0.clone();
            Ok(Box::new(CommitFn(move |b| got.lock().push(b))))
        }
    }

    #[test]
    fn valid_ids_rules() {
        assert!(valid_ids(&[1; 16], &[1; 8]));
        assert!(!valid_ids(&[0; 16], &[1; 8]));
        assert!(!valid_ids(&[1; 16], &[0; 8]));
        assert!(!valid_ids(&[1; 15], &[1; 8]));
        assert!(!valid_ids(&[1; 16], &[]));
    }

    #[test]
    fn drops_invalid_spans_and_empty_groups() {
        let req = request(vec![
            vec![span(vec![1; 16], vec![1; 8]), span(vec![0; 16], vec![1; 8])],
            vec![span(vec![], vec![1; 8])],
        ]);
        let f = drop_invalid_spans(&req.encode_to_vec()).expect("decodes");
        assert_eq!((f.kept, f.rejected), (1, 2));
        let back = ExportTraceServiceRequest::decode(f.raw).expect("re-encoded");
        assert_eq!(back.resource_spans.len(), 1);
        assert_eq!(back.resource_spans[0].scope_spans[0].spans.len(), 1);
    }

    #[test]
    fn fast_path_forwards_same_bytes_and_counts() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let ingest = Ingest::new(Signal::Traces, Arc::new(Collect(got.clone())));
        let counters = ReceiverCounters::default();
        let raw = Bytes::from(
            request(vec![vec![
                span(vec![1; 16], vec![1; 8]),
                span(vec![2; 16], vec![2; 8]),
            ]])
            .encode_to_vec(),
        );
        let out = ingest
            .ingest(raw.clone(), None, None, &counters)
            .expect("accepted");
        assert_eq!(
            out,
            Accepted {
                accepted: 2,
                rejected: 0
            }
        );
        let got = got.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].raw, raw);
        assert_eq!(got[0].items, 2);
        assert_eq!(counters.accepted.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn the_clients_gzip_member_travels_with_the_bytes_it_decompressed_to() {
        let member = Bytes::from_static(b"the client's gzip member");
        let valid = || {
            Bytes::from(
                request(vec![vec![
                    span(vec![1; 16], vec![1; 8]),
                    span(vec![2; 16], vec![2; 8]),
                ]])
                .encode_to_vec(),
            )
        };
        for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
            let got = Arc::new(Mutex::new(Vec::new()));
            let ingest = Ingest::new(signal, Arc::new(Collect(got.clone())));
            let raw = match signal {
                Signal::Traces => valid(),
                Signal::Logs => Bytes::from(logs_request().encode_to_vec()),
                Signal::Metrics => Bytes::from(metrics_request().encode_to_vec()),
            };
            ingest
                .ingest(
                    raw.clone(),
                    Some(member.clone()),
                    None,
                    &ReceiverCounters::default(),
                )
                .expect("accepted");
            let got = got.lock();
            assert_eq!(got[0].raw, raw, "{signal}");
            assert_eq!(got[0].gzip_frame(), Some(&member), "{signal}");
        }

        // Spans dropped for invalid ids: the request forwarded is not the one the member
        // decompresses to.
        let got = Arc::new(Mutex::new(Vec::new()));
        let ingest = Ingest::new(Signal::Traces, Arc::new(Collect(got.clone())));
        let raw = Bytes::from(
            request(vec![vec![
                span(vec![1; 16], vec![1; 8]),
                span(vec![0; 16], vec![2; 8]),
            ]])
            .encode_to_vec(),
        );
        ingest
            .ingest(raw, Some(member), None, &ReceiverCounters::default())
            .expect("partly accepted");
        let got = got.lock();
        assert_eq!(got[0].items, 1);
        assert!(!got[0].holds_gzip_frame());
    }

    fn logs_request() -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord::default()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn metrics_request(
    ) -> opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
        use opentelemetry_proto::tonic::metrics::v1::{
            metric, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
        };
        opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint::default()],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn malformed_counts_nothing_and_refused_counts_refused() {
        let counters = ReceiverCounters::default();
        let ingest = Ingest::new(Signal::Traces, Arc::new(Refuser));
        let err = ingest
            .ingest(Bytes::from_static(&[0x0a, 0xff]), None, None, &counters)
            .expect_err("truncated");
        assert!(matches!(err, IngestError::Malformed(_)));
        assert_eq!(counters.refused.load(Ordering::Relaxed), 0);

        let raw = Bytes::from(request(vec![vec![span(vec![1; 16], vec![1; 8])]]).encode_to_vec());
        let err = ingest
            .ingest(raw, None, None, &counters)
            .expect_err("refused");
        assert!(matches!(err, IngestError::Refused(_)));
        assert_eq!(counters.refused.load(Ordering::Relaxed), 1);
        assert_eq!(counters.accepted.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn empty_request_delivers_nothing() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let ingest = Ingest::new(Signal::Traces, Arc::new(Collect(got.clone())));
        let counters = ReceiverCounters::default();
        let out = ingest
            .ingest(Bytes::new(), None, None, &counters)
            .expect("empty is valid");
        assert_eq!(out.accepted, 0);
        assert!(got.lock().is_empty());
    }
}

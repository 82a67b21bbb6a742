//! Shared fixtures: a spanmetrics-shaped source and a decoder for what the exporter sends.

mod config;
mod encode;
mod loopback;
mod otlp;
mod pushed;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message as _;
use redline_pipeline::{
    Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
};

use crate::proto::{MetricMetadata, WriteRequest};

pub(crate) const TRACE: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
pub(crate) const SPAN: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];
pub(crate) const TRACE_HEX: &str = "0af7651916cd43dd8448eb211c80319c";
pub(crate) const SPAN_HEX: &str = "b7ad6b7169203331";

/// Shaped like the spanmetrics connector's output, with the odd cases mixed in. `calls` is
/// the value of the first calls series, so tests can make it move between pushes.
pub(crate) struct Spanlike {
    pub calls: AtomicU64,
    pub flush: Option<std::time::Duration>,
}

impl Spanlike {
    pub fn new(calls: u64) -> Self {
        Self {
            calls: AtomicU64::new(calls),
            flush: None,
        }
    }
}

pub(crate) const CALL_LABELS: [(&str, &str); 5] = [
    ("service.name", "checkout"),
    ("span.name", "GET /cart"),
    ("span.kind", "SPAN_KIND_SERVER"),
    ("status.code", "STATUS_CODE_UNSET"),
    ("cdn.cache.hit", "true"),
];

impl MetricsSource for Spanlike {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.calls",
            description: "Number of spans, per label set.",
            unit: "1",
            kind: MetricKind::Counter,
        });
        let ex = Exemplar {
            value: 1.0,
            time_unix_nano: 1_700_000_000_500_000_000,
            trace_id: TRACE,
            span_id: SPAN,
        };
        sink.counter(
            &CALL_LABELS,
            self.calls.load(Ordering::Relaxed),
            1,
            Some(&ex),
        );
        // An empty value is no label; an uppercase key sorts before `__name__`.
        sink.counter(
            &[
                ("service.name", "billing"),
                ("HTTP.Method", "POST"),
                ("cdn.cache.hit", ""),
            ],
            3,
            1,
            None,
        );

        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.duration",
            description: "Span durations.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        let exemplars = [
            Exemplar {
                value: 7.5,
                time_unix_nano: 1_700_000_001_000_000_000,
                trace_id: TRACE,
                span_id: SPAN,
            },
            Exemplar {
                value: 20000.0,
                time_unix_nano: 1_700_000_002_000_000_000,
                trace_id: [1; 16],
                span_id: [2; 8],
            },
        ];
        sink.histogram(
            &CALL_LABELS[..4],
            &HistogramPoint {
                bounds: &[2.0, 10.0, 15000.5],
                bucket_counts: &[1, 2, 0, 4],
                sum: 80123.25,
                count: 7,
                start_time_unix_nano: 1,
                time_unix_nano: 0,
                exemplars: &exemplars,
            },
        );

        sink.family(&FamilyDesc {
            name: "queue.utilization",
            description: "A gauge.",
            unit: "1",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&[("instance", "own")], 0.25);
    }

    fn flush_interval(&self) -> Option<std::time::Duration> {
        self.flush
    }
}

/// A decoded exemplar: labels, value, timestamp (ms).
pub(crate) type DecodedExemplar = (Vec<(String, String)>, f64, i64);

/// One decoded time series: its labels (in wire order) and samples `(value, timestamp)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub labels: Vec<(String, String)>,
    pub samples: Vec<(f64, i64)>,
    pub exemplars: Vec<DecodedExemplar>,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decompresses (snappy block) and decodes one request body.
pub(crate) fn decode(body: &[u8]) -> WriteRequest {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .expect("snappy block format");
    WriteRequest::decode(raw.as_slice()).expect("a WriteRequest")
}

/// Every series of some requests, keyed by its label set rendered as `name{k="v",…}`
/// (`__name__` first, the rest in wire order), and their metadata.
pub(crate) fn series_of(
    requests: &[WriteRequest],
) -> (BTreeMap<String, Series>, Vec<MetricMetadata>) {
    let mut out = BTreeMap::new();
    let mut meta = Vec::new();
    for req in requests {
        for ts in &req.timeseries {
            let labels: Vec<(String, String)> = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let s = Series {
                samples: ts.samples.iter().map(|s| (s.value, s.timestamp)).collect(),
                exemplars: ts
                    .exemplars
                    .iter()
                    .map(|e| {
                        (
                            e.labels
                                .iter()
                                .map(|l| (l.name.clone(), l.value.clone()))
                                .collect(),
                            e.value,
                            e.timestamp,
                        )
                    })
                    .collect(),
                labels,
            };
            let prev = out.insert(key(&s.labels), s);
            assert!(prev.is_none(), "a series was sent twice");
        }
        meta.extend(req.metadata.iter().cloned());
    }
    (out, meta)
}

pub(crate) fn key(labels: &[(String, String)]) -> String {
    let name = labels
        .iter()
        .find(|(n, _)| n == "__name__")
        .map_or("", |(_, v)| v.as_str());
    let rest: Vec<String> = labels
        .iter()
        .filter(|(n, _)| n != "__name__")
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

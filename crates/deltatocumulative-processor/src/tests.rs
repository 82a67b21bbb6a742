//! The processor end to end: config section -> factory -> encoded requests in and out.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
};
use prost::Message;
use redline_processor_testkit::{component, kv, metrics_request, send, string, Refusing, Sink};

use super::*;

fn delta_sum(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: 1,
            is_monotonic: true,
        })),
        ..Metric::default()
    }
}

fn point(route: &str, start: u64, time: u64, v: i64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("route", string(route))],
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(Value::AsInt(v)),
        ..NumberDataPoint::default()
    }
}

fn build(body: &str) -> (Arc<dyn Consumer>, Sink) {
    let (consumer, sink, _) = redline_processor_testkit::build(
        &DeltaToCumulativeFactory,
        &component(body),
        Signal::Metrics,
    )
    .expect("builds");
    (consumer, sink)
}

fn run(p: &Arc<dyn Consumer>, sink: &Sink, metrics: Vec<Metric>) -> Vec<Metric> {
    let items = metrics
        .iter()
        .map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            _ => 0,
        })
        .sum();
    send(
        p,
        Signal::Metrics,
        metrics_request(metrics).encode_to_vec(),
        items,
    );
    sink.take()
        .iter()
        .flat_map(|b| {
            let req = ExportMetricsServiceRequest::decode(&b.raw[..]).expect("decodes");
            req.resource_metrics
                .into_iter()
                .flat_map(|rm| rm.scope_metrics)
                .flat_map(|sm| sm.metrics)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn values(m: &Metric) -> Vec<(u64, u64, i64)> {
    let Some(Data::Sum(s)) = &m.data else {
        return Vec::new();
    };
    assert_eq!(s.aggregation_temporality, 2, "cumulative");
    s.data_points
        .iter()
        .map(|p| match p.value {
            Some(Value::AsInt(v)) => (p.start_time_unix_nano, p.time_unix_nano, v),
            _ => (0, 0, 0),
        })
        .collect()
}

#[test]
fn delta_sums_become_running_totals_per_stream() {
    let (p, sink) = build("  deltatocumulative:\n");
    let got = run(
        &p,
        &sink,
        vec![delta_sum(
            "hits",
            vec![point("/a", 1, 2, 3), point("/b", 1, 2, 10)],
        )],
    );
    assert_eq!(values(&got[0]), [(1, 2, 3), (1, 2, 10)]);
    let got = run(
        &p,
        &sink,
        vec![delta_sum("hits", vec![point("/a", 2, 3, 4)])],
    );
    assert_eq!(values(&got[0]), [(1, 3, 7)]);
    // Out of order and older-start points are dropped; a metric left empty goes with them.
    let got = run(
        &p,
        &sink,
        vec![
            delta_sum("hits", vec![point("/a", 2, 3, 1), point("/b", 0, 4, 1)]),
            delta_sum("other", vec![point("/a", 5, 6, 1)]),
        ],
    );
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].name.as_str(), values(&got[0])),
        ("other", vec![(5, 6, 1)])
    );
}

#[test]
fn cumulative_data_and_gauges_travel_as_sent() {
    let (p, sink) = build("  deltatocumulative:\n");
    let gauge = Metric {
        name: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point("/a", 0, 1, 1)],
        })),
        ..Metric::default()
    };
    let raw = metrics_request(vec![gauge]).encode_to_vec();
    send(&p, Signal::Metrics, raw.clone(), 1);
    assert_eq!(sink.take()[0].raw[..], raw[..]);
}

#[test]
fn histograms_add_bucket_by_bucket() {
    let (p, sink) = build("  deltatocumulative:\n");
    let h = |start, time, counts: Vec<u64>| Metric {
        name: "latency".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start,
                time_unix_nano: time,
                count: counts.iter().sum(),
                sum: Some(1.5),
                explicit_bounds: vec![0.1],
                bucket_counts: counts,
                ..HistogramDataPoint::default()
            }],
            aggregation_temporality: 1,
        })),
        ..Metric::default()
    };
    run(&p, &sink, vec![h(1, 2, vec![1, 2])]);
    let got = run(&p, &sink, vec![h(2, 3, vec![3, 0])]);
    let Some(Data::Histogram(out)) = &got[0].data else {
        panic!("a histogram: {got:?}");
    };
    let dp = &out.data_points[0];
    assert_eq!(
        (
            out.aggregation_temporality,
            dp.start_time_unix_nano,
            dp.count
        ),
        (2, 1, 6)
    );
    assert_eq!((dp.bucket_counts.clone(), dp.sum), (vec![4, 2], Some(3.0)));
}

/// Refuses the first reservation, then takes everything into its sink.
struct RefuseOnce {
    refused: std::sync::atomic::AtomicBool,
    sink: Sink,
}

impl Consumer for RefuseOnce {
    fn reserve(
        &self,
        batch: &redline_pipeline::Batch,
    ) -> Result<Box<dyn redline_pipeline::Reservation>, redline_pipeline::Refused> {
        if !self
            .refused
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return Refusing.reserve(batch);
        }
        self.sink.reserve(batch)
    }
}

#[test]
fn a_request_refused_downstream_is_not_counted_twice() {
    let sink = Sink::default();
    let next = Arc::new(RefuseOnce {
        refused: false.into(),
        sink: sink.clone(),
    });
    let (p, _) = redline_processor_testkit::build_before(
        &DeltaToCumulativeFactory,
        &component("  deltatocumulative:\n"),
        Signal::Metrics,
        next,
    )
    .expect("builds");
    let raw = metrics_request(vec![delta_sum("hits", vec![point("/a", 1, 2, 3)])]).encode_to_vec();
    let batch = redline_pipeline::Batch::new(Signal::Metrics, raw.into(), 1);
    assert!(p.reserve(&batch).is_err(), "refused downstream");
    // Reserved but never committed (another exporter of the pipeline refused): undone too.
    drop(p.reserve(&batch).expect("reserves"));
    // The client's retry: the same point, counted once (not dropped as out of order).
    p.consume(batch).expect("taken");
    let got = sink.take();
    let req = ExportMetricsServiceRequest::decode(&got[0].raw[..]).expect("decodes");
    let metric = &req.resource_metrics[0].scope_metrics[0].metrics[0];
    assert_eq!(values(metric), [(1, 2, 3)]);
}

#[test]
fn limits_and_settings_are_checked() {
    let (p, sink) = build("  deltatocumulative:\n    max_streams: 1\n");
    let got = run(
        &p,
        &sink,
        vec![delta_sum(
            "hits",
            vec![point("/a", 1, 2, 3), point("/b", 1, 2, 3)],
        )],
    );
    assert_eq!(values(&got[0]), [(1, 2, 3)]);
    let err = |body: &str| {
        DeltaToCumulativeFactory
            .validate(&component(body))
            .expect_err("refused")
            .to_string()
    };
    assert!(err("  deltatocumulative:\n    max_stale: 0s\n").contains("max_stale"));
    assert!(err("  deltatocumulative:\n    max_streams: -1\n").contains("max_streams"));
    assert!(err("  deltatocumulative:\n    max_stream: 1\n").contains("max_stream"));
}

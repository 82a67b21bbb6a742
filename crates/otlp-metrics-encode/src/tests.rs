use std::sync::atomic::Ordering;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric::Data, number_data_point::Value as Num, AggregationTemporality, Metric,
    NumberDataPoint,
};
use prost::Message;
use redline_pipeline::metrics::{Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink};
use redline_pipeline::telemetry::Telemetry;

use super::*;

const T0: u64 = 1_700_000_000_000_000_000;
const T1: u64 = T0 + 10_000_000_000;
const TRACE: [u8; 16] = [7; 16];
const SPAN: [u8; 8] = [9; 8];

/// A source whose state the test sets.
#[derive(Default)]
struct Fixed(Mutex<State>);

#[derive(Clone, Default)]
struct State {
    calls_ok: u64,
    calls_err: u64,
    /// Start of the `calls_err` series.
    err_start: u64,
    counts: Vec<u64>,
    sum: f64,
    queue: f64,
    show_err: bool,
}

impl MetricsSource for Fixed {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let s = self.0.lock().map(|s| s.clone()).unwrap_or_default();
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.calls",
            description: "Spans counted.",
            unit: "1",
            kind: MetricKind::Counter,
        });
        let ex = Exemplar {
            value: 1.0,
            time_unix_nano: T0 + 5,
            trace_id: TRACE,
            span_id: SPAN,
        };
        sink.counter(
            &[("service.name", "shop"), ("status", "ok")],
            s.calls_ok,
            T0,
            Some(&ex),
        );
        if s.show_err {
            sink.counter(
                &[("service.name", "shop"), ("status", "error")],
                s.calls_err,
                s.err_start,
                None,
            );
        }
        // Nothing to say: left out.
        sink.family(&FamilyDesc {
            name: "empty",
            description: "",
            unit: "1",
            kind: MetricKind::Counter,
        });
        sink.family(&FamilyDesc {
            name: "queue.size",
            description: "Batches queued.",
            unit: "{batches}",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&[("exporter", "otlp/tempo")], s.queue);
        // A point of the wrong kind is dropped, not misfiled.
        sink.counter(&[], 5, T0, None);
        let bounds = [2.0, 4.0];
        let exemplars = [Exemplar {
            value: 3.5,
            time_unix_nano: T0 + 7,
            trace_id: TRACE,
            span_id: SPAN,
        }];
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.duration",
            description: "Span durations.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        let count = s.counts.iter().sum();
        sink.histogram(
            &[("service.name", "shop")],
            &HistogramPoint {
                bounds: &bounds,
                bucket_counts: &s.counts,
                sum: s.sum,
                count,
                start_time_unix_nano: T0,
                time_unix_nano: 0,
                exemplars: &exemplars,
            },
        );
    }
}

fn target() -> Target {
    Target {
        schema_url: "https://opentelemetry.io/schemas/1.40.0".into(),
        scope_name: "redline".into(),
        scope_version: "0.1.0".into(),
        ..Target::with_attributes([("service.name", "redline"), ("host", "a")])
    }
}

/// Encodes, decodes (so the bytes are what is checked) and returns the metrics.
fn roundtrip(
    encoder: &mut Encoder,
    source: &Fixed,
    time: u64,
) -> (ExportMetricsServiceRequest, Vec<Metric>) {
    let bytes = encoder.encode(source, &target(), T0 - 1, time);
    let request = ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("decodes");
    let metrics = request.resource_metrics[0].scope_metrics[0].metrics.clone();
    (request, metrics)
}

fn attrs(kvs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<(String, String)> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                other => panic!("not a string: {other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn sum_points(m: &Metric) -> (&[NumberDataPoint], i32, bool) {
    match &m.data {
        Some(Data::Sum(s)) => (&s.data_points, s.aggregation_temporality, s.is_monotonic),
        other => panic!("{}: not a sum: {other:?}", m.name),
    }
}

fn source(state: State) -> Fixed {
    Fixed(Mutex::new(state))
}

#[test]
fn cumulative_request_carries_every_value() {
    let src = source(State {
        calls_ok: 41,
        calls_err: 2,
        err_start: T0 + 1,
        counts: vec![3, 1, 1],
        sum: 12.5,
        queue: 4.0,
        show_err: true,
    });
    let mut encoder = Encoder::new(Temporality::Cumulative);
    let (request, metrics) = roundtrip(&mut encoder, &src, T1);
    assert_eq!(encoder.dropped_points(), 1);

    let rm = &request.resource_metrics[0];
    assert_eq!(rm.schema_url, "https://opentelemetry.io/schemas/1.40.0");
    let resource = rm.resource.as_ref().expect("resource");
    assert_eq!(
        attrs(&resource.attributes),
        pairs(&[("service.name", "redline"), ("host", "a")])
    );
    let scope = rm.scope_metrics[0].scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("redline", "0.1.0")
    );

    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "traces.spanmetrics.calls",
            "queue.size",
            "traces.spanmetrics.duration"
        ]
    );

    let calls = &metrics[0];
    assert_eq!(
        (calls.description.as_str(), calls.unit.as_str()),
        ("Spans counted.", "1")
    );
    let (points, temporality, monotonic) = sum_points(calls);
    assert_eq!(temporality, AggregationTemporality::Cumulative as i32);
    assert!(monotonic);
    assert_eq!(points.len(), 2);
    assert_eq!(
        attrs(&points[0].attributes),
        pairs(&[("service.name", "shop"), ("status", "ok")])
    );
    assert_eq!(
        (
            points[0].start_time_unix_nano,
            points[0].time_unix_nano,
            points[0].value
        ),
        (T0, T1, Some(Num::AsInt(41)))
    );
    let ex = &points[0].exemplars;
    assert_eq!(ex.len(), 1);
    assert_eq!(
        (
            ex[0].time_unix_nano,
            ex[0].trace_id.as_slice(),
            ex[0].span_id.as_slice(),
            ex[0].value
        ),
        (
            T0 + 5,
            TRACE.as_slice(),
            SPAN.as_slice(),
            Some(exemplar::Value::AsInt(1))
        )
    );
    assert_eq!(
        (
            points[1].start_time_unix_nano,
            points[1].value,
            points[1].exemplars.len()
        ),
        (T0 + 1, Some(Num::AsInt(2)), 0)
    );

    let Some(Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("gauge")
    };
    assert_eq!(metrics[1].unit, "{batches}");
    let g = &gauge.data_points;
    assert_eq!(g.len(), 1);
    assert_eq!(
        attrs(&g[0].attributes),
        pairs(&[("exporter", "otlp/tempo")])
    );
    assert_eq!(
        (g[0].start_time_unix_nano, g[0].time_unix_nano, g[0].value),
        (T0 - 1, T1, Some(Num::AsDouble(4.0)))
    );

    let Some(Data::Histogram(h)) = &metrics[2].data else {
        panic!("histogram")
    };
    assert_eq!(
        h.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(metrics[2].unit, "ms");
    let p = &h.data_points[0];
    assert_eq!(attrs(&p.attributes), pairs(&[("service.name", "shop")]));
    assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (T0, T1));
    assert_eq!((p.count, p.sum, p.min, p.max), (5, Some(12.5), None, None));
    assert_eq!(p.bucket_counts, [3, 1, 1]);
    assert_eq!(p.explicit_bounds, [2.0, 4.0]);
    assert_eq!(p.exemplars.len(), 1);
    assert_eq!(p.exemplars[0].value, Some(exemplar::Value::AsDouble(3.5)));
    assert_eq!(p.exemplars[0].time_unix_nano, T0 + 7);
}

#[test]
fn delta_requests_carry_the_change_since_the_last() {
    let src = source(State {
        calls_ok: 10,
        calls_err: 4,
        err_start: T0,
        counts: vec![1, 1, 0],
        sum: 4.0,
        queue: 1.0,
        show_err: true,
    });
    let mut encoder = Encoder::new(Temporality::Delta);
    let (_, first) = roundtrip(&mut encoder, &src, T1);
    let (points, temporality, _) = sum_points(&first[0]);
    assert_eq!(temporality, AggregationTemporality::Delta as i32);
    // First request: everything since each series' start.
    assert_eq!(points[0].value, Some(Num::AsInt(10)));
    assert_eq!(points[0].start_time_unix_nano, T0);
    assert_eq!(points[0].exemplars.len(), 1);

    let t2 = T1 + 10;
    if let Ok(mut s) = src.0.lock() {
        s.calls_ok = 15;
        // Restarted series: a new start and a lower total.
        s.calls_err = 1;
        s.err_start = T1 + 1;
        s.counts = vec![1, 3, 2];
        s.sum = 20.0;
        s.queue = 7.0;
    }
    let (_, second) = roundtrip(&mut encoder, &src, t2);
    let (points, _, _) = sum_points(&second[0]);
    assert_eq!(
        (
            points[0].value,
            points[0].start_time_unix_nano,
            points[0].time_unix_nano
        ),
        (Some(Num::AsInt(5)), T1, t2)
    );
    // The exemplar was sent with the first request.
    assert!(points[0].exemplars.is_empty());
    assert_eq!(
        (points[1].value, points[1].start_time_unix_nano),
        (Some(Num::AsInt(1)), T1 + 1)
    );
    // Gauges are as they are.
    let Some(Data::Gauge(g)) = &second[1].data else {
        panic!("gauge")
    };
    assert_eq!(g.data_points[0].value, Some(Num::AsDouble(7.0)));
    let Some(Data::Histogram(h)) = &second[2].data else {
        panic!("histogram")
    };
    let p = &h.data_points[0];
    assert_eq!(
        h.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    assert_eq!(
        (p.start_time_unix_nano, p.count, p.sum),
        (T1, 4, Some(16.0))
    );
    assert_eq!(p.bucket_counts, [0, 2, 2]);
    assert!(p.exemplars.is_empty());

    // A series gone from one walk is forgotten: when it is back, it counts from its start.
    if let Ok(mut s) = src.0.lock() {
        s.show_err = false;
    }
    roundtrip(&mut encoder, &src, t2 + 10);
    if let Ok(mut s) = src.0.lock() {
        s.show_err = true;
    }
    let (_, fourth) = roundtrip(&mut encoder, &src, t2 + 20);
    let (points, _, _) = sum_points(&fourth[0]);
    assert_eq!(
        (
            points[0].value,
            points[1].value,
            points[1].start_time_unix_nano
        ),
        (Some(Num::AsInt(0)), Some(Num::AsInt(1)), T1 + 1)
    );
}

#[test]
fn redline_telemetry_encodes_with_otelcol_names() {
    let telemetry = Telemetry::new();
    let grpc = telemetry.receiver("otlp", "grpc", redline_pipeline::Signal::Traces);
    grpc.accepted.store(1234, Ordering::Relaxed);
    grpc.refused.store(5, Ordering::Relaxed);
    let exporter = telemetry.exporter("otlp/tempo", redline_pipeline::Signal::Traces);
    exporter.sent.store(1200, Ordering::Relaxed);
    exporter.queue_size.store(3, Ordering::Relaxed);
    exporter.queue_capacity.store(1000, Ordering::Relaxed);

    let mut encoder = Encoder::new(Temporality::Cumulative);
    let bytes = encoder.encode(&telemetry, &target(), 0, T1);
    let request = ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("decodes");
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let value = |name: &str| -> (Vec<(String, String)>, Option<Num>, u64) {
        let m = metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        let p = match &m.data {
            Some(Data::Sum(s)) => &s.data_points[0],
            Some(Data::Gauge(g)) => &g.data_points[0],
            other => panic!("{other:?}"),
        };
        (attrs(&p.attributes), p.value, p.start_time_unix_nano)
    };
    let start = telemetry.start_time_unix_nano();
    let recv = pairs(&[("receiver", "otlp"), ("transport", "grpc")]);
    assert_eq!(
        value("otelcol_receiver_accepted_spans"),
        (recv.clone(), Some(Num::AsInt(1234)), start)
    );
    assert_eq!(
        value("otelcol_receiver_refused_spans"),
        (recv, Some(Num::AsInt(5)), start)
    );
    let exp = pairs(&[("exporter", "otlp/tempo")]);
    assert_eq!(
        value("otelcol_exporter_sent_spans"),
        (exp.clone(), Some(Num::AsInt(1200)), start)
    );
    assert_eq!(
        value("otelcol_exporter_queue_size"),
        (
            pairs(&[("data_type", "traces"), ("exporter", "otlp/tempo")]),
            Some(Num::AsDouble(3.0)),
            0
        )
    );
    assert_eq!(encoder.dropped_points(), 0);
}

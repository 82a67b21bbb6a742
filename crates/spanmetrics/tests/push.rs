//! Span metrics pushed as OTLP to a pipeline whose exporters cannot read the store.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{encode, service, span};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use redline_pipeline::config::load_str;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::{
    Batch, BuildContext, ConnectorFactory, Consumer, Refused, Reservation, Signal, SignalConsumers,
};
use redline_spanmetrics::SpanMetricsFactory;

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Batch>>>);

impl Consumer for Recorder {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let me = self.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            me.0.lock().expect("lock").push(b)
        })))
    }
}

fn string(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    }
}

fn failed_with_an_event() -> opentelemetry_proto::tonic::trace::v1::Span {
    let mut s = span("POST /b", 2, 2, 1_000_000, vec![]);
    s.events
        .push(opentelemetry_proto::tonic::trace::v1::span::Event {
            name: "exception".into(),
            attributes: vec![common::kv("exception.type", common::s("Timeout"))],
            ..Default::default()
        });
    s
}

#[tokio::test]
async fn pushes_cumulative_otlp_per_service_and_a_last_push_on_shutdown() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
        connectors:\n  spanmetrics:\n    metrics_flush_interval: 1h\n\
        \x20   events: {enabled: true, dimensions: [{name: exception.type}]}\n\
        exporters:\n  otlp:\n    endpoint: x:4317\n\
        service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [spanmetrics]\n\
        \x20   metrics:\n      receivers: [spanmetrics]\n      exporters: [otlp]\n";
    let cfg = load_str("test.yaml", text).expect("loads");
    let section = &cfg.connectors[0];
    let recorder = Recorder::default();
    let mut next = SignalConsumers::default();
    next.set(Signal::Metrics, Arc::new(recorder.clone()));
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let parts = SpanMetricsFactory
        .build(section, &ctx, next)
        .await
        .expect("builds");

    let request = encode(vec![
        service("checkout", vec![span("GET /a", 2, 0, 3_000_000, vec![]); 3]),
        service("cart", vec![failed_with_an_event()]),
    ]);
    parts
        .input
        .consume(Batch::traces(request.into(), 4))
        .expect("taken");
    // The interval is an hour: only the shutdown push can have delivered.
    assert!(recorder.0.lock().expect("lock").is_empty());
    parts
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("stops");

    let batches = recorder.0.lock().expect("lock").clone();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.signal, Signal::Metrics);
    let decoded = ExportMetricsServiceRequest::decode(batch.raw.clone()).expect("valid OTLP");
    // One resource per service, ordered by name, each with service.name only.
    let services: Vec<String> = decoded
        .resource_metrics
        .iter()
        .map(|rm| {
            let attrs = &rm.resource.as_ref().expect("resource").attributes;
            assert_eq!(attrs.len(), 1);
            assert_eq!(attrs[0].key, "service.name");
            string(&attrs[0].value)
        })
        .collect();
    assert_eq!(services, ["cart", "checkout"]);
    let mut calls = Vec::new();
    let mut points = 0;
    let mut durations = 0;
    for rm in &decoded.resource_metrics {
        for sm in &rm.scope_metrics {
            assert_eq!(
                sm.scope.as_ref().map(|s| s.name.as_str()),
                Some("spanmetricsconnector")
            );
            for m in &sm.metrics {
                match &m.data {
                    Some(metric::Data::Sum(s)) => {
                        assert!(s.is_monotonic);
                        assert_eq!(s.aggregation_temporality, 2, "cumulative");
                        points += s.data_points.len();
                        if m.name != "traces.span.metrics.duration" {
                            for p in &s.data_points {
                                let name = p
                                    .attributes
                                    .iter()
                                    .find(|kv| kv.key == "span.name")
                                    .map(|kv| string(&kv.value));
                                let Some(number_data_point::Value::AsInt(v)) = p.value else {
                                    panic!("integer counts: {p:?}")
                                };
                                calls.push((m.name.clone(), name.unwrap_or_default(), v));
                            }
                        }
                    }
                    Some(metric::Data::Histogram(h)) => {
                        points += h.data_points.len();
                        durations += h.data_points.iter().map(|p| p.count).sum::<u64>();
                    }
                    other => panic!("unexpected data {other:?}"),
                }
            }
        }
    }
    assert_eq!(durations, 4);
    // The events family goes out with the others.
    calls.sort();
    let expected = [
        ("traces.span.metrics.calls", "GET /a", 3),
        ("traces.span.metrics.calls", "POST /b", 1),
        ("traces.span.metrics.errors", "GET /a", 0),
        ("traces.span.metrics.errors", "POST /b", 1),
        ("traces.span.metrics.events", "POST /b", 1),
    ]
    .map(|(m, n, v)| (m.to_owned(), n.to_owned(), v));
    assert_eq!(calls, expected);
    // calls, errors and duration for each of the two label sets, and one events series.
    assert_eq!(points, 7);
    assert_eq!(batch.items, points);
}

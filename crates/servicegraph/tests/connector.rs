//! The connector built by its factory: own telemetry, the OTLP push, config errors.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::{
    Batch, BuildContext, ConnectorFactory, ConnectorParts, Consumer, Refused, Reservation, Signal,
    SignalConsumers,
};
use redline_servicegraph::{
    ServiceGraphFactory, DROPPED_SPANS, EXPIRED_EDGES, STORE_EDGES, TOTAL_EDGES,
};

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

fn yaml(connector: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         connectors:\n  servicegraph:\n{connector}\
         exporters:\n  otlp:\n    endpoint: x:4317\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [servicegraph]\n\
         \x20   metrics:\n      receivers: [servicegraph]\n      exporters: [otlp]\n"
    )
}

async fn build(connector: &str, next: Option<Recorder>) -> (ConnectorParts, BuildContext) {
    let cfg = load_str("test.yaml", &yaml(connector)).expect("loads");
    let section = &cfg.connectors[0];
    let mut consumers = SignalConsumers::default();
    if let Some(r) = next {
        consumers.set(Signal::Metrics, Arc::new(r));
    }
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let parts = ServiceGraphFactory
        .build(section, &ctx, consumers)
        .await
        .expect("builds");
    (parts, ctx)
}

fn client_spans(n: u32) -> Vec<u8> {
    let spans: Vec<S> = (0..n)
        .map(|i| {
            let t: &'static str = Box::leak(format!("{:032x}", 0xf000 + i).into_boxed_str());
            S::new(t, "d000000000000001", "", CLIENT)
        })
        .collect();
    encode(vec![service("foo", &spans)])
}

#[tokio::test]
async fn own_telemetry_counts_dropped_spans_exactly() {
    let (parts, ctx) = build("    store:\n      max_items: 3\n", None).await;
    for _ in 0..4 {
        // The same 25 traces each time: 3 held, their spans update the held edges, and every
        // other span is dropped again.
        parts
            .input
            .consume(Batch::traces(client_spans(25).into(), 25))
            .expect("taken");
    }
    let mut sink = Sink::default();
    redline_pipeline::MetricsSource::collect(&ctx.telemetry, &mut sink);
    let l = labels(&[("connector", "servicegraph")]);
    assert_eq!(sink.family(DROPPED_SPANS).counter(&l), 4 * 22);
    assert_eq!(sink.family(TOTAL_EDGES).counter(&l), 3);
    assert_eq!(sink.family(EXPIRED_EDGES).counter(&l), 0);
    assert_eq!(sink.family(STORE_EDGES).gauge(&l), 3.0);
    parts
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("stops");
}

#[tokio::test]
async fn zero_flush_interval_pushes_after_every_batch_with_the_offset() {
    let recorder = Recorder::default();
    let (parts, _ctx) = build(
        "    metrics_flush_interval: 0s\n    metrics_timestamp_offset: 1h\n",
        Some(recorder.clone()),
    )
    .await;
    let req = encode(vec![
        service(
            "foo",
            &[S::new(
                "a0000000000000000000000000000000",
                "a000000000000000",
                "",
                CLIENT,
            )],
        ),
        service(
            "bar",
            &[S::new(
                "a0000000000000000000000000000000",
                "a000000000000001",
                "a000000000000000",
                SERVER,
            )],
        ),
    ]);
    parts
        .input
        .consume(Batch::traces(req.into(), 2))
        .expect("taken");
    let deadline = Instant::now() + Duration::from_secs(5);
    while recorder.0.lock().expect("lock").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let batches = recorder.0.lock().expect("lock").clone();
    assert_eq!(batches.len(), 1, "one push for the one batch");
    let decoded = ExportMetricsServiceRequest::decode(batches[0].raw.clone()).expect("OTLP");
    let sm = &decoded.resource_metrics[0].scope_metrics[0];
    assert_eq!(
        sm.scope.as_ref().map(|s| s.name.as_str()),
        Some("traces_service_graph")
    );
    let names: Vec<(&str, &str)> = sm
        .metrics
        .iter()
        .map(|m| (m.name.as_str(), m.unit.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("traces_service_graph_request_total", ""),
            ("traces_service_graph_request_server", "s"),
            ("traces_service_graph_request_client", "s"),
        ]
    );
    let now = redline_pipeline::telemetry::now_unix_nano();
    let Some(metric::Data::Sum(sum)) = &sm.metrics[0].data else {
        panic!("a sum")
    };
    assert_eq!(sum.data_points.len(), 1);
    let p = &sum.data_points[0];
    assert_eq!(p.value, Some(number_data_point::Value::AsInt(1)));
    let hour = 3_600_000_000_000u64;
    assert!(p.time_unix_nano <= now - hour && p.time_unix_nano > now - hour - 60_000_000_000);
    // One data point per family: 3.
    assert_eq!(batches[0].items, 3);
    parts
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("stops");
}

#[test]
fn config_errors_name_the_key_and_warnings_are_given() {
    let bad = [
        (
            "    exponential_histogram_max_size: 160\n",
            "exponential_histogram_max_size",
        ),
        ("    store:\n      max_items: 0\n", "store.max_items"),
        ("    no_such_key: 1\n", "no_such_key"),
        (
            "    latency_histogram_buckets: [10ms, 5ms]\n",
            "latency_histogram_buckets",
        ),
    ];
    for (section, key) in bad {
        let cfg = load_str("test.yaml", &yaml(section)).expect("loads");
        let err = ServiceGraphFactory
            .validate(&cfg.connectors[0])
            .expect_err(key)
            .to_string();
        assert!(err.contains(key), "{err}");
    }
    let cfg = load_str(
        "test.yaml",
        &yaml("    metrics_exporter: prometheus\n    database_name_attribute: db.namespace\n"),
    )
    .expect("loads");
    ServiceGraphFactory
        .validate(&cfg.connectors[0])
        .expect("valid");
    let warnings = ServiceGraphFactory.warnings(&cfg.connectors[0]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("metrics_exporter"));
    assert!(warnings[1].contains("database_name_attribute"));
    // The alias.
    assert_eq!(ServiceGraphFactory.aliases(), ["service_graph"]);
}

#[tokio::test]
async fn the_expiration_loop_runs_in_the_background() {
    let (parts, ctx) = build(
        "    store:\n      ttl: 0s\n    store_expiration_loop: 10ms\n",
        None,
    )
    .await;
    parts
        .input
        .consume(Batch::traces(client_spans(4).into(), 4))
        .expect("taken");
    let l = labels(&[("connector", "servicegraph")]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let expired = loop {
        let mut sink = Sink::default();
        redline_pipeline::MetricsSource::collect(&ctx.telemetry, &mut sink);
        let n = sink.family(EXPIRED_EDGES).counter(&l);
        if n == 4 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(expired, 4);
    let metrics = parts.metrics.clone().expect("a metrics source");
    let mut sink = Sink::default();
    metrics.collect(&mut sink);
    assert_eq!(
        sink.family(redline_servicegraph::REQUEST_TOTAL)
            .counter(&labels(&[
                ("client", "foo"),
                ("server", "unknown"),
                ("connection_type", "virtual_node"),
                ("failed", "false"),
            ])),
        4
    );
    parts
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("stops");
}

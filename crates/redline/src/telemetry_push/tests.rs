//! Loopback: the readers of a config file push Redline's own metrics to an in-test OTLP/HTTP
//! server and an in-test OTLP/gRPC server, which decode what they got.

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use prost::Message;
use redline_net_testkit::ClosedPort;
use redline_otlp_metrics_encode::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use redline_otlp_metrics_encode::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use redline_otlp_metrics_encode::proto::common::v1::any_value::Value as Any;
use redline_otlp_metrics_encode::proto::metrics::v1::{metric::Data, number_data_point::Value};
use redline_pipeline::config::TelemetryConfig;
use redline_pipeline::telemetry::Telemetry;
use tokio::sync::mpsc;

use super::*;

fn telemetry_config(readers: &str, resource: &str) -> TelemetryConfig {
    let text = format!(
        "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n  telemetry:\n{resource}    metrics:\n      readers:\n{readers}"
    );
    redline_pipeline::config::load_str("test.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .service
        .telemetry
}

/// Redline's counters after some traffic.
fn traffic(accepted: u64) -> Telemetry {
    let telemetry = Telemetry::new();
    let r = telemetry.receiver("otlp", "grpc", redline_pipeline::Signal::Traces);
    r.accepted.store(accepted, Ordering::Relaxed);
    r.refused.store(3, Ordering::Relaxed);
    telemetry
        .exporter("otlp/tempo", redline_pipeline::Signal::Traces)
        .sent
        .store(accepted - 1, Ordering::Relaxed);
    telemetry
}

/// The value of the `name` sum whose attributes include `attr`.
fn sum(request: &ExportMetricsServiceRequest, name: &str, attr: (&str, &str)) -> i64 {
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    let m = metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    let Some(Data::Sum(s)) = &m.data else {
        panic!("{name} is not a sum")
    };
    let point = s
        .data_points
        .iter()
        .find(|p| {
            p.attributes.iter().any(|kv| {
                kv.key == attr.0
                    && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                        Some(Any::StringValue(v)) if v == attr.1)
            })
        })
        .unwrap_or_else(|| panic!("no {name} point with {attr:?}"));
    match point.value {
        Some(Value::AsInt(v)) => v,
        other => panic!("{name}: {other:?}"),
    }
}

fn resource(request: &ExportMetricsServiceRequest) -> Vec<(String, String)> {
    let r = request.resource_metrics[0]
        .resource
        .as_ref()
        .expect("resource");
    r.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

type Got = (HeaderMap, Bytes);

async fn http_server() -> (SocketAddr, mpsc::UnboundedReceiver<Got>) {
    let (tx, rx) = mpsc::unbounded_channel::<Got>();
    async fn handle(
        State(tx): State<mpsc::UnboundedSender<Got>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Vec<u8> {
        let _ = tx.send((headers, body));
        ExportMetricsServiceResponse::default().encode_to_vec()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/v1/metrics", post(handle))
        .with_state(tx);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, rx)
}

#[tokio::test]
async fn http_reader_pushes_at_shutdown_with_gzip_headers_and_resource() {
    let (addr, mut got) = http_server().await;
    let config = telemetry_config(
        &format!(
            "        - periodic:
            interval: 600000
            exporter:
              otlp:
                protocol: http/protobuf
                endpoint: http://{addr}
                compression: gzip
                headers: [{{name: X-Tenant, value: acme}}]
"
        ),
        "    resource:\n      service.name: gateway\n      service.instance.id: null\n      zone: eu-1\n",
    );
    let telemetry = traffic(1000);
    let pushers = start(&config, &telemetry).expect("starts");
    // Nothing before the interval; the final push at shutdown carries the last counts.
    telemetry
        .receiver("otlp", "grpc", redline_pipeline::Signal::Traces)
        .accepted
        .store(1234, Ordering::Relaxed);
    pushers
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    let (headers, body) = got.try_recv().expect("one request");
    assert!(got.try_recv().is_err(), "only the final push");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["x-tenant"], "acme");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(body.as_ref())
        .read_to_end(&mut raw)
        .expect("gzip");
    let request = ExportMetricsServiceRequest::decode(raw.as_slice()).expect("decodes");
    assert_eq!(
        sum(
            &request,
            "otelcol_receiver_accepted_spans",
            ("transport", "grpc")
        ),
        1234
    );
    assert_eq!(
        sum(
            &request,
            "otelcol_receiver_refused_spans",
            ("receiver", "otlp")
        ),
        3
    );
    assert_eq!(
        sum(
            &request,
            "otelcol_exporter_sent_spans",
            ("exporter", "otlp/tempo")
        ),
        999
    );
    let attrs = resource(&request);
    let names: Vec<&str> = attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["service.version", "service.name", "zone"]);
    assert_eq!(attrs[1].1, "gateway");
    assert_eq!(attrs[2].1, "eu-1");
    let scope = request.resource_metrics[0].scope_metrics[0]
        .scope
        .as_ref()
        .expect("scope");
    assert_eq!(scope.name, "redline");
    // OTLP carries the resource itself: no `target_info` series in the push.
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    assert!(metrics.iter().all(|m| m.name != "target_info"));

    // The pull endpoint serves the same resource as `target_info` (otelcol's Prometheus
    // reader does).
    let pulled =
        Encoder::new(Temporality::Cumulative).request(&telemetry, &Target::default(), 0, 1);
    let info = pulled.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == "target_info")
        .expect("target_info");
    let Some(Data::Gauge(g)) = &info.data else {
        panic!("a gauge")
    };
    let labels: Vec<(String, String)> = g.data_points[0]
        .attributes
        .iter()
        .map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => (kv.key.clone(), s.clone()),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(labels, attrs);
    assert_eq!(g.data_points[0].value, Some(Value::AsDouble(1.0)));
}

struct Collect(mpsc::UnboundedSender<(tonic::metadata::MetadataMap, ExportMetricsServiceRequest)>);

#[tonic::async_trait]
impl MetricsService for Collect {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let metadata = request.metadata().clone();
        let _ = self.0.send((metadata, request.into_inner()));
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tokio::test]
async fn grpc_reader_pushes_every_interval() {
    let (tx, mut got) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = MetricsServiceServer::new(Collect(tx))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await;
    });
    let config = telemetry_config(
        &format!(
            "        - periodic:
            interval: 50
            exporter:
              otlp: {{protocol: grpc, endpoint: '{addr}', insecure: true, compression: gzip, headers: {{authorization: Bearer t0ken}}}}
"
        ),
        "",
    );
    let telemetry = traffic(500);
    let pushers = start(&config, &telemetry).expect("starts");
    let (metadata, first) = tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("a push within the interval")
        .expect("a request");
    assert_eq!(
        metadata.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer t0ken")
    );
    assert_eq!(
        sum(
            &first,
            "otelcol_receiver_accepted_spans",
            ("transport", "grpc")
        ),
        500
    );
    let attrs = resource(&first);
    let names: Vec<&str> = attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["service.name", "service.version", "service.instance.id"]
    );
    assert_eq!(attrs[0].1, "redline");
    assert_eq!(attrs[2].1.len(), 36, "a UUID: {}", attrs[2].1);

    telemetry
        .receiver("otlp", "grpc", redline_pipeline::Signal::Traces)
        .accepted
        .store(777, Ordering::Relaxed);
    pushers
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    // The last request seen is the final push, with the last count.
    let mut last = None;
    while let Ok((_, r)) = got.try_recv() {
        last = Some(r);
    }
    let last = last.expect("the final push");
    assert_eq!(
        sum(
            &last,
            "otelcol_receiver_accepted_spans",
            ("transport", "grpc")
        ),
        777
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_logged_and_shutdown_still_returns() {
    // A port nobody listens on: the push fails fast, and that is all.
    let down = ClosedPort::reserve();
    let addr = down.addr();
    let config = telemetry_config(
        &format!(
            "        - periodic:\n            interval: 20\n            timeout: 500\n            exporter: {{otlp: {{protocol: http/protobuf, endpoint: 'http://{addr}'}}}}\n"
        ),
        "",
    );
    let pushers = start(&config, &traffic(1)).expect("starts");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    pushers
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    assert!(began.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_tls_file_that_cannot_be_read_stops_startup() {
    let config = telemetry_config(
        "        - periodic: {exporter: {otlp: {protocol: grpc, endpoint: 'https://c:4317', certificate: /nonexistent/ca.pem}}}\n",
        "",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let e = match start(&config, &Telemetry::new()) {
        Ok(_) => panic!("started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("service.telemetry.metrics.readers[0]: exporter: certificate: cannot read"),
        "{e}"
    );
}

#[test]
fn uuids_are_version_4() {
    let id = random_uuid();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
}

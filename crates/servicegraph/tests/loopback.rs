//! A running pipeline on 127.0.0.1: OTLP/HTTP in, the servicegraph connector, the Prometheus
//! exporter scraped; the exact lines otelcol's setup serves.

mod common;

use std::time::{Duration, Instant};

use common::*;
use redline_pipeline::config::load_str;
use redline_pipeline::service::Service;
use redline_pipeline::{BuildContext, Factories};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = "\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
connectors:
  servicegraph:
    dimensions: [http.method]
    latency_histogram_buckets: [10ms, 100ms, 1s]
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [servicegraph]
    metrics:
      receivers: [servicegraph]
      exporters: [prometheus]
";

async fn http(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let req = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("writes");
    s.write_all(body).await.expect("writes");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("reads");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn addr_of(service: &Service, id: &str) -> std::net::SocketAddr {
    service
        .local_addrs()
        .into_iter()
        .find(|(c, _, _)| c == id)
        .map(|(_, _, a)| a)
        .unwrap_or_else(|| panic!("{id} listens"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_shows_exact_service_graph_series() {
    let mut factories = Factories::default();
    factories
        .receiver(redline_otlp_receiver::OtlpReceiverFactory)
        .connector(redline_servicegraph::ServiceGraphFactory)
        .exporter(redline_prometheus_exporter::PrometheusExporterFactory);
    let config = load_str("loopback.yaml", CONFIG).expect("loads");
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let running = Service::start(&config, &factories, ctx)
        .await
        .expect("starts");
    let otlp = addr_of(&running, "otlp");
    let prom = addr_of(&running, "prometheus");

    // frontend → checkout twice (50 ms server side, 60 ms client side), one of them failed,
    // and sampled at 1/8 (`ot=th:e`); checkout → the `orders` database (3 ms).
    let mut front = Vec::new();
    let mut checkout = Vec::new();
    for (i, status) in [(1u8, 0), (2, ERROR)] {
        let t: &'static str = Box::leak(format!("{:032x}", i).into_boxed_str());
        front.push(
            S::new(t, "1000000000000001", "", CLIENT)
                .dur_ns(60_000_000)
                .trace_state("ot=th:e")
                .attr("http.method", s("GET")),
        );
        checkout.push(
            S::new(t, "2000000000000002", "1000000000000001", SERVER)
                .dur_ns(50_000_000)
                .trace_state("ot=th:e")
                .status(status),
        );
        checkout.push(
            S::new(t, "3000000000000003", "2000000000000002", CLIENT)
                .dur_ns(3_000_000)
                .attr("db.name", s("orders")),
        );
    }
    let req = encode(vec![
        service("frontend", &front),
        service("checkout", &checkout),
    ]);
    let (status, body) = http(
        otlp,
        "POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf",
        &req,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = http(prom, "GET /metrics HTTP/1.1\r\nAccept: text/plain", &[]).await;
        assert_eq!(status, 200);
        if text.contains("traces_service_graph_request_failed_total{") || Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("traces_service_graph_"))
        .collect();
    let expect = [
        r#"traces_service_graph_request_total{client="checkout",connection_type="database",failed="false",server="orders"} 2"#,
        r#"traces_service_graph_request_total{client="frontend",client_http_method="GET",connection_type="",failed="false",server="checkout"} 8"#,
        r#"traces_service_graph_request_total{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout"} 8"#,
        r#"traces_service_graph_request_failed_total{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout"} 8"#,
        r#"traces_service_graph_request_server_seconds_bucket{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout",le="0.01"} 0"#,
        r#"traces_service_graph_request_server_seconds_bucket{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout",le="0.1"} 8"#,
        r#"traces_service_graph_request_server_seconds_bucket{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout",le="1"} 8"#,
        r#"traces_service_graph_request_server_seconds_bucket{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout",le="+Inf"} 8"#,
        r#"traces_service_graph_request_server_seconds_sum{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout"} 0.4"#,
        r#"traces_service_graph_request_server_seconds_count{client="frontend",client_http_method="GET",connection_type="",failed="true",server="checkout"} 8"#,
        r#"traces_service_graph_request_client_seconds_bucket{client="checkout",connection_type="database",failed="false",server="orders",le="0.01"} 2"#,
        r#"traces_service_graph_request_client_seconds_sum{client="checkout",connection_type="database",failed="false",server="orders"} 0.006"#,
        r#"traces_service_graph_request_client_seconds_sum{client="frontend",client_http_method="GET",connection_type="",failed="false",server="checkout"} 0.48"#,
        r#"traces_service_graph_request_client_seconds_count{client="frontend",client_http_method="GET",connection_type="",failed="false",server="checkout"} 8"#,
    ];
    for want in expect {
        assert!(
            lines.contains(&want),
            "missing\n{want}\nin\n{}",
            lines.join("\n")
        );
    }
    // 3 counter lines + 1 failed + 3 series × 2 histograms × (4 buckets + sum + count).
    assert_eq!(lines.len(), 3 + 1 + 3 * 2 * 6, "{}", lines.join("\n"));
    // OpenMetrics carries the histograms' exemplars: the latest request's trace and span.
    let (_, om) = http(
        prom,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0",
        &[],
    )
    .await;
    let server_bucket = om
        .lines()
        .find(|l| {
            l.starts_with("traces_service_graph_request_server_seconds_bucket{")
                && l.contains("failed=\"true\"")
                && l.contains("le=\"0.1\"")
        })
        .unwrap_or_else(|| panic!("no bucket line in\n{om}"));
    assert!(
        server_bucket.contains(
            "# {trace_id=\"00000000000000000000000000000002\",span_id=\"2000000000000002\"} 0.05 "
        ),
        "{server_bucket}"
    );
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
}

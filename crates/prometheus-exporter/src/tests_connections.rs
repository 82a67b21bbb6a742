//! The `/metrics` server holds scraper connections to confighttp's deadlines: a scraper's
//! kept-alive connection waits `keepalive.idle_timeout` between scrapes, and a request head
//! that stalls is cut off at `read_header_timeout`. Before, a client that opened connections
//! and sent nothing kept each one for ever.

use std::time::{Duration, Instant};

use redline_pipeline::component::FactoryInfo;
use redline_pipeline::{ExporterFactory, RunningComponent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::tests::{exporter_section, sources};
use crate::PrometheusExporterFactory;

/// How much later than its deadline a close may come on a busy machine.
const SLACK: Duration = Duration::from_secs(3);

async fn serve(body: &str) -> Box<dyn RunningComponent> {
    let section = exporter_section(body);
    let ctx = redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let (_, running) = PrometheusExporterFactory
        .build_metrics_reader(&section, &ctx, sources())
        .await
        .unwrap_or_else(|e| panic!("builds: {e}"));
    running
}

/// One scrape on `stream`, read to the end of its (chunked) body.
async fn scrape(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"0\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("read");
        assert_ne!(n, 0, "closed mid-response");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Seconds until the server closes `stream`, which must send nothing meanwhile.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(limit, stream.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "answered instead of closing");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraper_connections_are_held_to_the_idle_and_head_deadlines() {
    let running = serve(
        "    endpoint: 127.0.0.1:0\n    read_header_timeout: 200ms\n    keepalive:\n      idle_timeout: 600ms",
    )
    .await;
    let addr = running.local_addrs()[0].1;
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    scrape(&mut stream).await;
    // Past the head deadline between scrapes: the connection waits idle_timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    scrape(&mut stream).await;
    let idle = closed_after(&mut stream, Duration::from_millis(600) + SLACK).await;
    assert!(
        idle >= Duration::from_millis(590),
        "closed after {idle:?} idle"
    );

    let mut stalled = TcpStream::connect(addr).await.expect("tcp");
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .expect("half a head");
    let head = closed_after(&mut stalled, Duration::from_millis(200) + SLACK).await;
    assert!(
        head < Duration::from_millis(590),
        "the head deadline, not the idle one: {head:?}"
    );
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[test]
fn keepalive_keys_resolve_as_otelcol_reads_them() {
    let warnings = |body: &str| PrometheusExporterFactory.warnings(&exporter_section(body));
    assert_eq!(
        warnings("    endpoint: 127.0.0.1:0\n    idle_timeout: 2m\n    keep_alives_enabled: false"),
        [
            "idle_timeout is deprecated; use keepalive.idle_timeout instead",
            "keep_alives_enabled is deprecated; set keepalive.enabled to false instead",
        ]
    );
    let err = PrometheusExporterFactory
        .validate(&exporter_section(
            "    endpoint: 127.0.0.1:0\n    idle_timeout: 2m\n    keepalive:\n      enabled: true",
        ))
        .expect_err("both representations")
        .to_string();
    assert!(
        err.contains("exporters.prometheus.idle_timeout") && err.contains("`keepalive` section"),
        "{err}"
    );
}

//! The `otlphttp` exporter against a real HTTP server on loopback.

mod http_sink;
mod support;

use std::sync::Arc;
use std::time::Duration;

use http_sink::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_net_testkit::ClosedPort;
use redline_otlp_exporter::config::{Encoding, HttpCompression};
use redline_pipeline::config::Secret;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::Signal;
use support::DirStorage;
use tokio::sync::Semaphore;

#[tokio::test]
async fn protobuf_bytes_arrive_untouched_at_each_signals_path() {
    let sink = HttpSink::start().await;
    for (signal, path, n) in [
        (Signal::Traces, "/v1/traces", 7),
        (Signal::Metrics, "/v1/metrics", 5),
        (Signal::Logs, "/v1/logs", 3),
    ] {
        let s = start(config(&sink.url()), signal);
        let b = batch(signal, n, 1);
        let raw = b.raw.clone();
        s.consumer.consume(b).expect("queued");
        assert!(eventually(|| s.sent() == n as u64).await, "{signal} sent");
        let got = sink.accepted().pop().expect("a request");
        assert_eq!(got.path, path);
        assert_eq!(got.body, raw, "{signal}: the bytes are forwarded untouched");
        assert_eq!(got.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(got.header("content-encoding"), None);
        assert_eq!(s.failed(), 0);
        s.shutdown_ok().await;
    }
}

#[tokio::test]
async fn a_base_path_is_kept_as_loki_needs() {
    let sink = HttpSink::start().await;
    let s = start(config(&format!("{}/otlp", sink.url())), Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, 2, 1))
        .expect("queued");
    assert!(eventually(|| s.sent() == 2).await);
    assert_eq!(sink.accepted()[0].path, "/otlp/v1/logs");
    s.shutdown_ok().await;

    let mut c = config(&sink.url());
    c.traces_endpoint = Some(format!("{}/custom/spans", sink.url()));
    let s = start(c, Signal::Traces);
    s.consumer
        .consume(batch(Signal::Traces, 1, 1))
        .expect("queued");
    assert!(eventually(|| s.sent() == 1).await);
    assert_eq!(
        sink.accepted()[1].path,
        "/custom/spans",
        "a signal endpoint is used as written"
    );
    s.shutdown_ok().await;
}

#[tokio::test]
async fn gzip_is_the_default_and_every_compression_decodes_to_the_request() {
    let sink = HttpSink::start().await;
    let mut expected_encodings = Vec::new();
    for (compression, encoding) in [
        (None, "gzip"),
        (Some(HttpCompression::Zstd), "zstd"),
        (Some(HttpCompression::Zlib), "zlib"),
        (Some(HttpCompression::Deflate), "deflate"),
        (Some(HttpCompression::Snappy), "snappy"),
        (Some(HttpCompression::SnappyFramed), "x-snappy-framed"),
    ] {
        let mut c = config(&sink.url());
        c.compression = compression.unwrap_or_default();
        let s = start(c, Signal::Traces);
        let b = batch(Signal::Traces, 20, 2);
        let raw = b.raw.clone();
        s.consumer.consume(b).expect("queued");
        assert!(eventually(|| s.sent() == 20).await, "{encoding}");
        let got = sink.accepted().pop().expect("request");
        assert_eq!(got.header("content-encoding"), Some(encoding));
        assert_eq!(
            got.decoded,
            raw.to_vec(),
            "{encoding} decodes to the request"
        );
        assert_ne!(got.body, raw, "{encoding} compresses");
        // The framed format leads with its stream identifier; a block with its length.
        assert_eq!(
            got.body.starts_with(b"\xff\x06\x00\x00sNaPpY"),
            encoding == "x-snappy-framed",
            "{encoding}"
        );
        expected_encodings.push(encoding);
        s.shutdown_ok().await;
    }
    assert_eq!(sink.accepted().len(), expected_encodings.len());
}

#[tokio::test]
async fn json_encoding_decodes_to_the_same_request() {
    let sink = HttpSink::start().await;
    for signal in Signal::ALL {
        let mut c = config(&sink.url());
        c.encoding = Encoding::Json;
        c.compression = HttpCompression::Gzip;
        let s = start(c, signal);
        s.consumer.consume(batch(signal, 4, 3)).expect("queued");
        assert!(eventually(|| s.sent() == 4).await, "{signal}");
        let got = sink.accepted().pop().expect("request");
        assert_eq!(got.header("content-type"), Some("application/json"));
        let body = got.decoded.as_slice();
        match signal {
            Signal::Traces => assert_eq!(
                serde_json::from_slice::<ExportTraceServiceRequest>(body).expect("json"),
                traces(4, 3)
            ),
            Signal::Metrics => assert_eq!(
                serde_json::from_slice::<ExportMetricsServiceRequest>(body).expect("json"),
                metrics(4, 3)
            ),
            Signal::Logs => assert_eq!(
                serde_json::from_slice::<ExportLogsServiceRequest>(body).expect("json"),
                logs(4, 3)
            ),
        }
        s.shutdown_ok().await;
    }
}

#[tokio::test]
async fn queued_batches_go_as_one_concatenated_body() {
    let sink = HttpSink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Answer::Gate(gate.clone()));
    let s = start(config(&sink.url()), Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, 1, 10))
        .expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    let mut concatenated = Vec::new();
    for tag in 0..3 {
        let b = batch(Signal::Logs, 2, 20 + tag);
        concatenated.extend_from_slice(&b.raw);
        s.consumer.consume(b).expect("queued");
    }
    gate.add_permits(1);
    assert!(eventually(|| s.sent() == 7).await, "sent {}", s.sent());
    let got = sink.accepted();
    assert_eq!(got.len(), 2, "the three queued batches went as one request");
    assert_eq!(got[1].body.as_ref(), concatenated.as_slice());
    let merged = ExportLogsServiceRequest::decode(got[1].body.as_ref()).expect("valid protobuf");
    assert_eq!(merged.resource_logs.len(), 3);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn configured_headers_and_the_user_agent_arrive() {
    let sink = HttpSink::start().await;
    let mut c = config(&sink.url());
    c.headers
        .insert("X-Scope-OrgID".into(), Secret::from("tenant-1"));
    c.headers
        .insert("Authorization".into(), Secret::from("Bearer t0ken"));
    let s = start(c, Signal::Traces);
    s.consumer
        .consume(batch(Signal::Traces, 1, 4))
        .expect("queued");
    assert!(eventually(|| s.sent() == 1).await);
    let got = &sink.accepted()[0];
    assert_eq!(got.header("x-scope-orgid"), Some("tenant-1"));
    assert_eq!(got.header("authorization"), Some("Bearer t0ken"));
    let ua = got.header("user-agent").unwrap_or_default();
    assert!(ua.starts_with("redline/"), "user agent {ua:?}");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn the_authenticators_credentials_replace_a_configured_authorization_header() {
    use redline_pipeline::extension::{
        AuthError, ClientAuthConfig, ClientAuthenticator, ExtensionCapabilities, Extensions,
    };
    use redline_pipeline::{BuildContext, ComponentId};

    struct Basic;
    impl ClientAuthenticator for Basic {
        fn add_credentials(
            &self,
            headers: &mut http::HeaderMap,
            _: Option<&redline_pipeline::ClientMetadata>,
        ) -> Result<(), AuthError> {
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_static("Basic dXNlcjpwYXNz"),
            );
            Ok(())
        }
    }

    let sink = HttpSink::start().await;
    let mut c = config(&sink.url());
    c.headers
        .insert("Authorization".into(), Secret::from("Bearer from-headers"));
    c.headers
        .insert("X-Scope-OrgID".into(), Secret::from("tenant-1"));
    c.auth = Some(ClientAuthConfig {
        authenticator: "basicauth/client".into(),
    });
    let mut extensions = Extensions::default();
    extensions.insert(
        ComponentId::new("basicauth", Some("client")),
        ExtensionCapabilities {
            client_authenticator: Some(Arc::new(Basic)),
            ..ExtensionCapabilities::default()
        },
    );
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone()).with_extensions(extensions);
    let id = ComponentId::new("otlphttp", Some("x"));
    let (consumer, running) =
        redline_otlp_exporter::start_http(&id, c, &ctx, Signal::Logs).expect("starts");
    let s = Started {
        consumer,
        running,
        counters: telemetry.exporter("otlphttp/x", Signal::Logs),
    };
    s.consumer
        .consume(batch(Signal::Logs, 2, 1))
        .expect("queued");
    assert!(eventually(|| s.sent() == 2).await);
    let got = &sink.accepted()[0];
    // As otelcol's auth round tripper runs inside its headers one.
    assert_eq!(got.header("authorization"), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(got.header("x-scope-orgid"), Some("tenant-1"));
    s.shutdown_ok().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let sink = HttpSink::start().await;
    sink.plan(Answer::Fail(503, Some("1")));
    let s = start(config(&sink.url()), Signal::Traces);
    s.consumer
        .consume(batch(Signal::Traces, 3, 5))
        .expect("queued");
    assert!(eventually(|| s.sent() == 3).await);
    let got = sink.received();
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited {waited:?}, Retry-After said 1s (the backoff alone is 10ms)"
    );
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn retryable_statuses_are_retried() {
    let sink = HttpSink::start().await;
    for status in [429, 502, 503, 504] {
        sink.plan(Answer::Fail(status, None));
    }
    let s = start(config(&sink.url()), Signal::Metrics);
    s.consumer
        .consume(batch(Signal::Metrics, 6, 6))
        .expect("queued");
    assert!(eventually(|| s.sent() == 6).await);
    assert_eq!(sink.received().len(), 5, "four failures, then success");
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn a_hung_attempt_times_out_and_is_retried() {
    let sink = HttpSink::start().await;
    // Never answered: the gate has no permit.
    sink.plan(Answer::Gate(Arc::new(Semaphore::new(0))));
    let mut cfg = config(&sink.url());
    cfg.timeout = Duration::from_millis(200);
    let s = start(cfg, Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, 4, 4))
        .expect("queued");
    assert!(eventually(|| s.sent() == 4).await);
    let got = sink.received();
    assert_eq!(got.len(), 2, "the hung attempt, then the retry");
    assert_eq!(got[0].decoded, got[1].decoded, "the same request again");
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(200),
        "retried only once the attempt timed out"
    );
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn a_400_is_permanent_and_counted_as_failed() {
    let sink = HttpSink::start().await;
    sink.plan(Answer::Fail(400, None));
    let s = start(config(&sink.url()), Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, 9, 7))
        .expect("queued");
    assert!(eventually(|| s.failed() == 9).await);
    // A second batch goes through: the exporter carries on.
    s.consumer
        .consume(batch(Signal::Logs, 2, 8))
        .expect("queued");
    assert!(eventually(|| s.sent() == 2).await);
    assert_eq!(
        sink.received().len(),
        2,
        "the refused request was not retried"
    );
    assert_eq!(s.failed(), 9);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn partial_success_is_counted_exactly_and_not_retried() {
    let sink = HttpSink::start().await;
    sink.plan(Answer::Reject(3));
    sink.plan(Answer::RejectJson(2));
    let s = start(config(&sink.url()), Signal::Traces);
    s.consumer
        .consume(batch(Signal::Traces, 10, 9))
        .expect("queued");
    assert!(eventually(|| s.sent() + s.failed() == 10).await);
    assert_eq!((s.sent(), s.failed()), (7, 3));
    s.consumer
        .consume(batch(Signal::Traces, 5, 10))
        .expect("queued");
    assert!(eventually(|| s.sent() + s.failed() == 15).await);
    assert_eq!((s.sent(), s.failed()), (10, 5), "JSON answers are read too");
    assert_eq!(sink.received().len(), 2, "rejected items are never resent");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn counters_are_per_signal_and_exact() {
    let sink = HttpSink::start().await;
    let telemetry = Telemetry::new();
    let traces = start_on(&telemetry, config(&sink.url()), Signal::Traces);
    let metrics = start_on(&telemetry, config(&sink.url()), Signal::Metrics);
    let logs = start_on(&telemetry, config(&sink.url()), Signal::Logs);
    for i in 0..4 {
        traces
            .consumer
            .consume(batch(Signal::Traces, 5, i))
            .expect("queued");
        metrics
            .consumer
            .consume(batch(Signal::Metrics, 7, i))
            .expect("queued");
        logs.consumer
            .consume(batch(Signal::Logs, 3, i))
            .expect("queued");
    }
    assert!(eventually(|| traces.sent() == 20 && metrics.sent() == 28 && logs.sent() == 12).await);
    for s in [&traces, &metrics, &logs] {
        assert_eq!(s.failed(), 0);
    }
    let paths: Vec<String> = sink.accepted().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "/v1/traces"));
    assert!(paths.iter().any(|p| p == "/v1/metrics"));
    assert!(paths.iter().any(|p| p == "/v1/logs"));
    for s in [traces, metrics, logs] {
        s.shutdown_ok().await;
    }
}

#[tokio::test]
async fn shutdown_drains_the_queue() {
    let sink = HttpSink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Answer::Gate(gate.clone()));
    let s = start(config(&sink.url()), Signal::Traces);
    for i in 0..5 {
        s.consumer
            .consume(batch(Signal::Traces, 2, i))
            .expect("queued");
    }
    assert!(eventually(|| sink.received().len() == 1).await);
    let counters = s.counters.clone();
    let shutdown = tokio::spawn(
        s.running
            .shutdown(std::time::Instant::now() + Duration::from_secs(10)),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!shutdown.is_finished(), "waits for the queue to drain");
    gate.add_permits(1);
    shutdown
        .await
        .expect("joined")
        .expect("drained within the deadline");
    assert_eq!(
        counters.sent.load(std::sync::atomic::Ordering::SeqCst),
        10,
        "everything queued was delivered"
    );
    assert!(s.consumer.consume(batch(Signal::Traces, 1, 9)).is_err());
}

#[tokio::test]
async fn an_unreachable_server_is_retried_until_it_comes_up() {
    let down = ClosedPort::reserve();
    let s = start(config(&format!("http://{}", down.addr())), Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, 4, 1))
        .expect("queued");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.sent(), 0);
    let listener = down.open();
    let got = Arc::new(parking_lot::Mutex::new(0usize));
    let app = axum::Router::new().fallback({
        let got = got.clone();
        move || async move {
            *got.lock() += 1;
            axum::http::StatusCode::OK
        }
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    assert!(
        eventually(|| s.sent() == 4).await,
        "delivered once the server is up"
    );
    assert_eq!(*got.lock(), 1);
    s.shutdown_ok().await;
    server.abort();
}

#[tokio::test]
async fn the_disk_queue_keeps_batches_for_the_next_start() {
    use redline_pipeline::extension::{ExtensionCapabilities, Extensions};
    use redline_pipeline::{BuildContext, ComponentId};

    let root = tempfile::tempdir().expect("tmp");
    let start_on_disk = |base: String| {
        let telemetry = Telemetry::new();
        let mut extensions = Extensions::default();
        extensions.insert(
            ComponentId::new("file_storage", None),
            ExtensionCapabilities {
                storage: Some(Arc::new(DirStorage {
                    root: root.path().to_owned(),
                })),
                ..ExtensionCapabilities::default()
            },
        );
        let ctx = BuildContext::new(telemetry.clone()).with_extensions(extensions);
        let mut c = config(&base);
        c.sending_queue.storage = Some("file_storage".into());
        let id = ComponentId::new("otlphttp", Some("x"));
        let (consumer, running) =
            redline_otlp_exporter::start_http(&id, c, &ctx, Signal::Logs).expect("starts");
        Started {
            consumer,
            running,
            counters: telemetry.exporter("otlphttp/x", Signal::Logs),
        }
    };

    // Nothing listens: the batches wait on disk and stay there at shutdown.
    let dead = ClosedPort::reserve();
    let s = start_on_disk(format!("http://{}", dead.addr()));
    let batches: Vec<_> = (0..2).map(|i| batch(Signal::Logs, 3, i)).collect();
    for b in &batches {
        s.consumer.consume(b.clone()).expect("queued on disk");
    }
    s.running
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .expect("kept on disk, not dropped");

    let sink = HttpSink::start().await;
    let s = start_on_disk(sink.url());
    assert!(eventually(|| s.sent() == 6).await, "sent by the next start");
    let delivered: Vec<u8> = sink
        .accepted()
        .iter()
        .flat_map(|r| r.body.to_vec())
        .collect();
    let expected: Vec<u8> = batches.iter().flat_map(|b| b.raw.to_vec()).collect();
    assert_eq!(delivered, expected, "byte for byte");
    s.shutdown_ok().await;
}

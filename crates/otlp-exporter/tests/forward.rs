//! The exporter against a real gRPC server on loopback.

mod common;
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use redline_otlp_exporter::config::Compression;
use redline_pipeline::config::Secret;
use tokio::sync::Semaphore;
use tonic::Code;

#[tokio::test]
async fn raw_bytes_arrive_byte_identical() {
    let sink = Sink::start().await;
    let mut cfg = config(sink.addr);
    cfg.compression = Compression::None;
    let s = start(cfg);
    let req = request("checkout", 7, 1);
    let b = batch(&req);
    let raw = b.raw.clone();
    s.consumer.consume(b).expect("queued");

    assert!(eventually(|| s.sent() == 7).await, "delivered");
    let got = sink.accepted();
    assert_eq!(got.len(), 1);
    assert!(!got[0].compressed, "compression: none sends plain frames");
    assert_eq!(got[0].headers.get("grpc-encoding"), None);
    assert_eq!(got[0].payload, raw, "the bytes are forwarded untouched");
    assert_eq!(got[0].request, req);
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn gzip_is_the_default_and_is_used() {
    let sink = Sink::start().await;
    let s = start(config(sink.addr));
    let req = request("checkout", 20, 2);
    s.consumer.consume(batch(&req)).expect("queued");

    assert!(eventually(|| s.sent() == 20).await);
    let got = sink.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].headers.get("grpc-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    assert!(got[0].compressed, "the message flag says compressed");
    assert_eq!(got[0].request, req, "decodes to the same request");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn configured_headers_arrive() {
    let sink = Sink::start().await;
    let mut cfg = config(sink.addr);
    cfg.headers
        .insert("X-Scope-OrgID".into(), Secret::from("tenant-1"));
    let s = start(cfg);
    s.consumer
        .consume(batch(&request("a", 1, 3)))
        .expect("queued");

    assert!(eventually(|| s.sent() == 1).await);
    let got = sink.accepted();
    assert_eq!(
        got[0].headers.get("x-scope-orgid").map(|v| v.as_bytes()),
        Some(&b"tenant-1"[..])
    );
    let ua = got[0]
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ua.starts_with("redline/"), "user agent {ua:?}");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn queued_batches_are_coalesced_into_one_request() {
    let sink = Sink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Behaviour::Gate(gate.clone()));
    let mut cfg = config(sink.addr);
    cfg.compression = Compression::None;
    let s = start(cfg);

    // The single sender is held by the first request while five more queue up.
    s.consumer
        .consume(batch(&request("first", 1, 10)))
        .expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    let reqs: Vec<ExportTraceServiceRequest> = (0..5)
        .map(|i| request(&format!("svc-{i}"), i + 1, 20 + i as u8))
        .collect();
    let mut concatenated = Vec::new();
    for r in &reqs {
        let b = batch(r);
        concatenated.extend_from_slice(&b.raw);
        s.consumer.consume(b).expect("queued");
    }
    gate.add_permits(1);

    let total = 1 + (1..=5).sum::<usize>() as u64;
    assert!(eventually(|| s.sent() == total).await, "sent {}", s.sent());
    let got = sink.accepted();
    assert_eq!(got.len(), 2, "the five queued batches went as one request");
    assert_eq!(got[1].payload.as_ref(), concatenated.as_slice());
    let union: Vec<_> = reqs.iter().flat_map(|r| r.resource_spans.clone()).collect();
    assert_eq!(
        got[1].request.resource_spans, union,
        "decodes to the union of spans"
    );
    s.shutdown_ok().await;
}

#[tokio::test]
async fn coalescing_respects_the_byte_cap() {
    let sink = Sink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Behaviour::Gate(gate.clone()));
    let mut cfg = config(sink.addr);
    let one = batch(&request("x", 10, 1)).raw.len() as u64;
    cfg.sending_queue.batch = Some(redline_otlp_exporter::config::BatchConfig {
        sizer: Some(redline_otlp_exporter::config::Sizer::Bytes),
        min_size: 0,
        max_size: 2 * one,
        ..Default::default()
    });
    let s = start(cfg);
    s.consumer
        .consume(batch(&request("x", 10, 1)))
        .expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    for i in 0..4 {
        s.consumer
            .consume(batch(&request("x", 10, 2 + i)))
            .expect("queued");
    }
    gate.add_permits(1);
    assert!(eventually(|| s.sent() == 50).await);
    let sizes: Vec<usize> = sink.accepted().iter().map(|r| r.span_count()).collect();
    assert_eq!(sizes, vec![10, 20, 20], "two batches per request at most");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn retries_unavailable_then_succeeds() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Fail(Code::Unavailable));
    sink.plan(Behaviour::Fail(Code::Unavailable));
    let s = start(config(sink.addr));
    s.consumer
        .consume(batch(&request("a", 4, 1)))
        .expect("queued");

    assert!(eventually(|| s.sent() == 4).await);
    assert_eq!(sink.received().len(), 3, "two failures, then success");
    assert_eq!(sink.accepted().len(), 1);
    assert_eq!(s.failed(), 0);
    assert_eq!(s.counters.queue_size.load(Ordering::SeqCst), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn invalid_argument_is_permanent() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Fail(Code::InvalidArgument));
    let s = start(config(sink.addr));
    s.consumer
        .consume(batch(&request("a", 6, 1)))
        .expect("queued");

    assert!(eventually(|| s.failed() == 6).await);
    // Backoff is 10 ms: a retry would have shown up by now.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(sink.received().len(), 1, "no retry");
    assert_eq!(s.sent(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn resource_exhausted_retries_only_with_retry_info() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Fail(Code::ResourceExhausted));
    sink.plan(Behaviour::FailWithRetryInfo(
        Code::ResourceExhausted,
        Duration::from_millis(20),
    ));
    let s = start(config(sink.addr));
    s.consumer
        .consume(batch(&request("a", 2, 1)))
        .expect("queued");
    assert!(
        eventually(|| s.failed() == 2).await,
        "without RetryInfo: dropped"
    );
    s.consumer
        .consume(batch(&request("b", 3, 2)))
        .expect("queued");
    assert!(
        eventually(|| s.sent() == 3).await,
        "with RetryInfo: retried"
    );
    assert_eq!(sink.received().len(), 3);
    assert_eq!(s.failed(), 2);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn partial_success_rejections_count_as_failed() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Reject(2));
    let s = start(config(sink.addr));
    s.consumer
        .consume(batch(&request("a", 5, 1)))
        .expect("queued");

    assert!(eventually(|| s.sent() == 3 && s.failed() == 2).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.received().len(), 1, "rejected spans are not retried");
    s.shutdown_ok().await;
}

#[tokio::test]
async fn hung_attempt_times_out_and_is_retried() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Hang);
    let mut cfg = config(sink.addr);
    cfg.timeout = Duration::from_millis(200);
    let s = start(cfg);
    s.consumer
        .consume(batch(&request("a", 3, 1)))
        .expect("queued");
    assert!(eventually(|| s.sent() == 3).await);
    assert_eq!(sink.received().len(), 2);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn tempo_down_at_start_then_up() {
    let down = ClosedPort::reserve();
    let addr = down.addr();
    // Building must not need Tempo.
    let s = start(config(addr));
    s.consumer
        .consume(batch(&request("a", 9, 1)))
        .expect("queued while Tempo is down");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.sent(), 0);

    let sink = Sink::start_on(down);
    assert!(
        eventually(|| s.sent() == 9).await,
        "delivered once Tempo is up"
    );
    assert_eq!(sink.accepted().len(), 1);
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn full_queue_refuses_without_blocking() {
    let sink = Sink::start().await;
    sink.hang_all();
    let mut cfg = config(sink.addr);
    cfg.sending_queue.queue_size = 2;
    cfg.timeout = Duration::from_secs(60);
    let s = start(cfg);

    // One batch in flight to a hung Tempo, one queued: capacity covers both.
    s.consumer
        .consume(batch(&request("a", 1, 1)))
        .expect("fits");
    assert!(eventually(|| sink.received().len() == 1).await);
    let held = s
        .consumer
        .reserve(&batch(&request("b", 1, 2)))
        .expect("fits");
    let refused = s
        .consumer
        .reserve(&batch(&request("c", 5, 3)))
        .err()
        .expect("full");
    assert_eq!(refused.component, "otlp/tempo");
    assert_eq!(
        refused.retry_after,
        Duration::from_millis(10),
        "initial backoff"
    );
    assert!(refused.reason.contains("full"), "{}", refused.reason);
    assert_eq!(s.counters.enqueue_failed.load(Ordering::SeqCst), 5);

    drop(held);
    let again = s
        .consumer
        .reserve(&batch(&request("c", 5, 3)))
        .expect("released capacity is reusable");
    again.commit(batch(&request("c", 5, 3)));
    assert!(s.consumer.reserve(&batch(&request("d", 1, 4))).is_err());
    assert_eq!(s.counters.queue_size.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.queue_capacity.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn byte_bound_refuses_large_batches() {
    let down = ClosedPort::reserve();
    let addr = down.addr();
    let mut cfg = config(addr);
    let b = batch(&request("a", 50, 1));
    cfg.sending_queue.queue_size_bytes = b.raw.len() as u64 + 10;
    let s = start(cfg);
    let first = s.consumer.reserve(&b).expect("fits");
    let err = s.consumer.reserve(&b).err().expect("bytes are full");
    assert!(err.reason.contains("bytes"), "{}", err.reason);
    drop(first);
}

#[tokio::test]
async fn shutdown_drains_the_queue() {
    let sink = Sink::start().await;
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Behaviour::Gate(gate.clone()));
    sink.plan(Behaviour::Fail(Code::Unavailable));
    let mut cfg = config(sink.addr);
    cfg.sending_queue.batch = Some(redline_otlp_exporter::config::BatchConfig {
        sizer: Some(redline_otlp_exporter::config::Sizer::Items),
        min_size: 0,
        max_size: 3,
        ..Default::default()
    });
    let s = start(cfg);
    for i in 0..6 {
        s.consumer
            .consume(batch(&request("a", 1, i)))
            .expect("queued");
    }
    assert!(eventually(|| sink.received().len() == 1).await);

    let Started {
        consumer,
        running,
        counters,
    } = s;
    let shutdown = tokio::spawn(running.shutdown(Instant::now() + Duration::from_secs(10)));
    assert!(
        eventually(|| consumer.reserve(&batch(&request("late", 1, 99))).is_err()).await,
        "no new batches once shutdown began"
    );
    gate.add_permits(1);
    shutdown
        .await
        .expect("joined")
        .expect("drained within the deadline");
    assert_eq!(
        counters.sent.load(Ordering::SeqCst),
        6,
        "queued spans were sent, with a retry"
    );
    assert_eq!(counters.send_failed.load(Ordering::SeqCst), 0);
    let delivered: usize = sink.accepted().iter().map(|r| r.span_count()).sum();
    assert_eq!(delivered, 6);
}

#[tokio::test]
async fn shutdown_with_a_hung_tempo_returns_by_the_deadline() {
    let sink = Sink::start().await;
    sink.hang_all();
    let mut cfg = config(sink.addr);
    cfg.timeout = Duration::from_secs(60);
    let s = start(cfg);
    for i in 0..3 {
        s.consumer
            .consume(batch(&request("a", 4, i)))
            .expect("queued");
    }
    assert!(eventually(|| !sink.received().is_empty()).await);

    let Started {
        running, counters, ..
    } = s;
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        running.shutdown(Instant::now() + Duration::from_millis(300)),
    )
    .await
    .expect("shutdown returns once the deadline passes");
    let err = result.expect_err("spans were dropped");
    assert!(err.reason.contains("12 spans"), "{}", err.reason);
    assert_eq!(counters.send_failed.load(Ordering::SeqCst), 12);
    assert_eq!(counters.sent.load(Ordering::SeqCst), 0);
    assert_eq!(counters.queue_size.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn shutdown_deadline_with_some_senders_idle_and_one_stuck() {
    // Idle senders finish as soon as the drain starts while the stuck one holds the deadline:
    // the finished ones must not be joined a second time.
    let sink = Sink::start().await;
    sink.plan(Behaviour::Hang);
    let mut cfg = config(sink.addr);
    cfg.timeout = Duration::from_secs(60);
    cfg.sending_queue.num_consumers = 4;
    let s = start(cfg);
    s.consumer
        .consume(batch(&request("a", 4, 1)))
        .expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    let err = s
        .running
        .shutdown(Instant::now() + Duration::from_millis(300))
        .await
        .expect_err("the stuck batch is dropped");
    assert!(err.reason.contains("4 spans"), "{}", err.reason);
    assert_eq!(s.counters.send_failed.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn missing_or_bad_ca_file_fails_the_build_naming_it() {
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let ctx = redline_pipeline::BuildContext::new(telemetry);
    let id = redline_pipeline::ComponentId::new("otlp", Some("tempo"));

    let mut cfg = redline_otlp_exporter::Config::new("https://tempo.invalid:4317");
    cfg.tls.ca_file = Some("/nonexistent/redline-ca.pem".into());
    let err = redline_otlp_exporter::start(&id, cfg, &ctx, redline_pipeline::Signal::Traces)
        .err()
        .expect("missing CA file");
    assert_eq!(err.component, "otlp/tempo");
    assert!(err.reason.contains("tls.ca_file"), "{}", err.reason);
    assert!(
        err.reason.contains("/nonexistent/redline-ca.pem"),
        "{}",
        err.reason
    );

    let not_pem = std::env::temp_dir().join(format!("redline-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "hello").expect("write temp file");
    let mut cfg = redline_otlp_exporter::Config::new("tempo.invalid:4317");
    cfg.tls.ca_file = Some(not_pem.display().to_string());
    let err = redline_otlp_exporter::start(&id, cfg, &ctx, redline_pipeline::Signal::Traces)
        .err()
        .expect("not a certificate");
    let _ = std::fs::remove_file(&not_pem);
    assert!(err.reason.contains("no PEM certificate"), "{}", err.reason);
}

#[tokio::test]
async fn building_does_not_connect() {
    // Unresolvable host, TLS with system roots or not: building still succeeds, so Redline
    // starts before Tempo (or DNS for it) is up.
    let mut cfg = redline_otlp_exporter::Config::new("tempo.invalid:4317");
    cfg.tls.insecure = true;
    let s = start(cfg);
    assert!(s.consumer.consume(batch(&request("a", 1, 1))).is_ok());
}

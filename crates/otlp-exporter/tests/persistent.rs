//! The disk-backed sending queue (`sending_queue.storage`) against a real gRPC server on
//! loopback: batches accepted while Tempo is down survive a stop and are delivered, byte for
//! byte, by the next exporter on the same directory.

mod common;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use redline_otlp_exporter::config::{Compression, RetryConfig, Sizer};
use redline_otlp_exporter::Config;
use redline_pipeline::extension::{ExtensionCapabilities, Extensions, Storage};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{BuildContext, ComponentId, Signal};
use support::{DirStorage, SyncedDirStorage};
use tonic::Code;

fn ctx(root: &Path) -> (BuildContext, Telemetry) {
    ctx_on(Arc::new(DirStorage {
        root: root.to_owned(),
    }))
}

fn ctx_on(storage: Arc<dyn Storage>) -> (BuildContext, Telemetry) {
    let telemetry = Telemetry::new();
    let mut extensions = Extensions::default();
    extensions.insert(
        ComponentId::new("file_storage", None),
        ExtensionCapabilities {
            storage: Some(storage),
            ..ExtensionCapabilities::default()
        },
    );
    (
        BuildContext::new(telemetry.clone()).with_extensions(extensions),
        telemetry,
    )
}

fn disk_config(addr: std::net::SocketAddr) -> Config {
    let mut c = config(addr);
    c.compression = Compression::None;
    c.sending_queue.storage = Some("file_storage".into());
    c
}

fn start_on(root: &Path, config: Config) -> Started {
    start_with(ctx(root), config)
}

fn start_synced(root: &Path, config: Config) -> Started {
    let storage = SyncedDirStorage(DirStorage {
        root: root.to_owned(),
    });
    start_with(ctx_on(Arc::new(storage)), config)
}

fn start_with((ctx, telemetry): (BuildContext, Telemetry), config: Config) -> Started {
    let id = ComponentId::new("otlp", Some("tempo"));
    let (consumer, running) =
        redline_otlp_exporter::start(&id, config, &ctx, Signal::Traces).expect("starts");
    Started {
        consumer,
        running,
        counters: telemetry.exporter("otlp/tempo", Signal::Traces),
    }
}

fn queue_size(s: &Started) -> i64 {
    s.counters.queue_size.load(Ordering::SeqCst)
}

async fn stop(s: Started, within: Duration) {
    s.running
        .shutdown(Instant::now() + within)
        .await
        .expect("nothing is dropped: what was not sent stays on disk");
}

/// (trace tag, span index) of every span the sink accepted, with how often.
fn accepted_spans(sink: &Sink) -> BTreeMap<Vec<u8>, usize> {
    let mut seen = BTreeMap::new();
    for r in sink.accepted() {
        for rs in &r.request.resource_spans {
            for ss in &rs.scope_spans {
                for sp in &ss.spans {
                    *seen.entry(sp.span_id.clone()).or_insert(0) += 1;
                }
            }
        }
    }
    seen
}

#[tokio::test]
async fn batches_accepted_during_an_outage_survive_a_restart_byte_identical() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let down = ClosedPort::reserve();
    let addr = down.addr(); // Tempo is down: nothing listens here yet.

    let first = start_on(tmp.path(), disk_config(addr));
    let reqs: Vec<_> = (0..6u8)
        .map(|i| request("checkout", 1 + i as usize, 40 + i))
        .collect();
    let mut expected = Vec::new();
    for r in &reqs {
        let b = batch(r);
        expected.extend_from_slice(&b.raw);
        first
            .consumer
            .consume(b)
            .expect("accepted while Tempo is down");
    }
    assert_eq!(queue_size(&first), 6);
    // Nothing to wait for: the batches are safe on disk, so the stop does not spend its
    // deadline retrying a dead Tempo.
    tokio::time::timeout(
        Duration::from_secs(10),
        stop(first, Duration::from_secs(600)),
    )
    .await
    .expect("stops without waiting for the deadline");

    let sink = Sink::start_on(down);
    let second = start_on(tmp.path(), disk_config(addr));
    let total: u64 = reqs.iter().map(|r| span_count(r) as u64).sum();
    assert!(
        eventually(|| second.sent() == total).await,
        "the batches left on disk are delivered (sent {} of {total})",
        second.sent()
    );
    let mut got = Vec::new();
    for r in sink.accepted() {
        got.extend_from_slice(&r.payload);
    }
    assert_eq!(
        got, expected,
        "the bytes arrive as they were accepted, in order"
    );
    assert_eq!(second.failed(), 0);
    assert!(eventually(|| queue_size(&second) == 0).await);
    stop(second, Duration::from_secs(5)).await;

    // Acknowledged on disk: a third start has nothing to send.
    let before = sink.received().len();
    let third = start_on(tmp.path(), disk_config(addr));
    assert_eq!(queue_size(&third), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(third.sent(), 0);
    assert_eq!(sink.received().len(), before);
    stop(third, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_batch_in_flight_at_the_stop_is_sent_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sink = Sink::start().await;
    // Tempo takes the request but never answers: from Redline's side it is not delivered.
    sink.plan(Behaviour::Hang);
    let first = start_on(tmp.path(), disk_config(sink.addr));
    let req = request("a", 5, 1);
    first.consumer.consume(batch(&req)).expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    stop(first, Duration::from_millis(200)).await;

    let second = start_on(tmp.path(), disk_config(sink.addr));
    assert_eq!(queue_size(&second), 1);
    assert!(eventually(|| second.sent() == 5).await);
    let got = sink.received();
    assert_eq!(
        got.len(),
        2,
        "at-least-once: the in-flight batch went out twice"
    );
    assert_eq!(got[0].payload, got[1].payload);
    stop(second, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_full_disk_queue_refuses_and_stays_full_across_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let down = ClosedPort::reserve();
    let addr = down.addr();
    let mut cfg = disk_config(addr);
    cfg.sending_queue.queue_size = 3;
    let first = start_on(tmp.path(), cfg.clone());
    for i in 0..3 {
        first
            .consumer
            .consume(batch(&request("a", 2, i)))
            .expect("fits");
    }
    let err = first
        .consumer
        .consume(batch(&request("a", 2, 9)))
        .expect_err("the queue is full");
    assert!(err.reason.contains("full"), "{}", err.reason);
    stop(first, Duration::from_millis(200)).await;

    let second = start_on(tmp.path(), cfg);
    assert_eq!(
        queue_size(&second),
        3,
        "the batches on disk are queued again"
    );
    assert!(
        second.consumer.consume(batch(&request("a", 2, 9))).is_err(),
        "and still count against queue_size"
    );
    stop(second, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn items_sizer_counts_the_loaded_spans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let down = ClosedPort::reserve();
    let addr = down.addr();
    let mut cfg = disk_config(addr);
    cfg.sending_queue.sizer = Sizer::Items;
    cfg.sending_queue.queue_size = 10;
    let first = start_on(tmp.path(), cfg.clone());
    first
        .consumer
        .consume(batch(&request("a", 7, 1)))
        .expect("fits");
    stop(first, Duration::from_millis(200)).await;

    let second = start_on(tmp.path(), cfg);
    assert!(
        second.consumer.consume(batch(&request("a", 4, 2))).is_err(),
        "7 + 4 > 10"
    );
    second
        .consumer
        .consume(batch(&request("a", 3, 3)))
        .expect("7 + 3 fits");
    stop(second, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn permanent_errors_and_exhausted_retries_are_acknowledged_not_resent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sink = Sink::start().await;
    sink.plan(Behaviour::Fail(Code::InvalidArgument));
    let mut cfg = disk_config(sink.addr);
    cfg.retry_on_failure = RetryConfig {
        initial_interval: Duration::from_millis(10),
        max_interval: Duration::from_millis(20),
        max_elapsed_time: Duration::from_millis(60),
        ..RetryConfig::default()
    };
    let first = start_on(tmp.path(), cfg.clone());
    first
        .consumer
        .consume(batch(&request("a", 3, 1)))
        .expect("queued");
    assert!(
        eventually(|| first.failed() == 3).await,
        "permanent: dropped and counted"
    );
    for _ in 0..20 {
        sink.plan(Behaviour::Fail(Code::Unavailable));
    }
    first
        .consumer
        .consume(batch(&request("a", 4, 2)))
        .expect("queued");
    assert!(
        eventually(|| first.failed() == 7).await,
        "retried until max_elapsed_time, then dropped and counted"
    );
    assert_eq!(first.sent(), 0);
    stop(first, Duration::from_secs(1)).await;

    let before = sink.received().len();
    let second = start_on(tmp.path(), cfg);
    assert_eq!(
        queue_size(&second),
        0,
        "given-up batches were acknowledged on disk"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sink.received().len(), before, "nothing is sent again");
    stop(second, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn concurrent_senders_deliver_every_batch_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sink = Sink::start().await;
    let mut cfg = disk_config(sink.addr);
    cfg.sending_queue.num_consumers = 4;
    let s = start_on(tmp.path(), cfg.clone());
    let mut total = 0;
    for i in 0..60u8 {
        let r = request("svc", 1 + (i % 5) as usize, i);
        total += span_count(&r) as u64;
        s.consumer.consume(batch(&r)).expect("queued");
    }
    assert!(eventually(|| s.sent() == total).await);
    let seen = accepted_spans(&sink);
    assert_eq!(seen.values().sum::<usize>() as u64, total);
    assert!(seen.values().all(|&n| n == 1), "no span twice");
    stop(s, Duration::from_secs(5)).await;

    let again = start_on(tmp.path(), cfg);
    assert_eq!(queue_size(&again), 0, "every batch was acknowledged");
    stop(again, Duration::from_secs(1)).await;
}

/// With fsync, commits made at once from many tasks (a receiver's concurrent requests) are
/// committed in groups; each is on disk when its commit returns, so a crash right after loses
/// none, and the next start delivers each exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_with_fsync_survive_a_crash_and_are_delivered_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let down = ClosedPort::reserve();
    let addr = down.addr(); // Tempo is down: everything stays queued.
    let mut cfg = disk_config(addr);
    cfg.sending_queue.num_consumers = 4;
    let first = start_synced(tmp.path(), cfg.clone());
    let commits: Vec<_> = (0..64u8)
        .map(|i| {
            let consumer = first.consumer.clone();
            tokio::spawn(async move {
                let r = request("svc", 1 + (i % 3) as usize, i);
                consumer.consume(batch(&r)).map(|()| span_count(&r) as u64)
            })
        })
        .collect();
    let mut total = 0;
    for c in commits {
        total += c.await.expect("joined").expect("accepted");
    }
    assert_eq!(queue_size(&first), 64);
    // A crash: no shutdown, no shutdown record; only what reached the disk counts.
    drop(first);

    let sink = Sink::start_on(down);
    let second = start_synced(tmp.path(), cfg.clone());
    assert_eq!(queue_size(&second), 64, "every accepted batch was on disk");
    assert!(
        eventually(|| second.sent() == total).await,
        "sent {} of {total}",
        second.sent()
    );
    let seen = accepted_spans(&sink);
    assert_eq!(seen.values().sum::<usize>() as u64, total);
    assert!(seen.values().all(|&n| n == 1), "no span twice");
    assert!(eventually(|| queue_size(&second) == 0).await);
    stop(second, Duration::from_secs(5)).await;

    let third = start_synced(tmp.path(), cfg);
    assert_eq!(
        queue_size(&third),
        0,
        "every delivery was acknowledged on disk"
    );
    stop(third, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_missing_storage_extension_fails_the_build_naming_the_key() {
    let down = ClosedPort::reserve();
    let addr = down.addr();
    let mut cfg = disk_config(addr);
    cfg.sending_queue.storage = Some("file_storage/other".into());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ctx, _) = ctx(tmp.path());
    let id = ComponentId::new("otlp", None);
    let err = match redline_otlp_exporter::start(&id, cfg, &ctx, Signal::Traces) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("must not start without its storage"),
    };
    assert!(err.contains("sending_queue.storage"), "{err}");
    assert!(err.contains("file_storage/other"), "{err}");
}

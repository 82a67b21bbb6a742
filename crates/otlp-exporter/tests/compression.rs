//! Message framing and compression against a real tonic server: gzip at configured levels,
//! zstd, `compression: none`, large (blocking-pool) compression, retries and compressed responses.

mod common;
mod support;

use std::io::Read;
use std::sync::Arc;

use common::*;
use redline_otlp_exporter::config::{Compression, CompressionParams};
use tokio::sync::Semaphore;
use tonic::Code;

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("the payload is gzip");
    out
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a [u8]> {
    r.headers.get(name).map(|v| v.as_bytes())
}

/// Sends `batches` as one request: the single sender is held on a first request until they
/// are all queued. Returns the received requests (the first one is the holder).
async fn send_coalesced(
    sink: &Sink,
    mut cfg: redline_otlp_exporter::Config,
    batches: &[redline_pipeline::Batch],
) -> Vec<Received> {
    let gate = Arc::new(Semaphore::new(0));
    sink.plan(Behaviour::Gate(gate.clone()));
    cfg.sending_queue.num_consumers = 1;
    let s = start(cfg);
    s.consumer
        .consume(batch(&request("holder", 1, 200)))
        .expect("queued");
    assert!(eventually(|| sink.received().len() == 1).await);
    let mut total = 1;
    for b in batches {
        total += b.items as u64;
        s.consumer.consume(b.clone()).expect("queued");
    }
    gate.add_permits(1);
    assert!(
        eventually(|| s.sent() == total).await,
        "sent {} of {total}",
        s.sent()
    );
    assert_eq!(s.failed(), 0);
    s.shutdown_ok().await;
    sink.accepted()
}

#[tokio::test]
async fn configured_gzip_levels_arrive_as_gzip_frames_a_tonic_server_decodes() {
    let req = request("checkout", 300, 7);
    let raw = batch(&req).raw;
    let mut sizes = Vec::new();
    for level in [1, 9] {
        let sink = Sink::start().await;
        let mut cfg = config(sink.addr);
        cfg.compression_params = Some(CompressionParams { level });
        let s = start(cfg);
        s.consumer.consume(batch(&req)).expect("queued");
        assert!(eventually(|| s.sent() == 300).await, "level {level}");
        let got = sink.accepted();
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert!(r.compressed, "the frame's compressed flag is set");
        assert_eq!(header(r, "grpc-encoding"), Some(&b"gzip"[..]));
        assert_eq!(
            header(r, "grpc-accept-encoding"),
            Some(&b"gzip,zstd,identity"[..])
        );
        assert_eq!(header(r, "grpc-timeout"), Some(&b"5000000u"[..]), "5 s");
        assert_eq!(r.request, req, "the server decodes the original request");
        assert_eq!(
            gunzip(&r.payload),
            raw,
            "the raw bytes, compressed as they are"
        );
        sizes.push(r.payload.len());
        s.shutdown_ok().await;
    }
    assert!(
        sizes[1] <= sizes[0],
        "level 9 is no larger than level 1: {sizes:?}"
    );
}

#[tokio::test]
async fn zstd_frames_arrive_as_zstd_a_tonic_server_decodes() {
    let req = request("checkout", 300, 7);
    let raw = batch(&req).raw;
    let sink = Sink::start().await;
    let mut cfg = config(sink.addr);
    cfg.compression = Compression::Zstd;
    let s = start(cfg);
    s.consumer.consume(batch(&req)).expect("queued");
    assert!(eventually(|| s.sent() == 300).await);
    let got = sink.accepted();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(r.compressed, "the frame's compressed flag is set");
    assert_eq!(header(r, "grpc-encoding"), Some(&b"zstd"[..]));
    assert_eq!(r.request, req, "the server decodes the original request");
    let payload = zstd::stream::decode_all(r.payload.as_ref()).expect("the payload is zstd");
    assert_eq!(payload, raw, "the raw bytes, compressed as they are");
    assert!(
        r.payload.len() < raw.len() / 2,
        "it was actually compressed"
    );
    s.shutdown_ok().await;
}

#[tokio::test]
async fn compression_none_sends_large_coalesced_batches_unchanged() {
    // Batches this large take the uncopied path: the prefix, then each batch as it is.
    let batches: Vec<_> = (0..3)
        .map(|i| batch(&request(&format!("svc-{i}"), 600, 10 + i as u8)))
        .collect();
    assert!(batches.iter().all(|b| b.raw.len() > 16 * 1024));
    let sink = Sink::start().await;
    let mut cfg = config(sink.addr);
    cfg.compression = Compression::None;
    let got = send_coalesced(&sink, cfg, &batches).await;
    assert_eq!(got.len(), 2, "the three batches went as one request");
    let r = &got[1];
    assert!(!r.compressed);
    assert_eq!(header(r, "grpc-encoding"), None);
    let concatenated: Vec<u8> = batches.iter().flat_map(|b| b.raw.to_vec()).collect();
    assert_eq!(r.payload.as_ref(), concatenated.as_slice());
    assert_eq!(r.span_count(), 1800);
}

#[tokio::test]
async fn large_gzip_requests_decode_to_the_concatenated_batches() {
    // Over 256 KiB: compressed on the blocking pool.
    let batches: Vec<_> = (0..4)
        .map(|i| batch(&request(&format!("svc-{i}"), 2500, 30 + i as u8)))
        .collect();
    let total: usize = batches.iter().map(|b| b.raw.len()).sum();
    assert!(total > 256 * 1024, "{total} bytes");
    let sink = Sink::start().await;
    let got = send_coalesced(&sink, config(sink.addr), &batches).await;
    assert_eq!(got.len(), 2, "the four batches went as one request");
    let r = &got[1];
    assert!(r.compressed);
    let concatenated: Vec<u8> = batches.iter().flat_map(|b| b.raw.to_vec()).collect();
    assert_eq!(gunzip(&r.payload), concatenated);
    assert!(r.payload.len() < total / 2, "it was actually compressed");
    assert_eq!(r.span_count(), 10_000);
}

#[tokio::test]
async fn retries_resend_the_same_compressed_message() {
    let sink = Sink::start().await;
    sink.plan(Behaviour::Fail(Code::Unavailable));
    let s = start(config(sink.addr));
    let req = request("a", 50, 3);
    s.consumer.consume(batch(&req)).expect("queued");
    assert!(eventually(|| s.sent() == 50).await);
    let got = sink.received();
    assert_eq!(got.len(), 2, "one failed attempt, one retry");
    assert!(got[0].compressed && got[1].compressed);
    assert_eq!(got[0].payload, got[1].payload, "byte-identical attempts");
    assert_eq!(got[1].request, req);
    s.shutdown_ok().await;
}

#[tokio::test]
async fn gzip_compressed_responses_are_decoded() {
    let sink = Sink::start_compressing_responses().await;
    sink.plan(Behaviour::Reject(2));
    let s = start(config(sink.addr));
    s.consumer
        .consume(batch(&request("a", 5, 1)))
        .expect("queued");
    s.consumer
        .consume(batch(&request("b", 4, 2)))
        .expect("queued");
    // The rejection count is inside the compressed response message.
    assert!(
        eventually(|| s.sent() == 7 && s.failed() == 2).await,
        "sent {} failed {}",
        s.sent(),
        s.failed()
    );
    s.shutdown_ok().await;
}

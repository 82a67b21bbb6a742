//! snappy end to end: Redline's own exporters (gRPC `snappy`, otlphttp `snappy` and
//! `x-snappy-framed`) into this receiver, byte for byte; and the receiver's limits on snappy
//! bodies and messages (size caps, decompression bombs, the body budget), answered as for
//! gzip and zstd.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use redline_otlp_exporter::config::{Compression, HttpCompression};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ComponentId};
use tonic::Code;

use common::http_client::{post, PB};
use common::requests::{big_request, request, span};
use common::{
    loopback_config, loopback_config_with_grpc, loopback_config_with_http, raw_grpc, Receiver,
    Recorder,
};

const FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

fn framed(data: &[u8]) -> Vec<u8> {
    let mut w = snap::write::FrameEncoder::new(Vec::new());
    w.write_all(data).expect("in-memory write");
    w.into_inner().expect("in-memory flush")
}

fn block(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("compress")
}

/// 40 spans with attributes: a request that compresses the way real ones do.
fn traffic(tag: u8) -> (Bytes, usize) {
    let spans: Vec<_> = (1..=40).map(|i| span(i ^ tag)).collect();
    (Bytes::from(request(spans).encode_to_vec()), 40)
}

async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[tokio::test]
async fn redlines_snappy_exporters_deliver_the_request_byte_for_byte() {
    let h = Receiver::both().await;
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    let retry = redline_otlp_exporter::config::RetryConfig {
        enabled: false,
        ..Default::default()
    };

    // gRPC, grpc-encoding snappy (the framed format).
    let (raw, items) = traffic(1);
    let mut c = redline_otlp_exporter::Config::new(h.grpc.expect("grpc").to_string());
    c.tls.insecure = true;
    c.compression = Compression::Snappy;
    c.retry_on_failure = retry.clone();
    let id = ComponentId::new("otlp", Some("snappy"));
    let (consumer, running) =
        redline_otlp_exporter::start(&id, c, &ctx, redline_pipeline::Signal::Traces)
            .expect("starts");
    consumer
        .consume(Batch::traces(raw.clone(), items))
        .expect("queued");
    assert!(eventually(|| h.batches().len() == 1).await, "gRPC snappy");
    assert_eq!(h.batches()[0].raw, raw, "gRPC snappy: byte for byte");
    running
        .shutdown(std::time::Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean");
    let counters = telemetry.exporter("otlp/snappy", redline_pipeline::Signal::Traces);
    assert_eq!(counters.sent.load(std::sync::atomic::Ordering::SeqCst), 40);
    assert_eq!(
        counters
            .send_failed
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // OTLP/HTTP, Content-Encoding snappy (block) and x-snappy-framed.
    for (n, (name, compression)) in [
        ("snappy", HttpCompression::Snappy),
        ("x-snappy-framed", HttpCompression::SnappyFramed),
    ]
    .into_iter()
    .enumerate()
    {
        let (raw, items) = traffic(2 + n as u8);
        let mut c =
            redline_otlp_exporter::HttpConfig::new(format!("http://{}", h.http.expect("http")));
        c.compression = compression;
        c.retry_on_failure = retry.clone();
        let id = ComponentId::new("otlphttp", Some(name));
        let (consumer, running) =
            redline_otlp_exporter::start_http(&id, c, &ctx, redline_pipeline::Signal::Traces)
                .expect("starts");
        consumer
            .consume(Batch::traces(raw.clone(), items))
            .expect("queued");
        assert!(eventually(|| h.batches().len() == 2 + n).await, "{name}");
        assert_eq!(h.batches()[1 + n].raw, raw, "{name}: byte for byte");
        running
            .shutdown(std::time::Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean");
        let counters = telemetry.exporter(
            &format!("otlphttp/{name}"),
            redline_pipeline::Signal::Traces,
        );
        assert_eq!(
            counters.sent.load(std::sync::atomic::Ordering::SeqCst),
            40,
            "{name}"
        );
    }
    assert_eq!(h.accepted("grpc"), 40);
    assert_eq!(h.accepted("http"), 80);
    h.shutdown().await;
}

#[tokio::test]
async fn http_snappy_takes_both_formats_and_x_snappy_framed_only_the_framed_one() {
    let h = Receiver::both().await;
    let url = h.traces_url();
    let (raw, _) = traffic(9);
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("snappy", block(&raw), 200),
        ("snappy", framed(&raw), 200),
        ("x-snappy-framed", framed(&raw), 200),
        ("x-snappy-framed", block(&raw), 400),
    ];
    for (encoding, body, status) in cases {
        let answer = post(&url, Some(PB), Some(encoding), body).await;
        assert_eq!(answer.status, status, "{encoding}");
    }
    let got = h.batches();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|b| b.raw == raw));
    h.shutdown().await;
}

#[tokio::test]
async fn http_snappy_bombs_are_refused_as_gzip_ones_are() {
    let config = loopback_config_with_http(|c| c.max_request_body_size = 100_000);
    let h = Receiver::start(config, Recorder::default()).await;
    let url = h.traces_url();
    // Seven bytes claiming 4 GiB - 1: refused from the header, nothing allocated.
    let bomb = vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x'];
    let claimed = post(&url, Some(PB), Some("snappy"), bomb).await;
    // What a gzip body inflating past the limit gets.
    let zeros = big_request(200_000).encode_to_vec();
    let gzip = post(&url, Some(PB), Some("gzip"), common::requests::gzip(&zeros)).await;
    assert_eq!(gzip.status, 413);
    assert_eq!(claimed.status, gzip.status);
    assert_eq!(claimed.body, gzip.body);
    for (encoding, body) in [
        ("snappy", block(&zeros)),
        ("snappy", framed(&zeros)),
        ("x-snappy-framed", framed(&zeros)),
    ] {
        assert!(body.len() < 20_000);
        let answer = post(&url, Some(PB), Some(encoding), body).await;
        assert_eq!(answer.status, 413, "{encoding}");
        assert_eq!(answer.body, gzip.body, "{encoding}");
    }
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_snappy_messages_are_capped_as_gzip_ones_are() {
    let config = loopback_config_with_grpc(|g| g.max_recv_msg_size_mib = 1);
    let h = Receiver::start(config, Recorder::default()).await;
    let addr = h.grpc.expect("grpc");
    let (raw, _) = traffic(5);
    assert_eq!(
        raw_grpc::call(addr, "snappy", 1, &framed(&raw)).await.0,
        Code::Ok
    );
    // Flag 0 under grpc-encoding snappy: an uncompressed message, taken as it is.
    assert_eq!(raw_grpc::call(addr, "snappy", 0, &raw).await.0, Code::Ok);
    assert_eq!(h.batches().len(), 2);
    assert!(h.batches().iter().all(|b| b.raw == raw));

    // 2 MB inflated from about 100 KB: refused while inflating, at the limit.
    let bomb = framed(&big_request(2_000_000).encode_to_vec());
    assert!(bomb.len() < 200_000);
    let (code, message) = raw_grpc::call(addr, "snappy", 1, &bomb).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(
        message,
        "Error decompressing: size limit, of 1048576 bytes, exceeded while decompressing message"
    );
    // A message whose compressed size is over the limit is refused from its header.
    let (code, message) = raw_grpc::call(addr, "snappy", 1, &vec![0u8; 1_100_000]).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(
        message,
        "Error, decoded message length too large: found 1100000 bytes, the limit is: 1048576 bytes"
    );
    // Not a framed stream.
    let (code, _) = raw_grpc::call(addr, "snappy", 1, &block(&raw)).await;
    assert_eq!(code, Code::Internal);
    assert_eq!(h.batches().len(), 2);
    h.shutdown().await;
}

/// An HTTP/1.1 POST declaring `body.len()` bytes that sends only its first `sent`: it holds
/// its share of the budget until [`finish`] sends the rest.
async fn start_slow_post(addr: SocketAddr, body: &[u8], sent: usize) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {PB}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(&body[..sent])
        .await
        .expect("part of the body");
    tcp
}

/// Sends the rest of a slow POST's body; the status line of the answer.
async fn finish(mut tcp: tokio::net::TcpStream, rest: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(rest).await.expect("rest of the body");
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).await.expect("answer");
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn inflated_snappy_is_charged_to_the_body_budget() {
    // 64 KiB of budget, 20 KB of it held by a slow request: a 60 KB request compressed to a
    // few KB fits as sent, but not once inflated beside it, over gRPC and HTTP, in both
    // formats, as gzip does.
    let h =
        Receiver::start_with_body_budget(loopback_config(), Recorder::default(), 64 * 1024).await;
    let held_body = big_request(20_000).encode_to_vec();
    let held = start_slow_post(h.http.expect("http"), &held_body, 1000).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let message = big_request(60_000).encode_to_vec();
    let (code, message_text) =
        raw_grpc::call(h.grpc.expect("grpc"), "snappy", 1, &framed(&message)).await;
    assert_eq!(code, Code::Unavailable, "{message_text}");
    assert!(message_text.contains("budget"), "{message_text}");
    for (encoding, body) in [
        ("snappy", block(&message)),
        ("snappy", framed(&message)),
        ("x-snappy-framed", framed(&message)),
        ("gzip", common::requests::gzip(&message)),
    ] {
        assert!(body.len() < 5_000, "{encoding}: {}", body.len());
        let answer = post(&h.traces_url(), Some(PB), Some(encoding), body).await;
        assert_eq!(answer.status, 503, "{encoding}");
    }
    assert!(h.batches().is_empty());
    // A small one fits beside the held one.
    let (raw, _) = traffic(3);
    assert_eq!(
        raw_grpc::call(h.grpc.expect("grpc"), "snappy", 1, &framed(&raw))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(
        post(&h.traces_url(), Some(PB), Some("snappy"), block(&raw))
            .await
            .status,
        200
    );
    assert_eq!(finish(held, &held_body[1000..]).await, "HTTP/1.1 200 OK");
    // With the held request done, the large one fits.
    assert_eq!(
        raw_grpc::call(h.grpc.expect("grpc"), "snappy", 1, &framed(&message))
            .await
            .0,
        Code::Ok
    );
    assert_eq!(h.batches().len(), 4);
    h.shutdown().await;
}

#[test]
fn the_framed_magic_is_otelcols() {
    assert_eq!(&framed(b"x")[..10], FRAMED_MAGIC);
    assert_ne!(&block(&[0u8; 100])[..], FRAMED_MAGIC);
}

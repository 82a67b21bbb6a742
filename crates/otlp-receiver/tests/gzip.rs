//! gzip messages and bodies: inflated by the receiver under the same limits and statuses as
//! before, read whole when they hold several members (as grpc-go and Go's gzip reader do),
//! and handed down the pipeline with the client's gzip when it was exactly one member.

mod common;

use bytes::Bytes;
use prost::Message;
use tonic::Code;

use common::http_client::{post, PB};
use common::requests::{big_request, gzip, request, span, SPEC_JSON};
use common::{loopback_config_with_grpc, raw_grpc, Receiver, Recorder};

/// 40 spans: a request that compresses the way real ones do.
fn traffic(tag: u8) -> Bytes {
    let spans: Vec<_> = (1..=40).map(|i| span(i ^ tag)).collect();
    Bytes::from(request(spans).encode_to_vec())
}

#[tokio::test]
async fn grpc_gzip_is_inflated_here_and_the_clients_member_kept() {
    let config = loopback_config_with_grpc(|g| g.max_recv_msg_size_mib = 1);
    let h = Receiver::start(config, Recorder::default()).await;
    let addr = h.grpc.expect("grpc");
    let raw = traffic(5);
    let gz = Bytes::from(gzip(&raw));
    assert_eq!(raw_grpc::call(addr, "gzip", 1, &gz).await.0, Code::Ok);
    let got = h.batches();
    assert_eq!(got[0].raw, raw);
    assert_eq!(
        got[0].gzip_frame(),
        Some(&gz),
        "the client's member, as sent"
    );

    // Flag 0 under grpc-encoding gzip: an uncompressed message, taken as it is.
    assert_eq!(raw_grpc::call(addr, "gzip", 0, &raw).await.0, Code::Ok);
    // Two members: the whole request (grpc-go reads every member; tonic read the first).
    let (a, b) = raw.split_at(raw.len() / 3);
    let two = [gzip(a), gzip(b)].concat();
    assert_eq!(raw_grpc::call(addr, "gzip", 1, &two).await.0, Code::Ok);
    let got = h.batches();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|b| b.raw == raw), "every message whole");
    assert!(got[1].gzip_frame().is_none(), "nothing sent compressed");
    assert!(
        got[2].gzip_frame().is_none(),
        "several members are not kept"
    );

    // 2 MB inflated from a few KB: refused while inflating, at the limit, as tonic words it.
    let bomb = gzip(&big_request(2_000_000).encode_to_vec());
    assert!(bomb.len() < 100_000);
    let (code, message) = raw_grpc::call(addr, "gzip", 1, &bomb).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(
        message,
        "Error decompressing: size limit, of 1048576 bytes, exceeded while decompressing message"
    );
    // A compressed message over the limit is refused from its header.
    let (code, message) = raw_grpc::call(addr, "gzip", 1, &vec![0u8; 1_100_000]).await;
    assert_eq!(code, Code::ResourceExhausted);
    assert_eq!(
        message,
        "Error, decoded message length too large: found 1100000 bytes, the limit is: 1048576 bytes"
    );
    // Not gzip, and gzip followed by bytes that are not another member.
    assert_eq!(
        raw_grpc::call(addr, "gzip", 1, b"not gzip").await.0,
        Code::Internal
    );
    let mut junk = gz.to_vec();
    junk.extend_from_slice(b"junk");
    assert_eq!(
        raw_grpc::call(addr, "gzip", 1, &junk).await.0,
        Code::Internal
    );
    assert_eq!(h.batches().len(), 3, "nothing refused went on");
    h.shutdown().await;
}

#[tokio::test]
async fn http_gzip_keeps_the_clients_member_only_for_protobuf() {
    let h = Receiver::both().await;
    let url = h.traces_url();
    let raw = traffic(7);
    let gz = gzip(&raw);
    assert_eq!(
        post(&url, Some(PB), Some("gzip"), gz.clone()).await.status,
        200
    );
    let got = h.batches();
    assert_eq!(got[0].raw, raw);
    assert_eq!(got[0].gzip_frame().map(|f| f.to_vec()), Some(gz));
    // OTLP/JSON: the request is the conversion, not what the client gzipped.
    let json = gzip(SPEC_JSON.as_bytes());
    let answer = post(&url, Some("application/json"), Some("gzip"), json).await;
    assert_eq!(answer.status, 200);
    let got = h.batches();
    assert_eq!(got.len(), 2);
    assert!(!got[1].holds_gzip_frame());
    h.shutdown().await;
}

//! OTLP/gRPC on 127.0.0.1:0 against real clients: tonic's generated TraceServiceClient, and
//! tonic's generic client with a raw codec to put arbitrary bytes on the wire.

mod common;

use std::net::SocketAddr;

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

use common::requests::{big_request, request, span};
use common::{loopback_config_with_grpc, Receiver, Recorder};

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A client codec that sends arbitrary bytes, to put garbage on the wire.
#[derive(Clone, Copy, Default)]
struct RawClientCodec;

impl Codec for RawClientCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

struct RawEncoder;
impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

struct ResponseDecoder;
impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;
    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceResponse>, Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

async fn send_raw_grpc(addr: SocketAddr, path: &'static str, body: Bytes) -> Result<(), Status> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    grpc.unary(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        RawClientCodec,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn grpc_export_forwards_identical_bytes() {
    let h = Receiver::both().await;
    let req = request(vec![span(1), span(2), span(3)]);
    let resp = h
        .grpc_client()
        .await
        .export(req.clone())
        .await
        .expect("export ok")
        .into_inner();
    assert_eq!(resp.partial_success, None);
    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), req.encode_to_vec().as_slice());
    assert_eq!(got[0].items, 3);
    assert_eq!(h.accepted("grpc"), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_gzip_request_is_accepted() {
    let h = Receiver::both().await;
    let req = request(vec![span(1), span(2)]);
    let mut client = h
        .grpc_client()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    client.export(req.clone()).await.expect("export ok");
    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), req.encode_to_vec().as_slice());
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_malformed_is_invalid_argument_and_server_keeps_serving() {
    let h = Receiver::both().await;
    let addr = h.grpc.expect("grpc");
    // Field 1, length-delimited, claims 0x7f bytes but has 2.
    let err = send_raw_grpc(addr, EXPORT, Bytes::from_static(&[0x0a, 0x7f, 0x01, 0x02]))
        .await
        .expect_err("garbage refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("malformed"), "{}", err.message());
    assert!(h.batches().is_empty());
    assert_eq!(h.accepted("grpc"), 0);
    assert_eq!(h.refused("grpc"), 0);

    // The next request on a fresh client still works.
    h.grpc_client()
        .await
        .export(request(vec![span(1)]))
        .await
        .expect("still serving");
    assert_eq!(h.batches().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_other_services_are_unimplemented() {
    let h = Receiver::both().await;
    let err = send_raw_grpc(
        h.grpc.expect("grpc"),
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Bytes::new(),
    )
    .await
    .expect_err("not served");
    assert_eq!(err.code(), Code::Unimplemented);
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_empty_request_is_ok_and_delivers_nothing() {
    let h = Receiver::both().await;
    h.grpc_client()
        .await
        .export(ExportTraceServiceRequest::default())
        .await
        .expect("empty ok");
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_oversized_is_resource_exhausted() {
    let config = loopback_config_with_grpc(|g| g.max_recv_msg_size_mib = 1);
    let h = Receiver::start(config, Recorder::default()).await;
    let err = h
        .grpc_client()
        .await
        .export(big_request(1_100_000))
        .await
        .expect_err("too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");

    // Compressed small, decompressed over the limit: refused while decompressing.
    let err = h
        .grpc_client()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .export(big_request(2_000_000))
        .await
        .expect_err("decompressed too large");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(h.batches().is_empty());

    // Under the limit still works.
    h.grpc_client()
        .await
        .export(big_request(500_000))
        .await
        .expect("fits");
    assert_eq!(h.batches().len(), 1);
    h.shutdown().await;
}

/// One export on `client` carrying `bytes` of extra metadata (incompressible, so HPACK
/// cannot shrink it below what the limit is about).
async fn export_with_metadata(
    client: &mut opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient<Channel>,
    bytes: usize,
) -> Result<(), Status> {
    let mut req = tonic::Request::new(request(vec![span(1)]));
    if bytes > 0 {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let value: String = (0..bytes)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[(state % 36) as usize])
            })
            .collect();
        req.metadata_mut()
            .insert("x-big", value.parse().expect("ascii"));
    }
    client.export(req).await.map(|_| ())
}

#[tokio::test]
async fn grpc_oversized_metadata_fails_only_its_own_call() {
    let h = Receiver::start(loopback_config_with_grpc(|_| {}), Recorder::default()).await;
    // One connection for everything: the oversized calls must not take it down.
    let mut client = h.grpc_client().await;
    let mut calls = Vec::new();
    for i in 0..40 {
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            export_with_metadata(&mut c, if i % 4 == 0 { 100 * 1024 } else { 0 }).await
        }));
    }
    let mut refused = 0;
    for (i, call) in calls.into_iter().enumerate() {
        match call.await.expect("task") {
            Ok(()) => assert!(i % 4 != 0, "call {i} with 100 KiB of metadata was accepted"),
            Err(status) => {
                assert_eq!(i % 4, 0, "call {i} without big metadata failed: {status:?}");
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("max_header_list_size_kib"),
                    "names the setting: {status:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 10);
    assert_eq!(h.spans(), 30);
    // Just under the default 16 KiB passes; just over is refused.
    export_with_metadata(&mut client, 15 * 1024)
        .await
        .expect("fits");
    let err = export_with_metadata(&mut client, 17 * 1024)
        .await
        .expect_err("over 16 KiB");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    h.shutdown().await;

    // The limit is configurable.
    let config = loopback_config_with_grpc(|g| g.max_header_list_size_kib = 128);
    let h = Receiver::start(config, Recorder::default()).await;
    export_with_metadata(&mut h.grpc_client().await, 100 * 1024)
        .await
        .expect("fits under 128 KiB");
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_invalid_ids_are_a_partial_success() {
    let h = Receiver::both().await;
    let mut zero_trace = span(2);
    zero_trace.trace_id = vec![0; 16];
    let mut short_span = span(3);
    short_span.span_id = vec![1; 4];
    let mut req = request(vec![span(1), zero_trace, short_span]);
    // A second resource whose only span is invalid disappears entirely.
    let mut only_bad = request(vec![span(4)]).resource_spans.remove(0);
    only_bad.scope_spans[0].spans[0].trace_id.clear();
    req.resource_spans.push(only_bad);

    let resp = h
        .grpc_client()
        .await
        .export(req)
        .await
        .expect("partial success is OK")
        .into_inner();
    let partial = resp.partial_success.expect("partial_success set");
    assert_eq!(partial.rejected_spans, 3);
    assert!(!partial.error_message.is_empty());

    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].items, 1);
    let delivered = ExportTraceServiceRequest::decode(got[0].raw.clone()).expect("valid");
    assert_eq!(delivered, request(vec![span(1)]));
    assert_eq!(h.accepted("grpc"), 1);
    assert_eq!(h.refused("grpc"), 3);
    h.shutdown().await;
}

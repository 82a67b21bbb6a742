//! The receiver on 127.0.0.1:0 against real clients: tonic's generated TraceServiceClient for
//! gRPC, hyper's client for OTLP/HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use parking_lot::Mutex;
use prost::Message;
use redline_otlp_receiver::{Config, GrpcConfig, HttpConfig, OtlpReceiverFactory, Protocols};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::{ReceiverCounters, Telemetry};
use redline_pipeline::{
    BuildContext, ComponentId, Refused, Reservation, RunningComponent, TracesBatch, TracesConsumer,
};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

// ---------------------------------------------------------------------------------------------
// Test consumer

/// Records every committed batch; refuses everything when `refuse` is set.
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<TracesBatch>>>,
    refuse: Option<Duration>,
}

impl TracesConsumer for Recorder {
    fn reserve(&self, _: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        if let Some(retry_after) = self.refuse {
            return Err(Refused {
                component: "exporter/test".into(),
                reason: "queue full".into(),
                retry_after,
            });
        }
        let got = self.got.clone();
        Ok(Box::new(CommitFn(move |b| got.lock().push(b))))
    }
}

struct Harness {
    running: Option<Box<dyn RunningComponent>>,
    recorder: Recorder,
    telemetry: Telemetry,
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
}

impl Harness {
    async fn start(config: Config, recorder: Recorder) -> Self {
        let telemetry = Telemetry::new();
        let ctx = BuildContext::new(telemetry.clone());
        let running = OtlpReceiverFactory
            .start(
                &ComponentId::new("otlp", None),
                &config,
                &ctx,
                Arc::new(recorder.clone()),
            )
            .await
            .expect("receiver starts");
        let addrs = running.local_addrs();
        let find = |n: &str| addrs.iter().find(|(k, _)| *k == n).map(|(_, a)| *a);
        Self {
            grpc: find("grpc"),
            http: find("http"),
            running: Some(running),
            recorder,
            telemetry,
        }
    }

    async fn both() -> Self {
        Self::start(loopback_config(), Recorder::default()).await
    }

    fn batches(&self) -> Vec<TracesBatch> {
        self.recorder.got.lock().clone()
    }

    fn counters(&self, transport: &'static str) -> Arc<ReceiverCounters> {
        self.telemetry.receiver("otlp", transport)
    }

    async fn grpc_client(&self) -> TraceServiceClient<Channel> {
        let addr = self.grpc.expect("grpc enabled");
        TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connects")
    }

    fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http.expect("http enabled"), path)
    }

    async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Instant::now() + Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
    }
}

fn loopback_config() -> Config {
    Config {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: "127.0.0.1:0".into(),
                ..GrpcConfig::default()
            }),
            http: Some(HttpConfig {
                endpoint: "127.0.0.1:0".into(),
                ..HttpConfig::default()
            }),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

fn span(i: u8) -> Span {
    Span {
        trace_id: vec![i.max(1); 16],
        span_id: vec![i.max(1); 8],
        name: format!("span-{i}"),
        kind: 2,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("svc".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("in-memory write");
    enc.finish().expect("in-memory finish")
}

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

/// google.rpc.Status and RetryInfo, decoded independently of the receiver's definitions.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<Duration>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

// ---------------------------------------------------------------------------------------------
// gRPC

#[tokio::test]
async fn grpc_export_forwards_identical_bytes() {
    let h = Harness::both().await;
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
    assert_eq!(got[0].span_count, 3);
    assert_eq!(
        h.counters("grpc")
            .accepted_spans
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_gzip_request_is_accepted() {
    let h = Harness::both().await;
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
    let h = Harness::both().await;
    let addr = h.grpc.expect("grpc");
    // Field 1, length-delimited, claims 0x7f bytes but has 2.
    let err = send_raw_grpc(addr, EXPORT, Bytes::from_static(&[0x0a, 0x7f, 0x01, 0x02]))
        .await
        .expect_err("garbage refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("malformed"), "{}", err.message());
    assert!(h.batches().is_empty());
    let c = h.counters("grpc");
    assert_eq!(
        c.accepted_spans.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(
        c.refused_spans.load(std::sync::atomic::Ordering::Relaxed),
        0
    );

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
    let h = Harness::both().await;
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
    let h = Harness::both().await;
    h.grpc_client()
        .await
        .export(ExportTraceServiceRequest::default())
        .await
        .expect("empty ok");
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

fn big_request(bytes: usize) -> ExportTraceServiceRequest {
    let mut s = span(1);
    s.attributes.push(KeyValue {
        key: "blob".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(bytes))),
        }),
        ..Default::default()
    });
    request(vec![s])
}

#[tokio::test]
async fn grpc_oversized_is_resource_exhausted() {
    let mut config = loopback_config();
    if let Some(g) = config.protocols.grpc.as_mut() {
        g.max_recv_msg_size_mib = 1;
    }
    let h = Harness::start(config, Recorder::default()).await;
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

#[tokio::test]
async fn grpc_refusal_is_unavailable_with_retry_info() {
    let recorder = Recorder {
        refuse: Some(Duration::from_millis(2500)),
        ..Recorder::default()
    };
    let h = Harness::start(loopback_config(), recorder).await;
    let err = h
        .grpc_client()
        .await
        .export(request(vec![span(1), span(2)]))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unavailable);
    let status = rpc::Status::decode(err.details()).expect("details are a google.rpc.Status");
    assert_eq!(status.code, 14);
    assert_eq!(status.details.len(), 1);
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let retry = rpc::RetryInfo::decode(status.details[0].value.as_slice()).expect("RetryInfo");
    let delay = retry.retry_delay.expect("delay set");
    assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));
    assert_eq!(
        h.counters("grpc")
            .refused_spans
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_invalid_ids_are_a_partial_success() {
    let h = Harness::both().await;
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
    assert_eq!(got[0].span_count, 1);
    let delivered = ExportTraceServiceRequest::decode(got[0].raw.clone()).expect("valid");
    assert_eq!(delivered, request(vec![span(1)]));
    let c = h.counters("grpc");
    assert_eq!(
        c.accepted_spans.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        c.refused_spans.load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct HttpAnswer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

async fn post(
    url: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: impl Into<Bytes>,
) -> HttpAnswer {
    let mut b = http::Request::post(url);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    if let Some(e) = encoding {
        b = b.header("content-encoding", e);
    }
    send(b.body(Full::new(body.into())).expect("request")).await
}

async fn send(req: http::Request<Full<Bytes>>) -> HttpAnswer {
    let resp = http_client().request(req).await.expect("answered");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    HttpAnswer {
        status,
        headers,
        body,
    }
}

const PB: &str = "application/x-protobuf";

#[tokio::test]
async fn http_protobuf_export() {
    let h = Harness::both().await;
    let req = request(vec![span(1), span(2)]);
    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        None,
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], PB);
    let resp = ExportTraceServiceResponse::decode(a.body).expect("protobuf response");
    assert_eq!(resp.partial_success, None);
    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), req.encode_to_vec().as_slice());
    assert_eq!(got[0].span_count, 2);
    assert_eq!(
        h.counters("http")
            .accepted_spans
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.shutdown().await;
}

/// The example of the OTLP specification (examples/trace.json), with int64 as strings, an
/// int attribute as a number, upper-case hex ids and an unknown field receivers must ignore.
const SPEC_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": 1544712661000000000,
        "kind": 2,
        "status": {"code": 2, "message": "boom"},
        "attributes": [
          {"key": "my.span.attr", "value": {"stringValue": "some value"}},
          {"key": "my.int", "value": {"intValue": "42"}},
          {"key": "my.int2", "value": {"intValue": 7}}
        ],
        "someFutureField": true
      }]
    }]
  }]
}"#;

#[tokio::test]
async fn http_json_export_follows_otlp_json_encoding() {
    let h = Harness::both().await;
    let a = post(
        &h.http_url("/v1/traces"),
        Some("application/json"),
        None,
        SPEC_JSON,
    )
    .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.body.as_ref(), b"{}");

    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].span_count, 1);
    let req = ExportTraceServiceRequest::decode(got[0].raw.clone()).expect("protobuf");
    let rs = &req.resource_spans[0];
    let s = &rs.scope_spans[0].spans[0];
    assert_eq!(
        s.trace_id,
        [
            0x5B, 0x8E, 0xFF, 0xF7, 0x98, 0x03, 0x81, 0x03, 0xD2, 0x69, 0xB6, 0x33, 0x81, 0x3F,
            0xC6, 0x0C
        ]
    );
    assert_eq!(s.span_id, [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74]);
    assert_eq!(
        s.parent_span_id,
        [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x73]
    );
    assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(s.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(s.kind, 2);
    assert_eq!(s.status.as_ref().map(|st| st.code), Some(2));
    assert_eq!(s.attributes.len(), 3);
    assert_eq!(
        s.attributes[1].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(42))
    );
    assert_eq!(
        s.attributes[2].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(7))
    );
    assert_eq!(
        rs.scope_spans[0].scope.as_ref().map(|sc| sc.name.as_str()),
        Some("my.library")
    );

    // The same request sent as protobuf yields the same bytes: JSON is converted exactly once.
    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        None,
        req.encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    let got = h.batches();
    assert_eq!(got[1].raw, got[0].raw);
    h.shutdown().await;
}

#[tokio::test]
async fn http_json_partial_success() {
    let h = Harness::both().await;
    let body = SPEC_JSON.replace("5B8EFFF798038103D269B633813FC60C", "");
    let a = post(
        &h.http_url("/v1/traces"),
        Some("application/json"),
        None,
        body,
    )
    .await;
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1);
    assert!(v["partialSuccess"]["errorMessage"].is_string());
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn http_gzip_protobuf_export() {
    let h = Harness::both().await;
    let req = request(vec![span(1)]);
    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        Some("gzip"),
        gzip(&req.encode_to_vec()),
    )
    .await;
    assert_eq!(a.status, 200);
    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), req.encode_to_vec().as_slice());
    h.shutdown().await;
}

#[tokio::test]
async fn http_malformed_bodies_are_400_with_status() {
    let h = Harness::both().await;
    let a = post(
        &h.http_url("/v1/traces"),
        Some("application/json"),
        None,
        r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}"#,
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.headers["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json status");
    assert_eq!(v["code"], 3);
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.contains("OTLP/JSON")));

    let a = post(
        &h.http_url("/v1/traces"),
        Some("application/json"),
        None,
        "{not json",
    )
    .await;
    assert_eq!(a.status, 400);

    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        None,
        vec![0x0a, 0x7f, 0x01],
    )
    .await;
    assert_eq!(a.status, 400);
    let status = rpc::Status::decode(a.body).expect("protobuf status");
    assert_eq!(status.code, 3);
    assert!(status.message.contains("malformed"), "{}", status.message);

    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        Some("gzip"),
        "not gzip",
    )
    .await;
    assert_eq!(a.status, 400);

    assert!(h.batches().is_empty());
    assert_eq!(
        h.counters("http")
            .refused_spans
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    h.shutdown().await;
}

#[tokio::test]
async fn http_size_limits_and_gzip_bomb() {
    let mut config = loopback_config();
    if let Some(hc) = config.protocols.http.as_mut() {
        hc.max_request_body_size = 1 << 20;
    }
    let h = Harness::start(config, Recorder::default()).await;
    let url = h.http_url("/v1/traces");

    // Compressed tiny, decompressed 64 MiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 1 << 20);
    let a = post(&url, Some(PB), Some("gzip"), bomb).await;
    assert_eq!(a.status, 413);
    let status = rpc::Status::decode(a.body).expect("protobuf status");
    assert!(status.message.contains("max_request_body_size"));

    // Over the limit as sent.
    let a = post(&url, Some(PB), None, vec![0u8; (1 << 20) + 1]).await;
    assert_eq!(a.status, 413);
    assert!(h.batches().is_empty());

    // Under the limit compressed and decompressed: accepted.
    let ok = big_request(500_000).encode_to_vec();
    let a = post(&url, Some(PB), Some("gzip"), gzip(&ok)).await;
    assert_eq!(a.status, 200);
    assert_eq!(h.batches().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn http_status_codes_for_wrong_requests() {
    let h = Harness::both().await;
    let url = h.http_url("/v1/traces");
    let body = request(vec![span(1)]).encode_to_vec();

    let a = post(&url, Some("text/plain"), None, body.clone()).await;
    assert_eq!(a.status, 415);
    let a = post(&url, None, None, body.clone()).await;
    assert_eq!(a.status, 415);
    let a = post(&url, Some(PB), Some("br"), body.clone()).await;
    assert_eq!(a.status, 415);

    let a = send(
        http::Request::get(&url)
            .body(Full::new(Bytes::new()))
            .expect("request"),
    )
    .await;
    assert_eq!(a.status, 405);
    assert_eq!(a.headers["allow"], "POST");

    let a = post(&h.http_url("/v1/metrics"), Some(PB), None, body).await;
    assert_eq!(a.status, 404);
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn http_refusal_is_503_with_retry_after() {
    let recorder = Recorder {
        refuse: Some(Duration::from_millis(2500)),
        ..Recorder::default()
    };
    let h = Harness::start(loopback_config(), recorder).await;
    let url = h.http_url("/v1/traces");
    let a = post(&url, Some(PB), None, request(vec![span(1)]).encode_to_vec()).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "3");
    let status = rpc::Status::decode(a.body).expect("protobuf status");
    assert_eq!(status.code, 14);
    let retry = rpc::RetryInfo::decode(status.details[0].value.as_slice()).expect("RetryInfo");
    assert_eq!(retry.retry_delay.map(|d| d.seconds), Some(2));

    let a = post(&url, Some("application/json"), None, SPEC_JSON).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "3");
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v["code"], 14);
    assert_eq!(v["details"][0]["retryDelay"], "2.5s");
    assert_eq!(
        h.counters("http")
            .refused_spans
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    h.shutdown().await;
}

#[tokio::test]
async fn http_response_headers_and_custom_path() {
    let mut config = loopback_config();
    if let Some(hc) = config.protocols.http.as_mut() {
        hc.traces_url_path = "custom/{traces}".into();
        hc.response_headers
            .insert("x-served-by".into(), "redline".into());
    }
    let h = Harness::start(config, Recorder::default()).await;
    let body = request(vec![span(1)]).encode_to_vec();
    let a = post(
        &h.http_url("/custom/%7Btraces%7D"),
        Some(PB),
        None,
        body.clone(),
    )
    .await;
    // The raw path is compared: a percent-encoded `{` is not the configured path.
    assert_eq!(a.status, 404);
    let a = post(
        &h.http_url("/custom/{traces}"),
        Some(PB),
        None,
        body.clone(),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["x-served-by"], "redline");
    let a = post(&h.http_url("/v1/traces"), Some(PB), None, body).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.headers["x-served-by"], "redline");
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test]
async fn shutdown_stops_accepting() {
    let h = Harness::both().await;
    let grpc = h.grpc.expect("grpc");
    let http = h.http.expect("http");
    // A connection kept alive by a finished request must not hold shutdown up.
    let a = post(
        &h.http_url("/v1/traces"),
        Some(PB),
        None,
        request(vec![span(1)]).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 200);
    let started = Instant::now();
    h.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
}

#[tokio::test]
async fn shutdown_returns_by_the_deadline_with_a_stalled_request() {
    use tokio::io::AsyncWriteExt;
    let mut h = Harness::both().await;
    let http = h.http.expect("http");
    // A request whose body never finishes arriving.
    let mut stream = tokio::net::TcpStream::connect(http)
        .await
        .expect("connects");
    stream
        .write_all(
            b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
              content-length: 100\r\n\r\nabc",
        )
        .await
        .expect("writes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = h.running.take().expect("running");
    let started = Instant::now();
    let result = running
        .shutdown(Instant::now() + Duration::from_millis(300))
        .await;
    let took = started.elapsed();
    assert!(result.is_err(), "the stalled request was cut off");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(h.batches().is_empty());
}

#[tokio::test]
async fn port_in_use_fails_the_build() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = Config {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: "127.0.0.1:0".into(),
                ..GrpcConfig::default()
            }),
            http: Some(HttpConfig {
                endpoint: format!("127.0.0.1:{port}"),
                ..HttpConfig::default()
            }),
        },
    };
    let ctx = BuildContext::new(Telemetry::new());
    let err = OtlpReceiverFactory
        .start(
            &ComponentId::new("otlp", Some("x")),
            &config,
            &ctx,
            Arc::new(Recorder::default()),
        )
        .await
        .err()
        .expect("port in use");
    assert!(err.to_string().contains("protocols.http.endpoint"), "{err}");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut h = Harness::both().await;
    let http = h.http.expect("http");
    let body = request(vec![span(1)]).encode_to_vec();
    let (first, rest) = body.split_at(5);
    let mut stream = tokio::net::TcpStream::connect(http)
        .await
        .expect("connects");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream.write_all(first).await.expect("writes");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let running = h.running.take().expect("running");
    let shutdown = tokio::spawn(running.shutdown(Instant::now() + Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New connections are refused while the old request is still being read.
    assert!(tokio::net::TcpStream::connect(http).await.is_err());

    stream.write_all(rest).await.expect("writes the rest");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    shutdown
        .await
        .expect("joins")
        .expect("drained before the deadline");
    assert_eq!(h.batches().len(), 1);
}

//! The receiver on 127.0.0.1:0, every protocol at once: a batch over HTTP and as the agent's
//! datagrams in both protocols reaches the pipeline and is counted under its transport; bad
//! bodies, wrong media types, paths and methods get otelcol's answers; a refusing pipeline
//! is answered 500 (HTTP) or counted refused (UDP).
#![allow(clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_jaeger_receiver::{
    BinaryUdpConfig, CompactUdpConfig, Config, GrpcConfig, JaegerReceiverFactory, Protocols,
    ThriftHttpConfig,
};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    BuildContext, ComponentId, Consumer, RunningComponent, Signal, SignalConsumers,
};
use redline_processor_testkit::{Refusing, RefusingForGood, Sink};

/// A Thrift writer for the two protocols, enough for a Jaeger batch.
struct Writer {
    compact: bool,
    out: Vec<u8>,
    last: Vec<i16>,
}

const I32: u8 = 8;
const I64: u8 = 10;
const STRING: u8 = 11;
const STRUCT: u8 = 12;
const LIST: u8 = 15;

impl Writer {
    fn new(compact: bool) -> Self {
        Self {
            compact,
            out: Vec::new(),
            last: vec![0],
        }
    }

    fn compact_type(ty: u8) -> u8 {
        match ty {
            I32 => 5,
            I64 => 6,
            STRING => 8,
            STRUCT => 12,
            LIST => 9,
            other => panic!("type {other}"),
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn field(&mut self, ty: u8, id: i16) -> &mut Self {
        if self.compact {
            let last = self.last.last_mut().expect("in a struct");
            let delta = id - *last;
            assert!((1..=15).contains(&delta));
            self.out.push(((delta as u8) << 4) | Self::compact_type(ty));
            *last = id;
        } else {
            self.out.push(ty);
            self.out.extend_from_slice(&id.to_be_bytes());
        }
        self
    }

    fn i64(&mut self, v: i64) -> &mut Self {
        if self.compact {
            self.varint(((v << 1) ^ (v >> 63)) as u64);
        } else {
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    fn i32(&mut self, v: i32) -> &mut Self {
        if self.compact {
            self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
        } else {
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        self
    }

    fn string(&mut self, v: &str) -> &mut Self {
        if self.compact {
            self.varint(v.len() as u64);
        } else {
            self.out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        }
        self.out.extend_from_slice(v.as_bytes());
        self
    }

    fn list_of_structs(&mut self, len: usize) -> &mut Self {
        if self.compact {
            assert!(len < 15);
            self.out.push(((len as u8) << 4) | 12);
        } else {
            self.out.push(STRUCT);
            self.out.extend_from_slice(&(len as i32).to_be_bytes());
        }
        self
    }

    fn begin(&mut self) -> &mut Self {
        self.last.push(0);
        self
    }

    fn end(&mut self) -> &mut Self {
        self.out.push(0);
        self.last.pop();
        self
    }

    /// A batch of `spans` spans of service `svc`, each with a `k` tag.
    fn batch(&mut self, service: &str, spans: i64) -> &mut Self {
        self.begin();
        self.field(STRUCT, 1).begin();
        self.field(STRING, 1).string(service).end();
        self.field(LIST, 2).list_of_structs(spans as usize);
        for id in 1..=spans {
            self.begin();
            self.field(I64, 1).i64(0x77);
            self.field(I64, 2).i64(0x11);
            self.field(I64, 3).i64(id);
            self.field(I64, 4).i64(0);
            self.field(STRING, 5).string("GET /");
            self.field(I32, 7).i32(1);
            self.field(I64, 8).i64(1_700_000_000_000_000);
            self.field(I64, 9).i64(250);
            self.field(LIST, 10).list_of_structs(1);
            self.begin();
            self.field(STRING, 1).string("k");
            self.field(I32, 2).i32(0);
            self.field(STRING, 3).string("v");
            self.end();
            self.end();
        }
        self.end()
    }

    /// The agent's `emitBatch` call holding a batch.
    fn emit_batch(compact: bool, service: &str, spans: i64) -> Vec<u8> {
        let mut w = Self::new(compact);
        if compact {
            w.out.extend_from_slice(&[0x82, 0x81]);
            w.varint(1);
            w.string("emitBatch");
        } else {
            w.out.extend_from_slice(&[0x80, 0x01, 0x00, 0x04]);
            w.string("emitBatch");
            w.out.extend_from_slice(&1i32.to_be_bytes());
        }
        w.begin();
        w.field(STRUCT, 1).batch(service, spans);
        w.end();
        w.out
    }
}

fn http_batch(service: &str, spans: i64) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.batch(service, spans);
    w.out
}

struct Receiver {
    running: Box<dyn RunningComponent>,
    telemetry: Telemetry,
}

impl Receiver {
    async fn start(next: Arc<dyn Consumer>) -> Self {
        Self::start_with_budget(next, None).await
    }

    /// With a budget for bodies in flight of `budget` bytes (the default when `None`).
    async fn start_with_budget(next: Arc<dyn Consumer>, budget: Option<u64>) -> Self {
        let mut compact = CompactUdpConfig::default();
        compact.endpoint = "127.0.0.1:0".into();
        let mut binary = BinaryUdpConfig::default();
        binary.endpoint = "127.0.0.1:0".into();
        binary.workers = 1;
        let config = Config {
            protocols: Protocols {
                grpc: Some(GrpcConfig {
                    endpoint: "127.0.0.1:0".into(),
                    ..GrpcConfig::default()
                }),
                thrift_http: Some(ThriftHttpConfig {
                    endpoint: "127.0.0.1:0".into(),
                    ..ThriftHttpConfig::default()
                }),
                thrift_compact: Some(compact),
                thrift_binary: Some(binary),
            },
            ..Config::default()
        };
        let mut ctx = BuildContext::new(Telemetry::new());
        ctx.body_budget = budget;
        let mut consumers = SignalConsumers::default();
        consumers.set(Signal::Traces, next);
        let running = JaegerReceiverFactory
            .start(&ComponentId::new("jaeger", None), &config, &ctx, consumers)
            .await
            .expect("receiver starts");
        Self {
            running,
            telemetry: ctx.telemetry.clone(),
        }
    }

    fn addr(&self, name: &str) -> std::net::SocketAddr {
        self.running
            .local_addrs()
            .into_iter()
            .find(|(n, _)| *n == name)
            .expect("listening")
            .1
    }

    fn counter(&self, transport: &'static str) -> (u64, u64) {
        let c = self.telemetry.receiver("jaeger", transport, Signal::Traces);
        (
            c.accepted.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        )
    }

    async fn post(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let url = format!("http://{}{path}", self.addr("thrift_http"));
        let mut req = http::Request::post(url);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = client.request(req).await.expect("answer");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A unary gRPC call with `message` (protobuf bytes): the grpc-status and grpc-message.
    async fn grpc(&self, path: &str, message: &[u8]) -> (String, String) {
        self.grpc_encoded(path, None, message).await
    }

    /// An HTTP/2 connection to the gRPC server.
    async fn h2(&self) -> hyper::client::conn::http2::SendRequest<BoxBody> {
        let stream = tokio::net::TcpStream::connect(self.addr("grpc"))
            .await
            .expect("connect");
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        sender
    }

    /// A PostSpans call whose body is `body`, sent with `grpc-encoding: encoding` if given.
    fn grpc_request(
        &self,
        path: &str,
        encoding: Option<&str>,
        body: BoxBody,
    ) -> http::Request<BoxBody> {
        let mut req = http::Request::post(format!("http://{}{path}", self.addr("grpc")))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(encoding) = encoding {
            req = req.header("grpc-encoding", encoding);
        }
        req.body(body).expect("request")
    }

    /// A unary gRPC call whose message is `payload`, compressed as `encoding` says when given
    /// (the frame's flag set): the grpc-status and grpc-message.
    async fn grpc_encoded(
        &self,
        path: &str,
        encoding: Option<&str>,
        payload: &[u8],
    ) -> (String, String) {
        let mut sender = self.h2().await;
        let body = Full::new(Bytes::from(grpc_frame(encoding.is_some(), payload)))
            .map_err(|never| match never {})
            .boxed();
        let req = self.grpc_request(path, encoding, body);
        let resp = sender.send_request(req).await.expect("answer");
        let head = resp.headers().clone();
        let collected = resp.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().unwrap_or(head);
        let get = |k: &str| {
            trailers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        // grpc-message is percent-encoded; the texts here need only the spaces back.
        (get("grpc-status"), get("grpc-message").replace("%20", " "))
    }

    async fn datagram(&self, name: &str, packet: &[u8]) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        socket.send_to(packet, self.addr(name)).await.expect("send");
    }

    async fn shutdown(self) {
        self.running
            .shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
    }
}

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A gRPC length-prefixed message.
fn grpc_frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Waits (bounded) until the sink holds `n` batches.
async fn wait_for(sink: &Sink, got: &mut Vec<ExportTraceServiceRequest>, n: usize) {
    for _ in 0..200 {
        got.extend(
            sink.take()
                .into_iter()
                .map(|b| ExportTraceServiceRequest::decode(b.raw.clone()).expect("OTLP")),
        );
        if got.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {n} batches arrived", got.len());
}

fn service_and_spans(req: &ExportTraceServiceRequest) -> (String, usize) {
    let rs = &req.resource_spans[0];
    let service = rs.resource.as_ref().expect("resource").attributes[0]
        .value
        .as_ref()
        .and_then(|v| v.value.clone());
    let service = match service {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => s,
        other => panic!("service.name {other:?}"),
    };
    (service, rs.scope_spans[0].spans.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_reaches_the_pipeline_counted_by_transport() {
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    let mut got = Vec::new();

    let (status, body) = rx
        .post(
            "/api/traces",
            Some("application/x-thrift"),
            http_batch("web", 3),
        )
        .await;
    assert_eq!((status, body.as_str()), (202, ""));
    wait_for(&sink, &mut got, 1).await;
    rx.datagram("thrift_compact", &Writer::emit_batch(true, "compact", 2))
        .await;
    wait_for(&sink, &mut got, 2).await;
    rx.datagram("thrift_binary", &Writer::emit_batch(false, "binary", 1))
        .await;
    wait_for(&sink, &mut got, 3).await;

    let seen: Vec<_> = got.iter().map(service_and_spans).collect();
    assert_eq!(
        seen,
        vec![
            ("web".to_owned(), 3),
            ("compact".to_owned(), 2),
            ("binary".to_owned(), 1)
        ]
    );
    let span = &got[1].resource_spans[0].scope_spans[0].spans[1];
    assert_eq!(span.span_id, 2i64.to_be_bytes());
    assert_eq!(span.end_time_unix_nano - span.start_time_unix_nano, 250_000);
    assert_eq!(rx.counter("collector_http"), (3, 0));
    assert_eq!(rx.counter("udp_thrift_compact"), (2, 0));
    assert_eq!(rx.counter("udp_thrift_binary"), (1, 0));
    rx.shutdown().await;
}

/// Path, Content-Type, body, and the expected status and text.
type BadRequest<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_otelcols_answers_and_lose_nothing() {
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    let good = http_batch("web", 1);
    let cases: Vec<BadRequest> = vec![
        (
            "/api/traces",
            Some("application/json"),
            good.clone(),
            400,
            "Unsupported content type: application/json\n",
        ),
        (
            "/api/traces",
            None,
            good.clone(),
            400,
            "Cannot parse content type: mime: no media type\n",
        ),
        (
            "/api/traces",
            Some("application/vnd.apache.thrift.binary"),
            good[..good.len() - 3].to_vec(),
            400,
            "Unable to process request body: the data ends before the message does\n",
        ),
        (
            "/api/spans",
            Some("application/x-thrift"),
            good.clone(),
            404,
            "404 page not found\n",
        ),
    ];
    for (path, content_type, body, status, text) in cases {
        let answer = rx.post(path, content_type, body).await;
        assert_eq!(answer, (status, text.to_owned()), "{path} {content_type:?}");
    }
    // A bad datagram of each protocol, then a good one: only the good ones arrive.
    rx.datagram("thrift_compact", b"\x82\x81\x01\x09emitBatch\x1c")
        .await;
    rx.datagram("thrift_binary", b"not thrift at all").await;
    let (status, _) = rx
        .post("/api/traces", Some("application/x-thrift"), good)
        .await;
    assert_eq!(status, 202);
    rx.datagram("thrift_binary", &Writer::emit_batch(false, "after", 1))
        .await;
    let mut got = Vec::new();
    wait_for(&sink, &mut got, 2).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(sink.take().is_empty());
    assert_eq!(rx.counter("collector_http"), (1, 0));
    assert_eq!(rx.counter("udp_thrift_binary"), (1, 0));
    assert_eq!(rx.counter("udp_thrift_compact"), (0, 0));
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_pipeline_is_answered_500_and_counted_refused() {
    let rx = Receiver::start(Arc::new(Refusing)).await;
    let (status, body) = rx
        .post(
            "/api/traces",
            Some("application/x-thrift"),
            http_batch("web", 2),
        )
        .await;
    assert_eq!(status, 500);
    assert!(body.starts_with("Cannot submit Jaeger batch: "), "{body}");
    rx.datagram("thrift_compact", &Writer::emit_batch(true, "c", 4))
        .await;
    for _ in 0..200 {
        if rx.counter("udp_thrift_compact") == (0, 4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rx.counter("collector_http"), (0, 2));
    assert_eq!(rx.counter("udp_thrift_compact"), (0, 4));
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_unknown_over_grpc_not_unavailable() {
    const POST: &str = "/jaeger.api_v2.CollectorService/PostSpans";
    let rx = Receiver::start(Arc::new(RefusingForGood)).await;
    let (status, message) = rx.grpc(POST, &post_spans("tenant", 2)).await;
    // grpc-go's answer to otelcol's permanent error: not a code clients retry.
    assert_eq!(status, "2", "{message}");
    assert_eq!(
        message,
        "Permanent error: too many batcher metadata-value combinations"
    );
    assert_eq!(rx.counter("grpc"), (0, 2));
    let (status, body) = rx
        .post(
            "/api/traces",
            Some("application/x-thrift"),
            http_batch("web", 2),
        )
        .await;
    assert_eq!(
        status, 500,
        "otelcol's thrift_http answers every failure 500"
    );
    assert_eq!(
        body,
        "Cannot submit Jaeger batch: Permanent error: too many batcher metadata-value \
         combinations\n"
    );
    rx.shutdown().await;
}

/// A `PostSpansRequest` of one batch: process `service`, `spans` spans (protobuf written by
/// hand: field numbers of jaeger-idl's model.proto; lengths in one byte, so at most two
/// spans).
fn post_spans(service: &str, spans: u8) -> Vec<u8> {
    fn ld(field: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(field << 3 | 2);
        out.push(u8::try_from(payload.len()).expect("short"));
        out.extend_from_slice(payload);
    }
    let mut batch = Vec::new();
    for id in 1..=spans {
        let mut span = Vec::new();
        ld(1, &[[0u8; 15].as_slice(), &[7]].concat(), &mut span);
        ld(2, &[0, 0, 0, 0, 0, 0, 0, id], &mut span);
        ld(3, b"GET /", &mut span);
        // start_time { seconds: 1 }, duration { nanos: 250000 }
        ld(6, &[1 << 3, 1], &mut span);
        ld(7, &[2 << 3, 0x90, 0xa1, 0x0f], &mut span);
        ld(1, &span, &mut batch);
    }
    let mut process = Vec::new();
    ld(1, service.as_bytes(), &mut process);
    ld(2, &process, &mut batch);
    let mut request = Vec::new();
    ld(1, &batch, &mut request);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_post_spans_and_what_grpc_go_answers() {
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    const POST: &str = "/jaeger.api_v2.CollectorService/PostSpans";
    assert_eq!(rx.grpc(POST, &post_spans("agent", 2)).await.0, "0");
    let mut got = Vec::new();
    wait_for(&sink, &mut got, 1).await;
    assert_eq!(service_and_spans(&got[0]), ("agent".to_owned(), 2));
    let span = &got[0].resource_spans[0].scope_spans[0].spans[1];
    assert_eq!(span.start_time_unix_nano, 1_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_000_250_000);
    // Not protobuf, a span id of 4 bytes: INTERNAL, as grpc-go answers a message that does
    // not decode; another method: UNIMPLEMENTED. Nothing of them arrives.
    assert_eq!(rx.grpc(POST, b"\x0a\x05\x0a\x03").await.0, "13");
    let mut short_id = post_spans("agent", 1);
    let at = short_id
        .windows(10)
        .position(|w| w == [0x12, 8, 0, 0, 0, 0, 0, 0, 0, 1])
        .expect("the span id");
    short_id.splice(at..at + 10, [0x12, 4, 0, 0, 0, 1]);
    // The request and its one span are that much shorter.
    for len in [1, 3] {
        short_id[len] -= 4;
    }
    let (status, message) = rx.grpc(POST, &short_id).await;
    assert_eq!(status, "13", "{message}");
    assert!(message.contains("invalid length for SpanID"), "{message}");
    let (status, _) = rx
        .grpc("/jaeger.api_v2.CollectorService/GetTrace", b"")
        .await;
    assert_eq!(status, "12");
    assert_eq!(rx.grpc(POST, &post_spans("after", 1)).await.0, "0");
    wait_for(&sink, &mut got, 2).await;
    assert_eq!(service_and_spans(&got[1]), ("after".to_owned(), 1));
    assert_eq!(rx.counter("grpc"), (3, 0));
    rx.shutdown().await;
}

/// `post_spans` with an unknown top-level field of `pad` bytes, which the decoder skips: a
/// message of a chosen size.
fn padded_post_spans(service: &str, pad: usize) -> Vec<u8> {
    let mut message = post_spans(service, 1);
    message.push(15 << 3 | 2);
    let mut len = pad;
    while len >= 0x80 {
        message.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    message.push(len as u8);
    message.resize(message.len() + pad, b'x');
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_post_spans_are_inflated_as_grpc_go_reads_them() {
    use std::io::Write;
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    const POST: &str = "/jaeger.api_v2.CollectorService/PostSpans";

    // snappy: the framed format grpc-go's compressor writes.
    let mut framed = snap::write::FrameEncoder::new(Vec::new());
    framed
        .write_all(&post_spans("snappy", 1))
        .expect("in memory");
    let framed = framed.into_inner().expect("in memory");
    assert_eq!(rx.grpc_encoded(POST, Some("snappy"), &framed).await.0, "0");
    // gzip in two members, the second holding the rest of the message: grpc-go reads both.
    let message = post_spans("gzip", 2);
    let (a, b) = message.split_at(message.len() / 2);
    let gzip = |part: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(part).expect("in memory");
        e.finish().expect("in memory")
    };
    let two_members = [gzip(a), gzip(b)].concat();
    let (status, message) = rx.grpc_encoded(POST, Some("gzip"), &two_members).await;
    assert_eq!(status, "0", "{message}");
    let mut got = Vec::new();
    wait_for(&sink, &mut got, 2).await;
    let mut services: Vec<_> = got.iter().map(service_and_spans).collect();
    services.sort();
    assert_eq!(services, [("gzip".to_owned(), 2), ("snappy".to_owned(), 1)]);

    // A snappy block is not the framed format: INTERNAL, as grpc-go answers, nothing counted.
    let block = snap::raw::Encoder::new()
        .compress_vec(&post_spans("block", 1))
        .expect("compress");
    let (status, message) = rx.grpc_encoded(POST, Some("snappy"), &block).await;
    assert_eq!(status, "13", "{message}");
    assert!(message.starts_with("Error decompressing"), "{message}");
    assert_eq!(rx.counter("grpc"), (3, 0));
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_over_the_body_budget_are_refused_from_the_frame_header() {
    use futures::SinkExt;
    const BUDGET: u64 = 64 * 1024;
    const POST: &str = "/jaeger.api_v2.CollectorService/PostSpans";
    let sink = Sink::default();
    let rx = Receiver::start_with_budget(Arc::new(sink.clone()), Some(BUDGET)).await;

    // A call that sends its frame header (declaring 50 KB) and a little of its message holds
    // 50 KB of the budget...
    let held = grpc_frame(false, &padded_post_spans("held", 50_000));
    let (mut tx, rx_frames) = futures::channel::mpsc::channel::<
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >(4);
    let mut sender = rx.h2().await;
    let req = rx.grpc_request(
        POST,
        None,
        http_body_util::StreamBody::new(rx_frames).boxed(),
    );
    tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(
        &held[..1000],
    ))))
    .await
    .expect("sent");
    let call = tokio::spawn(async move { sender.send_request(req).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    // ...so a 30 KB call is refused, retryably, before its message is read.
    let (status, message) = rx.grpc(POST, &padded_post_spans("refused", 30_000)).await;
    assert_eq!(status, "14", "UNAVAILABLE: {message}");
    assert!(message.contains("budget"), "{message}");

    // The held call completes; its bytes go back, and the same call now fits.
    tx.send(Ok(hyper::body::Frame::data(Bytes::copy_from_slice(
        &held[1000..],
    ))))
    .await
    .expect("sent");
    drop(tx);
    let answer = call.await.expect("joined").expect("answer");
    let trailers = answer
        .into_body()
        .collect()
        .await
        .expect("body")
        .trailers()
        .cloned()
        .expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    let (status, message) = rx.grpc(POST, &padded_post_spans("after", 30_000)).await;
    assert_eq!(status, "0", "{message}");
    let mut got = Vec::new();
    wait_for(&sink, &mut got, 2).await;
    let mut services: Vec<_> = got.iter().map(|r| service_and_spans(r).0).collect();
    services.sort();
    assert_eq!(services, ["after", "held"]);
    assert_eq!(rx.counter("grpc"), (2, 0));
    rx.shutdown().await;
}

//! The receiver on 127.0.0.1:0 against hyper's client: what reaches the pipeline for JSON,
//! gzip and protobuf bodies, and the answers to Zipkin v1, broken bodies, a body over the
//! limit and a pipeline that refuses.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::Mutex;
use prost::Message;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentId, Consumer, Refused, Reservation, RunningComponent, Signal,
    SignalConsumers,
};
use redline_zipkin_receiver::{Config, ZipkinReceiverFactory};

#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<Batch>>>,
    refuse: bool,
    /// Refusals are permanent (a `batch` processor over its metadata cardinality limit).
    permanent: bool,
}

impl Consumer for Recorder {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if self.refuse {
            return Err(Refused {
                component: "exporter/test".into(),
                reason: "queue full".into(),
                retry_after: Duration::from_secs(1),
                permanent: self.permanent,
            });
        }
        let got = self.got.clone();
        Ok(Box::new(CommitFn(move |b| got.lock().push(b))))
    }
}

struct Receiver {
    running: Box<dyn RunningComponent>,
    recorder: Recorder,
    telemetry: Telemetry,
    url: String,
}

impl Receiver {
    async fn start(config: Config, recorder: Recorder) -> Self {
        let ctx = BuildContext::new(Telemetry::new());
        let mut next = SignalConsumers::default();
        next.set(Signal::Traces, Arc::new(recorder.clone()));
        let running = ZipkinReceiverFactory
            .start(&ComponentId::new("zipkin", None), &config, &ctx, next)
            .await
            .expect("receiver starts");
        let addr = running.local_addrs()[0].1;
        Self {
            running,
            recorder,
            telemetry: ctx.telemetry.clone(),
            url: format!("http://{addr}"),
        }
    }

    fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.recorder
            .got
            .lock()
            .iter()
            .map(|b| ExportTraceServiceRequest::decode(b.raw.clone()).expect("OTLP"))
            .collect()
    }

    fn counter(&self, transport: &'static str) -> (u64, u64) {
        let c = self.telemetry.receiver("zipkin", transport, Signal::Traces);
        (
            c.accepted.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        )
    }

    async fn shutdown(self) {
        self.running
            .shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
    }
}

fn loopback() -> Config {
    Config {
        endpoint: "127.0.0.1:0".into(),
        ..Config::default()
    }
}

async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client.request(req).await.expect("answer");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const SPANS: &str = r#"[
  {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "48485a3953bb6124", "name": "get /",
   "kind": "SERVER", "timestamp": 1700000000000000, "duration": 1500,
   "localEndpoint": {"serviceName": "web", "ipv4": "10.0.0.1", "port": 8080},
   "tags": {"http.method": "GET", "host.name": "node-1"}},
  {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "0000000000000002",
   "parentId": "48485a3953bb6124", "name": "query", "kind": "CLIENT",
   "timestamp": 1700000000000100, "duration": 300,
   "localEndpoint": {"serviceName": "web"}, "remoteEndpoint": {"serviceName": "db", "port": 5432}},
  {"traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "0000000000000003", "name": "auth",
   "timestamp": 1700000000000200, "duration": 100, "localEndpoint": {"serviceName": "api"},
   "tags": {"error": "true"}}
]"#;

#[tokio::test]
async fn json_spans_reach_the_pipeline_as_one_otlp_request() {
    let h = Receiver::start(loopback(), Recorder::default()).await;
    let (status, _) = post(
        &format!("{}/api/v2/spans", h.url),
        &[("content-type", "application/json")],
        SPANS.into(),
    )
    .await;
    assert_eq!(status, 202);
    let got = h.requests();
    assert_eq!(got.len(), 1);
    let services: Vec<String> = got[0]
        .resource_spans
        .iter()
        .map(|rs| {
            let attrs = &rs.resource.as_ref().expect("resource").attributes;
            format!("{:?}", attrs.iter().map(|kv| &kv.key).collect::<Vec<_>>())
        })
        .collect();
    assert_eq!(
        services,
        [r#"["service.name"]"#, r#"["service.name", "host.name"]"#],
        "sorted by service, host.name moved to web's resource"
    );
    let web = &got[0].resource_spans[1].scope_spans[0].spans;
    assert_eq!(web.len(), 2);
    assert_eq!(web[0].name, "get /");
    assert_eq!(web[0].start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(web[0].end_time_unix_nano, 1_700_000_000_001_500_000);
    assert_eq!(web[1].parent_span_id, 0x48485a3953bb6124u64.to_be_bytes());
    let api = &got[0].resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(api.status.as_ref().map(|s| s.code), Some(2));
    assert!(
        api.attributes.is_empty(),
        "error=true is the status, not an attribute"
    );
    assert_eq!(h.counter("http_v2_json"), (3, 0));
    h.shutdown().await;
}

#[tokio::test]
async fn gzip_json_and_protobuf_bodies_are_read() {
    let h = Receiver::start(loopback(), Recorder::default()).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(SPANS.as_bytes()).expect("in memory");
    let (status, _) = post(
        &format!("{}/api/v2/spans", h.url),
        &[("content-encoding", "gzip")],
        gz.finish().expect("in memory"),
    )
    .await;
    assert_eq!(status, 202);
    // ListOfSpans { spans: [Span { trace_id: 16 × 1, id: 8 × 2, name: "p" }] }, by hand.
    let mut span = vec![0x0a, 16];
    span.extend([1u8; 16]);
    span.extend([0x1a, 8]);
    span.extend([2u8; 8]);
    span.extend([0x2a, 1, b'p']);
    let mut body = vec![0x0a, span.len() as u8];
    body.extend(span);
    let (status, _) = post(
        &format!("{}/anything", h.url),
        &[("content-type", "application/x-protobuf")],
        body,
    )
    .await;
    assert_eq!(status, 202);
    let got = h.requests();
    assert_eq!(got.len(), 2);
    let p = &got[1].resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        (p.name.as_str(), p.trace_id.as_slice()),
        ("p", &[1u8; 16][..])
    );
    assert_eq!(h.counter("http_v2_json"), (3, 0));
    assert_eq!(h.counter("http_v2_proto"), (1, 0));
    h.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_v1_and_limits_are_refused_with_their_reason_and_forward_nothing() {
    let config = Config {
        max_request_body_size: 4096,
        ..loopback()
    };
    let h = Receiver::start(config, Recorder::default()).await;
    let url = format!("{}/api/v2/spans", h.url);
    for (headers, body, code, needle) in [
        (
            &[][..],
            "[{\"traceId\": \"1\"}]".to_owned(),
            400,
            "span 0: id",
        ),
        (&[], "{oops".to_owned(), 400, "must be a JSON array"),
        (&[], "[{oops".to_owned(), 400, "not Zipkin v2 JSON"),
        (
            &[("content-type", "application/x-protobuf")][..],
            "\u{a}\u{5}".to_owned(),
            400,
            "zipkin.proto3.ListOfSpans",
        ),
        (
            &[("content-encoding", "gzip")],
            "plain".to_owned(),
            400,
            "decompress",
        ),
        (
            &[("content-encoding", "br")],
            "[]".to_owned(),
            400,
            "unsupported Content-Encoding: br",
        ),
        (
            &[],
            format!("[{}]", " ".repeat(5000)),
            413,
            "max_request_body_size",
        ),
    ] {
        let (status, text) = post(&url, headers, body.into_bytes()).await;
        assert_eq!(status, code, "{text}");
        assert!(text.contains(needle), "{text} should say {needle}");
    }
    let (status, text) = post(&format!("{}/api/v1/spans", h.url), &[], b"[]".to_vec()).await;
    assert_eq!(status, 400);
    assert!(text.contains("Zipkin v1"), "{text}");
    assert!(h.requests().is_empty());
    // A good request after all of that is still taken.
    let (status, _) = post(&url, &[], SPANS.into()).await;
    assert_eq!(status, 202);
    assert_eq!(h.requests().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_refusing_pipeline_is_500_and_counted_refused() {
    let recorder = Recorder {
        refuse: true,
        ..Recorder::default()
    };
    let h = Receiver::start(loopback(), recorder).await;
    let (status, text) = post(&format!("{}/api/v2/spans", h.url), &[], SPANS.into()).await;
    assert_eq!(status, 500, "{text}");
    assert_eq!(h.counter("http_v2_json"), (0, 3));
    // Spans with an all-zero trace id are dropped and counted refused, the rest accepted.
    let h2 = Receiver::start(loopback(), Recorder::default()).await;
    let body = r#"[{"traceId": "0", "id": "1"}, {"traceId": "1", "id": "1"}]"#;
    let (status, _) = post(&format!("{}/api/v2/spans", h2.url), &[], body.into()).await;
    assert_eq!(status, 202);
    assert_eq!(h2.counter("http_v2_json"), (1, 1));
    h.shutdown().await;
    h2.shutdown().await;
}

#[tokio::test]
async fn a_permanent_refusal_is_400_so_the_reporter_does_not_send_again() {
    let recorder = Recorder {
        refuse: true,
        permanent: true,
        ..Recorder::default()
    };
    let h = Receiver::start(loopback(), recorder).await;
    let (status, text) = post(&format!("{}/api/v2/spans", h.url), &[], SPANS.into()).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(text, "Permanent error: exporter/test: queue full\n");
    assert_eq!(h.counter("http_v2_json"), (0, 3));
    h.shutdown().await;
}

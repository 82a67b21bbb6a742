//! loadgen's senders against real servers on 127.0.0.1: its own sink over tonic (gRPC, with
//! and without gzip, with injected failures), a small axum OTLP/HTTP server, and the binary.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use redline_loadgen::encode::Template;
use redline_loadgen::engine::{self, Live, Pacing, Plan, Stop};
use redline_loadgen::model::{Generator, ModelConfig};
use redline_loadgen::send::{Conn, Protocol, Target};
use redline_loadgen::signal::Signal;
use redline_loadgen::sink::{Sink, SinkConfig, SinkCounts};

fn templates(n: u64, spans_per_request: usize) -> Arc<Vec<Template>> {
    let g = Generator::new(
        ModelConfig {
            spans_per_request,
            ..Default::default()
        },
        42,
    )
    .expect("model");
    Arc::new(
        (0..n)
            .map(|i| Template::encode(&g.request(i, 1_700_000_000_000_000_000)).expect("encodes"))
            .collect(),
    )
}

async fn conns(endpoint: String, protocol: Protocol, gzip: bool, n: usize) -> Vec<Conn> {
    let target = Target {
        endpoint,
        protocol,
        gzip,
        timeout: Duration::from_secs(10),
        signal: Signal::Traces,
        headers: http::HeaderMap::new(),
    };
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Conn::connect(&target).await.expect("connects"));
    }
    v
}

async fn wait_counts(sink: &Sink, want_requests: u64) -> SinkCounts {
    for _ in 0..100 {
        let c = sink.counts();
        if c.requests + c.refused_requests >= want_requests {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.counts()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_to_the_sink_counts_exactly_and_ids_stay_unique() {
    for gzip in [false, true] {
        let sink = Sink::start(SinkConfig {
            count_listen: Some("127.0.0.1:0".parse().expect("addr")),
            check: true,
            ..Default::default()
        })
        .await
        .expect("sink starts");
        let live = Arc::new(Live::new(16));
        let plan = Plan {
            rate_rps: None,
            stop: Stop::Requests(240),
            connections: 3,
            concurrency: 4,
            retry: Default::default(),
            pacing: Pacing::Thread,
        };
        let c = conns(
            format!("127.0.0.1:{}", sink.addr.port()),
            Protocol::Grpc,
            gzip,
            3,
        )
        .await;
        engine::run(
            plan,
            templates(16, 100),
            c,
            live.clone(),
            1_700_000_000_000_000_000,
        )
        .await;
        assert_eq!(live.requests_accepted.load(Relaxed), 240, "gzip {gzip}");
        assert_eq!(live.requests_refused.load(Relaxed), 0);
        let counts = sink.counts();
        assert_eq!(counts.requests, 240);
        assert_eq!(counts.spans, 24_000);
        assert_eq!(counts.ids_tracked, 24_000);
        assert_eq!(counts.duplicate_ids, 0);
        assert_eq!(counts.invalid_ids, 0);
        assert_eq!(counts.malformed_requests, 0);
        // The same numbers over the count endpoint.
        let url = format!("http://{}/count", sink.count_addr.expect("count addr"));
        let body = redline_loadgen::httpget::get(&url, Duration::from_secs(5))
            .await
            .expect("GET /count");
        let over_http: SinkCounts = serde_json::from_slice(&body).expect("json");
        assert_eq!(over_http, counts);
        sink.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_failures_are_refused_and_not_counted() {
    let sink = Sink::start(SinkConfig {
        fail_ratio: 0.25,
        delay: Duration::from_millis(2),
        ..Default::default()
    })
    .await
    .expect("sink starts");
    let live = Arc::new(Live::new(4));
    let plan = Plan {
        rate_rps: Some(4000.0),
        stop: Stop::Requests(400),
        connections: 2,
        concurrency: 16,
        retry: Default::default(),
        pacing: Pacing::Thread,
    };
    let c = conns(format!("http://{}", sink.addr), Protocol::Grpc, false, 2).await;
    engine::run(plan, templates(4, 10), c, live.clone(), 0).await;
    let counts = wait_counts(&sink, 400).await;
    let refused = live.requests_refused.load(Relaxed);
    assert_eq!(live.requests_sent.load(Relaxed), 400);
    assert_eq!(counts.refused_requests, refused);
    assert_eq!(counts.requests, live.requests_accepted.load(Relaxed));
    assert_eq!(counts.spans, live.spans_accepted.load(Relaxed));
    assert!(
        (60..=140).contains(&refused),
        "{refused} of 400 refused at 25%"
    );
    let by = live.refused_by_status.lock().expect("lock").clone();
    assert_eq!(by.get("UNAVAILABLE"), Some(&(refused, refused * 10)));
    assert_eq!(live.uncertain_requests.load(Relaxed), 0);
    sink.stop().await;
}

/// A minimal OTLP/HTTP receiver: gunzips, validates with the wire walker, answers 503 to
/// every fourth request.
async fn http_receiver() -> (std::net::SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>) {
    let spans = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let (s2, c2) = (spans.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
            let (spans, calls) = (s2.clone(), c2.clone());
            async move {
                let n = calls.fetch_add(1, Relaxed);
                assert_eq!(
                    headers.get("content-type").expect("content type"),
                    "application/x-protobuf"
                );
                let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(&body[..])
                        .read_to_end(&mut out)
                        .expect("gzip");
                    out
                } else {
                    body.to_vec()
                };
                if n % 4 == 3 {
                    return (http::StatusCode::SERVICE_UNAVAILABLE, Vec::new());
                }
                let stats = redline_otlp_wire::validate(&raw).expect("valid request");
                spans.fetch_add(stats.spans as u64, Relaxed);
                (http::StatusCode::OK, Vec::new())
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, spans, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_with_and_without_gzip() {
    for gzip in [false, true] {
        let (addr, spans, calls) = http_receiver().await;
        let live = Arc::new(Live::new(8));
        let plan = Plan {
            rate_rps: None,
            stop: Stop::Requests(100),
            connections: 2,
            concurrency: 3,
            retry: Default::default(),
            pacing: Pacing::Thread,
        };
        let c = conns(format!("http://{addr}"), Protocol::Http, gzip, 2).await;
        engine::run(plan, templates(8, 50), c, live.clone(), 0).await;
        assert_eq!(calls.load(Relaxed), 100);
        assert_eq!(live.requests_accepted.load(Relaxed), 75, "gzip {gzip}");
        assert_eq!(live.spans_accepted.load(Relaxed), spans.load(Relaxed));
        let by = live.refused_by_status.lock().expect("lock").clone();
        assert_eq!(by.get("HTTP 503"), Some(&(25, 25 * 50)));
    }
}

#[test]
fn the_binary_runs_against_its_own_sink() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--endpoint",
            "sink",
            "--sink",
            "127.0.0.1:0",
            "--sink-check",
            "--spans",
            "5k",
            "--spans-per-request",
            "50",
            "--templates",
            "8",
            "--quiet",
            "--json",
            "-",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(r["sent"]["spans"], 5000);
    assert_eq!(r["sent"]["requests"], 100);
    assert_eq!(r["accepted"]["spans"], 5000);
    assert_eq!(r["refused"]["spans"], 0);
    assert_eq!(r["sink"]["spans"], 5000);
    assert_eq!(r["sink"]["duplicate_ids"], 0);
    assert_eq!(r["latency"]["measured_from"], "send");

    // Bad flags are a usage error with a non-zero exit.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--endpoint", "sink", "--spans", "10"])
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--endpoint sink needs --sink"));
}

/// One export to `addr` with `grpc-encoding: snappy` (the framed format, as otelcol and
/// Redline's `otlp` exporter send it); the grpc-status of the answer.
async fn snappy_export(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    use http_body_util::BodyExt;
    use std::io::Write;
    use tonic::codegen::Service;
    let mut w = snap::write::FrameEncoder::new(Vec::new());
    w.write_all(raw).expect("in-memory write");
    let framed = w.into_inner().expect("in-memory flush");
    let mut body = vec![1u8];
    body.extend_from_slice(&(framed.len() as u32).to_be_bytes());
    body.extend_from_slice(&framed);
    let mut channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connects");
    let req = http::Request::post(format!(
        "http://{addr}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("grpc-encoding", "snappy")
    .body(tonic::body::Body::new(http_body_util::Full::new(
        bytes::Bytes::from(body),
    )))
    .expect("request");
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .expect("ready");
    let resp = channel.call(req).await.expect("answered");
    let headers = resp.headers().clone();
    let trailers = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .trailers()
        .cloned()
        .unwrap_or_default();
    let status = headers
        .get("grpc-status")
        .or_else(|| trailers.get("grpc-status"))
        .expect("a grpc-status");
    status.to_str().expect("ascii").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_takes_snappy_requests() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    let sink = Sink::start(SinkConfig::default())
        .await
        .expect("sink starts");
    let spans = (1..=3u8)
        .map(|i| Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            name: format!("op-{i}"),
            ..Default::default()
        })
        .collect();
    let raw = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    assert_eq!(snappy_export(sink.addr, &raw).await, "0");
    let counts = wait_counts(&sink, 1).await;
    assert_eq!(counts.requests, 1);
    assert_eq!(counts.spans, 3);
    assert_eq!(
        counts.bytes,
        raw.len() as u64,
        "counted after decompression"
    );
    sink.stop().await;
}

//! A fake OTLP/HTTP server for the `otlphttp` tests: an axum (hyper) server on a loopback
//! port that records every request (path, headers, body as received and decompressed) and
//! answers as planned.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use parking_lot::Mutex;
use prost::Message;
use redline_otlp_exporter::HttpConfig;
use redline_pipeline::rpc_status::{encode_status, ExportResponse, PartialSuccess};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ComponentId, Signal};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::support::fast_retries;
pub use crate::support::{eventually, Started};

/// How the server answers the next request.
pub enum Answer {
    /// A status with a `google.rpc.Status` body, and `Retry-After` when given.
    Fail(u16, Option<&'static str>),
    /// 200 with a protobuf partial success rejecting this many items.
    Reject(i64),
    /// 200 with a JSON partial success rejecting this many items.
    RejectJson(i64),
    /// 200 once the gate gives a permit.
    Gate(Arc<Semaphore>),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    /// As on the wire.
    pub body: Bytes,
    /// After undoing `Content-Encoding`.
    pub decoded: Vec<u8>,
    pub at: Instant,
    /// Answered with a 2xx.
    pub accepted: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct State_ {
    plan: Mutex<VecDeque<Answer>>,
    got: Mutex<Vec<Received>>,
}

pub struct HttpSink {
    pub addr: SocketAddr,
    state: Arc<State_>,
    task: JoinHandle<()>,
}

fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some("zlib") | Some("deflate") => {
            flate2::read::ZlibDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid zlib");
        }
        Some("zstd") => out = zstd::stream::decode_all(body).expect("valid zstd"),
        // otelcol's `snappy` is the block format, `x-snappy-framed` the framed one.
        Some("snappy") => {
            out = snap::raw::Decoder::new()
                .decompress_vec(body)
                .expect("a valid snappy block")
        }
        Some("x-snappy-framed") => {
            snap::read::FrameDecoder::new(body)
                .read_to_end(&mut out)
                .expect("a valid snappy framed stream");
        }
        Some(other) => panic!("unexpected content-encoding {other}"),
    }
    out
}

async fn handle(
    State(state): State<Arc<State_>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let index = {
        let mut got = state.got.lock();
        got.push(Received {
            path: uri.path().to_owned(),
            decoded: decode(encoding.as_deref(), &body),
            headers,
            body,
            at: Instant::now(),
            accepted: false,
        });
        got.len() - 1
    };
    let accept = || {
        if let Some(r) = state.got.lock().get_mut(index) {
            r.accepted = true;
        }
    };
    let next = state.plan.lock().pop_front();
    let protobuf = |body: Vec<u8>| {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-protobuf"),
        );
        r
    };
    match next {
        None => {
            accept();
            protobuf(ExportResponse::default().encode_to_vec())
        }
        Some(Answer::Gate(gate)) => {
            let _permit = gate.acquire().await;
            accept();
            protobuf(Vec::new())
        }
        Some(Answer::Reject(n)) => {
            accept();
            protobuf(
                ExportResponse {
                    partial_success: Some(PartialSuccess {
                        rejected: n,
                        error_message: "planned rejection".into(),
                    }),
                }
                .encode_to_vec(),
            )
        }
        Some(Answer::RejectJson(n)) => {
            accept();
            let body = format!(
                r#"{{"partialSuccess":{{"rejectedLogRecords":"{n}","errorMessage":"no"}}}}"#
            );
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            r
        }
        Some(Answer::Fail(status, retry_after)) => {
            let body = encode_status(14, "planned failure", None);
            let mut r = (StatusCode::from_u16(status).expect("status"), body).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-protobuf"),
            );
            if let Some(v) = retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static(v));
            }
            r
        }
    }
}

impl HttpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State_::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn plan(&self, a: Answer) {
        self.state.plan.lock().push_back(a);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().clone()
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![string("service.name", service)],
        ..Default::default()
    })
}

/// A request of `n` spans; `tag` makes requests distinguishable.
pub fn traces(n: usize, tag: u8) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![tag; 16],
                        span_id: vec![tag, i as u8, 0, 0, 0, 0, 0, 1],
                        name: format!("op-{tag}-{i}"),
                        start_time_unix_nano: 1_000,
                        end_time_unix_nano: 2_000,
                        attributes: vec![string("http.route", "/cart")],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request of one gauge with `n` points.
pub fn metrics(n: usize, tag: u8) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: format!("queue.depth.{tag}"),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..n)
                            .map(|i| NumberDataPoint {
                                time_unix_nano: 1_000 + i as u64,
                                value: Some(number_data_point::Value::AsDouble(i as f64 + 0.5)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request of `n` log records.
pub fn logs(n: usize, tag: u8) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("checkout"),
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_000,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("line {tag}-{i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A batch of `signal` with `n` items.
pub fn batch(signal: Signal, n: usize, tag: u8) -> Batch {
    let raw = match signal {
        Signal::Traces => traces(n, tag).encode_to_vec(),
        Signal::Metrics => metrics(n, tag).encode_to_vec(),
        Signal::Logs => logs(n, tag).encode_to_vec(),
    };
    Batch::new(signal, Bytes::from(raw), n)
}

/// Fast retries, one sender (so tests control ordering), no compression.
pub fn config(base: &str) -> HttpConfig {
    let mut c = HttpConfig::new(base);
    c.compression = redline_otlp_exporter::config::HttpCompression::None;
    c.retry_on_failure = fast_retries();
    c.sending_queue.num_consumers = 1;
    c
}

/// Starts `otlphttp/x` for `signal` on `telemetry`.
pub fn start_on(telemetry: &Telemetry, config: HttpConfig, signal: Signal) -> Started {
    let ctx = BuildContext::new(telemetry.clone());
    let id = ComponentId::new("otlphttp", Some("x"));
    let (consumer, running) =
        redline_otlp_exporter::start_http(&id, config, &ctx, signal).expect("starts");
    Started {
        consumer,
        running,
        counters: telemetry.exporter("otlphttp/x", signal),
    }
}

pub fn start(config: HttpConfig, signal: Signal) -> Started {
    start_on(&Telemetry::new(), config, signal)
}

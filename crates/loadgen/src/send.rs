//! Senders: OTLP/gRPC over one tonic channel (one HTTP/2 connection) each, and OTLP/HTTP
//! protobuf over hyper HTTP/1.1 connections. Bodies are pre-encoded bytes; only gzip (when
//! asked) costs CPU on the sending side.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

use crate::codec::{code_name, ClientCodec};
use crate::signal::Signal;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// How one request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The collector took the request; `rejected_spans` (spans, data points or log records)
    /// from its `partial_success`.
    Accepted { rejected_spans: u64 },
    /// Refused with `status` (`UNAVAILABLE`, `HTTP 503`, ...). `uncertain` when the request
    /// may have been processed anyway (a timeout or a connection lost mid-request).
    Refused { status: String, uncertain: bool },
}

impl Outcome {
    /// A definite refusal an OTLP client retries (never an uncertain one: resending a
    /// request the collector may have counted would break exact verification).
    pub fn is_retryable(&self) -> bool {
        match self {
            Outcome::Accepted { .. } => false,
            Outcome::Refused {
                uncertain: true, ..
            } => false,
            Outcome::Refused { status, .. } => matches!(
                status.as_str(),
                "UNAVAILABLE"
                    | "RESOURCE_EXHAUSTED"
                    | "HTTP 429"
                    | "HTTP 502"
                    | "HTTP 503"
                    | "HTTP 504"
            ),
        }
    }
}

/// Sends one pre-encoded export request (of the target's signal).
pub trait Sender: Clone + Send + Sync + 'static {
    fn send(&self, body: Bytes) -> impl Future<Output = Outcome> + Send;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Grpc,
    Http,
    /// Zipkin v2 JSON over HTTP (traces only), to a collector's `zipkin` receiver.
    Zipkin,
    /// Jaeger Thrift over HTTP (traces only, one batch per resource), to a collector's
    /// `jaeger` receiver's `thrift_http`.
    Jaeger,
    /// Jaeger's gRPC API (traces only, one `PostSpans` call per resource, as jaeger-agent
    /// sends them), to a `jaeger` receiver's `grpc`.
    JaegerGrpc,
    /// Fluent Forward events over TCP (logs only, one acknowledged PackedForward event per
    /// request, as Fluent Bit's `forward` output sends them), to a `fluent_forward` receiver.
    Fluent,
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Target {
    pub endpoint: String,
    pub protocol: Protocol,
    pub gzip: bool,
    pub timeout: Duration,
    /// Which `Export` method (gRPC) or path (HTTP, when the endpoint has none) to send to.
    pub signal: Signal,
    /// Sent with every request (HTTP headers, gRPC metadata): credentials, tenant ids.
    pub headers: http::HeaderMap,
}

/// `host:port` or a URL; `http://` is added when there is no scheme.
pub fn normalize_endpoint(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

/// A sender of any protocol.
#[derive(Clone)]
pub enum Conn {
    Grpc(GrpcSender),
    Http(HttpSender),
    Fluent(FluentSender),
}

impl Conn {
    /// Opens one connection (gRPC) or prepares a connection pool (HTTP, connected lazily).
    pub async fn connect(target: &Target) -> Result<Self, SendError> {
        match target.protocol {
            Protocol::Grpc | Protocol::JaegerGrpc => {
                GrpcSender::connect(target).await.map(Conn::Grpc)
            }
            Protocol::Http | Protocol::Zipkin | Protocol::Jaeger => {
                HttpSender::new(target).map(Conn::Http)
            }
            Protocol::Fluent => Ok(Conn::Fluent(FluentSender::new(target))),
        }
    }
}

impl Sender for Conn {
    async fn send(&self, body: Bytes) -> Outcome {
        match self {
            Conn::Grpc(g) => g.send(body).await,
            Conn::Http(h) => h.send(body).await,
            Conn::Fluent(f) => f.send(body).await,
        }
    }
}

#[derive(Clone)]
pub struct GrpcSender {
    client: tonic::client::Grpc<Channel>,
    path: &'static str,
    metadata: http::HeaderMap,
    /// Each OTLP request sent as Jaeger `PostSpans` calls.
    jaeger: bool,
}

impl GrpcSender {
    pub async fn connect(target: &Target) -> Result<Self, SendError> {
        let url = normalize_endpoint(&target.endpoint);
        let bad = |reason: String| SendError::Endpoint {
            endpoint: target.endpoint.clone(),
            reason,
        };
        let ep = Endpoint::from_shared(url.clone())
            .map_err(|e| bad(e.to_string()))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .timeout(target.timeout)
            // Requests are ~40 KB: windows above the 64 KB default let several streams of
            // one connection be in flight without waiting for WINDOW_UPDATEs.
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(8 << 20);
        let channel = ep.connect().await.map_err(|e| SendError::Connect {
            endpoint: url,
            source: Box::new(e),
        })?;
        let mut client = tonic::client::Grpc::new(channel).max_decoding_message_size(4 << 20);
        if target.gzip {
            // grpc-go answers a gzip request in gzip whatever the client accepts, and tonic
            // reads a compressed answer it did not ask for as UNIMPLEMENTED.
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let jaeger = target.protocol == Protocol::JaegerGrpc;
        Ok(Self {
            client,
            path: if jaeger {
                "/jaeger.api_v2.CollectorService/PostSpans"
            } else {
                target.signal.export_path()
            },
            metadata: target.headers.clone(),
            jaeger,
        })
    }

    pub async fn send(&self, body: Bytes) -> Outcome {
        if !self.jaeger {
            return self.call(body).await;
        }
        match crate::jaeger::to_post_spans(&body) {
            Ok(calls) => in_parts(calls, |call| self.call(Bytes::from(call))).await,
            Err(_) => Outcome::Refused {
                status: "JAEGER_ENCODE_ERROR".into(),
                uncertain: false,
            },
        }
    }

    async fn call(&self, body: Bytes) -> Outcome {
        let mut client = self.client.clone();
        if let Err(e) = client.ready().await {
            tracing::debug!(error = %e, "gRPC channel not ready");
            return Outcome::Refused {
                status: "UNAVAILABLE".into(),
                uncertain: false,
            };
        }
        let path = PathAndQuery::from_static(self.path);
        match client.unary(self.request(body), path, ClientCodec).await {
            Ok(resp) => Outcome::Accepted {
                rejected_spans: rejected(resp.into_inner()),
            },
            Err(status) => {
                let code = status.code();
                // A status made from a transport error (reset, timeout) leaves open whether
                // the server processed the request; one the server sent does not.
                let uncertain = std::error::Error::source(&status).is_some()
                    || matches!(
                        code,
                        tonic::Code::DeadlineExceeded
                            | tonic::Code::Cancelled
                            | tonic::Code::Unknown
                    );
                Outcome::Refused {
                    status: code_name(code).into(),
                    uncertain,
                }
            }
        }
    }
}

impl GrpcSender {
    fn request(&self, body: Bytes) -> tonic::Request<Bytes> {
        if self.metadata.is_empty() {
            return tonic::Request::new(body);
        }
        tonic::Request::from_parts(
            tonic::metadata::MetadataMap::from_headers(self.metadata.clone()),
            tonic::Extensions::default(),
            body,
        )
    }
}

fn rejected(resp: ExportTraceServiceResponse) -> u64 {
    resp.partial_success
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// OTLP/HTTP protobuf. HTTP/1.1 carries one request at a time per connection, so the pool
/// grows to as many connections as there are requests in flight on this sender.
#[derive(Clone)]
pub struct HttpSender {
    addr: String,
    /// Origin-form target (`/v1/traces`, `/v1/metrics`, `/v1/logs`), as HTTP/1.1 servers
    /// expect without a proxy.
    path: String,
    host: String,
    gzip: bool,
    /// Each OTLP request sent as the Zipkin v2 JSON of its spans, or as Jaeger batches.
    protocol: Protocol,
    timeout: Duration,
    headers: http::HeaderMap,
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

impl HttpSender {
    pub fn new(target: &Target) -> Result<Self, SendError> {
        let bad = |reason: String| SendError::Endpoint {
            endpoint: target.endpoint.clone(),
            reason,
        };
        let mut url = normalize_endpoint(&target.endpoint);
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported".into()));
        }
        let default_path = match target.protocol {
            Protocol::Zipkin => "/api/v2/spans",
            Protocol::Jaeger => "/api/traces",
            _ => target.signal.http_path(),
        };
        if uri.path() == "/" || uri.path().is_empty() {
            url = format!("{}{default_path}", url.trim_end_matches('/'));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        let auth = uri.authority().ok_or_else(|| bad("no host".into()))?;
        let addr = format!("{}:{}", auth.host(), auth.port_u16().unwrap_or(80));
        Ok(Self {
            host: auth.to_string(),
            addr,
            path: uri.path_and_query().map_or_else(
                || target.signal.http_path().to_owned(),
                |p| p.as_str().to_owned(),
            ),
            gzip: target.gzip,
            protocol: target.protocol,
            timeout: target.timeout,
            headers: target.headers.clone(),
            idle: Arc::new(Mutex::new(Vec::new())),
        })
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "OTLP/HTTP connection ended");
            }
        });
        Ok(sender)
    }

    pub async fn send(&self, body: Bytes) -> Outcome {
        let refused = |status: &str| Outcome::Refused {
            status: status.into(),
            uncertain: false,
        };
        match self.protocol {
            Protocol::Zipkin => match crate::zipkin::to_json(&body) {
                Ok(json) => self.post(Bytes::from(json)).await,
                Err(_) => refused("ZIPKIN_ENCODE_ERROR"),
            },
            // One request per resource, as Jaeger exporters send them.
            Protocol::Jaeger => match crate::jaeger::to_batches(&body) {
                Ok(batches) => in_parts(batches, |batch| self.post(Bytes::from(batch))).await,
                Err(_) => refused("JAEGER_ENCODE_ERROR"),
            },
            _ => self.post(body).await,
        }
    }

    async fn post(&self, body: Bytes) -> Outcome {
        let refused = |status: &str, uncertain| Outcome::Refused {
            status: status.into(),
            uncertain,
        };
        let body = if self.gzip {
            match gzip(&body) {
                Ok(b) => b,
                Err(_) => return refused("GZIP_ERROR", false),
            }
        } else {
            body
        };
        let mut sender = match self.take_idle() {
            Some(s) => s,
            None => match self.connect().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, addr = %self.addr, "OTLP/HTTP connect failed");
                    return refused("CONNECT_ERROR", false);
                }
            },
        };
        let content_type = match self.protocol {
            Protocol::Zipkin => "application/json",
            Protocol::Jaeger => "application/x-thrift",
            _ => "application/x-protobuf",
        };
        let mut req = http::Request::post(self.path.as_str())
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, content_type);
        if self.gzip {
            req = req.header(http::header::CONTENT_ENCODING, "gzip");
        }
        if let Some(headers) = req.headers_mut() {
            headers.extend(self.headers.clone());
        }
        let Ok(req) = req.body(Full::new(body)) else {
            return refused("BAD_REQUEST", false);
        };
        let exchange = async {
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), 4 << 20)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let result = tokio::time::timeout(self.timeout, exchange).await;
        // Zipkin and Jaeger collectors answer 202 without a body.
        let foreign = matches!(self.protocol, Protocol::Zipkin | Protocol::Jaeger);
        match result {
            Ok(Ok((status, body))) => {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(sender);
                }
                if foreign && status == http::StatusCode::ACCEPTED {
                    Outcome::Accepted { rejected_spans: 0 }
                } else if status == http::StatusCode::OK {
                    Outcome::Accepted {
                        rejected_spans: ExportTraceServiceResponse::decode(body)
                            .map_or(0, rejected),
                    }
                } else {
                    refused(&format!("HTTP {}", status.as_u16()), false)
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "OTLP/HTTP request failed");
                refused("IO_ERROR", true)
            }
            Err(_) => refused("TIMEOUT", true),
        }
    }
}

/// One TCP connection to a `fluent_forward` receiver, opened when first needed and again
/// after a failure; its requests go one at a time, each waiting for its acknowledgement.
#[derive(Clone)]
pub struct FluentSender {
    addr: String,
    timeout: Duration,
    stream: Arc<tokio::sync::Mutex<Option<tokio::net::TcpStream>>>,
    /// Makes every chunk id of the process unique.
    chunks: Arc<std::sync::atomic::AtomicU64>,
}

impl FluentSender {
    pub fn new(target: &Target) -> Self {
        let endpoint = &target.endpoint;
        let addr = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, a)| a);
        Self {
            addr: addr.trim_end_matches('/').to_owned(),
            timeout: target.timeout,
            stream: Arc::default(),
            chunks: Arc::default(),
        }
    }

    pub async fn send(&self, body: Bytes) -> Outcome {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let refused = |status: &str, uncertain| Outcome::Refused {
            status: status.into(),
            uncertain,
        };
        let n = self
            .chunks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let chunk = format!("loadgen-{}-{n}", std::process::id());
        let Ok((event, _)) = crate::fluent::to_event(&body, &chunk) else {
            return refused("FLUENT_ENCODE_ERROR", false);
        };
        let want = crate::fluent::ack(&chunk);
        let mut guard = self.stream.lock().await;
        if guard.is_none() {
            match tokio::net::TcpStream::connect(&self.addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    *guard = Some(stream);
                }
                Err(e) => {
                    tracing::debug!(error = %e, addr = %self.addr, "Fluent Forward connect failed");
                    return refused("CONNECT_ERROR", false);
                }
            }
        }
        let Some(stream) = guard.as_mut() else {
            return refused("CONNECT_ERROR", false);
        };
        let exchange = async {
            stream.write_all(&event).await?;
            let mut got = vec![0u8; want.len()];
            stream.read_exact(&mut got).await?;
            Ok::<_, std::io::Error>(got)
        };
        let outcome = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(got)) if got == want => return Outcome::Accepted { rejected_spans: 0 },
            Ok(Ok(_)) => refused("BAD_ACK", true),
            // Closed without an acknowledgement: the receiver did not take the event.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "Fluent Forward exchange failed");
                refused("IO_ERROR", false)
            }
            // It may still take it.
            Err(_) => refused("TIMEOUT", true),
        };
        *guard = None;
        outcome
    }
}

/// Sends one OTLP request's parts (Jaeger batches, one per resource) one after another. A
/// refusal of the first is the OTLP request's (resent whole); after one was taken, the spans
/// of the refused ones count as rejected, not resent, as a Jaeger client drops them, so no
/// span reaches the sink twice.
async fn in_parts<F, Fut>(parts: Vec<(Vec<u8>, usize)>, mut send: F) -> Outcome
where
    F: FnMut(Vec<u8>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let (mut rejected_spans, mut dropping) = (0, false);
    for (i, (part, spans)) in parts.into_iter().enumerate() {
        if !dropping {
            match send(part).await {
                Outcome::Accepted { .. } => continue,
                refusal if i == 0 => return refusal,
                _ => dropping = true,
            }
        }
        rejected_spans += spans as u64;
    }
    Outcome::Accepted { rejected_spans }
}

fn gzip(b: &[u8]) -> std::io::Result<Bytes> {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(b.len() / 4), flate2::Compression::fast());
    enc.write_all(b)?;
    Ok(Bytes::from(enc.finish()?))
}

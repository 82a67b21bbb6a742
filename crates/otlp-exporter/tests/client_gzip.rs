//! A client's gzip forwarded as it came: a running pipeline (the `otlp` receiver, the
//! exporters, a `transform` processor on a second pipeline) built from YAML on loopback, fed
//! gzip by an OTLP/HTTP client and a gRPC client, each sink recording what arrived on the
//! wire.

mod common;
// Both sinks re-export the shared helpers; this file takes them from `common`.
#[allow(unused_imports)]
mod http_sink;
mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use prost::Message;
use redline_otlp_exporter::config::{Compression, Sizer};
use redline_pipeline::config::load_str;
use redline_pipeline::extension::{ExtensionCapabilities, Extensions};
use redline_pipeline::service::Service;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ComponentId, Factories, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use common::{eventually, request, Sink};
use http_sink::HttpSink;
use support::{DirStorage, Started};

const CONFIG: &str = "\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
processors:
  transform:
    trace_statements:
      - context: span
        statements:
          - set(attributes[\"edited\"], true)
exporters:
  otlp/gzip:
    endpoint: {gzip}
    tls:
      insecure: true
  otlp/level9:
    endpoint: {level9}
    compression_params:
      level: 9
    tls:
      insecure: true
  otlp/none:
    endpoint: {none}
    compression: none
    tls:
      insecure: true
  otlp/zstd:
    endpoint: {zstd}
    compression: zstd
    tls:
      insecure: true
  otlphttp:
    endpoint: {http}
  otlphttp/json:
    endpoint: {json}
    encoding: json
  otlp/edited:
    endpoint: {edited}
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/gzip, otlp/level9, otlp/none, otlp/zstd, otlphttp, otlphttp/json]
    traces/edited:
      receivers: [otlp]
      processors: [transform]
      exporters: [otlp/edited]
";

fn gzip(data: &[u8], level: u32) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).expect("in memory");
    Bytes::from(e.finish().expect("in memory"))
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(data), &mut out)
        .expect("valid gzip");
    out
}

/// One OTLP/HTTP POST over a fresh connection; the status code.
async fn post_http(addr: SocketAddr, encoding: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Encoding: {encoding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("writes");
    s.write_all(body).await.expect("writes");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("reads");
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// One gRPC `Export` whose message is `gz` as it is (compressed flag set, `grpc-encoding:
/// gzip`); the call's grpc-status.
async fn export_grpc_gzip(addr: SocketAddr, gz: &Bytes) -> String {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("an endpoint")
        .connect()
        .await
        .expect("connects");
    let mut message = BytesMut::with_capacity(5 + gz.len());
    message.put_u8(1);
    message.put_u32(u32::try_from(gz.len()).expect("small"));
    message.put_slice(gz);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{addr}/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", "gzip")
        .body(tonic::body::Body::new(Full::new(message.freeze())))
        .expect("a request");
    let resp = channel.oneshot(req).await.expect("answered");
    let in_headers = resp.headers().get("grpc-status").cloned();
    let collected = resp.into_body().collect().await.expect("a body");
    let status = in_headers.or_else(|| collected.trailers()?.get("grpc-status").cloned());
    status
        .and_then(|s| s.to_str().ok().map(str::to_owned))
        .unwrap_or_default()
}

fn addr_of(service: &Service, transport: &str) -> SocketAddr {
    service
        .local_addrs()
        .into_iter()
        .find(|(id, name, _)| id == "otlp" && *name == transport)
        .map(|(_, _, a)| a)
        .unwrap_or_else(|| panic!("the receiver serves {transport}"))
}

/// 60 spans: large enough that its gzip is much smaller than it (else it is not kept).
fn traffic(tag: u8) -> Vec<u8> {
    request(&format!("svc-{tag}"), 60, tag).encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_gzip_goes_on_as_it_came_unless_the_batch_changed() {
    let (gzip_sink, level9, none, zstd, edited) = (
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
        Sink::start().await,
    );
    let (http, json) = (HttpSink::start().await, HttpSink::start().await);
    let yaml = CONFIG
        .replace("{gzip}", &gzip_sink.addr.to_string())
        .replace("{level9}", &level9.addr.to_string())
        .replace("{none}", &none.addr.to_string())
        .replace("{zstd}", &zstd.addr.to_string())
        .replace("{http}", &http.url())
        .replace("{json}", &json.url())
        .replace("{edited}", &edited.addr.to_string());
    let mut factories = Factories::default();
    factories
        .receiver(redline_otlp_receiver::OtlpReceiverFactory)
        .processor(redline_transform_processor::TransformProcessorFactory)
        .exporter(redline_otlp_exporter::OtlpExporterFactory)
        .exporter(redline_otlp_exporter::OtlpHttpExporterFactory);
    let config = load_str("client_gzip.yaml", &yaml).expect("loads");
    let service = Service::start(&config, &factories, BuildContext::new(Telemetry::new()))
        .await
        .expect("starts");

    // Level 1 over HTTP, level 9 over gRPC: neither is the exporters' 6, and both go on.
    let (raw_http, raw_grpc) = (traffic(1), traffic(2));
    let (gz_http, gz_grpc) = (gzip(&raw_http, 1), gzip(&raw_grpc, 9));
    assert_eq!(
        post_http(addr_of(&service, "http"), "gzip", &gz_http).await,
        200
    );
    assert_eq!(
        export_grpc_gzip(addr_of(&service, "grpc"), &gz_grpc).await,
        "0"
    );

    let all_arrived = || {
        [&gzip_sink, &level9, &none, &zstd, &edited]
            .iter()
            .all(|s| s.accepted().len() == 2)
            && http.accepted().len() == 2
            && json.accepted().len() == 2
    };
    assert!(
        eventually(all_arrived).await,
        "every exporter delivered both"
    );
    let by_raw = |payloads: Vec<(Vec<u8>, Bytes)>, raw: &[u8]| {
        payloads
            .into_iter()
            .find(|(decoded, _)| decoded == raw)
            .map(|(_, wire)| wire)
            .unwrap_or_else(|| panic!("a request decoding to the one sent"))
    };

    // gzip exporters, gRPC and HTTP, at their level or another: the client's bytes.
    for sink in [&gzip_sink, &level9] {
        let got: Vec<_> = sink
            .accepted()
            .into_iter()
            .map(|r| {
                assert!(r.compressed);
                assert_eq!(
                    r.headers.get("grpc-encoding").map(|v| v.as_bytes()),
                    Some(&b"gzip"[..])
                );
                (gunzip(&r.payload), r.payload)
            })
            .collect();
        assert_eq!(
            by_raw(got.clone(), &raw_http),
            gz_http,
            "HTTP client's gzip"
        );
        assert_eq!(by_raw(got, &raw_grpc), gz_grpc, "gRPC client's gzip");
    }
    let got: Vec<_> = http
        .accepted()
        .into_iter()
        .map(|r| {
            assert_eq!(r.header("content-encoding"), Some("gzip"));
            (r.decoded, r.body)
        })
        .collect();
    assert_eq!(
        by_raw(got.clone(), &raw_http),
        gz_http,
        "otlphttp, HTTP client"
    );
    assert_eq!(by_raw(got, &raw_grpc), gz_grpc, "otlphttp, gRPC client");

    // `compression: none` and zstd: unaffected, the request's own bytes as before.
    for r in none.accepted() {
        assert!(!r.compressed);
        assert!(r.payload == raw_http[..] || r.payload == raw_grpc[..]);
    }
    for r in zstd.accepted() {
        assert_eq!(
            r.headers.get("grpc-encoding").map(|v| v.as_bytes()),
            Some(&b"zstd"[..])
        );
        let plain = zstd::stream::decode_all(&r.payload[..]).expect("zstd");
        assert!(plain == raw_http || plain == raw_grpc);
    }
    // JSON: gzip of the converted body, never the client's protobuf gzip.
    for r in json.accepted() {
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.body != gz_http && r.body != gz_grpc);
        assert!(r.decoded.starts_with(b"{"), "JSON");
    }

    // A processor changed the batch: compressed anew, from the edited request.
    for r in edited.accepted() {
        assert!(r.compressed);
        assert!(r.payload != gz_http && r.payload != gz_grpc);
        let plain = gunzip(&r.payload);
        assert!(plain != raw_http && plain != raw_grpc, "edited");
        let spans = &r.request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 60);
        assert!(spans
            .iter()
            .all(|s| s.attributes.iter().any(|a| a.key == "edited")));
    }

    let errors = service
        .shutdown(Instant::now() + Duration::from_secs(10))
        .await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_member_or_uncompressible_body_is_compressed_anew() {
    let sink = Sink::start().await;
    let yaml = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n\
         exporters:\n  otlp:\n    endpoint: {}\n    tls:\n      insecure: true\n\
         service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n    traces:\n\
         \x20     receivers: [otlp]\n      exporters: [otlp]\n",
        sink.addr
    );
    let mut factories = Factories::default();
    factories
        .receiver(redline_otlp_receiver::OtlpReceiverFactory)
        .exporter(redline_otlp_exporter::OtlpExporterFactory);
    let config = load_str("client_gzip.yaml", &yaml).expect("loads");
    let service = Service::start(&config, &factories, BuildContext::new(Telemetry::new()))
        .await
        .expect("starts");
    let http = addr_of(&service, "http");

    // Two members: read whole, as Go's gzip reader does, but not every receiver would.
    let raw = traffic(3);
    let (a, b) = raw.split_at(raw.len() / 2);
    let two = [gzip(a, 6).to_vec(), gzip(b, 6).to_vec()].concat();
    assert_eq!(post_http(http, "gzip", &two).await, 200);
    // A one-span request: its gzip is no smaller than it, so it is not kept.
    let tiny = request("t", 1, 4).encode_to_vec();
    let tiny_gz = gzip(&tiny, 0);
    assert!(tiny_gz.len() > tiny.len());
    assert_eq!(post_http(http, "gzip", &tiny_gz).await, 200);

    assert!(eventually(|| sink.accepted().len() == 2).await);
    for r in sink.accepted() {
        assert!(r.compressed);
        assert!(r.payload[..] != two[..] && r.payload != tiny_gz);
        let plain = gunzip(&r.payload);
        assert!(
            plain == raw || plain == tiny,
            "the request, compressed by Redline"
        );
    }
    let errors = service
        .shutdown(Instant::now() + Duration::from_secs(10))
        .await;
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test]
async fn a_frame_counts_against_the_queue_only_where_it_is_kept() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let raw = Bytes::from(traffic(5));
    let gz = gzip(&raw, 6);
    let framed = || Batch::traces(raw.clone(), 60).with_gzip_frame(&raw, gz.clone());
    let both = (raw.len() + gz.len()) as u64;
    let cases = [
        // Kept in memory for sending: the queue holds both, and counts both.
        ("gzip", Compression::Gzip, false, both - 1, false),
        ("gzip-room", Compression::Gzip, false, both, true),
        // Let go of before queueing: the request alone is held and counted.
        ("none", Compression::None, false, both - 1, true),
        ("zstd", Compression::Zstd, false, both - 1, true),
        ("gzip-disk", Compression::Gzip, true, both - 1, true),
    ];
    let mut delivered = 0;
    for (name, compression, disk, room, fits) in cases {
        let telemetry = Telemetry::new();
        let mut extensions = Extensions::default();
        extensions.insert(
            ComponentId::new("file_storage", None),
            ExtensionCapabilities {
                storage: Some(std::sync::Arc::new(DirStorage {
                    root: dir.path().join(name),
                })),
                ..ExtensionCapabilities::default()
            },
        );
        let ctx = BuildContext::new(telemetry.clone()).with_extensions(extensions);
        let mut c = common::config(sink.addr);
        c.compression = compression;
        c.sending_queue.sizer = Sizer::Bytes;
        c.sending_queue.queue_size = room;
        if disk {
            c.sending_queue.storage = Some("file_storage".into());
        }
        let id = ComponentId::new("otlp", Some(name));
        let (consumer, running) =
            redline_otlp_exporter::start(&id, c, &ctx, Signal::Traces).expect("starts");
        let s = Started {
            consumer,
            running,
            counters: telemetry.exporter(&id.to_string(), Signal::Traces),
        };
        assert_eq!(s.consumer.reserve(&framed()).is_ok(), fits, "{name}");
        if fits {
            s.consumer.consume(framed()).expect("queued");
            delivered += 1;
            assert!(eventually(|| s.sent() == 60).await, "{name}: delivered");
            assert!(
                eventually(|| sink.accepted().len() == delivered).await,
                "{name}"
            );
            // Nothing of the frame stays counted once the batch is delivered.
            let whole = Batch::traces(Bytes::from(vec![0u8; room as usize]), 1);
            assert!(s.consumer.reserve(&whole).is_ok(), "{name}: all room back");
            let wire = sink.accepted()[delivered - 1].payload.clone();
            assert_eq!(
                wire == gz,
                name == "gzip-room",
                "{name}: the client's gzip only from memory, with gzip"
            );
        }
        s.shutdown_ok().await;
    }
}

//! OTLP/HTTP with protobuf bodies on 127.0.0.1:0 against hyper's client: compression, size
//! limits, malformed bodies, status codes, paths and response headers.

mod common;

use bytes::Bytes;
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use common::http_client::{post, send, PB};
use common::requests::{big_request, gzip, request, span};
use common::{loopback_config_with_http, rpc, Receiver, Recorder};

#[tokio::test]
async fn http_protobuf_export() {
    let h = Receiver::both().await;
    let req = request(vec![span(1), span(2)]);
    let a = post(&h.traces_url(), Some(PB), None, req.encode_to_vec()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["content-type"], PB);
    let resp = ExportTraceServiceResponse::decode(a.body).expect("protobuf response");
    assert_eq!(resp.partial_success, None);
    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].raw.as_ref(), req.encode_to_vec().as_slice());
    assert_eq!(got[0].items, 2);
    assert_eq!(h.accepted("http"), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn http_gzip_protobuf_export() {
    let h = Receiver::both().await;
    let req = request(vec![span(1)]);
    let a = post(
        &h.traces_url(),
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
    let h = Receiver::both().await;
    let url = h.traces_url();
    let a = post(
        &url,
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

    let a = post(&url, Some("application/json"), None, "{not json").await;
    assert_eq!(a.status, 400);

    let a = post(&url, Some(PB), None, vec![0x0a, 0x7f, 0x01]).await;
    assert_eq!(a.status, 400);
    let status = rpc::Status::decode(a.body).expect("protobuf status");
    assert_eq!(status.code, 3);
    assert!(status.message.contains("malformed"), "{}", status.message);

    let a = post(&url, Some(PB), Some("gzip"), "not gzip").await;
    assert_eq!(a.status, 400);

    assert!(h.batches().is_empty());
    assert_eq!(h.refused("http"), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn http_size_limits_and_gzip_bomb() {
    let config = loopback_config_with_http(|hc| hc.max_request_body_size = 1 << 20);
    let h = Receiver::start(config, Recorder::default()).await;
    let url = h.traces_url();

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
    let h = Receiver::both().await;
    let url = h.traces_url();
    let body = request(vec![span(1)]).encode_to_vec();

    let a = post(&url, Some("text/plain"), None, body.clone()).await;
    assert_eq!(a.status, 415);
    let a = post(&url, None, None, body.clone()).await;
    assert_eq!(a.status, 415);
    // otelcol's answer to an encoding it does not decode.
    let a = post(&url, Some(PB), Some("br"), body.clone()).await;
    assert_eq!(a.status, 400);

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
async fn http_response_headers_and_custom_path() {
    let config = loopback_config_with_http(|hc| {
        hc.traces_url_path = "custom/{traces}".into();
        hc.response_headers
            .insert("x-served-by".into(), "redline".into());
    });
    let h = Receiver::start(config, Recorder::default()).await;
    let body = request(vec![span(1)]).encode_to_vec();
    let encoded = h.http_url("/custom/%7Btraces%7D");
    let a = post(&encoded, Some(PB), None, body.clone()).await;
    // The raw path is compared: a percent-encoded `{` is not the configured path.
    assert_eq!(a.status, 404);
    let custom = h.http_url("/custom/{traces}");
    let a = post(&custom, Some(PB), None, body.clone()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["x-served-by"], "redline");
    let a = post(&h.traces_url(), Some(PB), None, body).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.headers["x-served-by"], "redline");
    h.shutdown().await;
}

/// h2c (HTTP/2 in clear text) with a 40 KiB header next to plain requests on the same
/// connection: served, as over HTTP/1.1 (hyper's h2 default refused them with 431, and larger
/// ones by closing the connection under every request on it).
#[tokio::test]
async fn h2c_takes_large_headers_without_closing_the_connection() {
    let h = Receiver::start(loopback_config_with_http(|_| {}), Recorder::default()).await;
    let addr = h.http.expect("http");
    let sender = common::raw_grpc::h2c::<Full<Bytes>>(addr).await;
    let big = "x".repeat(40 * 1024);
    let mut calls = Vec::new();
    for i in 0..8 {
        let mut sender = sender.clone();
        let mut req = http::Request::post(format!("http://{addr}/v1/traces"))
            .header("content-type", PB)
            .body(Full::new(Bytes::from(
                request(vec![span(1)]).encode_to_vec(),
            )))
            .expect("request");
        if i % 2 == 0 {
            req.headers_mut()
                .insert("x-big", big.parse().expect("header value"));
        }
        calls.push(tokio::spawn(async move { sender.send_request(req).await }));
    }
    for call in calls {
        let resp = call.await.expect("task").expect("answered");
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(h.spans(), 8);
    h.shutdown().await;
}

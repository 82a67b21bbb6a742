//! A pipeline that refuses: gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After, in
//! both OTLP/HTTP encodings, counted as refused.

mod common;

use std::time::Duration;

use prost::Message;
use tonic::Code;

use common::http_client::{post, PB};
use common::requests::{request, span, SPEC_JSON};
use common::{loopback_config, rpc, Receiver, Recorder};

#[tokio::test]
async fn grpc_refusal_is_unavailable_with_retry_info() {
    let recorder = Recorder::refusing(Duration::from_millis(2500));
    let h = Receiver::start(loopback_config(), recorder).await;
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
    assert_eq!(h.refused("grpc"), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn http_refusal_is_503_with_retry_after() {
    let recorder = Recorder::refusing(Duration::from_millis(2500));
    let h = Receiver::start(loopback_config(), recorder).await;
    let url = h.traces_url();
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
    assert_eq!(h.refused("http"), 2);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The budget for request bodies in flight: taken before a body is read.

const BUDGET: u64 = 64 * 1024;

/// An HTTP/1.1 POST whose headers declare `body.len()` bytes and whose body is sent only up
/// to `sent` bytes: it holds its share of the budget until [`finish`] sends the rest.
async fn start_slow_post(
    addr: std::net::SocketAddr,
    body: &[u8],
    sent: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {PB}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    tcp.write_all(&body[..sent])
        .await
        .expect("part of the body");
    tcp
}

/// Sends the rest of a slow POST's body and returns the status line of the answer.
async fn finish(mut tcp: tokio::net::TcpStream, rest: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(rest).await.expect("rest of the body");
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).await.expect("answer");
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the receiver has taken the held request's declared length from the budget.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn http_bodies_over_the_budget_are_refused_before_they_are_read() {
    let h = Receiver::start_with_body_budget(loopback_config(), Recorder::default(), BUDGET).await;
    let url = h.traces_url();
    let held_body = common::requests::big_request(50_000).encode_to_vec();
    let held = start_slow_post(h.http.expect("http"), &held_body, 1000).await;
    settle().await;

    // 50 KB are taken by the held request: 30 KB more do not fit, declared or chunked.
    let body = common::requests::big_request(30_000).encode_to_vec();
    let refused = post(&url, Some(PB), None, body.clone()).await;
    assert_eq!(refused.status, 503, "retryable");
    assert_eq!(refused.headers["retry-after"], "1");
    let status = rpc::Status::decode(refused.body).expect("protobuf status");
    assert!(status.message.contains("budget"), "{}", status.message);
    let chunks = futures::stream::iter(
        body.chunks(8 * 1024)
            .map(|c| {
                Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
                    bytes::Bytes::copy_from_slice(c),
                ))
            })
            .collect::<Vec<_>>(),
    );
    let chunked = common::http_client::send_body(
        http::Request::post(&url)
            .header("content-type", PB)
            .body(http_body_util::StreamBody::new(chunks))
            .expect("request"),
    )
    .await;
    assert_eq!(chunked.status, 503, "a chunked body is taken as it is read");
    assert!(h.batches().is_empty(), "nothing refused was delivered");

    // The held request completes; its bytes go back, and the refused one now fits.
    assert_eq!(finish(held, &held_body[1000..]).await, "HTTP/1.1 200 OK");
    assert_eq!(post(&url, Some(PB), None, body).await.status, 200);
    assert_eq!(h.spans(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn grpc_calls_over_the_budget_are_refused_from_the_frame_header() {
    use http_body_util::StreamBody;
    use hyper::body::Frame;

    let h = Receiver::start_with_body_budget(loopback_config(), Recorder::default(), BUDGET).await;
    let addr = h.grpc.expect("grpc");
    // A call that sends its frame header (declaring 50 KB) and a little of the message.
    let message = common::requests::big_request(50_000).encode_to_vec();
    let frame = common::raw_grpc::frame(0, &message);
    let (mut tx, rx) =
        futures::channel::mpsc::channel::<Result<Frame<bytes::Bytes>, std::convert::Infallible>>(4);
    let mut sender = common::raw_grpc::h2c(addr).await;
    let req = http::Request::post(format!("http://{addr}{}", common::raw_grpc::EXPORT))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(StreamBody::new(rx))
        .expect("request");
    futures::SinkExt::send(
        &mut tx,
        Ok(Frame::data(bytes::Bytes::copy_from_slice(&frame[..1000]))),
    )
    .await
    .expect("sent");
    let held = tokio::spawn(async move { sender.send_request(req).await });
    settle().await;

    let err = h
        .grpc_client()
        .await
        .export(common::requests::big_request(30_000))
        .await
        .expect_err("over the budget");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("budget"), "{err:?}");
    let status = rpc::Status::decode(err.details()).expect("google.rpc.Status");
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert!(h.batches().is_empty());

    futures::SinkExt::send(
        &mut tx,
        Ok(Frame::data(bytes::Bytes::copy_from_slice(&frame[1000..]))),
    )
    .await
    .expect("sent");
    drop(tx);
    let resp = held.await.expect("task").expect("answered");
    assert_eq!(
        resp.headers().get("grpc-status").map(|v| v.as_bytes()),
        None,
        "not trailers-only"
    );
    h.grpc_client()
        .await
        .export(common::requests::big_request(30_000))
        .await
        .expect("fits once the held call is done");
    assert_eq!(h.spans(), 2);
    h.shutdown().await;
}

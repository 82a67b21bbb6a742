//! Start and shutdown of the receiver: a port in use fails the build; shutdown stops
//! accepting, lets in-flight requests finish and cuts off what is still running at the
//! deadline.

mod common;

use std::time::{Duration, Instant};

use prost::Message;
use redline_pipeline::extension::Extensions;

use common::http_client::{post, PB};
use common::requests::{request, span};
use common::{loopback_config_with_http, Receiver, Recorder};

#[tokio::test]
async fn shutdown_stops_accepting() {
    let h = Receiver::both().await;
    let grpc = h.grpc.expect("grpc");
    let http = h.http.expect("http");
    // A connection kept alive by a finished request must not hold shutdown up.
    let a = post(
        &h.traces_url(),
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
    let mut h = Receiver::both().await;
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
    let config = loopback_config_with_http(|hc| hc.endpoint = format!("127.0.0.1:{port}"));
    let err = Receiver::try_start(config, Recorder::default(), Extensions::default())
        .await
        .err()
        .expect("port in use");
    assert!(err.contains("protocols.http.endpoint"), "{err}");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut h = Receiver::both().await;
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

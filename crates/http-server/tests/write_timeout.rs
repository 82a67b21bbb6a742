//! `write_timeout` covers the response to its end: a body the server cannot finish in time
//! (here, one that stalls after its first chunk; in practice, a client that stops reading a
//! large scrape) closes the connection at the deadline. A real server on loopback.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use redline_http_server::{Conn, HttpProtocol, HttpServerTimeouts, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One chunk, then nothing, for ever.
fn stalling_body() -> Body {
    let first =
        futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"partial")) });
    Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
}

async fn serve(write_timeout: Option<Duration>) -> ServerHandle {
    let router = Router::new()
        .route("/stall", get(|| async { stalling_body() }))
        .route("/quick", get(|| async { "done" }));
    let timeouts = HttpServerTimeouts {
        write_timeout,
        ..HttpServerTimeouts::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    ServerHandle::spawn(
        "test",
        listener,
        Conn::new(HttpProtocol::new(router, &timeouts), None),
    )
}

/// Everything the server sends on `path` until it closes, and how long that took; `None`
/// if it was still open after `limit`.
async fn get_until_closed(
    handle: &ServerHandle,
    path: &str,
    limit: Duration,
) -> Option<(String, Duration)> {
    let mut stream = TcpStream::connect(handle.addr).await.expect("tcp");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let sent = Instant::now();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some((String::from_utf8_lossy(&got).into_owned(), sent.elapsed()))
}

#[tokio::test]
async fn a_response_still_being_written_at_write_timeout_is_cut_off() {
    let handle = serve(Some(Duration::from_millis(300))).await;
    let (got, took) = get_until_closed(&handle, "/stall", Duration::from_secs(5))
        .await
        .expect("closed at the write deadline");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("partial"), "{got}");
    assert!(
        took >= Duration::from_millis(290),
        "closed {took:?} after the request"
    );
}

#[tokio::test]
async fn without_write_timeout_a_stalled_response_keeps_its_connection() {
    let handle = serve(Some(Duration::ZERO)).await;
    assert_eq!(
        get_until_closed(&handle, "/stall", Duration::from_millis(800)).await,
        None,
        "0 is no limit"
    );
}

#[tokio::test]
async fn the_default_write_timeout_is_confighttps_30s() {
    assert_eq!(
        HttpServerTimeouts::default().write_timeout(),
        Some(Duration::from_secs(30))
    );
    // A quick answer is unaffected.
    let handle = serve(None).await;
    let mut stream = TcpStream::connect(handle.addr).await.expect("tcp");
    stream
        .write_all(b"GET /quick HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).await.expect("answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"),
        "{answer}"
    );
}

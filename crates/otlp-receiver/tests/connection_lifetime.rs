//! When the receiver ends a connection by itself: gRPC's max_connection_idle,
//! max_connection_age and its grace (and never for a client's pings); HTTP's keepalive.idle_timeout, read_header_timeout,
//! read_timeout, write_timeout and
//! keep-alives off. Real clients on loopback, real time in fractions of a second; the bounds
//! checked are the settings' own, with room above them for a loaded machine.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::SinkExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use prost::Message;
use redline_otlp_receiver::{
    GrpcConfig, HttpConfig, HttpKeepalive, KeepaliveConfig, KeepaliveEnforcementPolicy,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use common::raw_grpc::{frame, EXPORT};
use common::requests::{request, span};
use common::{loopback_config_with_grpc, loopback_config_with_http, Receiver, Recorder};

/// How much later than its deadline a close may come on a busy machine.
const SLACK: Duration = Duration::from_secs(3);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn export_message() -> Vec<u8> {
    frame(0, &request(vec![span(1)]).encode_to_vec())
}

async fn grpc_receiver(change: impl FnOnce(&mut GrpcConfig)) -> Receiver {
    Receiver::start(loopback_config_with_grpc(change), Recorder::default()).await
}

fn server_parameters(
    idle: Option<Duration>,
    age: Option<Duration>,
    grace: Option<Duration>,
) -> impl FnOnce(&mut GrpcConfig) {
    move |g| {
        let keepalive = KeepaliveConfig {
            server_parameters: Some(redline_otlp_receiver::KeepaliveServerParameters {
                max_connection_idle: idle,
                max_connection_age: age,
                max_connection_age_grace: grace,
                ..Default::default()
            }),
            ..Default::default()
        };
        g.keepalive = Some(keepalive);
    }
}

type Body = StreamBody<mpsc::Receiver<Result<Frame<Bytes>, std::convert::Infallible>>>;

/// An HTTP/2 connection whose end the test can await: the handle finishes when the server
/// has closed it.
async fn h2c(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Body>,
    JoinHandle<()>,
) {
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.expect("tcp"));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("h2c");
    let closed = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, closed)
}

/// An Export call whose message the test sends (or never finishes sending) itself.
fn open_call(
    addr: SocketAddr,
) -> (
    http::Request<Body>,
    mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
) {
    let (tx, rx) = mpsc::channel(4);
    let req = http::Request::post(format!("http://{addr}{EXPORT}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(StreamBody::new(rx))
        .expect("request");
    (req, tx)
}

/// A whole Export call on `sender`: its grpc-status.
async fn call(
    sender: &mut hyper::client::conn::http2::SendRequest<Body>,
    addr: SocketAddr,
) -> String {
    let (req, mut tx) = open_call(addr);
    tx.send(Ok(Frame::data(Bytes::from(export_message()))))
        .await
        .expect("body");
    drop(tx);
    let resp = sender.send_request(req).await.expect("answered");
    grpc_status(resp).await
}

async fn grpc_status(resp: http::Response<hyper::body::Incoming>) -> String {
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = headers.get("grpc-status").or(trailers.get("grpc-status"));
    status
        .map(|s| s.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

/// An Export call of which only the first bytes were sent, made on a clone of the sender so
/// that the connection lives as long as the test holds its own.
struct StalledCall {
    tx: mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
    rest: Bytes,
    answer: JoinHandle<Result<http::Response<hyper::body::Incoming>, hyper::Error>>,
}

async fn stalled_call(
    sender: &hyper::client::conn::http2::SendRequest<Body>,
    addr: SocketAddr,
) -> StalledCall {
    let (req, mut tx) = open_call(addr);
    let mut message = Bytes::from(export_message());
    let rest = message.split_off(3);
    tx.send(Ok(Frame::data(message)))
        .await
        .expect("first bytes");
    let mut caller = sender.clone();
    let answer = tokio::spawn(async move { caller.send_request(req).await });
    StalledCall { tx, rest, answer }
}

impl StalledCall {
    /// Sends the rest of the message: the call's grpc-status.
    async fn finish(mut self) -> String {
        self.tx
            .send(Ok(Frame::data(self.rest)))
            .await
            .expect("the rest");
        drop(self.tx);
        let resp = self.answer.await.expect("task").expect("answered");
        grpc_status(resp).await
    }
}

/// Waits for `closed` and answers how long after `since` it came.
async fn closed_after(closed: JoinHandle<()>, since: Instant, limit: Duration) -> Duration {
    tokio::time::timeout(limit, closed)
        .await
        .expect("the server closed the connection in time")
        .expect("driver");
    since.elapsed()
}

#[tokio::test]
async fn grpc_idle_connection_gets_goaway_after_max_connection_idle() {
    let h = grpc_receiver(server_parameters(Some(ms(300)), None, None)).await;
    let addr = h.grpc.expect("grpc");
    let (mut sender, closed) = h2c(addr).await;
    assert_eq!(call(&mut sender, addr).await, "0");
    let idle_from = Instant::now();
    let took = closed_after(closed, idle_from, ms(300) + SLACK).await;
    assert!(took >= ms(290), "closed {took:?} after the last call ended");
    assert_eq!(h.spans(), 1);
}

#[tokio::test]
async fn grpc_client_pings_never_close_the_connection_whatever_the_enforcement_policy() {
    // grpc-go would send GOAWAY (too_many_pings) after the third ping: pings without a call
    // are not permitted, and 20ms is far below min_time. Redline takes the policy and answers
    // them all.
    let h = grpc_receiver(|g| {
        g.keepalive = Some(KeepaliveConfig {
            enforcement_policy: Some(KeepaliveEnforcementPolicy {
                min_time: Some(Duration::from_secs(10)),
                permit_without_stream: false,
            }),
            ..Default::default()
        });
    })
    .await;
    let addr = h.grpc.expect("grpc");
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.expect("tcp"));
    let (mut sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(ms(20))
            .keep_alive_timeout(SLACK)
            .keep_alive_while_idle(true)
            .handshake::<_, Body>(io)
            .await
            .expect("h2c");
    let closed = tokio::spawn(async move {
        let _ = conn.await;
    });
    tokio::time::sleep(ms(500)).await;
    assert!(!closed.is_finished(), "closed for its pings");
    assert_eq!(call(&mut sender, addr).await, "0");
    assert!(!closed.is_finished());
    assert_eq!(h.spans(), 1);
}

#[tokio::test]
async fn grpc_call_in_flight_keeps_an_idle_limited_connection_open() {
    let h = grpc_receiver(server_parameters(Some(ms(200)), None, None)).await;
    let addr = h.grpc.expect("grpc");
    let (sender, closed) = h2c(addr).await;
    let stalled = stalled_call(&sender, addr).await;
    // Three idle periods with the call still running: the connection stays.
    tokio::time::sleep(ms(600)).await;
    assert!(!closed.is_finished(), "closed with a call in flight");
    assert_eq!(stalled.finish().await, "0");
    let idle_from = Instant::now();
    let took = closed_after(closed, idle_from, ms(200) + SLACK).await;
    assert!(took >= ms(190), "closed {took:?} after the call ended");
    assert_eq!(h.spans(), 1);
}

#[tokio::test]
async fn grpc_connection_past_max_age_is_closed_between_the_jitter_bounds() {
    let h = grpc_receiver(server_parameters(None, Some(ms(400)), None)).await;
    let addr = h.grpc.expect("grpc");
    let opened = Instant::now();
    let (mut sender, closed) = h2c(addr).await;
    // A busy connection ages all the same.
    assert_eq!(call(&mut sender, addr).await, "0");
    let took = closed_after(closed, opened, ms(440) + SLACK).await;
    assert!(
        took >= ms(360),
        "closed {took:?} after the connection opened (400ms - 10%)"
    );
}

#[tokio::test]
async fn grpc_age_grace_cuts_off_a_call_still_running() {
    let h = grpc_receiver(server_parameters(None, Some(ms(200)), Some(ms(300)))).await;
    let addr = h.grpc.expect("grpc");
    let opened = Instant::now();
    let (sender, closed) = h2c(addr).await;
    let stalled = stalled_call(&sender, addr).await;
    let took = closed_after(closed, opened, ms(550) + SLACK).await;
    assert!(
        took >= ms(480),
        "closed {took:?} after opening (200ms - 10% + 300ms)"
    );
    // The call never completed: the client sees its stream end without an answer.
    let outcome = stalled.answer.await.expect("task");
    match outcome {
        Err(_) => {}
        Ok(resp) => assert_ne!(grpc_status(resp).await, "0"),
    }
    assert_eq!(h.spans(), 0);
}

#[tokio::test]
async fn grpc_without_age_grace_lets_the_running_call_finish() {
    let h = grpc_receiver(server_parameters(None, Some(ms(200)), None)).await;
    let addr = h.grpc.expect("grpc");
    let (sender, closed) = h2c(addr).await;
    let stalled = stalled_call(&sender, addr).await;
    tokio::time::sleep(ms(700)).await;
    assert!(
        !closed.is_finished(),
        "closed with a call in flight and no grace set"
    );
    assert_eq!(stalled.finish().await, "0");
    closed_after(closed, Instant::now(), SLACK).await;
    assert_eq!(h.spans(), 1);
}

async fn http_receiver(change: impl FnOnce(&mut HttpConfig)) -> Receiver {
    Receiver::start(loopback_config_with_http(change), Recorder::default()).await
}

fn export_head(addr: SocketAddr, body_len: usize) -> String {
    format!(
        "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {body_len}\r\n\r\n"
    )
}

/// Sends one export on `stream` and reads its answer: the status line and headers.
async fn http_export(stream: &mut TcpStream, addr: SocketAddr) -> String {
    let body = request(vec![span(1)]).encode_to_vec();
    stream
        .write_all(export_head(addr, body.len()).as_bytes())
        .await
        .expect("head");
    stream.write_all(&body).await.expect("body");
    read_response(stream).await
}

/// Reads one response (its head, then `content-length` bytes) and answers its head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read");
        assert_eq!(n, 1, "the connection closed mid-response: {got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).expect("utf-8 head");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.expect("body");
    head
}

/// Waits until the server closes `stream` (a read of 0 bytes or a reset), with nothing
/// written to it meanwhile; answers how long after `since`.
async fn eof_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(limit, stream.read(&mut buf))
        .await
        .expect("the server closed the connection in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server wrote instead of closing: {:?}", &buf[..n]);
    since.elapsed()
}

#[tokio::test]
async fn http_keepalive_idle_timeout_closes_an_idle_connection() {
    // With the head deadline longer (1m, the default) the request's start brings the
    // deadline nearer; with it equal, as confighttp's defaults are, no request wakes the
    // connection's timer, which finds the idle deadline when the head one it was armed with
    // comes.
    for read_header_timeout in [None, Some(ms(300))] {
        let h = http_receiver(|c| {
            c.read_header_timeout = read_header_timeout;
            c.keepalive = Some(HttpKeepalive {
                enabled: true,
                idle_timeout: Some(ms(300)),
            });
        })
        .await;
        let addr = h.http.expect("http");
        let mut stream = TcpStream::connect(addr).await.expect("tcp");
        tokio::time::sleep(ms(100)).await;
        let head = http_export(&mut stream, addr).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let idle_from = Instant::now();
        let took = eof_after(&mut stream, idle_from, ms(300) + SLACK).await;
        assert!(took >= ms(290), "closed {took:?} after the response");
        assert_eq!(h.spans(), 1);
    }
}

#[tokio::test]
async fn http_waits_idle_timeout_not_read_header_timeout_between_requests() {
    let h = http_receiver(|c| {
        c.read_header_timeout = Some(ms(200));
        c.idle_timeout = Some(Duration::from_secs(30));
    })
    .await;
    let addr = h.http.expect("http");
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    assert!(http_export(&mut stream, addr)
        .await
        .starts_with("HTTP/1.1 200"));
    // Longer than read_header_timeout between two requests: Go's server waits idle_timeout.
    tokio::time::sleep(ms(700)).await;
    assert!(http_export(&mut stream, addr)
        .await
        .starts_with("HTTP/1.1 200"));
    // A head that starts and stalls is held to read_header_timeout from its first byte.
    tokio::time::sleep(ms(400)).await;
    stream
        .write_all(b"POST /v1/traces HTTP/1.1\r\n")
        .await
        .expect("part of a head");
    let started = Instant::now();
    let took = eof_after(&mut stream, started, ms(200) + SLACK).await;
    assert!(took >= ms(190), "closed {took:?} after the head began");
    assert_eq!(h.spans(), 2);
}

#[tokio::test]
async fn http_first_head_is_timed_from_the_accept() {
    let h = http_receiver(|c| c.read_header_timeout = Some(ms(200))).await;
    let addr = h.http.expect("http");
    let accepted = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    let took = eof_after(&mut stream, accepted, ms(200) + SLACK).await;
    assert!(took >= ms(190), "closed {took:?} after connecting");
}

#[tokio::test]
async fn http_read_header_timeout_zero_is_no_limit() {
    let h = http_receiver(|c| c.read_header_timeout = Some(Duration::ZERO)).await;
    let addr = h.http.expect("http");
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    let body = request(vec![span(1)]).encode_to_vec();
    let head = export_head(addr, body.len());
    let (first, second) = head.split_at(20);
    stream
        .write_all(first.as_bytes())
        .await
        .expect("half a head");
    tokio::time::sleep(ms(300)).await;
    stream.write_all(second.as_bytes()).await.expect("the rest");
    stream.write_all(&body).await.expect("body");
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(h.spans(), 1);
}

#[tokio::test]
async fn http_keepalive_disabled_closes_after_each_response() {
    for change in [
        (|c: &mut HttpConfig| {
            c.keepalive = Some(HttpKeepalive {
                enabled: false,
                idle_timeout: None,
            })
        }) as fn(&mut HttpConfig),
        |c: &mut HttpConfig| c.keep_alives_enabled = Some(false),
    ] {
        let h = http_receiver(change).await;
        let addr = h.http.expect("http");
        let mut stream = TcpStream::connect(addr).await.expect("tcp");
        let head = http_export(&mut stream, addr).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        eof_after(&mut stream, Instant::now(), SLACK).await;
        assert_eq!(h.spans(), 1);
    }
}

#[tokio::test]
async fn h2c_on_the_http_port_is_not_held_to_the_head_deadline() {
    let h = http_receiver(|c| c.read_header_timeout = Some(ms(150))).await;
    let addr = h.http.expect("http");
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.expect("tcp"));
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        io,
    )
    .await
    .expect("h2c");
    let closed = tokio::spawn(async move {
        let _ = conn.await;
    });
    let body = request(vec![span(1)]).encode_to_vec();
    for _ in 0..2 {
        let req = http::Request::post(format!("http://{addr}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body.clone())))
            .expect("request");
        let resp = sender.send_request(req).await.expect("answered");
        assert_eq!(resp.status(), 200);
        // Longer than the head deadline between requests, within the idle one (1m).
        tokio::time::sleep(ms(400)).await;
        assert!(
            !closed.is_finished(),
            "h2c connection closed by the head deadline"
        );
    }
    assert_eq!(h.spans(), 2);
}

/// Sends an export's head and the first half of its body, then the rest after `pause`;
/// answers the time the head was sent.
async fn export_with_a_pause(stream: &mut TcpStream, addr: SocketAddr, pause: Duration) -> Instant {
    let body = request(vec![span(1)]).encode_to_vec();
    let (first, rest) = body.split_at(body.len() / 2);
    stream
        .write_all(export_head(addr, body.len()).as_bytes())
        .await
        .expect("head");
    let sent = Instant::now();
    stream.write_all(first).await.expect("half the body");
    tokio::time::sleep(pause).await;
    // The server may have closed the connection meanwhile: what it answered is the test.
    let _ = stream.write_all(rest).await;
    sent
}

#[tokio::test]
async fn http_response_not_written_within_write_timeout_closes_without_an_answer() {
    let h = http_receiver(|c| c.write_timeout = Some(ms(300))).await;
    let addr = h.http.expect("http");
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    // A body that takes longer than write_timeout after its head: the answer could not be
    // written in time, so there is none, and the request is not taken either (Go's server
    // takes it and fails the answer; the client retries both times).
    let sent = export_with_a_pause(&mut stream, addr, ms(800)).await;
    let took = eof_after(&mut stream, sent, SLACK).await;
    assert!(took >= ms(290), "closed {took:?} after the head");
    assert_eq!(h.spans(), 0);
}

#[tokio::test]
async fn http_write_timeout_runs_per_request_and_not_between_them() {
    let h = http_receiver(|c| c.write_timeout = Some(ms(300))).await;
    let addr = h.http.expect("http");
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    // A slow body within the deadline is answered.
    export_with_a_pause(&mut stream, addr, ms(100)).await;
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Idle for longer than write_timeout, twice over: each request gets its own deadline.
    for _ in 0..2 {
        tokio::time::sleep(ms(700)).await;
        let answer = http_export(&mut stream, addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(h.spans(), 3);
}

#[tokio::test]
async fn http_body_not_read_within_read_timeout_is_answered_400_and_closed() {
    let h = http_receiver(|c| c.read_timeout = Some(ms(300))).await;
    let addr = h.http.expect("http");
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    // Within read_timeout: answered, and the next request gets its own deadline from its
    // head's first byte, however long the connection was idle.
    export_with_a_pause(&mut stream, addr, ms(100)).await;
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::sleep(ms(150)).await;
    let sent = export_with_a_pause(&mut stream, addr, ms(800)).await;
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let took = eof_after(&mut stream, sent, SLACK).await;
    assert!(took >= ms(290), "closed {took:?} after the head");
    assert_eq!(h.spans(), 1);
}

#[tokio::test]
async fn http_read_timeout_stands_in_for_a_zero_read_header_timeout() {
    let h = http_receiver(|c| {
        c.read_header_timeout = Some(Duration::ZERO);
        c.read_timeout = Some(ms(250));
    })
    .await;
    let addr = h.http.expect("http");
    let accepted = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("tcp");
    let took = eof_after(&mut stream, accepted, ms(250) + SLACK).await;
    assert!(took >= ms(240), "closed {took:?} after connecting");
}

//! A gRPC call made by hand, for what tonic's client will not send: a message framed with any
//! compressed flag under any `grpc-encoding`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::Code;

pub const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// One unary Export call with `message` framed as it is (`flag` as the compressed flag) under
/// `grpc-encoding: <encoding>`: the status and its (percent-decoded) message.
pub async fn call(addr: SocketAddr, encoding: &str, flag: u8, message: &[u8]) -> (Code, String) {
    let mut sender = h2c(addr).await;
    let req = http::Request::post(format!("http://{addr}{EXPORT}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", encoding)
        .body(Full::new(Bytes::from(frame(flag, message))))
        .expect("request");
    let resp = sender.send_request(req).await.expect("answered");
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.expect("body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let map = if headers.contains_key("grpc-status") {
        headers
    } else {
        trailers
    };
    let code = Code::from_bytes(map["grpc-status"].as_bytes());
    let message = map
        .get("grpc-message")
        .map(|m| percent_decode(m.to_str().expect("ascii")))
        .unwrap_or_default();
    (code, message)
}

/// `message` in gRPC's length-prefixed framing, `flag` as its compressed flag.
pub fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut framed = vec![flag];
    framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

/// An HTTP/2 connection in clear text to `addr`, its driver spawned.
pub async fn h2c<B>(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.expect("tcp"));
    let (sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("h2c");
    tokio::spawn(conn);
    sender
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
            out.push(u8::from_str_radix(hex, 16).expect("hex"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

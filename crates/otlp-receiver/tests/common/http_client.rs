//! Plain OTLP/HTTP requests with hyper's client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub const PB: &str = "application/x-protobuf";

pub struct HttpAnswer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

pub async fn post(
    url: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: impl Into<Bytes>,
) -> HttpAnswer {
    let mut b = http::Request::post(url);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    if let Some(e) = encoding {
        b = b.header("content-encoding", e);
    }
    send(b.body(Full::new(body.into())).expect("request")).await
}

/// Sends a request with any body (a stream of chunks: chunked transfer encoding).
pub async fn send_body<B>(req: http::Request<B>) -> HttpAnswer
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http::<B>();
    let resp = client.request(req).await.expect("answered");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    HttpAnswer {
        status,
        headers,
        body,
    }
}

pub async fn send(req: http::Request<Full<Bytes>>) -> HttpAnswer {
    send_body(req).await
}

//! A minimal HTTP/1.1 GET for scraping `/metrics` and a sink's `/count` (plain http only).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;

#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("bad URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("GET {url}: {reason}")]
    Io { url: String, reason: String },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// The body of `GET url` (up to 512 MiB), or an error for anything but 200.
pub async fn get(url: &str, timeout: Duration) -> Result<Bytes, GetError> {
    match tokio::time::timeout(timeout, get_inner(url)).await {
        Ok(r) => r,
        Err(_) => Err(GetError::Timeout {
            url: url.to_owned(),
            timeout,
        }),
    }
}

async fn get_inner(url: &str) -> Result<Bytes, GetError> {
    let full = crate::send::normalize_endpoint(url);
    let bad = |reason: String| GetError::Url {
        url: url.to_owned(),
        reason,
    };
    let io = |reason: String| GetError::Io {
        url: url.to_owned(),
        reason,
    };
    let uri: http::Uri = full
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// is supported".into()));
    }
    let auth = uri.authority().ok_or_else(|| bad("no host".into()))?;
    let addr = format!("{}:{}", auth.host(), auth.port_u16().unwrap_or(80));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| io(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| io(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, auth.as_str())
        // The classic text format: no OpenMetrics negotiation, no compression.
        .header(http::header::ACCEPT, "text/plain;version=0.0.4")
        .body(Empty::<Bytes>::new())
        .map_err(|e| bad(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| io(e.to_string()))?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), 512 << 20)
        .collect()
        .await
        .map_err(|e| io(e.to_string()))?
        .to_bytes();
    conn.abort();
    if status != http::StatusCode::OK {
        return Err(GetError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    Ok(body)
}

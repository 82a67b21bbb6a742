//! Serving gRPC: HTTP/2 connections with the section's stream limit, keep-alive pings and
//! connection lifetimes, and the answers every call may get before its method runs, as
//! grpc-go gives them.

use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use redline_http_server::lifetime::{self, Lifetime, Tracked};
use redline_http_server::Protocol;
use redline_pipeline::extension::{AuthCheck, AuthError, ServerAuthenticator};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::config::GrpcConfig;

/// gRPC's side of a connection: HTTP/2 only, with the config's stream limit and keep-alive,
/// serving `S`.
#[derive(Clone)]
pub struct GrpcProtocol<S> {
    builder: hyper::server::conn::http2::Builder<TokioExecutor>,
    service: S,
    lifetime: Lifetime,
}

impl<S> GrpcProtocol<S> {
    pub fn new<P>(config: &GrpcConfig<P>, service: S) -> Self {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        // Keep-alive pings need a timer; hyper panics without one when they are enabled.
        builder.timer(TokioTimer::new());
        // Flow-control windows stay at hyper's defaults: larger ones would let every stream of
        // every connection park more unread data in memory.
        builder.max_header_list_size(config.connection_header_list_size());
        if config.max_concurrent_streams > 0 {
            builder.max_concurrent_streams(config.max_concurrent_streams);
        }
        let mut lifetime = Lifetime::default();
        if let Some(sp) = config
            .keepalive
            .as_ref()
            .and_then(|k| k.server_parameters.as_ref())
        {
            if let Some(time) = sp.time.filter(|t| !t.is_zero()) {
                builder.keep_alive_interval(time);
                // grpc-go's default ack timeout.
                builder
                    .keep_alive_timeout(sp.timeout.unwrap_or(std::time::Duration::from_secs(20)));
            }
            // grpc-go reads 0 as infinity for all three.
            let set = |d: Option<std::time::Duration>| d.filter(|d| !d.is_zero());
            lifetime.idle = set(sp.max_connection_idle);
            lifetime.max_age = set(sp.max_connection_age);
            lifetime.age_grace = set(sp.max_connection_age_grace);
        }
        Self {
            builder,
            service,
            lifetime,
        }
    }
}

impl<S> Protocol for GrpcProtocol<S>
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    const NAME: &'static str = "gRPC";
    type Error = hyper::Error;

    async fn serve<I>(self, io: I, stop: CancellationToken) -> Result<(), hyper::Error>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // Calls are counted only for max_connection_idle (gRPC has no header deadline).
        let activity = self.lifetime.activity(false);
        let service = Tracked::new(self.service, activity.clone());
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        lifetime::drive(conn, &stop, self.lifetime, activity.as_deref()).await
    }
}

/// The request's header list as HTTP/2 counts it (RFC 9113 §6.5.2: name, value and 32 bytes
/// per field, pseudo-headers included).
pub fn header_list_size<B>(req: &Request<B>) -> usize {
    const FIELD: usize = 32;
    let uri = req.uri();
    let pseudo = [
        ":method".len() + req.method().as_str().len(),
        ":path".len() + uri.path_and_query().map_or(1, |p| p.as_str().len()),
        ":scheme".len() + uri.scheme_str().map_or(0, str::len),
        ":authority".len() + uri.authority().map_or(0, |a| a.as_str().len()),
    ];
    let fields: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD)
        .sum();
    pseudo.iter().map(|p| p + FIELD).sum::<usize>() + fields
}

/// The answer to a call whose metadata is over `limit` bytes (`max_header_list_size_kib`),
/// or `None` when it fits: the call fails alone, RESOURCE_EXHAUSTED.
pub fn metadata_over_limit<B>(req: &Request<B>, limit: usize) -> Option<Status> {
    let metadata = header_list_size(req);
    if metadata <= limit {
        return None;
    }
    tracing::debug!(
        metadata_bytes = metadata,
        limit_bytes = limit,
        "gRPC call refused: request metadata over the limit"
    );
    Some(Status::resource_exhausted(format!(
        "request metadata of {metadata} bytes is over the limit of {limit} bytes \
         (protocols.grpc.max_header_list_size_kib)"
    )))
}

/// What an authenticator's refusal is answered with.
pub fn refusal(e: AuthError) -> Response<tonic::body::Body> {
    let status = match e {
        AuthError::Denied(reason) => {
            tracing::debug!(%reason, "gRPC request refused: not authenticated");
            Status::unauthenticated(reason)
        }
        AuthError::Busy => {
            tracing::debug!("gRPC request refused: authentication queue full");
            Status::unavailable(AuthError::Busy.to_string())
        }
    };
    status.into_http()
}

/// The checks a call passes before its method, in otelcol's order (request metadata size,
/// then `auth`): `Err` is the answer when it does not.
pub async fn admit<B>(
    req: &Request<B>,
    max_header_list_size: usize,
    auth: Option<&Arc<dyn ServerAuthenticator>>,
) -> Result<(), Response<tonic::body::Body>> {
    if let Some(status) = metadata_over_limit(req, max_header_list_size) {
        return Err(status.into_http());
    }
    match auth.map(|a| a.authenticate(req.headers())) {
        None | Some(AuthCheck::Ready(Ok(()))) => Ok(()),
        Some(AuthCheck::Ready(Err(e))) => Err(refusal(e)),
        Some(AuthCheck::Pending(check)) => check.await.map_err(refusal),
    }
}

/// tonic answers OUT_OF_RANGE for a message over the limit (RESOURCE_EXHAUSTED only when
/// decompression overflows); grpc-go, hence otelcol, answers RESOURCE_EXHAUSTED in both
/// cases, and OTLP clients treat that code without RetryInfo as not retryable. Handlers
/// never answer OUT_OF_RANGE themselves, so any such status here is tonic's size check.
pub fn size_limit_as_resource_exhausted<B>(resp: &mut Response<B>) {
    let out_of_range = HeaderValue::from_static("11");
    if resp.headers().get("grpc-status") == Some(&out_of_range) {
        resp.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("8"));
    }
}

/// What grpc-go answers for a method it does not serve.
pub fn unknown_method(path: &str) -> Status {
    Status::unimplemented(format!("unknown method {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_out_of_range() {
        let mut resp = Status::out_of_range("too large").into_http::<()>();
        size_limit_as_resource_exhausted(&mut resp);
        assert_eq!(resp.headers()["grpc-status"], "8");
        let mut resp = Status::invalid_argument("bad").into_http::<()>();
        size_limit_as_resource_exhausted(&mut resp);
        assert_eq!(resp.headers()["grpc-status"], "3");
    }
}

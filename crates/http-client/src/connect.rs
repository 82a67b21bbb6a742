//! Connectors: TCP with rustls on top, built once from a `tls` section, for the pooled
//! HTTP/1.1 client and for gRPC channels. Both take the same [`ClientTlsConfig::rustls_config`],
//! so the trust roots, client certificate, `server_name_override` and `insecure_skip_verify`
//! act the same over either protocol.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Scheme, Uri};
use hyper_rustls::{
    FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream,
};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::tls::TlsError;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// TCP with Nagle off (requests are written in one go and answered at once: Nagle only adds
/// latency), bounded connecting, any scheme: TLS, where wanted, is layered on above.
pub(crate) fn tcp(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(connect_timeout);
    http
}

/// The rustls half of a connector, before its ALPN protocols are chosen: `config` (from
/// `tls`, or a stand-in where TLS is never used) with `tls`'s `server_name_override`.
pub(crate) fn tls_builder(
    config: rustls::ClientConfig,
    tls: &ClientTlsConfig,
) -> Result<HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1>, TlsError> {
    let mut builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    if let Some(name) = tls.server_name_override.as_deref() {
        let name = ServerName::try_from(name.to_owned()).map_err(|e| TlsError {
            key: "server_name_override",
            reason: e.to_string(),
        })?;
        builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
    }
    Ok(builder)
}

/// The connector of a gRPC channel over TLS (ALPN `h2`). Every connection is TLS whatever
/// the URI's scheme: tonic refuses an `https://` endpoint without TLS of its own, so the
/// channel is built on `http://` with this connector under it, and gives requests an
/// `https` origin.
#[derive(Clone)]
pub struct GrpcTlsConnector(HttpsConnector<HttpConnector>);

impl GrpcTlsConnector {
    /// Reads the TLS section's files now, so a bad one stops startup; errors name the key
    /// relative to the `tls` section.
    pub fn new(tls: &ClientTlsConfig) -> Result<Self, TlsError> {
        Ok(Self(
            tls_builder(tls.rustls_config()?, tls)?
                .enable_http2()
                .wrap_connector(tcp(None)),
        ))
    }
}

impl tower_service::Service<Uri> for GrpcTlsConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut parts = uri.into_parts();
        parts.scheme = Some(Scheme::HTTPS);
        match Uri::from_parts(parts) {
            Ok(uri) => self.0.call(uri),
            Err(e) => Box::pin(std::future::ready(Err(e.into()))),
        }
    }
}

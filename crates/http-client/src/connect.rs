//! Connectors: TCP (through a proxy where one applies) with rustls on top, built once from a
//! `tls` section, for the pooled HTTP/1.1 client and for gRPC channels. Both take the same
//! [`ClientTlsConfig::rustls_config`], so the trust roots, client certificate,
//! `server_name_override` and `insecure_skip_verify` act the same over either protocol.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{Scheme, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{
    FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder, MaybeHttpsStream,
};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::tls::TlsError;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::proxy::{with_scheme, Proxy};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

/// TCP with Nagle off (requests are written in one go and answered at once: Nagle only adds
/// latency), bounded connecting, any scheme: TLS, where wanted, is layered on above.
fn tcp(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(connect_timeout);
    http
}

/// TCP to the destination, or to it through the proxy that applies.
#[derive(Clone)]
pub(crate) struct ProxiedTcp {
    tcp: HttpConnector,
    proxy: Proxy,
    /// gRPC: every connection is tunnelled, and the proxy is looked up as for `https`.
    grpc: bool,
}

impl ProxiedTcp {
    pub(crate) fn new(connect_timeout: Option<Duration>, proxy: Proxy, grpc: bool) -> Self {
        Self {
            tcp: tcp(connect_timeout),
            proxy,
            grpc,
        }
    }
}

impl Service<Uri> for ProxiedTcp {
    type Response = ProxiedStream;
    type Error = BoxError;
    type Future = Connecting<ProxiedStream>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let route = match self.proxy.route(&dst, self.grpc) {
            Ok(route) => route,
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let plain_http = dst.scheme() == Some(&Scheme::HTTP) && !self.grpc;
        Box::pin(async move {
            let (io, forwarded) = match route {
                None => (tcp.call(dst).await?, false),
                // Absolute-form requests to the proxy itself; the client adds the credentials.
                Some(route) if plain_http => (tcp.call(route.proxy).await?, true),
                Some(route) => {
                    let scheme = dst.scheme().cloned().unwrap_or(Scheme::HTTPS);
                    let mut tunnel = Tunnel::new(route.proxy, tcp);
                    if let Some(auth) = route.auth {
                        tunnel = tunnel.with_auth(auth);
                    }
                    (tunnel.call(with_scheme(&dst, scheme)?).await?, false)
                }
            };
            Ok(ProxiedStream { io, forwarded })
        })
    }
}

/// A TCP connection that tells hyper whether it leads to a forwarding proxy, so that requests
/// on it are written in absolute form.
pub struct ProxiedStream {
    io: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl Read for ProxiedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxiedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A rustls config that trusts nothing, for connectors that are handed one but never make a
/// TLS connection with it.
pub(crate) fn unused_tls_config() -> Result<rustls::ClientConfig, TlsError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            key: "min_version",
            reason: e.to_string(),
        })?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth())
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

/// The connector of a gRPC channel (HTTP/2; over TLS with ALPN `h2` when a `tls` section is
/// given), through the proxy that applies. With TLS every connection is TLS whatever the URI's
/// scheme: tonic refuses an `https://` endpoint without TLS of its own, so the channel is
/// built on `http://` with this connector under it, and gives requests an `https` origin.
#[derive(Clone)]
pub struct GrpcConnector {
    inner: HttpsConnector<ProxiedTcp>,
    tls: bool,
}

impl GrpcConnector {
    /// Reads the TLS section's files now, so a bad one stops startup; errors name the key
    /// relative to the `tls` section.
    pub fn new(tls: Option<&ClientTlsConfig>, proxy: Proxy) -> Result<Self, TlsError> {
        let default = ClientTlsConfig::default();
        let (config, section) = match tls {
            Some(t) => (t.rustls_config()?, t),
            None => (unused_tls_config()?, &default),
        };
        Ok(Self {
            inner: tls_builder(config, section)?
                .enable_http2()
                .wrap_connector(ProxiedTcp::new(None, proxy, true)),
            tls: tls.is_some(),
        })
    }
}

impl Service<Uri> for GrpcConnector {
    type Response = MaybeHttpsStream<ProxiedStream>;
    type Error = BoxError;
    type Future = Connecting<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        if !self.tls {
            return self.inner.call(uri);
        }
        // Never a plaintext fallback: a URI that cannot be made `https` fails the connection.
        match with_scheme(&uri, Scheme::HTTPS) {
            Ok(uri) => self.inner.call(uri),
            Err(e) => Box::pin(std::future::ready(Err(e.into()))),
        }
    }
}

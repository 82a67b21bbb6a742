//! Connectors: TCP (through a proxy where one applies) with rustls on top, built once from a
//! `tls` section, for the pooled HTTP/1.1 client and for gRPC channels. Both take the same
//! [`ClientTlsConfig::rustls_config`], so the trust roots, client certificate,
//! `server_name_override` and `insecure_skip_verify` act the same over either protocol.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
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
///
/// Keep-alive probes as otelcol's clients send them, so a peer that vanished behind a NAT or
/// load balancer is found even on an idle connection: confighttp dials with Go's default
/// transport (probes after 30 s idle, then every 15 s, 9 unanswered closing it); gRPC turns
/// them on with the system's timing (`tcp_keepalive_time` and friends: grpc-go dials with a
/// negative `KeepAlive` and sets only `SO_KEEPALIVE`), set in [`ProxiedTcp::call`].
fn tcp(connect_timeout: Option<Duration>, grpc: bool) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(connect_timeout);
    if !grpc {
        http.set_keepalive(Some(HTTP_KEEPALIVE_IDLE));
        http.set_keepalive_interval(Some(HTTP_KEEPALIVE_INTERVAL));
        http.set_keepalive_retries(Some(HTTP_KEEPALIVE_PROBES));
    }
    http
}

/// Go's `http.DefaultTransport` dialer's `KeepAlive`, which Go uses as the idle time.
const HTTP_KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Go's default probe interval and count (`net.KeepAliveConfig`).
const HTTP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const HTTP_KEEPALIVE_PROBES: u32 = 9;

/// TCP to the destination, or to it through the proxy that applies.
#[derive(Clone)]
pub(crate) struct ProxiedTcp {
    tcp: HttpConnector,
    proxy: Proxy,
    /// gRPC: every connection is tunnelled, and the proxy is looked up as for `https`.
    grpc: bool,
    /// Connect here instead of resolving the destination's host (one address of a
    /// balanced name); the destination still names the server for TLS.
    address: Option<SocketAddr>,
}

impl ProxiedTcp {
    pub(crate) fn new(connect_timeout: Option<Duration>, proxy: Proxy, grpc: bool) -> Self {
        Self {
            tcp: tcp(connect_timeout, grpc),
            proxy,
            grpc,
            address: None,
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
        let grpc = self.grpc;
        let address = self.address;
        Box::pin(async move {
            let (io, forwarded) = match route {
                None => match address {
                    // An IP literal: the connector resolves nothing.
                    Some(address) => (tcp.call(address_uri(address)?).await?, false),
                    None => (tcp.call(dst).await?, false),
                },
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
            if grpc {
                socket2::SockRef::from(io.inner()).set_keepalive(true)?;
            }
            Ok(ProxiedStream { io, forwarded })
        })
    }
}

/// `http://<address>`, for the TCP connector to dial that address.
fn address_uri(address: SocketAddr) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(address.to_string())
        .path_and_query("/")
        .build()
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
    Ok(named_tls_builder(config, server_name_override(tls)?))
}

/// `tls`'s `server_name_override`, checked.
fn server_name_override(tls: &ClientTlsConfig) -> Result<Option<ServerName<'static>>, TlsError> {
    tls.server_name_override
        .as_deref()
        .map(|name| {
            ServerName::try_from(name.to_owned()).map_err(|e| TlsError {
                key: "server_name_override",
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn named_tls_builder(
    config: rustls::ClientConfig,
    server_name: Option<ServerName<'static>>,
) -> HttpsConnectorBuilder<hyper_rustls::builderstates::WantsProtocols1> {
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    match server_name {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    }
}

/// The connector of a gRPC channel (HTTP/2; over TLS with ALPN `h2` when a `tls` section is
/// given), through the proxy that applies. With TLS every connection is TLS whatever the URI's
/// scheme: tonic refuses an `https://` endpoint without TLS of its own, so the channel is
/// built on `http://` with this connector under it, and gives requests an `https` origin.
#[derive(Clone)]
pub struct GrpcConnector {
    inner: HttpsConnector<ProxiedTcp>,
    tls: bool,
    /// What [`GrpcConnector::to_address`] builds its connectors from, read once.
    parts: Arc<ConnectorParts>,
}

struct ConnectorParts {
    config: rustls::ClientConfig,
    server_name: Option<ServerName<'static>>,
    proxy: Proxy,
}

impl GrpcConnector {
    /// Reads the TLS section's files now, so a bad one stops startup; errors name the key
    /// relative to the `tls` section.
    pub fn new(tls: Option<&ClientTlsConfig>, proxy: Proxy) -> Result<Self, TlsError> {
        let config = match tls {
            Some(t) => t.rustls_config()?,
            None => unused_tls_config()?,
        };
        let server_name = server_name_override(tls.unwrap_or(&ClientTlsConfig::default()))?;
        let parts = Arc::new(ConnectorParts {
            config,
            server_name,
            proxy,
        });
        Ok(Self {
            inner: Self::connector(&parts, None),
            tls: tls.is_some(),
            parts,
        })
    }

    /// The same connector, its connections made to `address` rather than to what the
    /// destination's host resolves to (and never through a proxy): the destination still
    /// names the server TLS checks. For one address of a name a balancer spreads calls over.
    pub fn to_address(&self, address: SocketAddr) -> Self {
        Self {
            inner: Self::connector(&self.parts, Some(address)),
            tls: self.tls,
            parts: Arc::clone(&self.parts),
        }
    }

    /// Whether a proxy carries connections to `dst`: the proxy then resolves its host.
    pub fn proxied(&self, dst: &Uri) -> bool {
        matches!(self.parts.proxy.route(dst, true), Ok(Some(_)))
    }

    fn connector(
        parts: &ConnectorParts,
        address: Option<SocketAddr>,
    ) -> HttpsConnector<ProxiedTcp> {
        let mut tcp = ProxiedTcp::new(None, parts.proxy.clone(), true);
        if address.is_some() {
            tcp.proxy = Proxy::default();
            tcp.address = address;
        }
        named_tls_builder(parts.config.clone(), parts.server_name.clone())
            .enable_http2()
            .wrap_connector(tcp)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The keep-alive settings of a connection made by the connector of `grpc`'s kind.
    async fn keepalive_of(grpc: bool) -> (bool, Duration, Duration, u32) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = tokio::spawn(async move { listener.accept().await });
        let uri: Uri = format!("http://{addr}/").parse().expect("uri");
        let stream = ProxiedTcp::new(None, Proxy::default(), grpc)
            .call(uri)
            .await
            .expect("connects");
        let socket = socket2::SockRef::from(stream.io.inner());
        let settings = (
            socket.keepalive().expect("SO_KEEPALIVE"),
            socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"),
        );
        drop(accepted.await);
        settings
    }

    /// The system's keep-alive timing, what a socket with only `SO_KEEPALIVE` set uses.
    fn system(name: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .expect("procfs")
            .trim()
            .parse()
            .expect("a number")
    }

    #[tokio::test]
    async fn connections_send_keepalive_probes_as_otelcols_clients_do() {
        // confighttp: Go's default transport.
        assert_eq!(
            keepalive_of(false).await,
            (true, Duration::from_secs(30), Duration::from_secs(15), 9)
        );
        // gRPC: on, with the system's timing (grpc-go sets SO_KEEPALIVE alone).
        assert_eq!(
            keepalive_of(true).await,
            (
                true,
                Duration::from_secs(system("tcp_keepalive_time")),
                Duration::from_secs(system("tcp_keepalive_intvl")),
                u32::try_from(system("tcp_keepalive_probes")).expect("small"),
            )
        );
    }
}

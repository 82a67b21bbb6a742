//! One accepted connection, from the TLS handshake (when configured) to the end of hyper's
//! serving it.
//!
//! Both servers run this same sequence; they differ only in the hyper builder and service a
//! [`Protocol`] holds: HTTP/2 only for gRPC, HTTP/1.1 or h2c for OTLP/HTTP.

use std::fmt::Display;
use std::future::Future;

use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use redline_pipeline::tls::TlsAcceptor;
use tokio::net::TcpStream;

/// The hyper side of a server: serves one connection, plain or TLS, until it ends.
pub(crate) trait Protocol: Clone + Send + 'static {
    /// Names the protocol in log messages (`gRPC`, `HTTP`).
    const NAME: &'static str;
    type Error: Display;

    /// Serves `io` under `watcher`, so that shutdown can ask the connection to finish its
    /// current requests and close.
    fn serve<I>(
        self,
        io: I,
        watcher: Watcher,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;
}

/// What the accept loop clones for each connection: the protocol and the TLS acceptor.
#[derive(Clone)]
pub(crate) struct Conn<P> {
    protocol: P,
    tls: Option<TlsAcceptor>,
}

impl<P: Protocol> Conn<P> {
    pub(crate) fn new(protocol: P, tls: Option<TlsAcceptor>) -> Self {
        Self { protocol, tls }
    }

    /// Serves one accepted connection until it ends; failures only concern this client, so
    /// they are logged at debug level and go no further.
    pub(crate) async fn serve(self, io: TcpStream, watcher: Watcher) {
        let result = match &self.tls {
            None => self.protocol.serve(TokioIo::new(io), watcher).await,
            Some(tls) => {
                // The handshake runs here, in the connection's own task and under the
                // acceptor's deadline, so a slow or silent client holds up no one else.
                let io = match tls.accept(io).await {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::debug!(error = %e, "{} TLS handshake failed", P::NAME);
                        return;
                    }
                };
                self.protocol.serve(TokioIo::new(io), watcher).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "{} connection ended with an error", P::NAME);
        }
    }
}

//! One accepted connection, from the TLS handshake (when configured) to the end of hyper's
//! serving it.
//!
//! Every server runs this same sequence; they differ only in the hyper builder and service a
//! [`Protocol`] holds: HTTP/2 only for gRPC, HTTP/1.1 or h2c for the HTTP servers.

use std::fmt::Display;
use std::future::Future;

use redline_pipeline::tls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The hyper side of a server: serves one connection, plain or TLS, until it ends.
pub trait Protocol: Clone + Send + 'static {
    /// Names the protocol in log messages (`gRPC`, `HTTP`).
    const NAME: &'static str;
    type Error: Display;

    /// Serves `io` until it closes; once `stop` is cancelled the connection finishes its
    /// current requests and closes.
    fn serve<I>(
        self,
        io: I,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static;
}

/// What the accept loop clones for each connection: the protocol and the TLS acceptor.
#[derive(Clone)]
pub struct Conn<P> {
    protocol: P,
    tls: Option<TlsAcceptor>,
}

impl<P: Protocol> Conn<P> {
    pub fn new(protocol: P, tls: Option<TlsAcceptor>) -> Self {
        Self { protocol, tls }
    }

    /// Serves one accepted connection until it ends; failures only concern this client, so
    /// they are logged at debug level and go no further.
    pub async fn serve(self, io: TcpStream, stop: CancellationToken) {
        // The protocol's future (hyper's connection state, kilobytes) goes on the heap once:
        // held inline, spawning and polling the task would copy it several times over.
        let result = match &self.tls {
            None => Box::pin(self.protocol.serve(io, stop)).await,
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
                Box::pin(self.protocol.serve(io, stop)).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "{} connection ended with an error", P::NAME);
        }
    }
}

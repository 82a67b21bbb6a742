//! The accept loop every server runs on, and its shutdown.
//!
//! Owning the loop (rather than `tonic::transport::Server` or `axum::serve`) is what lets
//! shutdown honour a deadline: stop accepting, ask every connection to finish gracefully
//! (HTTP/2 GOAWAY, HTTP/1 close after the current response), and abort the connections still
//! open at the deadline, so no request can reach the pipeline after `shutdown` returns.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::conn::{Conn, Protocol};

/// A running accept loop; its task answers whether every connection finished by itself.
pub struct ServerHandle {
    pub addr: SocketAddr,
    stop: oneshot::Sender<Instant>,
    task: JoinHandle<bool>,
}

impl ServerHandle {
    /// Starts serving `listener` on the current tokio runtime.
    pub fn spawn<P: Protocol>(name: &'static str, listener: TcpListener, conn: Conn<P>) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(name, listener, conn, stop_rx));
        Self { addr, stop, task }
    }

    /// Stops accepting, drains until `deadline`, then aborts what is left. Returns whether
    /// every connection finished by itself.
    pub async fn shutdown(self, deadline: Instant) -> bool {
        // An error means the loop already ended (it only ends on this signal or a panic).
        let _ = self.stop.send(deadline);
        // The loop itself returns right after its deadline; the extra second only guards
        // against a wedged task so shutdown always returns.
        let guard = tokio::time::Instant::from_std(deadline) + Duration::from_secs(1);
        match tokio::time::timeout_at(guard, self.task).await {
            Ok(Ok(drained)) => drained,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "server accept loop failed");
                false
            }
            Err(_) => false,
        }
    }
}

/// TCP keep-alive as Go's listeners set it on every accepted connection (and so otelcol's
/// servers): probes after 15s of silence, every 15s, 9 unanswered close the connection. A
/// client that vanished without closing (its node lost, a partition) is found out in about
/// two and a half minutes, where a connection with no deadline of its own (gRPC without
/// `max_connection_idle`) would otherwise be held for ever.
const TCP_KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(Duration::from_secs(15))
    .with_interval(Duration::from_secs(15))
    .with_retries(9);

async fn accept_loop<P: Protocol>(
    name: &'static str,
    listener: TcpListener,
    conn: Conn<P>,
    mut stop: oneshot::Receiver<Instant>,
) -> bool {
    let stop_connections = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let deadline = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((io, _peer)) => {
                    // Small unary RPCs: waiting to coalesce writes only adds latency.
                    let _ = io.set_nodelay(true);
                    let _ = socket2::SockRef::from(&io).set_tcp_keepalive(&TCP_KEEPALIVE);
                    tasks.spawn(conn.clone().serve(io, stop_connections.clone()));
                }
                Err(e) => {
                    // Typically EMFILE: back off rather than spin; the listener stays usable.
                    tracing::warn!(server = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            d = &mut stop => break d.ok(),
        }
    };
    drop(listener);
    let drained = match deadline {
        Some(d) => {
            let d = tokio::time::Instant::from_std(d);
            stop_connections.cancel();
            tokio::time::timeout_at(d, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_ok()
        }
        // The handle was dropped without a shutdown: nobody waits for a drain.
        None => false,
    };
    if !drained {
        let open = tasks.len();
        if open > 0 {
            tracing::warn!(
                server = name,
                connections = open,
                "shutdown deadline reached, closing connections with requests in flight"
            );
        }
        tasks.abort_all();
    }
    while tasks.join_next().await.is_some() {}
    drained
}

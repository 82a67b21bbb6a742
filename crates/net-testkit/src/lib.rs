//! Network fixtures for tests: a loopback port for an endpoint that is down (or comes up
//! later), and an HTTP proxy.
//!
//! Binding port 0, noting the port and releasing it does not make a dead endpoint: tests run
//! in parallel, and the kernel may hand the released port to another test's server (the
//! exporter then delivers to a stranger) or to an outgoing connection's local end (a
//! loopback connect to it can then connect to itself). A socket bound and never put in the
//! listening state keeps the port for the test while the kernel refuses every connection to
//! it, and can start listening on that same port when the test brings the endpoint up.
//! Test-only: a fixture that cannot bind fails the test loudly.
#![allow(clippy::expect_used)]

mod proxy;

pub use proxy::{HttpProxy, ProxiedRequest};

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket};

/// A loopback port held bound but not listening: connections to it are refused.
pub struct ClosedPort {
    socket: TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Reserves a free loopback port. Without `SO_REUSEADDR` no other socket can bind it,
    /// whatever options that socket sets.
    pub fn reserve() -> Self {
        let socket = TcpSocket::new_v4().expect("a TCP socket");
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("the bound address");
        Self { socket, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint comes up: the same port starts accepting connections. Needs a Tokio
    /// runtime, as any listener does.
    pub fn open(self) -> TcpListener {
        self.socket
            .listen(1024)
            .expect("listen on the reserved port")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_until_opened_then_accepts_on_the_same_port() {
        let port = ClosedPort::reserve();
        let addr = port.addr();
        let refused = tokio::net::TcpStream::connect(addr)
            .await
            .expect_err("nothing listens yet");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(
            std::net::TcpListener::bind(addr).is_err(),
            "the port is held while closed"
        );
        let listener = port.open();
        assert_eq!(listener.local_addr().expect("addr"), addr);
        let (connected, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        connected.expect("connects once open");
        accepted.expect("accepted");
    }
}

//! Accepted connections have TCP keep-alive on, with Go's timing (the kernel's view of the
//! server's socket, read from `/proc/net/tcp`: the keep-alive timer armed, due within 15s).

use std::time::Duration;

use axum::Router;
use redline_http_server::{Conn, HttpProtocol, HttpServerTimeouts, ServerHandle};
use tokio::net::{TcpListener, TcpStream};

/// The kernel's timer on the socket from `local` to `remote`: (kind, seconds until due).
/// Kind 2 is keep-alive; the time is in clock ticks of 1/100 s.
fn timer(local: u16, remote: u16) -> Option<(u32, f64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = |addr: &str| {
        addr.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if port(fields.get(1)?)? != local || port(fields.get(2)?)? != remote {
            return None;
        }
        let (kind, when) = fields.get(5)?.split_once(':')?;
        let kind = u32::from_str_radix(kind, 16).ok()?;
        let ticks = u64::from_str_radix(when, 16).ok()?;
        Some((kind, ticks as f64 / 100.0))
    })
}

#[tokio::test]
async fn accepted_connections_probe_a_silent_peer_after_15s() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let protocol = HttpProtocol::new(Router::new(), &HttpServerTimeouts::default());
    let handle = ServerHandle::spawn("test", listener, Conn::new(protocol, None));
    let client = TcpStream::connect(handle.addr).await.expect("tcp");
    let client_port = client.local_addr().expect("local").port();
    let mut seen = None;
    // The accept loop sets the option once it takes the connection: look for a while.
    for _ in 0..100 {
        seen = timer(handle.addr.port(), client_port);
        if matches!(seen, Some((2, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (kind, due) = seen.expect("the server's socket is in /proc/net/tcp");
    assert_eq!(kind, 2, "keep-alive timer armed on the accepted socket");
    assert!(due > 13.0 && due <= 15.0, "first probe due in {due}s");
}

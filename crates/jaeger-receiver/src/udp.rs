//! The agent's UDP ports: each datagram is one `emitBatch` call, in the compact protocol
//! (6831) or the binary one (6832). UDP has no answer, so a bad packet or a refusing pipeline
//! is counted and logged, never reported to the client.
//!
//! As in otelcol: one task reads datagrams (cut to `max_packet_size`) into a queue of
//! `queue_size` packets, a packet arriving at a full queue is dropped, and `workers` tasks
//! decode and hand over what is queued.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ingest::Ingest;
use crate::model::read_emit_batch;
use crate::thrift::{Binary, Compact, ThriftError};

/// The agent's two Thrift protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AgentProtocol {
    Compact,
    Binary,
}

impl AgentProtocol {
    /// The protocol's key under `protocols`.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Self::Compact => "thrift_compact",
            Self::Binary => "thrift_binary",
        }
    }

    /// The transport otelcol counts the port's spans under.
    pub(crate) fn transport(self) -> &'static str {
        match self {
            Self::Compact => "udp_thrift_compact",
            Self::Binary => "udp_thrift_binary",
        }
    }
}

pub(crate) struct UdpSettings {
    pub protocol: AgentProtocol,
    pub queue_size: usize,
    pub max_packet_size: usize,
    pub workers: usize,
    pub socket_buffer_size: Option<usize>,
}

/// A running UDP server.
pub(crate) struct UdpServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

/// Binds the socket (so a port in use fails the build) and starts reading.
pub(crate) async fn start(
    endpoint: &str,
    settings: UdpSettings,
    ingest: Ingest,
) -> Result<UdpServer, String> {
    let addr = redline_pipeline::endpoint::listen_addr(endpoint).await?;
    let socket = bind(addr, settings.socket_buffer_size)
        .map_err(|e| format!("cannot listen on {addr} (udp): {e}"))?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    // A queue of 0 (allowed, as in otelcol) still holds the packet a worker is about to take.
    let (tx, rx) = mpsc::channel::<Bytes>(settings.queue_size.max(1));
    let rx = Arc::new(Mutex::new(rx));
    let ingest = Arc::new(ingest);
    let warned = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    tasks.spawn(read_loop(
        socket,
        tx,
        settings.max_packet_size,
        stop.clone(),
    ));
    for _ in 0..settings.workers {
        let rx = rx.clone();
        let ingest = ingest.clone();
        let warned = warned.clone();
        let protocol = settings.protocol;
        tasks.spawn(async move {
            loop {
                // The lock is held only while waiting, so one worker waits at a time and the
                // others are busy decoding.
                let packet = rx.lock().await.recv().await;
                let Some(packet) = packet else { break };
                process(protocol, &packet, &ingest, &warned);
            }
        });
    }
    Ok(UdpServer { addr, stop, tasks })
}

fn bind(addr: SocketAddr, buffer: Option<usize>) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if let Some(size) = buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn read_loop(
    socket: UdpSocket,
    queue: mpsc::Sender<Bytes>,
    max_packet_size: usize,
    stop: CancellationToken,
) {
    let mut dropped_logged = false;
    // One buffer for every read; each datagram is copied out at its own size, so a queued
    // packet holds what arrived, not `max_packet_size`.
    let mut buf = vec![0u8; max_packet_size];
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let len = match received {
            // A longer datagram was cut to the buffer, as otelcol's read cuts it.
            Ok((len, _)) => len.min(buf.len()),
            Err(e) => {
                tracing::debug!(error = %e, "reading a Jaeger agent datagram failed");
                continue;
            }
        };
        if len == 0 {
            continue;
        }
        let packet = Bytes::copy_from_slice(&buf[..len]);
        if queue.try_send(packet).is_err() && !dropped_logged {
            dropped_logged = true;
            tracing::warn!(
                queue_size = queue.max_capacity(),
                "Jaeger agent datagrams arrive faster than they are processed; dropping those \
                 over the queue (logged once)"
            );
        }
    }
}

/// Decodes and hands over one datagram.
fn process(protocol: AgentProtocol, packet: &[u8], ingest: &Ingest, warned: &AtomicBool) {
    let decoded = match protocol {
        AgentProtocol::Compact => read_emit_batch(&mut Compact::new(packet)),
        AgentProtocol::Binary => read_emit_batch(&mut Binary::new(packet)),
    };
    let result = match decoded {
        Ok(Some(batch)) => ingest.batch(&batch, None).map_err(|e| e.to_string()),
        Ok(None) => Ok(()),
        Err(ThriftError(reason)) => Err(reason),
    };
    if let Err(reason) = result {
        let transport = protocol.transport();
        if !warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                transport,
                bytes = packet.len(),
                %reason,
                "a Jaeger agent datagram was not taken (logged once at warn, then at debug)"
            );
        } else {
            tracing::debug!(transport, bytes = packet.len(), %reason, "a Jaeger agent datagram was not taken");
        }
    }
}

impl UdpServer {
    /// Stops reading, lets the workers finish the queued packets, until `deadline`.
    pub(crate) async fn shutdown(mut self, deadline: Instant) -> bool {
        self.stop.cancel();
        let drained = async { while self.tasks.join_next().await.is_some() {} };
        let left = deadline.saturating_duration_since(Instant::now());
        let finished = tokio::time::timeout(left, drained).await.is_ok();
        if !finished {
            self.tasks.abort_all();
        }
        finished
    }
}

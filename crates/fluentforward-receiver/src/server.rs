//! The TCP server: connections read events as they arrive, hand every complete event in a
//! read to the pipeline as one request, and acknowledge chunks once it took them; and the
//! UDP heartbeat on the same port.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{Batch, Consumer, Refused, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{self, EventError};
use crate::otlp;
use crate::scan::Scan;
use crate::telemetry::FluentCounters;

/// Connections served at once, as otelcol's receiver limits them: more wait in the accept
/// backlog. Each waits for its chunks' acknowledgements, so this also bounds what is held.
pub(crate) const MAX_CONNECTIONS: usize = 100;

/// How long an event waits for the pipeline to take it before its connection gives up
/// (otelcol's acknowledgement wait).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(30);

/// Largest event: a connection that sends more in one event is closed. Fluent Bit's chunks
/// stay far below (2 MiB by default; fluentd's `chunk_limit_size`, 8 MiB).
pub(crate) const MAX_EVENT: usize = 16 * 1024 * 1024;

/// What every connection of one receiver shares.
pub(crate) struct Shared {
    pub id: String,
    pub next: Arc<dyn Consumer>,
    pub counters: Arc<ReceiverCounters>,
    pub fluent: Arc<FluentCounters>,
}

/// Accepts connections until `stop`, at most [`MAX_CONNECTIONS`] at a time.
pub(crate) async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stop.cancelled() => return,
        };
        let Ok(slot) = slot else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(receiver = %shared.id, error = %e, "fluent_forward: accept failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = stop.cancelled() => return,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        shared
            .fluent
            .opened_connections
            .fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            let _slot = slot;
            if let Err(reason) = serve(stream, &shared, &stop).await {
                tracing::debug!(receiver = %shared.id, %peer, %reason, "fluent_forward: connection closed");
            }
            shared.fluent.closed_connections.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// Echoes the first byte of every datagram: the Forward protocol's heartbeat.
pub(crate) async fn heartbeat(socket: UdpSocket, stop: CancellationToken) {
    let mut byte = [0u8; 1];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut byte) => r,
            () = stop.cancelled() => return,
        };
        // A datagram longer than the buffer is truncated to its first byte, as in Go.
        if let Ok((1, from)) = received {
            let _ = socket.send_to(&byte, from).await;
        }
    }
}

/// One connection, until it closes, sends something that is not an event, or `stop`.
async fn serve(
    mut stream: TcpStream,
    shared: &Shared,
    stop: &CancellationToken,
) -> Result<(), String> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut scan = Scan::default();
    loop {
        let read = tokio::select! {
            read = stream.read_buf(&mut buf) => read,
            () = stop.cancelled() => return Ok(()),
        };
        let n = read.map_err(|e| format!("reading: {e}"))?;
        // Every event complete so far, as one request.
        let mut records = Vec::new();
        let mut count = 0;
        let mut chunks = Vec::new();
        let mut failure = None;
        loop {
            match scan.advance(&buf) {
                Ok(Some(len)) => match event::read(&buf, len, with_head(&mut records, buf.len())) {
                    Ok(parsed) => {
                        let _ = buf.split_to(len);
                        scan = Scan::default();
                        shared.fluent.events_parsed.fetch_add(1, Ordering::Relaxed);
                        count += parsed.records;
                        chunks.extend(parsed.chunk);
                    }
                    // Its mode is told by a byte of the next event (as otelcol does).
                    Err(EventError::Incomplete { .. }) => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                },
                Ok(None) => {
                    failure = event::check_start(&buf).err();
                    break;
                }
                Err(_) => {
                    failure = Some(classify(&buf));
                    break;
                }
            }
        }
        if failure.is_none() && buf.len() > MAX_EVENT {
            failure = Some(EventError::Decode(format!(
                "an event larger than {MAX_EVENT} bytes"
            )));
        }
        let handed = hand_over(shared, records, count, stop).await;
        if handed.is_ok() {
            for chunk in &chunks {
                stream
                    .write_all(&ack(chunk))
                    .await
                    .map_err(|e| format!("acknowledging a chunk: {e}"))?;
            }
        }
        if let Some(failure) = failure {
            if matches!(failure, EventError::Decode(_)) {
                shared.fluent.parse_failures.fetch_add(1, Ordering::Relaxed);
            }
            return Err(format!("not a Forward event: {}", failure.reason()));
        }
        if let Err(refused) = handed {
            if !chunks.is_empty() {
                // Unacknowledged: the client sends the chunk again.
                return Err(format!("the pipeline did not take a chunk: {refused}"));
            }
        }
        if n == 0 {
            // An event cut where otelcol's reader only peeks is a clean end of stream to it;
            // cut anywhere else, a parse failure.
            if !buf.is_empty() {
                if let Err(EventError::Decode(_) | EventError::Incomplete { clean: false }) =
                    event::read(&buf, buf.len(), &mut Vec::new())
                {
                    shared.fluent.parse_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            return Ok(());
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
    }
}

/// What the bytes at the start of `buf`, where the event boundary scan found something that
/// is not MessagePack, are to otelcol: an event whose mode cannot be told, or one that does
/// not decode.
/// `records`, with room for the request's head in front, and for records about the size of
/// the `buffered` events, once an event is there to read (a large event arriving in many
/// reads allocates nothing until it is whole).
fn with_head(records: &mut Vec<u8>, buffered: usize) -> &mut Vec<u8> {
    if records.is_empty() {
        records.reserve(otlp::REQUEST_HEAD + buffered);
        records.resize(otlp::REQUEST_HEAD, 0);
    }
    records
}

fn classify(buf: &[u8]) -> EventError {
    match event::read(buf, buf.len(), &mut Vec::new()) {
        Err(e @ (EventError::Mode(_) | EventError::Decode(_))) => e,
        _ => EventError::Decode("not MessagePack".to_owned()),
    }
}

/// `{"ack": chunk}`.
fn ack(chunk: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k'];
    match u32::try_from(chunk.len()) {
        Ok(len) if len < 32 => out.push(0xa0 | len as u8),
        Ok(len) if len < 256 => out.extend([0xd9, len as u8]),
        Ok(len) if len < 65_536 => {
            out.push(0xda);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(0xdb);
            out.extend((chunk.len() as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(chunk);
    out
}

/// Hands `count` records to the pipeline as one request, waiting while it refuses for at
/// most [`ACK_WAIT`]: the connection reads nothing meanwhile, so the client is held back
/// instead of its records being dropped.
async fn hand_over(
    shared: &Shared,
    records: Vec<u8>,
    count: usize,
    stop: &CancellationToken,
) -> Result<(), Refused> {
    if count == 0 {
        return Ok(());
    }
    shared
        .fluent
        .records_generated
        .fetch_add(count as u64, Ordering::Relaxed);
    let batch = Batch::new(Signal::Logs, otlp::request(records), count);
    let started = Instant::now();
    let deadline = started + ACK_WAIT;
    loop {
        match shared.next.reserve(&batch) {
            Ok(reservation) => {
                reservation.commit(batch);
                shared
                    .counters
                    .accepted
                    .fetch_add(count as u64, Ordering::Relaxed);
                return Ok(());
            }
            Err(refused) => {
                let wait = refused.retry_after.max(Duration::from_millis(10));
                // A permanent refusal would refuse the records again: dropped at once,
                // as otelcol drops records its pipeline failed.
                if refused.permanent || Instant::now() + wait > deadline || stop.is_cancelled() {
                    shared
                        .counters
                        .refused
                        .fetch_add(count as u64, Ordering::Relaxed);
                    tracing::warn!(
                        receiver = %shared.id,
                        records = count,
                        %refused,
                        permanent = refused.permanent,
                        waited_s = started.elapsed().as_secs(),
                        "fluent_forward: the pipeline refused log records; dropped"
                    );
                    return Err(refused);
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_are_msgpack_maps() {
        assert_eq!(ack(b"c1"), b"\x81\xa3ack\xa2c1");
        let long = vec![b'x'; 40];
        assert_eq!(&ack(&long)[..7], b"\x81\xa3ack\xd9\x28");
    }
}

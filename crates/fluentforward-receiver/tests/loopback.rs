//! The receiver on 127.0.0.1:0 with real sockets: events of every mode from one connection
//! reach the pipeline, chunks are acknowledged once taken, heartbeats are echoed, a
//! connection that sends something else is closed without losing the events before it, and
//! a pipeline that refuses holds the client back instead of dropping its records.
#![allow(clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use redline_fluentforward_receiver::{Config, FluentForwardReceiverFactory};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentId, Consumer, Refused, Reservation, RunningComponent, Signal,
    SignalConsumers,
};
use redline_processor_testkit::Sink;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Receiver {
    running: Box<dyn RunningComponent>,
    telemetry: Telemetry,
}

impl Receiver {
    async fn start(next: Arc<dyn Consumer>) -> Self {
        let config = Config {
            endpoint: "127.0.0.1:0".into(),
        };
        let ctx = BuildContext::new(Telemetry::new());
        let mut consumers = SignalConsumers::default();
        consumers.set(Signal::Logs, next);
        let running = FluentForwardReceiverFactory
            .start(
                &ComponentId::new("fluent_forward", None),
                &config,
                &ctx,
                consumers,
            )
            .await
            .expect("receiver starts");
        Self {
            running,
            telemetry: ctx.telemetry.clone(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.running.local_addrs()[0].1
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr()).await.expect("connects")
    }

    /// (accepted, refused) log records.
    fn counted(&self) -> (u64, u64) {
        let c = self
            .telemetry
            .receiver("fluent_forward", "http", Signal::Logs);
        (
            c.accepted.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
        )
    }

    async fn shutdown(self) {
        self.running
            .shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
    }
}

/// A MessagePack string.
fn s(text: &str) -> Vec<u8> {
    let mut out = vec![0xd9, u8::try_from(text.len()).expect("short")];
    out.extend_from_slice(text.as_bytes());
    out
}

/// `{"log": text}`.
fn record(text: &str) -> Vec<u8> {
    [vec![0x81], s("log"), s(text)].concat()
}

/// Message mode: `[tag, time, {"log": text}]`, with `{"chunk": chunk}` when given.
fn message(text: &str, chunk: Option<&str>) -> Vec<u8> {
    let mut out = vec![if chunk.is_some() { 0x94 } else { 0x93 }];
    out.extend(s("app"));
    out.push(0x01);
    out.extend(record(text));
    if let Some(chunk) = chunk {
        out.push(0x81);
        out.extend(s("chunk"));
        out.extend(s(chunk));
    }
    out
}

/// The log bodies that reached `sink`, in order, waiting (bounded) for `n`.
async fn bodies(sink: &Sink, got: &mut Vec<String>, n: usize) {
    for _ in 0..200 {
        for batch in sink.take() {
            let req = ExportLogsServiceRequest::decode(batch.raw.clone()).expect("OTLP");
            for r in &req.resource_logs[0].scope_logs[0].log_records {
                match r.body.as_ref().and_then(|b| b.value.clone()) {
                    Some(Any::StringValue(s)) => got.push(s),
                    other => panic!("body {other:?}"),
                }
            }
        }
        if got.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {n} records arrived: {got:?}", got.len());
}

/// Reads until the peer closes (bounded): what it sent before.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("closed in time")
        .expect("read");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_every_mode_arrive_and_chunks_are_acknowledged() {
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    let mut conn = rx.connect().await;
    // Forward mode of two entries, then PackedForward of one, both in one write.
    let entry = |t: &str| [vec![0x92, 0x02], record(t)].concat();
    let forward = [vec![0x92], s("app"), vec![0x92], entry("f1"), entry("f2")].concat();
    let packed_entries = entry("p1");
    let packed = [
        vec![0x92],
        s("app"),
        vec![0xc4, u8::try_from(packed_entries.len()).expect("short")],
        packed_entries,
    ]
    .concat();
    conn.write_all(&[forward, packed].concat())
        .await
        .expect("sent");
    // A chunked message sent a byte at a time: acknowledged once whole and taken.
    for b in message("m1", Some("chunk-1")) {
        conn.write_all(&[b]).await.expect("sent");
    }
    let mut ack = vec![0u8; 5 + 1 + 7];
    conn.read_exact(&mut ack).await.expect("the ack");
    assert_eq!(ack, [&b"\x81\xa3ack\xa7"[..], b"chunk-1"].concat());
    let mut got = Vec::new();
    bodies(&sink, &mut got, 4).await;
    assert_eq!(got, ["f1", "f2", "p1", "m1"]);
    assert_eq!(rx.counted(), (4, 0));

    // The heartbeat: the same byte back, on the TCP port.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    udp.send_to(&[0], rx.addr()).await.expect("sent");
    let mut echo = [9u8; 4];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), udp.recv_from(&mut echo))
        .await
        .expect("echoed in time")
        .expect("echo");
    assert_eq!(&echo[..n], &[0]);
    drop(conn);
    rx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_garbage_is_closed_and_loses_nothing_before_it() {
    let sink = Sink::default();
    let rx = Receiver::start(Arc::new(sink.clone())).await;
    let mut conn = rx.connect().await;
    let garbage = [vec![0x93], s("app"), vec![0xc0]].concat();
    conn.write_all(&[message("before", None), garbage].concat())
        .await
        .expect("sent");
    assert_eq!(
        until_closed(&mut conn).await,
        b"",
        "closed without an answer"
    );
    let mut got = Vec::new();
    bodies(&sink, &mut got, 1).await;
    assert_eq!(got, ["before"]);
    // Another connection is served as before.
    let mut conn = rx.connect().await;
    conn.write_all(&message("after", None)).await.expect("sent");
    bodies(&sink, &mut got, 2).await;
    assert_eq!(got, ["before", "after"]);
    rx.shutdown().await;
}

/// Refuses its first `refusals` batches, as a full queue would (or, `permanent`, as a
/// `batch` processor over its metadata cardinality limit), then takes everything.
struct Flaky {
    refusals: AtomicUsize,
    permanent: bool,
    sink: Sink,
}

impl Consumer for Flaky {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let left = self.refusals.load(Ordering::Relaxed);
        if left > 0 {
            self.refusals.store(left - 1, Ordering::Relaxed);
            return Err(Refused {
                component: "queue".into(),
                reason: "full".into(),
                retry_after: Duration::from_millis(20),
                permanent: self.permanent,
            });
        }
        self.sink.reserve(batch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_pipeline_holds_the_client_back_instead_of_dropping() {
    let sink = Sink::default();
    let flaky = Flaky {
        refusals: AtomicUsize::new(3),
        permanent: false,
        sink: sink.clone(),
    };
    let rx = Receiver::start(Arc::new(flaky)).await;
    let mut conn = rx.connect().await;
    conn.write_all(&message("held", Some("c")))
        .await
        .expect("sent");
    let mut ack = vec![0u8; 7];
    conn.read_exact(&mut ack)
        .await
        .expect("the ack, once taken");
    assert_eq!(ack, b"\x81\xa3ack\xa1c");
    let mut got = Vec::new();
    bodies(&sink, &mut got, 1).await;
    assert_eq!(got, ["held"]);
    assert_eq!(rx.counted(), (1, 0), "taken, never counted refused");
    rx.shutdown().await;
}

#[tokio::test]
async fn a_permanent_refusal_drops_the_records_at_once_unacknowledged() {
    let sink = Sink::default();
    let flaky = Arc::new(Flaky {
        refusals: AtomicUsize::new(100),
        permanent: true,
        sink: sink.clone(),
    });
    let rx = Receiver::start(flaky.clone()).await;
    let mut conn = rx.connect().await;
    conn.write_all(&message("refused", Some("c")))
        .await
        .expect("sent");
    assert_eq!(
        until_closed(&mut conn).await,
        b"",
        "closed without an ack: the client keeps its chunk"
    );
    assert_eq!(
        flaky.refusals.load(Ordering::Relaxed),
        99,
        "offered once, not again for 30 s"
    );
    assert_eq!(rx.counted(), (0, 1), "counted refused");
    assert!(sink.take().is_empty(), "nothing delivered");
    rx.shutdown().await;
}

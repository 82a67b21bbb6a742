//! The round robin against real gRPC servers on loopback. The name's resolution is the one
//! part given by the test (every server listens on 127.0.0.1, on ports of their own, which no
//! DNS answer can express); connections, calls and failures are real.

use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use redline_net_testkit::ClosedPort;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Endpoint;
use tonic::Code;

use super::*;
use crate::codec::Message;
use crate::grpc::ExportClient;

/// A trace server counting the calls it answered.
struct Server {
    address: SocketAddr,
    calls: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

struct Count(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Count {
    async fn export(
        &self,
        _: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Server {
    async fn start() -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
    }

    fn serve(listener: TcpListener) -> Self {
        let address = listener.local_addr().expect("address");
        let calls = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(Count(Arc::clone(&calls)));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        Self {
            address,
            calls,
            stop: Some(stop),
            task,
        }
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Stops listening and closes its connections (a GOAWAY to each client).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

/// The addresses the test's name resolves to, changed as the test goes, and how many times
/// it was resolved.
#[derive(Clone)]
struct Names {
    answer: Arc<Mutex<io::Result<Vec<SocketAddr>>>>,
    resolutions: Arc<AtomicU64>,
}

impl Names {
    fn new(addresses: Vec<SocketAddr>) -> Self {
        Self {
            answer: Arc::new(Mutex::new(Ok(addresses))),
            resolutions: Arc::new(AtomicU64::new(0)),
        }
    }

    fn answer_with(&self, answer: io::Result<Vec<SocketAddr>>) {
        *lock(&self.answer) = answer;
    }

    fn resolutions(&self) -> u64 {
        self.resolutions.load(Ordering::SeqCst)
    }

    fn resolver(&self) -> Resolve {
        let names = self.clone();
        Arc::new(move |host: String, port: u16| {
            assert_eq!((host.as_str(), port), ("tempo-distributor", 4317));
            names.resolutions.fetch_add(1, Ordering::SeqCst);
            let answer = match &*lock(&names.answer) {
                Ok(addresses) => Ok(addresses.clone()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            Box::pin(std::future::ready(answer))
        })
    }
}

/// A plaintext channel to `address`, its connections reported to `health`.
fn tcp_channel(address: SocketAddr, health: ConnectionHealth) -> Channel {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_nodelay(true);
    Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect_with_connector_lazy(Reported::new(tcp, health, Duration::from_secs(5)))
}

fn round_robin(names: &Names, min_interval: Duration) -> (Arc<RoundRobin>, ExportClient) {
    let mut rr = RoundRobin::new(
        "tempo-distributor".into(),
        4317,
        Box::new(tcp_channel),
        names.resolver(),
    );
    rr.min_resolution_interval = min_interval;
    client_of(rr)
}

/// The server comes up on `port` after `delay`, while a call waits.
async fn start_later(port: ClosedPort, delay: Duration) -> Server {
    tokio::time::sleep(delay).await;
    Server::serve(port.open())
}

#[tokio::test]
async fn waiting_for_ready_a_call_outlasts_a_server_that_is_not_up_yet() {
    // Balanced, and on one channel (`pick_first`).
    for balanced in [true, false] {
        let port = ClosedPort::reserve();
        let address = port.addr();
        let names = Names::new(vec![address]);
        let client = match balanced {
            true => round_robin(&names, MIN_RESOLUTION_INTERVAL).1,
            false => ExportClient::new(
                Channels::One(tcp_channel(address, ConnectionHealth::default())),
                redline_pipeline::Signal::Traces.grpc_export_path(),
                http::HeaderMap::new(),
                None,
            ),
        };
        let status = call(&client).await.expect_err("fails fast by default");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");

        let client = client.waiting_for_ready(true);
        let (answer, server) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(20), call(&client)),
            start_later(port, Duration::from_millis(1500)),
        );
        answer
            .expect("answered within the bound")
            .expect("the call waited for the server instead of failing");
        assert_eq!(server.calls(), 1, "balanced: {balanced}");
        server.stop().await;
    }
}

fn client_of(rr: RoundRobin) -> (Arc<RoundRobin>, ExportClient) {
    let rr = Arc::new(rr);
    let client = ExportClient::new(
        Channels::RoundRobin(Arc::clone(&rr)),
        redline_pipeline::Signal::Traces.grpc_export_path(),
        http::HeaderMap::new(),
        None,
    );
    (rr, client)
}

async fn call(client: &ExportClient) -> Result<(), Status> {
    let bytes = Bytes::from(prost::Message::encode_to_vec(
        &ExportTraceServiceRequest::default(),
    ));
    let message = Message::encode(&[&bytes], None).expect("framed");
    client.export(&message, None).await.map(drop)
}

#[tokio::test]
async fn calls_take_each_address_in_turn() {
    let servers = [
        Server::start().await,
        Server::start().await,
        Server::start().await,
    ];
    let names = Names::new(servers.iter().map(|s| s.address).collect());
    let (_, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    for _ in 0..30 {
        call(&client).await.expect("answered");
    }
    let calls: Vec<u64> = servers.iter().map(Server::calls).collect();
    assert_eq!(calls, [10, 10, 10], "each address takes every third call");
    assert_eq!(names.resolutions(), 1, "resolved once, on the first call");
    for s in servers {
        s.stop().await;
    }
}

#[tokio::test]
async fn an_address_that_refuses_connections_is_left_out_and_no_call_fails() {
    let closed = ClosedPort::reserve();
    let (a, b) = (Server::start().await, Server::start().await);
    let names = Names::new(vec![closed.addr(), a.address, b.address]);
    let (rr, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    let started = Instant::now();
    for i in 0..30 {
        call(&client)
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(a.calls() + b.calls(), 30, "every call answered once");
    let refused = Arc::clone(&lock(&rr.state).addresses[0]);
    assert_eq!(refused.address, closed.addr());
    // Tried on its first turn, then again only after a backoff (0.8 s at the least) passed.
    let failures = lock(&refused.health.0).failures;
    let most = 1 + (elapsed / 0.8) as u32;
    assert!(
        (1..=most).contains(&failures),
        "{failures} failed connections in {elapsed:.2}s"
    );
    // While it is left out the two others alternate; each of its tries moves the turn once.
    assert!(
        a.calls().abs_diff(b.calls()) <= 2 * u64::from(failures),
        "the live addresses take turns: {} / {}",
        a.calls(),
        b.calls()
    );
    assert_eq!(
        names.resolutions(),
        1,
        "not resolved again within 30 s of a success"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn no_address_that_connects_fails_the_call_naming_the_last_error() {
    let (one, two) = (ClosedPort::reserve(), ClosedPort::reserve());
    let names = Names::new(vec![one.addr(), two.addr()]);
    let (_, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    let status = call(&client).await.expect_err("nothing listens");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .starts_with("no address of `tempo-distributor:4317` can be connected to (2 tried)"),
        "{status:?}"
    );
    assert!(
        status
            .message()
            .ends_with("Connection refused (os error 111)"),
        "the reason, not just \"tcp connect error\": {status:?}"
    );
    // Both are left out now: the next call fails at once, trying neither.
    let status = call(&client).await.expect_err("still nothing");
    assert!(status.message().contains("(2 tried)"), "{status:?}");
}

#[tokio::test]
async fn a_call_finding_every_address_left_out_asks_for_a_new_resolution() {
    let (one, two) = (ClosedPort::reserve(), ClosedPort::reserve());
    let names = Names::new(vec![one.addr(), two.addr()]);
    let (rr, client) = round_robin(&names, Duration::ZERO);
    call(&client).await.expect_err("nothing listens");
    // The failed connections asked for resolutions of their own: wait (bounded) until no
    // more come.
    let mut before = names.resolutions();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _none_running = rr.resolving.lock().await;
        let now = names.resolutions();
        if now == before {
            break;
        }
        before = now;
    }
    assert!(
        rr.pick(&[]).await.is_err(),
        "both addresses are left out, as the same name resolves to them again"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while names.resolutions() == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(names.resolutions(), before + 1);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_calls_with_the_resolver_error() {
    let names = Names::new(Vec::new());
    names.answer_with(Err(io::Error::other("no such host")));
    let (_, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    let status = call(&client).await.expect_err("no address");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.message(),
        "name resolver error for `tempo-distributor:4317`: no such host"
    );
    let status = call(&client).await.expect_err("within the backoff");
    assert!(status.message().ends_with("no such host"), "{status:?}");
    assert_eq!(
        names.resolutions(),
        1,
        "backing off, not resolving per call"
    );

    names.answer_with(Ok(Vec::new()));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let status = call(&client).await.expect_err("empty answer");
    assert!(
        status
            .message()
            .ends_with("the name resolved to no address"),
        "{status:?}"
    );
}

#[tokio::test]
async fn addresses_resolved_again_after_a_failure_take_the_calls() {
    let (old, new) = (Server::start().await, Server::start().await);
    let names = Names::new(vec![old.address]);
    let (rr, client) = round_robin(&names, Duration::ZERO);
    call(&client).await.expect("answered");
    assert_eq!(old.calls(), 1);

    // The pod goes away and the name now leads to its replacement.
    let old_address = old.address;
    old.stop().await;
    names.answer_with(Ok(vec![new.address]));
    let mut failed = 0;
    for _ in 0..50 {
        match call(&client).await {
            Ok(()) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(new.calls(), 1, "the call reached the new address");
    assert!(
        failed <= 2,
        "failed {failed} times before the new address was used"
    );
    let addresses: Vec<SocketAddr> = lock(&rr.state)
        .addresses
        .iter()
        .map(|a| a.address)
        .collect();
    assert_eq!(addresses, [new.address], "{old_address} is gone");
    new.stop().await;
}

#[tokio::test]
async fn an_address_resolved_again_keeps_its_connection() {
    let a = Server::start().await;
    let names = Names::new(vec![a.address]);
    let (rr, client) = round_robin(&names, Duration::ZERO);
    call(&client).await.expect("answered");
    let before = Arc::clone(&lock(&rr.state).addresses[0]);
    rr.resolve_now().await;
    let after = Arc::clone(&lock(&rr.state).addresses[0]);
    assert!(Arc::ptr_eq(&before, &after), "same address, same channel");
    assert_eq!(names.resolutions(), 2);
    a.stop().await;
}

#[tokio::test]
async fn an_address_that_never_answers_costs_a_call_part_of_its_timeout_not_the_call() {
    let silent = ClosedPort::reserve().addr();
    let live = Server::start().await;
    let names = Names::new(vec![silent, live.address]);
    let connect: Connect = Box::new(move |address, health| {
        if address != silent {
            return tcp_channel(address, health);
        }
        let never = tower::service_fn(|_: http::Uri| {
            std::future::pending::<io::Result<hyper_util::rt::TokioIo<tokio::net::TcpStream>>>()
        });
        Endpoint::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect_with_connector_lazy(Reported::new(never, health, Duration::from_millis(200)))
    });
    let mut rr = RoundRobin::new("tempo-distributor".into(), 4317, connect, names.resolver());
    rr.next = AtomicUsize::new(0);
    let (rr, client) = client_of(rr);
    // The first turn is the silent address's: the connection gives up after 200 ms, and the
    // call goes on to the live one within its own (1 s here) timeout.
    tokio::time::timeout(Duration::from_secs(1), call(&client))
        .await
        .expect("within the call's timeout")
        .expect("answered by the live address");
    assert_eq!(live.calls(), 1);
    let silent_health = Arc::clone(&lock(&rr.state).addresses[0]);
    assert_eq!(silent_health.address, silent);
    assert!(
        lock(&silent_health.health.0)
            .error
            .ends_with("no connection within 200ms"),
        "{}",
        lock(&silent_health.health.0).error
    );
    live.stop().await;
}

#[test]
fn a_balanced_connection_gets_half_the_call_timeout_up_to_grpc_gos_20s() {
    let s = Duration::from_secs;
    assert_eq!(connect_timeout(Some(s(5))), Duration::from_millis(2500));
    assert_eq!(connect_timeout(Some(s(60))), s(20));
    assert_eq!(connect_timeout(None), s(20), "no call timeout");
}

#[tokio::test]
async fn a_waiting_call_tries_again_when_an_addresss_backoff_ends() {
    let names = Names::new(vec![ClosedPort::reserve().addr()]);
    let (rr, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    assert_eq!(rr.ready_in(), Duration::ZERO, "nothing known yet: at once");
    call(&client).await.expect_err("refused");
    let wait = rr.ready_in().as_secs_f64();
    assert!(
        (0.5..=1.2).contains(&wait),
        "the first backoff (1 s ±20%): {wait}"
    );

    let names = Names::new(Vec::new());
    names.answer_with(Err(io::Error::other("no such host")));
    let (rr, client) = round_robin(&names, MIN_RESOLUTION_INTERVAL);
    call(&client).await.expect_err("no address");
    let wait = rr.ready_in().as_secs_f64();
    assert!(
        (0.5..=1.2).contains(&wait),
        "the resolver's backoff: {wait}"
    );
}

#[test]
fn the_connection_backoff_is_grpc_gos() {
    for (n, base) in [
        (1, 1.0),
        (2, 1.6),
        (5, 1.6f64.powi(4)),
        (20, 120.0),
        (u32::MAX, 120.0),
    ] {
        let d = connection_backoff(n).as_secs_f64();
        assert!(
            d >= base * 0.8 - 1e-9 && d <= (base * 1.2).min(120.0) + 1e-9,
            "retry {n}: {d}s, base {base}s"
        );
    }
}

#[test]
fn only_connection_failures_count_as_connect_errors() {
    let connect: BoxError = Box::new(tonic::ConnectError(Box::new(io::Error::from(
        io::ErrorKind::ConnectionRefused,
    ))));
    assert!(is_connect_error(&*connect));
    let other: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
    assert!(!is_connect_error(&*other));
}

#[tokio::test]
async fn a_connection_that_outlives_its_call_still_leaves_the_address_out() {
    // An address that neither accepts nor refuses: its connection fails only after the call
    // that started it gave up (the exporter's timeout).
    let slow = ClosedPort::reserve().addr();
    let live = Server::start().await;
    let names = Names::new(vec![slow, live.address]);
    let connect: Connect = Box::new(move |address, health| {
        if address != slow {
            return tcp_channel(address, health);
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}")).expect("endpoint");
        let black_hole = tower::service_fn(|_: http::Uri| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err::<hyper_util::rt::TokioIo<tokio::net::TcpStream>, _>(io::Error::from(
                io::ErrorKind::TimedOut,
            ))
        });
        endpoint.connect_with_connector_lazy(Reported::new(
            black_hole,
            health,
            Duration::from_secs(5),
        ))
    });
    let mut rr = RoundRobin::new("tempo-distributor".into(), 4317, connect, names.resolver());
    rr.min_resolution_interval = Duration::ZERO;
    rr.next = AtomicUsize::new(0);
    let (rr, client) = client_of(rr);

    let given_up = tokio::time::timeout(Duration::from_millis(100), call(&client)).await;
    assert!(given_up.is_err(), "the first turn is the black hole's");
    // Bounded wait for the connection attempt to end on its own.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = Arc::clone(&lock(&rr.state).addresses[0]);
    while lock(&refused.health.0).failures == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refused.address, slow);
    assert_eq!(
        lock(&refused.health.0).failures,
        1,
        "reported by its connector"
    );
    assert_eq!(
        names.resolutions(),
        2,
        "the given-up call asked for a new resolution"
    );
    for i in 0..10 {
        call(&client)
            .await
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
    }
    assert_eq!(live.calls(), 10, "every call went to the live address");
    live.stop().await;
}

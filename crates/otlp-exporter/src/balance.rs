//! Where an `Export` call goes: grpc-go's `round_robin` (otelcol's default `balancer_name`)
//! over every address the endpoint's name resolves to, or one channel (`pick_first`, or a
//! proxy in the way, which resolves the name itself).
//!
//! Behind a headless service (Tempo's or Loki's distributors) a name resolves to one address
//! per pod; with one connection to the first, as `pick_first` keeps, every request lands on
//! one pod. As grpc-go does, each address gets a connection of its own and calls take them in
//! turn from a random start; an address that cannot be connected to is left out, with
//! grpc-go's connection backoff, while another can take calls, and its failure asks for the
//! name to be resolved again (at most every 30 s after a success, as grpc-go's DNS resolver).
//! A call whose connection could not be made was never sent, so it goes on to the next
//! address at once rather than failing an attempt the exporter would then retry.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic::Status;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves a host and port to the addresses to balance over.
pub(crate) type Resolve = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// Makes the (lazily connecting) channel of one address, its connector wrapped in
/// [`Reported`] with the given health.
pub(crate) type Connect = Box<dyn Fn(SocketAddr, ConnectionHealth) -> Channel + Send + Sync>;

/// grpc-go's DNS resolver: no new resolution sooner than this after a successful one.
const MIN_RESOLUTION_INTERVAL: Duration = Duration::from_secs(30);

/// The system's resolver (`getaddrinfo`, as Go's resolver reads the same files and servers).
pub(crate) fn system_resolver() -> Resolve {
    Arc::new(|host: String, port: u16| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    })
}

/// The channel a call goes out on.
#[derive(Clone)]
pub(crate) enum Channels {
    One(Channel),
    RoundRobin(Arc<RoundRobin>),
}

/// A call's channel and, when balanced, the address it leads to, to report back on.
pub(crate) struct Picked {
    pub(crate) channel: Channel,
    pub(crate) address: Option<Arc<Address>>,
    /// Another address could take the call if this one cannot be connected to.
    pub(crate) fallback: bool,
}

impl Channels {
    pub(crate) async fn pick(&self, skip: &[SocketAddr]) -> Result<Picked, Status> {
        match self {
            Channels::One(channel) => Ok(Picked {
                channel: channel.clone(),
                address: None,
                fallback: false,
            }),
            Channels::RoundRobin(rr) => rr.pick(skip).await,
        }
    }
}

/// One address of the name and its connection.
pub(crate) struct Address {
    pub(crate) address: SocketAddr,
    channel: Channel,
    health: ConnectionHealth,
}

impl Address {
    fn up(&self, now: Instant) -> bool {
        lock(&self.health.0).down_until.is_none_or(|t| now >= t)
    }
}

/// How an address's connections go, told by its connector: a connection still being made
/// when the call that started it gave up (its timeout) is reported all the same.
#[derive(Clone, Default)]
pub(crate) struct ConnectionHealth(Arc<Mutex<Health>>);

#[derive(Default)]
struct Health {
    /// The endpoint and the address, for the log.
    of: Option<(Arc<str>, SocketAddr)>,
    /// Connections that failed since the last one made.
    failures: u32,
    /// Left out of the turn until then.
    down_until: Option<Instant>,
    error: String,
}

impl ConnectionHealth {
    fn of(endpoint: Arc<str>, address: SocketAddr) -> Self {
        Self(Arc::new(Mutex::new(Health {
            of: Some((endpoint, address)),
            ..Health::default()
        })))
    }

    fn connected(&self) {
        let mut health = lock(&self.0);
        if health.failures > 0 {
            health.failures = 0;
            health.down_until = None;
            health.error.clear();
        }
    }

    /// Left out with grpc-go's connection backoff.
    fn failed(&self, error: String) {
        let mut health = lock(&self.0);
        health.failures = health.failures.saturating_add(1);
        let backoff = connection_backoff(health.failures);
        health.down_until = Some(Instant::now() + backoff);
        // Calls go on to other addresses and nothing fails, so this line is how a dead pod
        // shows (grpc-go warns of each failed connection too); at most once per backoff.
        let (endpoint, address) = health.of.clone().unzip();
        tracing::warn!(
            endpoint = endpoint.as_deref(),
            address = address.map(tracing::field::display),
            failures = health.failures,
            retry_in_ms = backoff.as_millis() as u64,
            %error,
            "exporter address left out of the round robin after a failed connection"
        );
        health.error = error;
    }
}

/// A connector that reports how its connections go to the address's health, giving up on
/// one after `connect_timeout`.
#[derive(Clone)]
pub(crate) struct Reported<C> {
    inner: C,
    health: ConnectionHealth,
    connect_timeout: Duration,
}

impl<C> Reported<C> {
    pub(crate) fn new(inner: C, health: ConnectionHealth, connect_timeout: Duration) -> Self {
        Self {
            inner,
            health,
            connect_timeout,
        }
    }
}

/// How long a balanced address may take to connect: half the call's `timeout`, so that a
/// call whose address neither accepts nor refuses (a black-holed pod IP) still has time to
/// go on to the next address; never more than grpc-go's 20 s connection deadline.
pub(crate) fn connect_timeout(call_timeout: Option<Duration>) -> Duration {
    const GRPC_GO_MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
    call_timeout.map_or(GRPC_GO_MIN_CONNECT_TIMEOUT, |t| {
        (t / 2).min(GRPC_GO_MIN_CONNECT_TIMEOUT)
    })
}

impl<C> tonic::codegen::Service<http::Uri> for Reported<C>
where
    C: tonic::codegen::Service<http::Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
    C::Response: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// The connection is made on a task of its own: tonic's channel polls it only while a
    /// call waits, and a call given up would leave it unfinished, the address neither up
    /// nor down (grpc-go connects in the background too).
    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let health = self.health.clone();
        let limit = self.connect_timeout;
        let made = tokio::spawn(async move {
            let result = match tokio::time::timeout(limit, connecting).await {
                Ok(made) => made.map_err(Into::into),
                Err(_) => Err(BoxError::from(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {limit:?}"),
                ))),
            };
            match &result {
                Ok(_) => health.connected(),
                Err(e) => health.failed(error_chain(&**e)),
            }
            result
        });
        Box::pin(async move { made.await? })
    }
}

pub(crate) struct RoundRobin {
    host: String,
    port: u16,
    connect: Connect,
    resolve: Resolve,
    next: AtomicUsize,
    /// [`MIN_RESOLUTION_INTERVAL`]; tests shorten it.
    min_resolution_interval: Duration,
    state: Mutex<State>,
    /// One resolution at a time; callers with no address to use wait for it.
    resolving: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    addresses: Arc<[Arc<Address>]>,
    /// No resolution before this (after a success, or backing off after failures).
    not_before: Option<Instant>,
    /// Resolutions failed in a row, for the backoff.
    failures: u32,
    /// Why the last resolution failed, for the calls that have no address.
    error: Option<String>,
}

impl RoundRobin {
    pub(crate) fn new(host: String, port: u16, connect: Connect, resolve: Resolve) -> Self {
        Self {
            host,
            port,
            connect,
            resolve,
            next: AtomicUsize::new(rand::random::<u32>() as usize),
            min_resolution_interval: MIN_RESOLUTION_INTERVAL,
            state: Mutex::new(State::default()),
            resolving: tokio::sync::Mutex::new(()),
        }
    }

    /// The next address in turn that is up and not in `skip` (those a call already failed to
    /// connect to). Resolves the name first when there is no address yet.
    async fn pick(self: &Arc<Self>, skip: &[SocketAddr]) -> Result<Picked, Status> {
        if lock(&self.state).addresses.is_empty() {
            self.resolve_now().await;
        }
        let now = Instant::now();
        let state = lock(&self.state);
        let addresses = &state.addresses;
        if addresses.is_empty() {
            let why = state.error.as_deref().unwrap_or("no addresses");
            return Err(Status::unavailable(format!(
                "name resolver error for `{}:{}`: {why}",
                self.host, self.port
            )));
        }
        // The turn goes round the addresses that are up, as grpc-go's picker holds only the
        // ready ones: an address left out does not hand its turns to its neighbour.
        let usable = |a: &&Arc<Address>| !skip.contains(&a.address) && a.up(now);
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let (chosen, up) = match addresses.len() {
            1 => (addresses.first().filter(usable), 1),
            _ => match addresses.iter().filter(usable).count() {
                0 => (None, 0),
                up => (addresses.iter().filter(usable).nth(turn % up), up),
            },
        };
        if let Some(a) = chosen {
            return Ok(Picked {
                channel: a.channel.clone(),
                address: Some(Arc::clone(a)),
                fallback: up > 1,
            });
        }
        let unreachable = self.unreachable(addresses);
        drop(state);
        // Every address is failing: the name may lead elsewhere by now.
        self.resolve_soon();
        Err(unreachable)
    }

    /// How long until a call could go out: until the first address's backoff ends, or,
    /// with no address known, until the name may be resolved again.
    pub(crate) fn ready_in(&self) -> Duration {
        let now = Instant::now();
        let state = lock(&self.state);
        let until =
            |t: Option<Instant>| t.map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        if state.addresses.is_empty() {
            return until(state.not_before);
        }
        state
            .addresses
            .iter()
            .map(|a| until(lock(&a.health.0).down_until))
            .min()
            .unwrap_or(Duration::ZERO)
    }

    /// Why no address can take a call: grpc-go fails calls at once when every connection is
    /// in transient failure.
    fn unreachable(&self, addresses: &[Arc<Address>]) -> Status {
        let last = addresses
            .iter()
            .map(|a| {
                let health = lock(&a.health.0);
                (health.down_until, health.error.clone())
            })
            .max_by_key(|(until, _)| *until)
            .map(|(_, error)| error)
            .unwrap_or_default();
        Status::unavailable(format!(
            "no address of `{}:{}` can be connected to ({} tried): {last}",
            self.host,
            self.port,
            addresses.len()
        ))
    }

    /// [`RoundRobin::unreachable`] for a call whose last address could not be connected to.
    pub(crate) fn none_connects(&self) -> Status {
        let addresses = Arc::clone(&lock(&self.state).addresses);
        self.unreachable(&addresses)
    }

    /// A call failed for its connection (it could not be made, broke, or outlived the
    /// call): the name may have moved, so resolve it again, without waiting for it.
    pub(crate) fn resolve_soon(self: &Arc<Self>) {
        let due = lock(&self.state)
            .not_before
            .is_none_or(|t| Instant::now() >= t);
        // No runtime: Redline is stopping, and nothing will call again.
        if let (true, Ok(runtime)) = (due, tokio::runtime::Handle::try_current()) {
            let rr = Arc::clone(self);
            runtime.spawn(async move { rr.resolve_now().await });
        }
    }

    /// Resolves the name, unless another resolution is running (then waits for it) or one
    /// is not due yet. Addresses that stay keep their connection and their health.
    async fn resolve_now(&self) {
        let _one = self.resolving.lock().await;
        if lock(&self.state)
            .not_before
            .is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let result = (self.resolve)(self.host.clone(), self.port).await;
        let mut state = lock(&self.state);
        match result {
            Ok(resolved) if !resolved.is_empty() => {
                let endpoint: Arc<str> = format!("{}:{}", self.host, self.port).into();
                let mut addresses: Vec<Arc<Address>> = Vec::with_capacity(resolved.len());
                for address in resolved {
                    if addresses.iter().any(|a| a.address == address) {
                        continue;
                    }
                    let kept = state.addresses.iter().find(|a| a.address == address);
                    addresses.push(match kept {
                        Some(a) => Arc::clone(a),
                        None => {
                            let health = ConnectionHealth::of(Arc::clone(&endpoint), address);
                            Arc::new(Address {
                                address,
                                channel: (self.connect)(address, health.clone()),
                                health,
                            })
                        }
                    });
                }
                tracing::debug!(
                    endpoint = %self.host,
                    addresses = ?addresses.iter().map(|a| a.address).collect::<Vec<_>>(),
                    "name resolved for round robin"
                );
                state.addresses = addresses.into();
                state.failures = 0;
                state.error = None;
                state.not_before = Some(Instant::now() + self.min_resolution_interval);
            }
            failed => {
                // As grpc-go's balancer: addresses already known stay in use.
                let why = match failed {
                    Ok(_) => "the name resolved to no address".to_owned(),
                    Err(e) => e.to_string(),
                };
                state.failures = state.failures.saturating_add(1);
                state.not_before = Some(Instant::now() + connection_backoff(state.failures));
                tracing::warn!(
                    endpoint = %self.host,
                    port = self.port,
                    error = %why,
                    "resolving the exporter's endpoint failed"
                );
                state.error = Some(why);
            }
        }
    }
}

/// Asks for the name to be resolved again when dropped before [`answered`]: the call
/// failed for its connection, or was given up while connecting or waiting.
///
/// [`answered`]: ResolveIfDropped::answered
pub(crate) struct ResolveIfDropped<'a>(Option<&'a Arc<RoundRobin>>);

impl<'a> ResolveIfDropped<'a> {
    pub(crate) fn new(rr: &'a Arc<RoundRobin>) -> Self {
        Self(Some(rr))
    }

    pub(crate) fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for ResolveIfDropped<'_> {
    fn drop(&mut self) {
        if let Some(rr) = self.0.take() {
            rr.resolve_soon();
        }
    }
}

/// grpc-go's default backoff before the `n`th retry (n ≥ 1): 1 s growing by 1.6 up to
/// 120 s, ±20% jitter so that many clients do not retry in step.
pub(crate) fn connection_backoff(n: u32) -> Duration {
    let exponent = i32::try_from(n.saturating_sub(1))
        .unwrap_or(i32::MAX)
        .min(64);
    let base = (1.6f64.powi(exponent)).min(120.0);
    let jitter = 1.0 + 0.2 * (rand::random::<f64>() * 2.0 - 1.0);
    Duration::from_secs_f64((base * jitter).min(120.0))
}

/// `error` and its sources, each once: the connectors' own texts ("tcp connect error") leave
/// the reason to their source.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = e.source();
    }
    text
}

/// Whether `error` (a channel's) says its connection could not be made, so nothing was sent.
pub(crate) fn is_connect_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The guarded value even if a holder panicked: health and addresses stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
#[path = "balance_tests.rs"]
mod tests;

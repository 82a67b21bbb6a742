//! When a server ends a connection by itself, as otelcol's servers do.
//!
//! gRPC (grpc-go's `keepalive.ServerParameters`): a connection with no call in flight for
//! `max_connection_idle` gets a GOAWAY; one older than `max_connection_age` (±10% jitter, so
//! the connections of one deploy do not all reconnect at once) gets a GOAWAY and, after
//! `max_connection_age_grace`, is closed with whatever is still running.
//!
//! HTTP (Go's `net/http` server): the head of a request must arrive within
//! `read_header_timeout` of its first byte (of the accept, for the first request), and a
//! kept-alive connection waits `idle_timeout` for the next request. hyper's own header
//! timer also runs while the connection waits between requests, which would close idle
//! connections after `read_header_timeout` whatever `idle_timeout` says, so the two deadlines
//! are kept here instead. An HTTP/1 response must be written within `write_timeout` of the
//! end of its request's head; the request's body is held to `read_timeout` by the body
//! itself (`crate::http`), which fails the read the handler is waiting on, as in Go.
//!
//! [`Activity`] is what the deadlines are computed from: the service wrapper [`Tracked`]
//! counts the requests in flight, until their response bodies end, and the reader wrapper
//! [`Watched`] notes when the bytes of a new request head start arriving. [`drive`] serves
//! the connection and acts on them.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The deadlines a server holds its connections to; `None` is no deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    /// From the first byte of a request head (the accept, for the first) to its last.
    pub header_read: Option<Duration>,
    /// With no request in flight and none arriving.
    pub idle: Option<Duration>,
    /// From the first byte of an HTTP/1 request head to the last byte of its body.
    pub read: Option<Duration>,
    /// From the end of an HTTP/1 request head to the end of its response.
    pub write: Option<Duration>,
    /// From the accept to the GOAWAY, before jitter.
    pub max_age: Option<Duration>,
    /// From the GOAWAY sent for age to closing the connection regardless.
    pub age_grace: Option<Duration>,
}

impl Lifetime {
    /// What a connection held to this lifetime watches of its requests: nothing (`None`)
    /// without a deadline that depends on them. `awaiting_head`: whether its first request's
    /// head is already on the clock (HTTP, where the header deadline runs from the accept).
    pub fn activity(&self, awaiting_head: bool) -> Option<Arc<Activity>> {
        let watched = self.header_read.is_some()
            || self.idle.is_some()
            || self.read.is_some()
            || self.write.is_some();
        watched.then(|| Activity::new(awaiting_head, self))
    }

    /// `max_age` with grpc-go's jitter: uniform in ±10%.
    fn jittered_age(&self) -> Option<Duration> {
        let age = self.max_age?;
        let spread = age / 10;
        let span = u64::try_from(spread.as_nanos().saturating_mul(2)).unwrap_or(u64::MAX);
        if span == 0 {
            return Some(age);
        }
        // A fresh RandomState is seeded per instance: enough randomness to spread reconnects.
        let offset = Duration::from_nanos(RandomState::new().hash_one(0u8) % span);
        Some((age - spread).saturating_add(offset))
    }
}

/// What a connection is doing, shared by its service, its reader and [`drive`].
///
/// Times are nanoseconds since `origin`, plus one, so that 0 can mean "none".
pub struct Activity {
    origin: Instant,
    in_flight: AtomicUsize,
    /// When the connection last had no request in flight (or was accepted).
    idle_since: AtomicU64,
    /// When the first byte of the head now being read arrived; 0 while none is being read.
    head_since: AtomicU64,
    /// When the head of the request in flight ended (HTTP/1 has one at a time); 0 when no
    /// response has a write deadline.
    started_at: AtomicU64,
    /// Whether responses have a write deadline, counted from `started_at`.
    write: bool,
    /// HTTP/2 (h2c on the HTTP port): its frames are not request heads, so no header deadline.
    h2: AtomicBool,
    /// Whether a head's deadline can come before the idle one it starts during
    /// (`read_header_timeout` shorter than the idle timeout); only then does a head's first
    /// byte wake [`drive`].
    head_sooner: bool,
    /// Whether the look a request in flight gets (after the idle timeout) can come before the
    /// deadline of the head it ended (the idle timeout shorter than `read_header_timeout`);
    /// only then does a request's start wake [`drive`]. Every other change only moves the
    /// deadline later, which [`drive`] finds out when its timer fires: with confighttp's
    /// defaults (1m each) requests wake no one, where a wake-up per request cost about 85
    /// instructions per span on OTLP/HTTP.
    busy_sooner: bool,
    /// Woken when a deadline may have come sooner.
    sooner: Notify,
}

impl Activity {
    /// A connection just accepted, to be held to `lifetime` (see [`Lifetime::activity`]).
    fn new(awaiting_head: bool, lifetime: &Lifetime) -> Arc<Self> {
        let (head_sooner, busy_sooner) = match (lifetime.header_read, lifetime.idle) {
            (Some(head), Some(idle)) => (head < idle, idle < head),
            (head, _) => (head.is_some(), false),
        };
        Arc::new(Self {
            origin: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(1),
            head_since: AtomicU64::new(u64::from(awaiting_head)),
            started_at: AtomicU64::new(0),
            write: lifetime.write.is_some(),
            h2: AtomicBool::new(false),
            head_sooner,
            busy_sooner,
            sooner: Notify::new(),
        })
    }

    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
            + 1
    }

    fn instant(&self, stamp: u64) -> Instant {
        self.origin + Duration::from_nanos(stamp - 1)
    }

    /// When the head of the request about to start began arriving: now, when the reader
    /// did not see it start (an h2c stream, or bytes that came in with the last response).
    pub(crate) fn head_started(&self) -> Instant {
        match self.head_since.load(Ordering::Acquire) {
            0 => Instant::now(),
            head => self.instant(head),
        }
    }

    /// Whether the connection speaks HTTP/2 (h2c), whose streams no read or write deadline
    /// covers.
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Acquire)
    }

    /// A request's head has been read. The write deadline it starts wakes no one: while no
    /// request is in flight, [`drive`] looks again at least every `write_timeout` (see
    /// [`Activity::deadline`]).
    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        if self.write {
            self.started_at
                .store(self.stamp(Instant::now()), Ordering::Release);
        }
        if self.busy_sooner {
            self.sooner.notify_one();
        }
    }

    fn request_ended(&self) {
        self.idle_since
            .store(self.stamp(Instant::now()), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Called after each read that brought bytes; `bytes` (what arrived) is only looked at
    /// on the connection's first read, which tells h2c apart by its preface. Afterwards,
    /// bytes arriving with no request in flight start a head.
    fn bytes_read(&self, first_read: bool, bytes: &[u8]) {
        const PREFACE: &[u8] = b"PRI * HTTP/2.0";
        if first_read {
            let n = bytes.len().min(PREFACE.len());
            if n > 0 && bytes[..n] == PREFACE[..n] {
                self.h2.store(true, Ordering::Release);
                self.head_since.store(0, Ordering::Release);
                return;
            }
        }
        if self.h2.load(Ordering::Acquire)
            || self.in_flight.load(Ordering::Acquire) > 0
            || self.head_since.load(Ordering::Acquire) != 0
        {
            return;
        }
        self.head_since
            .store(self.stamp(Instant::now()), Ordering::Release);
        if self.head_sooner {
            self.sooner.notify_one();
        }
    }

    /// The connection's next deadline and what happens at it. While a request is in flight
    /// that is only a time to look again: the idle deadline runs from the end of the last
    /// request, which nobody reports.
    ///
    /// A response's write deadline starts with its request, which wakes no one; so while no
    /// request is in flight, the connection looks again `write_timeout` from now at the
    /// latest, before any request starting from now could be due.
    fn deadline(&self, lifetime: &Lifetime, now: Instant) -> Option<(Instant, Expiry)> {
        let write = lifetime.write.filter(|_| !self.h2.load(Ordering::Acquire));
        if self.in_flight.load(Ordering::Acquire) > 0 {
            let again = lifetime
                .idle
                .or(lifetime.header_read)
                .and_then(|again| later(now, again))
                .map(|at| (at, Expiry::Busy));
            let written = write.and_then(|w| {
                let started = self.started_at.load(Ordering::Acquire);
                let at = later(self.instant(started.max(1)), w)?;
                Some((at, Expiry::Write))
            });
            return sooner(again, written);
        }
        let look = write
            .and_then(|w| later(now, w))
            .map(|at| (at, Expiry::Busy));
        let head = self.head_since.load(Ordering::Acquire);
        let waiting = if head != 0 {
            lifetime
                .header_read
                .and_then(|h| later(self.instant(head), h))
                .map(|at| (at, Expiry::HeaderRead))
        } else {
            let idle = self.idle_since.load(Ordering::Acquire);
            lifetime
                .idle
                .and_then(|i| later(self.instant(idle), i))
                .map(|at| (at, Expiry::Idle))
        };
        sooner(waiting, look)
    }
}

/// The earlier of two deadlines; the first on a tie.
fn sooner(a: Option<(Instant, Expiry)>, b: Option<(Instant, Expiry)>) -> Option<(Instant, Expiry)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    Busy,
    HeaderRead,
    Idle,
    Write,
    Age,
    Grace,
}

pin_project_lite::pin_project! {
    /// A service's response future, counted in its connection's [`Activity`] until its
    /// response body ends, or the future or body is dropped.
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let guard = this.guard.take();
        Poll::Ready(out.map(|response| response.map(|inner| TrackedBody { inner, guard })))
    }
}

pin_project_lite::pin_project! {
    /// A response body, its request counted in flight until the last frame is taken: the
    /// write deadline covers the response, and the idle one starts after it, as in Go.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// One request in flight; dropping it ends the request.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A connection's service, counting its requests when the lifetime needs them.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Option<Arc<Activity>>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Option<Arc<Activity>>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R, B> hyper::service::Service<R> for Tracked<S>
where
    S: hyper::service::Service<R, Response = http::Response<B>>,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, req: R) -> Self::Future {
        let guard = self.activity.as_ref().map(|a| {
            a.request_started();
            InFlight(a.clone())
        });
        TrackedFuture {
            inner: self.inner.call(req),
            guard,
        }
    }
}

/// A connection's transport, noting in its [`Activity`] when request bytes arrive.
pub struct Watched<I> {
    inner: I,
    /// `None`: nothing to note (no header or idle deadline).
    activity: Option<Arc<Activity>>,
    first_read: bool,
}

impl<I> Watched<I> {
    pub fn new(inner: I, activity: Option<Arc<Activity>>) -> Self {
        Self {
            inner,
            activity,
            first_read: true,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if let (Some(activity), false) = (&self.activity, read.is_empty()) {
            activity.bytes_read(self.first_read, read);
            self.first_read = false;
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

/// Serves `conn` until it ends, the server stops (`stop`: a graceful shutdown, whose deadline
/// the server keeps) or one of the lifetime's deadlines passes.
pub async fn drive<C>(
    conn: C,
    stop: &CancellationToken,
    lifetime: Lifetime,
    activity: Option<&Activity>,
) -> Result<(), C::Error>
where
    C: GracefulConnection,
{
    let mut conn = pin!(conn);
    let mut stopped = pin!(stop.cancelled());
    let aged_at = lifetime
        .jittered_age()
        .and_then(|age| later(Instant::now(), age));
    let mut timer = pin!(tokio::time::sleep_until(far_future()));
    let mut armed: Option<Instant> = None;
    let mut draining = false;
    let mut grace_until: Option<Instant> = None;
    // The nearest deadline as things stand; activity moves it, so it is asked again whenever
    // the timer fires or the activity says it may have come sooner.
    let next = |draining: bool, grace_until: Option<Instant>| {
        if draining {
            return grace_until.map(|at| (at, Expiry::Grace));
        }
        let idle = activity.and_then(|a| a.deadline(&lifetime, Instant::now()));
        sooner(idle, aged_at.map(|at| (at, Expiry::Age)))
    };
    loop {
        let due = next(draining, grace_until).map(|(at, _)| at);
        if let Some(at) = due.filter(|at| Some(*at) != armed) {
            timer.as_mut().reset(at);
        }
        armed = due;
        let sooner = async {
            match activity {
                Some(a) if !draining => a.sooner.notified().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            done = conn.as_mut() => return done,
            () = &mut stopped, if !draining => {
                C::graceful_shutdown(conn.as_mut());
                draining = true;
            }
            () = &mut timer, if armed.is_some() => {
                let Some((at, expiry)) = next(draining, grace_until) else { continue };
                if Instant::now() < at {
                    // The connection was busy meanwhile: the loop arms the later deadline.
                    continue;
                }
                match expiry {
                    // Still working: the loop looks again later.
                    Expiry::Busy => {}
                    Expiry::HeaderRead => {
                        // As Go's server: a head that did not arrive in time closes the
                        // connection without an answer.
                        tracing::debug!("closing a connection whose request head took longer than read_header_timeout");
                        return Ok(());
                    }
                    Expiry::Write => {
                        // Go's server fails the response's writes after the deadline; the
                        // client gets no answer either way, and here the handler does not
                        // run on (nor accept data) for an answer nobody will read.
                        tracing::debug!("closing a connection whose response took longer than write_timeout");
                        return Ok(());
                    }
                    Expiry::Idle => {
                        tracing::debug!("closing an idle connection");
                        C::graceful_shutdown(conn.as_mut());
                        draining = true;
                    }
                    Expiry::Age => {
                        tracing::debug!("closing a connection past its maximum age");
                        C::graceful_shutdown(conn.as_mut());
                        draining = true;
                        grace_until = lifetime.age_grace.and_then(|g| later(Instant::now(), g));
                    }
                    Expiry::Grace => {
                        tracing::debug!("closing a connection whose grace after its maximum age ran out");
                        return Ok(());
                    }
                }
            }
            () = sooner => {}
        }
    }
}

/// `at + after`; `None` (no deadline) past what the clock can represent, for a setting of
/// centuries.
fn later(at: Instant, after: Duration) -> Option<Instant> {
    at.checked_add(after)
}

/// A deadline that never comes, for a timer not armed yet (about 30 years, as tokio's own).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: Lifetime = Lifetime {
        header_read: Some(Duration::from_secs(10)),
        idle: Some(Duration::from_secs(60)),
        read: None,
        write: None,
        max_age: None,
        age_grace: None,
    };

    #[test]
    fn age_jitter_stays_within_ten_percent() {
        let lifetime = Lifetime {
            max_age: Some(Duration::from_secs(100)),
            ..Lifetime::default()
        };
        let ages: Vec<Duration> = (0..1000).filter_map(|_| lifetime.jittered_age()).collect();
        assert_eq!(ages.len(), 1000);
        assert!(ages
            .iter()
            .all(|a| (Duration::from_secs(90)..Duration::from_secs(110)).contains(a)));
        // Spread, not one value: reconnects of one deploy do not line up.
        assert!(ages.iter().any(|a| *a < Duration::from_secs(97)));
        assert!(ages.iter().any(|a| *a > Duration::from_secs(103)));
    }

    #[tokio::test]
    async fn deadlines_follow_the_connection() {
        let a = Activity::new(true, &HTTP);
        // Accepted: the first head is on the clock.
        let (at, expiry) = a.deadline(&HTTP, Instant::now()).expect("head deadline");
        assert_eq!(expiry, Expiry::HeaderRead);
        assert_eq!(at, a.origin + Duration::from_secs(10));
        a.bytes_read(true, b"POST /v1/traces");
        assert!(!a.h2.load(Ordering::Acquire));
        a.request_started();
        let now = Instant::now();
        assert_eq!(
            a.deadline(&HTTP, now),
            Some((now + Duration::from_secs(60), Expiry::Busy)),
            "a request in flight: only a time to look again"
        );
        a.request_ended();
        assert_eq!(
            a.deadline(&HTTP, Instant::now()).map(|d| d.1),
            Some(Expiry::Idle),
            "between requests: idle_timeout, not read_header_timeout"
        );
        a.bytes_read(false, &[]);
        assert_eq!(
            a.deadline(&HTTP, Instant::now()).map(|d| d.1),
            Some(Expiry::HeaderRead)
        );
        // Without the setting, no deadline of that kind.
        let no_head = Lifetime {
            header_read: None,
            ..HTTP
        };
        assert_eq!(a.deadline(&no_head, Instant::now()), None);
    }

    #[tokio::test]
    async fn the_write_deadline_runs_from_a_requests_head_to_its_responses_end() {
        let write = Duration::from_secs(30);
        let lifetime = Lifetime {
            write: Some(write),
            ..HTTP
        };
        let a = Activity::new(true, &lifetime);
        // Between requests the connection looks again within write_timeout, so a request
        // that starts meanwhile, which wakes no one, is never overdue before its check.
        assert_eq!(
            a.deadline(&lifetime, Instant::now()),
            Some((a.origin + Duration::from_secs(10), Expiry::HeaderRead)),
            "the first head's deadline comes before the look"
        );
        a.request_started();
        a.request_ended();
        let now = Instant::now();
        assert_eq!(
            a.deadline(&lifetime, now),
            Some((now + write, Expiry::Busy)),
            "idle for 60s, but a request may start at any moment"
        );
        a.request_started();
        let started = a.instant(a.started_at.load(Ordering::Acquire));
        let later_on = started + Duration::from_secs(5);
        assert_eq!(
            a.deadline(&lifetime, later_on),
            Some((started + write, Expiry::Write)),
            "from the head's end, not from when it is asked"
        );
        // An h2c connection's streams are not held to it.
        let h2 = Activity::new(true, &lifetime);
        h2.bytes_read(true, b"PRI * HTTP/2.0");
        h2.request_started();
        assert_eq!(h2.deadline(&lifetime, now).map(|d| d.1), Some(Expiry::Busy));
    }

    #[tokio::test]
    async fn a_request_counts_in_flight_until_its_response_body_ends() {
        use http_body::Body as _;
        let a = Activity::new(false, &HTTP);
        let service = Tracked::new(
            hyper::service::service_fn(
                |_: http::Request<http_body_util::Empty<bytes::Bytes>>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"answer")),
                    ))
                },
            ),
            Some(a.clone()),
        );
        let response = hyper::service::Service::call(
            &service,
            http::Request::new(http_body_util::Empty::new()),
        )
        .await
        .expect("answered");
        assert_eq!(a.in_flight.load(Ordering::Acquire), 1, "body not sent yet");
        let mut body = std::pin::pin!(response.into_body());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            body.as_mut().poll_frame(&mut cx),
            Poll::Ready(Some(Ok(_)))
        ));
        assert!(matches!(
            body.as_mut().poll_frame(&mut cx),
            Poll::Ready(None)
        ));
        assert_eq!(a.in_flight.load(Ordering::Acquire), 0, "body ended");
    }

    #[tokio::test]
    async fn h2c_preface_turns_the_head_deadline_off() {
        let a = Activity::new(true, &HTTP);
        a.bytes_read(true, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(
            a.deadline(&HTTP, Instant::now()).map(|d| d.1),
            Some(Expiry::Idle)
        );
        a.bytes_read(false, &[]);
        assert_eq!(
            a.deadline(&HTTP, Instant::now()).map(|d| d.1),
            Some(Expiry::Idle)
        );
        // A preface split over reads is told apart by its first bytes.
        let b = Activity::new(true, &HTTP);
        b.bytes_read(true, b"PR");
        assert!(b.h2.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn centuries_are_no_deadline_rather_than_an_overflow() {
        let forever = Lifetime {
            idle: Some(Duration::MAX),
            max_age: Some(Duration::MAX),
            ..Lifetime::default()
        };
        let a = Activity::new(false, &forever);
        assert_eq!(a.deadline(&forever, Instant::now()), None);
        assert!(forever
            .jittered_age()
            .and_then(|age| later(Instant::now(), age))
            .is_none());
    }
}

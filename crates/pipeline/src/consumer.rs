//! Edges between components: how a batch moves from a receiver to the next consumers.
//!
//! Consumption is two-phase so that a fan-out either delivers a batch to every consumer or to
//! none. `reserve` takes capacity (a queue slot, a memory budget) and may refuse; `commit`
//! hands the batch over and cannot fail. A receiver reserves on its whole fan-out first: when
//! any consumer refuses, the reservations already taken are dropped (released), the client is
//! told to retry, and nothing has been counted or queued. That is what keeps the spanmetrics
//! counts equal to what was forwarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redline_otlp_wire::{ResourceView, ScopeView, SpanKeys, SpanView, TraceVisitor};

use crate::Batch;

/// Why a consumer could not take a batch. Retryable from the client's side unless
/// `permanent`: receivers turn it into gRPC UNAVAILABLE with RetryInfo or HTTP 503 with
/// Retry-After.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{component}: {reason}")]
pub struct Refused {
    /// Component id that refused, for logs and telemetry.
    pub component: String,
    pub reason: String,
    /// How long the client should wait before retrying.
    pub retry_after: Duration,
    /// Sending it again will not help (otelcol's `consumererror.NewPermanent`). Receivers
    /// answer as otelcol's do: `otlp` gRPC INTERNAL or HTTP 500, `zipkin` 400, `jaeger`
    /// gRPC UNKNOWN; `fluent_forward` drops the records at once instead of offering them
    /// again.
    pub permanent: bool,
}

/// Capacity taken for one batch. Dropping it without committing releases the capacity.
pub trait Reservation: Send {
    /// Hands the batch over. Must not block: long work happens on the consumer's own tasks.
    fn commit(self: Box<Self>, batch: Batch);
}

/// Something that takes batches: an exporter, a connector or a processor.
pub trait Consumer: Send + Sync + 'static {
    /// Takes capacity for `batch` without side effects visible to anyone else, or refuses.
    /// Must not block.
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused>;

    /// Convenience for callers with a single consumer: reserve then commit.
    fn consume(&self, batch: Batch) -> Result<(), Refused> {
        let reservation = self.reserve(&batch)?;
        reservation.commit(batch);
        Ok(())
    }

    /// The span taps this consumer reaches with the receiver's bytes unchanged: itself when it
    /// reads traces requests as they arrive, or what it passes them on to untouched (a
    /// fan-out). A consumer that may change or drop spans (a processor) offers none, so a tap
    /// only ever sees exactly the bytes it would have been handed.
    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        let _ = taps;
    }
}

/// Identifies one span tap in a [`Batch`]'s receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TapId(u64);

impl TapId {
    /// A new id, distinct from every other in this process.
    pub fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A consumer's reading of traces requests done during the receiver's validating walk, so a
/// request is walked once, not once to validate and once more to read. What a tap sees counts
/// only when [`TapWalk::commit`] is called: after the whole request validated and every
/// consumer accepted it.
pub trait SpanTap: Send + Sync {
    /// Starts on one request of `request_len` bytes.
    fn begin<'a>(&'a self, request_len: usize) -> Box<dyn TapWalk<'a> + 'a>;

    /// The span attribute keys this tap's walks look up on every span: the receiver's walk
    /// notes them as it validates (see [`TraceVisitor::span_keys`]).
    fn span_keys(&self) -> &SpanKeys {
        SpanKeys::none()
    }
}

/// One request's walk through a [`SpanTap`].
pub trait TapWalk<'a>: TraceVisitor<'a> {
    /// The request was valid and accepted: make what was seen count. Dropping the walk
    /// instead discards it.
    fn commit(self: Box<Self>);
}

/// The walks of every tap a receiver's next consumer offers, visited together.
pub struct TapWalks<'a> {
    ids: Vec<TapId>,
    walks: Vec<Box<dyn TapWalk<'a> + 'a>>,
    /// Every tap's [`SpanTap::span_keys`] (see [`TapWalks::keys_of`]).
    keys: &'a SpanKeys,
}

impl Default for TapWalks<'_> {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            walks: Vec::new(),
            keys: SpanKeys::none(),
        }
    }
}

impl<'a> TapWalks<'a> {
    /// Begins a walk of a `request_len`-byte request on each of `taps`, noting `keys` (what
    /// [`TapWalks::keys_of`] gave for these taps).
    pub fn begin(
        taps: &'a [(TapId, Arc<dyn SpanTap>)],
        keys: &'a SpanKeys,
        request_len: usize,
    ) -> Self {
        Self {
            ids: taps.iter().map(|(id, _)| *id).collect(),
            walks: taps.iter().map(|(_, tap)| tap.begin(request_len)).collect(),
            keys,
        }
    }

    /// The keys every one of `taps` looks up, to be noted once for all of them.
    pub fn keys_of(taps: &[(TapId, Arc<dyn SpanTap>)]) -> SpanKeys {
        SpanKeys::union(taps.iter().map(|(_, tap)| tap.span_keys()))
    }

    /// Commits every walk and returns the ids that now hold the request, for the batch's
    /// receipt.
    pub fn commit(self) -> Vec<TapId> {
        for walk in self.walks {
            walk.commit();
        }
        self.ids
    }
}

impl<'a> TraceVisitor<'a> for TapWalks<'a> {
    fn span_keys(&self) -> &'a SpanKeys {
        self.keys
    }
    fn resource(&mut self, resource: &ResourceView<'a>) {
        for w in &mut self.walks {
            w.resource(resource);
        }
    }
    fn scope(&mut self, scope: &ScopeView<'a>) {
        for w in &mut self.walks {
            w.scope(scope);
        }
    }
    fn span(&mut self, span: &SpanView<'a>) {
        for w in &mut self.walks {
            w.span(span);
        }
    }
}

/// A reservation for consumers that never refuse: commit runs the closure.
pub struct CommitFn<F: FnOnce(Batch) + Send>(pub F);

impl<F: FnOnce(Batch) + Send> Reservation for CommitFn<F> {
    fn commit(self: Box<Self>, batch: Batch) {
        (self.0)(batch)
    }
}

/// Delivers each batch to every consumer of a pipeline, or to none.
#[derive(Clone)]
pub struct Fanout {
    consumers: Arc<[Arc<dyn Consumer>]>,
}

impl Fanout {
    pub fn new(consumers: Vec<Arc<dyn Consumer>>) -> Self {
        Self {
            consumers: consumers.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.consumers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty()
    }
}

struct FanoutReservation {
    parts: Vec<Box<dyn Reservation>>,
}

impl Reservation for FanoutReservation {
    fn commit(self: Box<Self>, batch: Batch) {
        let mut parts = self.parts;
        let last = parts.pop();
        for part in parts {
            // `Bytes` clones share the buffer: fan-out copies no data.
            part.commit(batch.clone());
        }
        if let Some(last) = last {
            last.commit(batch);
        }
    }
}

impl Consumer for Fanout {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        if self.consumers.len() == 1 {
            return self.consumers[0].reserve(batch);
        }
        let mut parts = Vec::with_capacity(self.consumers.len());
        for consumer in self.consumers.iter() {
            // On refusal `parts` drops here, releasing what the earlier consumers reserved.
            parts.push(consumer.reserve(batch)?);
        }
        Ok(Box::new(FanoutReservation { parts }))
    }

    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        for consumer in self.consumers.iter() {
            consumer.span_taps(taps);
        }
    }
}

/// A consumer whose target is set once the graph is built: how a connector's output reaches
/// the pipelines it feeds without ordering pipeline construction. Receivers start only after
/// every binding is made, so no batch arrives before one.
#[derive(Default)]
pub struct LateBound {
    target: std::sync::OnceLock<Arc<dyn Consumer>>,
}

impl LateBound {
    /// Sets the target; a second call is ignored (the graph binds each output once).
    pub fn bind(&self, target: Arc<dyn Consumer>) {
        let _ = self.target.set(target);
    }
}

impl Consumer for LateBound {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        match self.target.get() {
            Some(target) => target.reserve(batch),
            None => Err(Refused {
                component: "pipeline".to_owned(),
                reason: "connector output not yet connected".to_owned(),
                retry_after: Duration::from_secs(1),
                permanent: false,
            }),
        }
    }

    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        if let Some(target) = self.target.get() {
            target.span_taps(taps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use parking_lot::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A consumer with a fixed number of slots, recording what it was given.
    struct Slots {
        free: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<usize>>>,
    }

    struct SlotReservation {
        free: Arc<AtomicUsize>,
        got: Arc<Mutex<Vec<usize>>>,
        committed: bool,
    }

    impl Reservation for SlotReservation {
        fn commit(mut self: Box<Self>, batch: Batch) {
            self.committed = true;
            self.got.lock().push(batch.items);
        }
    }

    impl Drop for SlotReservation {
        fn drop(&mut self) {
            if !self.committed {
                self.free.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    impl Consumer for Slots {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            let taken = self
                .free
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            match taken {
                Ok(_) => Ok(Box::new(SlotReservation {
                    free: self.free.clone(),
                    got: self.got.clone(),
                    committed: false,
                })),
                Err(_) => Err(Refused {
                    component: "slots".into(),
                    reason: "full".into(),
                    retry_after: Duration::from_secs(1),
                    permanent: false,
                }),
            }
        }
    }

    fn slots(n: usize) -> (Arc<Slots>, Arc<AtomicUsize>, Arc<Mutex<Vec<usize>>>) {
        let free = Arc::new(AtomicUsize::new(n));
        let got = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::new(Slots {
            free: free.clone(),
            got: got.clone(),
        });
        (s, free, got)
    }

    #[test]
    fn fanout_delivers_to_all_or_none() {
        let (a, a_free, a_got) = slots(5);
        let (b, b_free, b_got) = slots(1);
        let fanout = Fanout::new(vec![a, b]);
        let batch = Batch::traces(Bytes::from_static(b"x"), 3);

        fanout.consume(batch.clone()).expect("first batch fits");
        let err = fanout.consume(batch).expect_err("b is full");
        assert_eq!(err.component, "slots");

        assert_eq!(*a_got.lock(), vec![3], "a must not see the refused batch");
        assert_eq!(*b_got.lock(), vec![3]);
        assert_eq!(
            a_free.load(Ordering::SeqCst),
            4,
            "a's reservation was released"
        );
        assert_eq!(b_free.load(Ordering::SeqCst), 0);
    }
}

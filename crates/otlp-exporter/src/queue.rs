//! The sending queue: bounded in the configured sizer's units AND in bytes, filled by
//! receivers through `reserve`/`commit` (which never block) and emptied by sender tasks.
//!
//! Capacity is held from `reserve` until the send of a batch has finished (not merely until
//! it is dequeued), so the bound covers everything the exporter holds, in flight included —
//! as otelcol's queue bounds "storage and processing".
//!
//! The batches live in memory, or, with `sending_queue.storage`, in a [`DiskLog`]: there a
//! commit appends the batch to disk before it counts as queued, the batch is acknowledged on
//! disk once delivered or given up on, and what is left at a stop is sent by the next start.
//! The disk writes (appends with their syncs, acknowledgements, deletions) happen through
//! [`LogFiles`] with this queue's lock released; only the log's index is kept under it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{Batch, ClientMetadata, Refused, Reservation};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::Sizer;
use crate::disk::{AckWork, DiskLog, LogFiles, Pop};

/// Sizes and bounds, resolved from the config.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    pub sizer: Sizer,
    /// In `sizer` units.
    pub capacity: u64,
    /// Bytes held, whatever the sizer.
    pub capacity_bytes: u64,
    /// Largest coalesced request, in bytes; a single larger batch is still sent alone.
    pub max_request_bytes: u64,
    /// Largest coalesced request, in spans.
    pub max_request_items: u64,
    /// Wait up to `flush_timeout` for this many units of `min_sizer` before sending.
    pub min_request: u64,
    pub min_sizer: Sizer,
    pub flush_timeout: Duration,
    /// Suggested client wait when refusing.
    pub retry_after: Duration,
}

pub(crate) struct Entry {
    pub batch: Batch,
    units: u64,
    bytes: u64,
    /// The batch's sequence number in the disk log, when the queue is persistent.
    seq: Option<u64>,
}

/// Batches a sender took off the queue to send as one request.
#[derive(Default)]
pub(crate) struct Taken {
    pub entries: Vec<Entry>,
    pub bytes: u64,
    pub spans: u64,
    /// The next queued batch did not fit under the request caps.
    full: bool,
}

impl Taken {
    /// The metadata of the client whose data this request carries: `fill` takes only
    /// batches of one client into a request.
    pub fn client(&self) -> Option<&ClientMetadata> {
        self.entries.first().and_then(|e| e.batch.client())
    }

    fn size(&self, sizer: Sizer) -> u64 {
        match sizer {
            Sizer::Requests => self.entries.len() as u64,
            Sizer::Items => self.spans,
            Sizer::Bytes => self.bytes,
        }
    }
}

/// Where queued batches wait.
enum Store {
    Memory(VecDeque<Entry>),
    Disk(Box<DiskLog>),
}

impl Store {
    /// (bytes, spans) of the next batch.
    fn peek(&self) -> Option<(u64, u64)> {
        match self {
            Store::Memory(q) => q.front().map(|e| (e.bytes, e.batch.items as u64)),
            Store::Disk(log) => log.peek(),
        }
    }

    /// The client metadata of the next batch.
    fn front_client(&self) -> Option<&ClientMetadata> {
        match self {
            Store::Memory(q) => q.front().and_then(|e| e.batch.client()),
            Store::Disk(log) => log.front_client(),
        }
    }

    /// Whether the next batch carries a client's gzip frame (disk queues never keep one).
    fn front_has_gzip_frame(&self) -> bool {
        match self {
            Store::Memory(q) => q.front().is_some_and(|e| e.batch.gzip_frame().is_some()),
            Store::Disk(_) => false,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Store::Memory(q) => q.is_empty(),
            Store::Disk(log) => log.unread() == 0,
        }
    }
}

struct State {
    store: Store,
    used_units: u64,
    used_bytes: u64,
    /// Set at shutdown: `reserve` refuses and senders stop once the queue is empty.
    draining: bool,
    /// Set once the senders are gone: a late commit is counted as dropped (memory) or kept
    /// for the next start (disk).
    closed: bool,
    in_flight_spans: u64,
    in_flight_batches: u64,
    /// The last disk write failed: refuse until then, so clients retry instead of losing
    /// data to a disk that is full or broken.
    disk_error: Option<(Instant, String)>,
}

/// What `close` did with the batches still held.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Closed {
    pub dropped_batches: u64,
    pub dropped_spans: u64,
    /// Left on disk for the next start.
    pub kept_batches: u64,
    pub kept_spans: u64,
}

pub(crate) struct Queue {
    id: String,
    limits: Limits,
    state: Mutex<State>,
    notify: Notify,
    drain_started: Notify,
    /// The files of the [`DiskLog`] batches live in, written without `state`'s lock; `None`
    /// in memory.
    files: Option<Arc<LogFiles>>,
    counters: Arc<ExporterCounters>,
}

fn units_for(sizer: Sizer, bytes: u64, spans: u64) -> u64 {
    match sizer {
        Sizer::Requests => 1,
        Sizer::Items => spans,
        Sizer::Bytes => bytes,
    }
}

fn units_of(sizer: Sizer, batch: &Batch) -> u64 {
    units_for(sizer, batch.byte_len() as u64, batch.items as u64)
}

enum Pushed {
    Queued,
    /// Memory queue after shutdown: nobody will send it.
    Late,
    /// Disk queue after shutdown: on disk for the next start.
    KeptLate,
    DiskFailed(String),
}

impl Queue {
    pub fn new(id: String, limits: Limits, counters: Arc<ExporterCounters>) -> Arc<Self> {
        Self::with_store(id, limits, counters, Store::Memory(VecDeque::new()), None)
    }

    /// A queue on `log`, holding what the log recovered: those batches count against the
    /// capacity and in the queue size, and are sent first.
    pub fn persistent(
        id: String,
        limits: Limits,
        counters: Arc<ExporterCounters>,
        log: DiskLog,
    ) -> Arc<Self> {
        let pending = log.pending();
        let units = match limits.sizer {
            Sizer::Requests => pending.batches,
            Sizer::Items => pending.spans,
            Sizer::Bytes => pending.bytes,
        };
        counters.queue_size.fetch_add(
            i64::try_from(pending.batches).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        let files = Some(log.files());
        let q = Self::with_store(id, limits, counters, Store::Disk(Box::new(log)), files);
        {
            let mut st = q.state.lock();
            st.used_units = units;
            st.used_bytes = pending.bytes;
        }
        q
    }

    fn with_store(
        id: String,
        limits: Limits,
        counters: Arc<ExporterCounters>,
        store: Store,
        files: Option<Arc<LogFiles>>,
    ) -> Arc<Self> {
        counters.queue_capacity.store(
            i64::try_from(limits.capacity).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        Arc::new(Self {
            id,
            limits,
            files,
            drain_started: Notify::new(),
            state: Mutex::new(State {
                store,
                used_units: 0,
                used_bytes: 0,
                draining: false,
                closed: false,
                in_flight_spans: 0,
                in_flight_batches: 0,
                disk_error: None,
            }),
            notify: Notify::new(),
            counters,
        })
    }

    fn refuse(&self, reason: String) -> Refused {
        Refused {
            component: self.id.clone(),
            reason,
            retry_after: self.limits.retry_after,
            permanent: false,
        }
    }

    /// Takes capacity for `batch` or refuses at once; never waits.
    pub fn reserve(self: &Arc<Self>, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let units = units_of(self.limits.sizer, batch);
        // What the batch keeps alive, a client's gzip frame included (only exporters that send
        // it keep one, and never into a disk queue: see `exporter::Exporter`).
        let bytes = batch.held_bytes() as u64;
        let l = &self.limits;
        let refused = {
            let mut st = self.state.lock();
            let disk_error = st
                .disk_error
                .as_ref()
                .filter(|(until, _)| Instant::now() < *until)
                .map(|(_, e)| e.clone());
            if st.draining {
                Some("exporter is shutting down".to_owned())
            } else if let Some(e) = disk_error {
                Some(format!("sending queue storage cannot be written: {e}"))
            } else if units > l.capacity || bytes > l.capacity_bytes {
                Some(format!(
                    "request of {bytes} bytes and {} spans is larger than the whole sending queue",
                    batch.items
                ))
            } else if st.used_units + units > l.capacity {
                Some(format!(
                    "sending queue is full ({} of {} {})",
                    st.used_units,
                    l.capacity,
                    l.sizer.as_str()
                ))
            } else if st.used_bytes + bytes > l.capacity_bytes {
                Some(format!(
                    "sending queue is full ({} of {} bytes)",
                    st.used_bytes, l.capacity_bytes
                ))
            } else {
                st.used_units += units;
                st.used_bytes += bytes;
                None
            }
        };
        match refused {
            Some(reason) => {
                // otelcol counts spans its queue could not take; the receiver counts the
                // same spans as refused and the client retries them, so nothing is lost.
                self.counters
                    .enqueue_failed
                    .fetch_add(batch.items as u64, Ordering::Relaxed);
                Err(self.refuse(reason))
            }
            None => Ok(Box::new(QueueReservation {
                queue: self.clone(),
                units,
                bytes,
                committed: false,
            })),
        }
    }

    fn release(st: &mut State, units: u64, bytes: u64) {
        st.used_units = st.used_units.saturating_sub(units);
        st.used_bytes = st.used_bytes.saturating_sub(bytes);
    }

    fn push(&self, entry: Entry) {
        let spans = entry.batch.items as u64;
        let outcome = match &self.files {
            Some(files) => self.push_to_disk(files, &entry),
            None => {
                let mut st = self.state.lock();
                let closed = st.closed;
                match &mut st.store {
                    Store::Memory(q) if !closed => {
                        q.push_back(entry);
                        Pushed::Queued
                    }
                    _ => {
                        Self::release(&mut st, entry.units, entry.bytes);
                        Pushed::Late
                    }
                }
            }
        };
        match outcome {
            Pushed::Queued => {
                self.counters.queue_size.fetch_add(1, Ordering::Relaxed);
                self.notify.notify_one();
            }
            Pushed::KeptLate => {
                self.counters.queue_size.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    exporter = %self.id,
                    spans,
                    "batch committed after the exporter shut down; kept on disk for the next start"
                );
            }
            Pushed::Late => {
                // Committed after shutdown finished: nobody will send it any more.
                self.counters
                    .send_failed
                    .fetch_add(spans, Ordering::Relaxed);
                tracing::warn!(
                    exporter = %self.id,
                    spans,
                    "batch committed after the exporter shut down; dropped"
                );
            }
            Pushed::DiskFailed(error) => {
                // The receiver already answered for this batch: it is lost. The queue refuses
                // for a while so clients retry what comes next instead.
                self.counters
                    .send_failed
                    .fetch_add(spans, Ordering::Relaxed);
                tracing::error!(
                    exporter = %self.id,
                    spans,
                    error = %error,
                    "cannot write the batch to the sending queue's storage; dropped it, refusing new data for retry_after"
                );
            }
        }
    }

    /// Appends the batch with the lock released (with `fsync`, returning once it is synced,
    /// in a group with the batches committed meanwhile), then has the index take it.
    fn push_to_disk(&self, files: &LogFiles, entry: &Entry) -> Pushed {
        let written = files.append(&entry.batch);
        let mut st = self.state.lock();
        match written {
            Ok(_) => {
                if let Store::Disk(log) = &mut st.store {
                    log.absorb();
                }
                if st.closed {
                    Pushed::KeptLate
                } else {
                    Pushed::Queued
                }
            }
            Err(e) => {
                let reason = e.to_string();
                Self::release(&mut st, entry.units, entry.bytes);
                st.disk_error = Some((Instant::now() + self.limits.retry_after, reason.clone()));
                Pushed::DiskFailed(reason)
            }
        }
    }

    /// Writes acknowledgements to disk; called with the lock released.
    fn persist(&self, work: AckWork) {
        let Some(files) = &self.files else {
            return;
        };
        if work.is_empty() {
            return;
        }
        if let Err(e) = files.persist(work) {
            tracing::warn!(
                exporter = %self.id,
                error = %e,
                "sending queue: cannot record an acknowledgement on disk; the batch may be sent again after a restart"
            );
        }
    }

    fn fits(&self, taken: &Taken, bytes: u64, spans: u64) -> bool {
        taken.entries.is_empty()
            || (taken.bytes + bytes <= self.limits.max_request_bytes
                && taken.spans + spans <= self.limits.max_request_items)
    }

    /// Moves queued batches into `taken` while they fit under the request caps. Returns the
    /// acknowledgements of batches that could not be read back, for [`Queue::persist`].
    fn fill(&self, st: &mut State, taken: &mut Taken) -> AckWork {
        let mut acks = AckWork::default();
        while let Some((bytes, spans)) = st.store.peek() {
            if !self.fits(taken, bytes, spans) {
                taken.full = true;
                break;
            }
            // Requests of different clients are never merged: otelcol sends each on its own,
            // with its client's metadata, and a tenant's data must reach only its tenant.
            if taken
                .entries
                .first()
                .is_some_and(|first| first.batch.client() != st.store.front_client())
            {
                taken.full = true;
                break;
            }
            // A batch holding its client's gzip frame (only kept by an exporter that sends
            // it) goes alone: sending the frame as it came costs a request, merging it means
            // compressing the merge (~2 ms per thousand spans). Unless batching was asked for
            // (`min_size`), which merges as configured.
            if self.limits.min_request == 0 && st.store.front_has_gzip_frame() {
                taken.full = true;
                if !taken.entries.is_empty() {
                    break; // it starts the next request
                }
            }
            let entry = match &mut st.store {
                Store::Memory(q) => q.pop_front(),
                Store::Disk(log) => match log.pop() {
                    Some(Pop::Batch { seq, batch }) => Some(Entry {
                        units: units_of(self.limits.sizer, &batch),
                        bytes: batch.byte_len() as u64,
                        batch,
                        seq: Some(seq),
                    }),
                    Some(Pop::Lost { seq, spans, reason }) => {
                        acks.merge(log.ack_deferred(seq));
                        Self::release(st, units_for(self.limits.sizer, bytes, spans), bytes);
                        self.counters
                            .send_failed
                            .fetch_add(spans, Ordering::Relaxed);
                        self.counters.queue_size.fetch_sub(1, Ordering::Relaxed);
                        tracing::error!(
                            exporter = %self.id,
                            spans,
                            reason = %reason,
                            "sending queue: a batch on disk cannot be read back; dropped"
                        );
                        continue;
                    }
                    None => None,
                },
            };
            let Some(entry) = entry else {
                break;
            };
            let spans = entry.batch.items as u64;
            taken.bytes += entry.bytes;
            taken.spans += spans;
            st.in_flight_spans += spans;
            st.in_flight_batches += 1;
            taken.entries.push(entry);
            if taken.full {
                break;
            }
        }
        acks
    }

    /// The next request to send: waits for a batch, then takes every queued batch that fits.
    /// `None` once the exporter is draining and nothing is left.
    pub async fn next_request(&self) -> Option<Taken> {
        let mut taken = Taken::default();
        loop {
            // Registered before looking at the queue, so a commit or shutdown between the
            // look and the wait still wakes this sender.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (got, draining, acks) = {
                let mut st = self.state.lock();
                if st.draining && self.is_persistent() {
                    // What is on disk waits for the next start.
                    return None;
                }
                let acks = self.fill(&mut st, &mut taken);
                (!taken.entries.is_empty(), st.draining, acks)
            };
            self.persist(acks);
            if got {
                break;
            }
            if draining {
                return None;
            }
            notified.await;
        }

        let min = self.limits.min_request;
        if min > 0 && taken.size(self.limits.min_sizer) < min && !taken.full {
            let deadline = Instant::now() + self.limits.flush_timeout;
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let (enough, acks) = {
                    let mut st = self.state.lock();
                    let acks = self.fill(&mut st, &mut taken);
                    // Draining: send now rather than wait for data that will not come.
                    let enough =
                        taken.full || taken.size(self.limits.min_sizer) >= min || st.draining;
                    (enough, acks)
                };
                self.persist(acks);
                if enough {
                    break;
                }
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
        }

        // More is queued than this request could take: hand it to another sender now instead
        // of letting it wait for this send to finish.
        if !self.state.lock().store.is_empty() {
            self.notify.notify_one();
        }
        Some(taken)
    }

    /// Records the end of a request's delivery (sent, or given up on) and frees its capacity;
    /// on disk the batches are acknowledged, so they are never sent again. Counting and the
    /// in-flight bookkeeping happen together, with no await in between, so an aborted sender
    /// leaves its spans counted exactly once (by `close`).
    pub fn complete(&self, taken: Taken, sent: u64, failed: u64) {
        let batches = taken.entries.len() as u64;
        let mut acks = AckWork::default();
        {
            let mut st = self.state.lock();
            for e in &taken.entries {
                Self::release(&mut st, e.units, e.bytes);
            }
            st.in_flight_spans = st.in_flight_spans.saturating_sub(taken.spans);
            st.in_flight_batches = st.in_flight_batches.saturating_sub(batches);
            if let Store::Disk(log) = &mut st.store {
                for seq in taken.entries.iter().filter_map(|e| e.seq) {
                    acks.merge(log.ack_deferred(seq));
                }
            }
        }
        self.persist(acks);
        self.counters.sent.fetch_add(sent, Ordering::Relaxed);
        self.counters
            .send_failed
            .fetch_add(failed, Ordering::Relaxed);
        self.counters
            .queue_size
            .fetch_sub(i64::try_from(batches).unwrap_or(0), Ordering::Relaxed);
    }

    /// Gives back a request that was not delivered (its last attempt failed) to a persistent
    /// queue that is stopping: it stays queued on disk, and is not reported at the next start
    /// as possibly delivered.
    pub fn requeue(&self, taken: Taken) {
        let mut st = self.state.lock();
        st.in_flight_spans = st.in_flight_spans.saturating_sub(taken.spans);
        st.in_flight_batches = st
            .in_flight_batches
            .saturating_sub(taken.entries.len() as u64);
        if let Store::Disk(log) = &mut st.store {
            for seq in taken.entries.iter().filter_map(|e| e.seq) {
                log.unpop(seq);
            }
        }
    }

    /// Stops taking batches. From memory, senders send what is queued, then stop; from disk
    /// they take nothing more (it is kept for the next start) and stop once their request is
    /// done or waits to be retried.
    /// Counts one request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.counters.clone())
    }

    pub fn begin_drain(&self) {
        self.state.lock().draining = true;
        self.notify.notify_waiters();
        self.drain_started.notify_waiters();
    }

    pub fn is_persistent(&self) -> bool {
        self.files.is_some()
    }

    /// Resolves once `begin_drain` was called.
    pub async fn draining(&self) {
        loop {
            let notified = self.drain_started.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.state.lock().draining {
                return;
            }
            notified.await;
        }
    }

    /// After the senders are gone. In memory, everything still held is dropped and counted as
    /// failed; on disk it stays (in-flight batches unacknowledged) for the next start.
    pub fn close(&self) -> Closed {
        let mut st = self.state.lock();
        st.closed = true;
        st.draining = true;
        let in_flight_batches = std::mem::take(&mut st.in_flight_batches);
        let in_flight_spans = std::mem::take(&mut st.in_flight_spans);
        st.used_units = 0;
        st.used_bytes = 0;
        let closed = match &mut st.store {
            Store::Memory(q) => {
                let queued_batches = q.len() as u64;
                let queued_spans: u64 = q.iter().map(|e| e.batch.items as u64).sum();
                q.clear();
                Closed {
                    dropped_batches: queued_batches + in_flight_batches,
                    dropped_spans: queued_spans + in_flight_spans,
                    ..Closed::default()
                }
            }
            Store::Disk(log) => {
                // Batches whose writers have not come back for the lock yet are on disk too.
                log.absorb();
                if let Err(e) = log.write_shutdown_record() {
                    tracing::warn!(
                        exporter = %self.id,
                        error = %e,
                        "sending queue: cannot write the shutdown record; the next start may send some batches twice"
                    );
                }
                let pending = log.pending();
                Closed {
                    kept_batches: pending.batches,
                    kept_spans: pending.spans,
                    ..Closed::default()
                }
            }
        };
        drop(st);
        if let Some(files) = &self.files {
            let w = files.stats();
            tracing::debug!(
                exporter = %self.id,
                appended = w.appends,
                data_syncs = w.data_syncs,
                ack_syncs = w.ack_syncs,
                fsync = files.fsync(),
                "sending queue: disk writes of this run"
            );
        }
        self.counters
            .send_failed
            .fetch_add(closed.dropped_spans, Ordering::Relaxed);
        self.counters.queue_size.fetch_sub(
            i64::try_from(closed.dropped_batches).unwrap_or(0),
            Ordering::Relaxed,
        );
        closed
    }
}

/// One request in flight (`otelcol_exporter_in_flight_requests`), from the moment a sender
/// takes it until it is delivered, given up or put back.
pub(crate) struct InFlight(Arc<ExporterCounters>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Capacity held for one batch between `reserve` and `commit`; released if dropped.
struct QueueReservation {
    queue: Arc<Queue>,
    units: u64,
    bytes: u64,
    committed: bool,
}

impl Reservation for QueueReservation {
    fn commit(mut self: Box<Self>, batch: Batch) {
        self.committed = true;
        self.queue.push(Entry {
            batch,
            units: self.units,
            bytes: self.bytes,
            seq: None,
        });
    }
}

impl Drop for QueueReservation {
    fn drop(&mut self) {
        if !self.committed {
            let mut st = self.queue.state.lock();
            Queue::release(&mut st, self.units, self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn limits(sizer: Sizer, capacity: u64, capacity_bytes: u64) -> Limits {
        Limits {
            sizer,
            capacity,
            capacity_bytes,
            max_request_bytes: 1000,
            max_request_items: u64::MAX,
            min_request: 0,
            min_sizer: Sizer::Items,
            flush_timeout: Duration::from_millis(10),
            retry_after: Duration::from_secs(1),
        }
    }

    fn batch(bytes: usize, spans: usize) -> Batch {
        Batch::traces(Bytes::from(vec![0u8; bytes]), spans)
    }

    #[test]
    fn bounds_in_units_and_bytes() {
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::new(
            "otlp".into(),
            limits(Sizer::Items, 10, 100),
            counters.clone(),
        );
        let a = q.reserve(&batch(10, 6)).expect("fits");
        let err = q.reserve(&batch(10, 6)).err().expect("12 spans > 10");
        assert!(err.reason.contains("full"), "{}", err.reason);
        assert_eq!(counters.enqueue_failed.load(Ordering::Relaxed), 6);
        let b = q.reserve(&batch(90, 4)).expect("fits exactly");
        assert!(q.reserve(&batch(1, 0)).is_err(), "bytes are full");
        drop(a);
        drop(b);
        assert!(q.reserve(&batch(100, 10)).is_ok(), "released");
        assert!(q.reserve(&batch(101, 1)).is_err(), "larger than the queue");
    }

    #[tokio::test]
    async fn coalesces_up_to_the_request_cap() {
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::new(
            "otlp".into(),
            limits(Sizer::Requests, 10, 10_000),
            counters.clone(),
        );
        for _ in 0..5 {
            q.reserve(&batch(300, 1))
                .expect("fits")
                .commit(batch(300, 1));
        }
        assert_eq!(counters.queue_size.load(Ordering::Relaxed), 5);
        let first = q.next_request().await.expect("queued");
        assert_eq!(first.entries.len(), 3, "3 × 300 bytes fit under 1000");
        let second = q.next_request().await.expect("queued");
        assert_eq!(second.entries.len(), 2);
        q.complete(first, 3, 0);
        q.complete(second, 1, 1);
        assert_eq!(counters.queue_size.load(Ordering::Relaxed), 0);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 4);
        q.begin_drain();
        assert!(q.next_request().await.is_none());
        assert!(q.reserve(&batch(1, 1)).is_err(), "draining refuses");
    }

    /// Only batches of one client share a request: a tenant's data never goes out under
    /// another tenant's headers.
    #[tokio::test]
    async fn requests_hold_the_batches_of_one_client() {
        let q = Queue::new(
            "otlp".into(),
            limits(Sizer::Requests, 10, 10_000),
            Arc::new(ExporterCounters::default()),
        );
        let tenant = |t: Option<&str>| {
            let b = batch(10, 1);
            match t {
                Some(t) => b.with_client(ClientMetadata::from_pairs([("x-scope-orgid", t)])),
                None => b,
            }
        };
        for t in [Some("a"), Some("a"), Some("b"), None, None, Some("a")] {
            q.reserve(&tenant(t)).expect("fits").commit(tenant(t));
        }
        let mut sizes = Vec::new();
        for _ in 0..4 {
            let taken = q.next_request().await.expect("queued");
            let client = taken
                .client()
                .map(|c| c.get("x-scope-orgid")[0].to_string());
            assert!(taken
                .entries
                .iter()
                .all(|e| e.batch.client() == taken.client()));
            sizes.push((client, taken.entries.len()));
            let n = taken.entries.len() as u64;
            q.complete(taken, n, 0);
        }
        let a = Some("a".to_owned());
        assert_eq!(
            sizes,
            [(a.clone(), 2), (Some("b".to_owned()), 1), (None, 2), (a, 1)]
        );
    }

    /// A batch with its client's gzip frame goes alone (its frame is sent as it came); the
    /// batches around it still share requests. With batching asked for, everything merges.
    #[tokio::test]
    async fn a_batch_with_a_client_gzip_frame_goes_alone_unless_batching_is_asked_for() {
        fn framed(bytes: usize) -> Batch {
            let raw = Bytes::from(vec![1u8; bytes]);
            Batch::traces(raw.clone(), 1).with_gzip_frame(&raw, Bytes::from_static(b"gz"))
        }
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::new(
            "otlp".into(),
            limits(Sizer::Requests, 10, 10_000),
            counters.clone(),
        );
        for b in [
            batch(100, 1),
            batch(100, 1),
            framed(100),
            framed(100),
            batch(100, 1),
        ] {
            q.reserve(&b).expect("fits").commit(b);
        }
        let mut sizes = Vec::new();
        while counters.queue_size.load(Ordering::Relaxed) > 0 {
            let taken = q.next_request().await.expect("queued");
            sizes.push(taken.entries.len());
            let n = taken.entries.len() as u64;
            q.complete(taken, n, 0);
        }
        assert_eq!(sizes, [2, 1, 1, 1]);

        let mut batching = limits(Sizer::Requests, 10, 10_000);
        batching.min_request = 3;
        let q = Queue::new("otlp".into(), batching, counters);
        for b in [framed(100), framed(100), batch(100, 1)] {
            q.reserve(&b).expect("fits").commit(b);
        }
        let taken = q.next_request().await.expect("queued");
        assert_eq!(taken.entries.len(), 3, "merged as batching asks");
    }

    #[tokio::test]
    async fn close_counts_queued_and_in_flight_and_late_commits() {
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::new(
            "otlp".into(),
            limits(Sizer::Requests, 10, 10_000),
            counters.clone(),
        );
        let late = q.reserve(&batch(10, 7)).expect("fits");
        q.reserve(&batch(600, 2))
            .expect("fits")
            .commit(batch(600, 2));
        q.reserve(&batch(600, 3))
            .expect("fits")
            .commit(batch(600, 3));
        let in_flight = q.next_request().await.expect("queued");
        assert_eq!(in_flight.spans, 2);
        q.begin_drain();
        assert_eq!(
            q.close(),
            Closed {
                dropped_batches: 2,
                dropped_spans: 5,
                ..Closed::default()
            }
        );
        late.commit(batch(10, 7));
        assert_eq!(counters.send_failed.load(Ordering::Relaxed), 12);
        assert_eq!(counters.queue_size.load(Ordering::Relaxed), 0);
    }

    /// Commits from many tasks on the multi-threaded runtime, as receivers make them: each
    /// waits for its batch's sync without holding a worker, so they gather into one group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_to_an_fsync_disk_queue_share_syncs() {
        const COMMITS: u64 = 32;
        let tmp = tempfile::tempdir().expect("tempdir");
        let (log, _) = DiskLog::open(tmp.path(), true, 1 << 20, 1 << 20, "test").expect("opens");
        let files = log.files();
        files.hold_first_sync(COMMITS, false);
        let counters = Arc::new(ExporterCounters::default());
        let q = Queue::persistent(
            "otlp".into(),
            limits(Sizer::Requests, 100, 1 << 20),
            counters.clone(),
            log,
        );
        let commits: Vec<_> = (0..COMMITS)
            .map(|i| {
                let q = q.clone();
                tokio::spawn(async move {
                    let b = Batch::traces(Bytes::from(vec![i as u8; 20]), 1);
                    q.reserve(&b).expect("fits").commit(b);
                })
            })
            .collect();
        for c in commits {
            c.await.expect("committed");
        }
        assert_eq!(counters.queue_size.load(Ordering::Relaxed), COMMITS as i64);
        let w = files.stats();
        assert_eq!(w.appends, COMMITS);
        assert!(
            w.data_syncs <= 2,
            "{COMMITS} commits cost {} syncs",
            w.data_syncs
        );

        let taken = q.next_request().await.expect("queued");
        let mut tags: Vec<u8> = taken.entries.iter().map(|e| e.batch.raw[0]).collect();
        tags.sort_unstable();
        assert_eq!(tags, (0..COMMITS as u8).collect::<Vec<_>>(), "each once");
        q.complete(taken, COMMITS, 0);
        q.begin_drain();
        assert_eq!(q.close(), Closed::default());
        let (_, rec) = DiskLog::open(tmp.path(), true, 1 << 20, 0, "test").expect("reopens");
        assert_eq!(rec.pending.batches, 0, "every acknowledgement is on disk");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_min_size_up_to_flush_timeout() {
        let counters = Arc::new(ExporterCounters::default());
        let mut l = limits(Sizer::Requests, 10, 10_000);
        l.min_request = 5;
        l.flush_timeout = Duration::from_millis(100);
        let q = Queue::new("otlp".into(), l, counters);

        q.reserve(&batch(10, 2)).expect("fits").commit(batch(10, 2));
        let t0 = Instant::now();
        let taken = q.next_request().await.expect("queued");
        assert_eq!(taken.spans, 2, "sent short after the flush timeout");
        assert!(t0.elapsed() >= Duration::from_millis(100));
        q.complete(taken, 2, 0);

        q.reserve(&batch(10, 2)).expect("fits").commit(batch(10, 2));
        let t1 = Instant::now();
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.next_request().await.map(|t| t.spans) })
        };
        tokio::task::yield_now().await;
        q.reserve(&batch(10, 3)).expect("fits").commit(batch(10, 3));
        assert_eq!(waiter.await.expect("joined"), Some(5));
        assert!(
            t1.elapsed() < Duration::from_millis(100),
            "min_size reached: no wait"
        );
    }
}

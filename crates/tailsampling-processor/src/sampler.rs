//! The processor at work: requests split by trace into the store, a tick each second that
//! decides the traces due and forwards the sampled ones, and a shutdown that decides every
//! trace still waiting.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use redline_pipeline::component::ShutdownError;
use redline_pipeline::edit::undecodable;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, Consumer, Refused, Reservation, RunningComponent};

use crate::backlog::Backlog;
use crate::config::{DecisionCacheConfig, NamedPolicy};
use crate::group::{by_trace, request_of};
use crate::policy::{Decision, TraceData};
use crate::store::{Added, Limits, Store, TraceGroup, TraceId};
use crate::telemetry::{Counters, TracesOnMemory};

/// The spans of one trace to forward: encoded `ResourceSpans`, and how many spans they hold.
struct Forward {
    parts: Vec<Bytes>,
    spans: usize,
}

const TICK: Duration = Duration::from_secs(1);
/// How often the backlog is offered again while the pipeline downstream refuses it.
const RETRY: Duration = Duration::from_millis(100);
/// Traces decided under one hold of the store's lock.
const DECIDE_SLICE: usize = 256;
/// Sampled spans are forwarded in requests of about this size (the exporter coalesces them up
/// to its own limit).
const CHUNK_BYTES: usize = 1 << 20;

pub struct Settings {
    pub id: String,
    /// Put before each policy's name in the `policy` label: the processor's name and a dot.
    pub policy_prefix: String,
    pub sample_on_first_match: bool,
    pub drop_pending_on_shutdown: bool,
}

pub struct Sampler {
    settings: Settings,
    next: Arc<dyn Consumer>,
    pub(crate) state: Mutex<State>,
    backlog: Mutex<Backlog>,
    /// Held by a tick for its whole run (on the blocking pool, where stopping the ticking
    /// task does not stop it): the decisions at shutdown wait for it.
    deciding: Mutex<()>,
    counters: Counters,
    policy_labels: Vec<String>,
}

pub(crate) struct State {
    pub(crate) store: Store,
    policies: Vec<NamedPolicy>,
}

impl Sampler {
    pub fn new(
        settings: Settings,
        limits: Limits,
        cache: &DecisionCacheConfig,
        policies: Vec<NamedPolicy>,
        next: Arc<dyn Consumer>,
        telemetry: &Telemetry,
    ) -> Arc<Sampler> {
        let policy_labels: Vec<String> = policies
            .iter()
            .map(|p| format!("{}{}", settings.policy_prefix, p.name))
            .collect();
        let sampler = Arc::new(Sampler {
            counters: Counters::new(telemetry, &policy_labels),
            policy_labels,
            settings,
            next,
            state: Mutex::new(State {
                store: Store::new(
                    limits,
                    cache.sampled_cache_size,
                    cache.non_sampled_cache_size,
                ),
                policies,
            }),
            backlog: Mutex::new(Backlog::default()),
            deciding: Mutex::new(()),
        });
        telemetry.register_source(Arc::new(TracesOnMemory {
            of: Arc::downgrade(&sampler),
            count: |s: &Sampler| s.state.lock().store.len(),
        }));
        sampler
    }

    /// One tick: the traces due are decided and the sampled ones forwarded.
    pub(crate) fn tick(&self) {
        let _deciding = self.deciding.lock();
        let (due, evicted) = self.state.lock().store.next_tick();
        self.counters
            .dropped_too_early
            .fetch_add(evicted, Ordering::Relaxed);
        self.decide_in_slices(&due);
    }

    /// Decides `due` a slice at a time, so requests arriving meanwhile wait for one slice at
    /// most, not for the whole second's traces.
    fn decide_in_slices(&self, due: &[TraceId]) {
        for slice in due.chunks(DECIDE_SLICE) {
            let sampled = {
                let mut state = self.state.lock();
                self.decide(&mut state, slice)
            };
            self.forward(sampled);
        }
    }

    /// Decides every trace still waiting (shutting down), unless told to drop them.
    pub(crate) fn decide_all(&self) {
        let _deciding = self.deciding.lock();
        let (pending, _) = self.state.lock().store.take_all();
        if !self.settings.drop_pending_on_shutdown {
            self.decide_in_slices(&pending);
        }
    }

    fn decide(&self, state: &mut State, due: &[TraceId]) -> Vec<Forward> {
        let mut sampled = Vec::new();
        let mut tally = Tally::new(state.policies.len());
        for &id in due {
            let Some(held) = state.store.get_mut(&id) else {
                continue;
            };
            let mut trace = TraceData::new(id);
            trace.batches = std::mem::take(&mut held.data.batches);
            trace.span_count = held.data.span_count;
            trace.size_bytes = held.data.size_bytes;
            let decision = self.evaluate(&mut state.policies, &mut trace, &mut tally);
            tally.traces[decision.index()] += 1;
            if decision == Decision::Sampled {
                sampled.push(Forward {
                    spans: usize::try_from(trace.span_count).unwrap_or(0),
                    parts: trace.batches,
                });
            }
            state.store.decided(id, decision);
        }
        self.record(&tally);
        sampled
    }

    /// Adds a tick's decisions to the counters, once per series as otelcol records them.
    fn record(&self, tally: &Tally) {
        for decision in Decision::ALL {
            let n = tally.traces[decision.index()];
            if n > 0 {
                self.counters.trace_decision(decision, n);
            }
            for (label, counts) in self.policy_labels.iter().zip(&tally.policies) {
                let n = counts[decision.index()];
                if n > 0 {
                    self.counters.policy_decision(label, decision, n);
                }
            }
        }
    }

    /// otelcol's decision: drop policies first, any of them dropping the trace drops it;
    /// then the trace is sampled if a policy samples it. Policies that fail are counted and
    /// skipped.
    fn evaluate(
        &self,
        policies: &mut [NamedPolicy],
        trace: &mut TraceData,
        tally: &mut Tally,
    ) -> Decision {
        let mut sampled = false;
        for (i, p) in policies.iter_mut().enumerate() {
            let started = Instant::now();
            let result = p.policy.evaluate(trace);
            if let Some((count, micros)) = self.counters.executions.get(i) {
                count.fetch_add(1, Ordering::Relaxed);
                let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                micros.fetch_add(took, Ordering::Relaxed);
            }
            let decision = match result {
                Ok(d) => d,
                Err(error) => {
                    self.counters
                        .evaluation_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(processor = %self.settings.id, policy = %p.name, %error, "sampling policy error");
                    continue;
                }
            };
            if let Some(counts) = tally.policies.get_mut(i) {
                counts[decision.index()] += 1;
            }
            match decision {
                Decision::Dropped => return Decision::Dropped,
                Decision::Sampled if !p.is_drop => {
                    sampled = true;
                    if self.settings.sample_on_first_match {
                        break;
                    }
                }
                Decision::Sampled | Decision::NotSampled => {}
            }
        }
        if sampled {
            Decision::Sampled
        } else {
            Decision::NotSampled
        }
    }

    /// Sends sampled spans on, after the backlog; what the pipeline refuses joins the backlog.
    fn forward(&self, spans: Vec<Forward>) {
        // Encoded before the backlog is locked: the intake reads it for every request.
        let batches = encode_chunks(spans);
        let mut backlog = self.backlog.lock();
        for batch in batches {
            backlog.push(batch);
        }
        self.flush_locked(&mut backlog);
    }

    /// Offers the backlog again.
    pub(crate) fn flush(&self) {
        let mut backlog = self.backlog.lock();
        if !backlog.is_empty() {
            self.flush_locked(&mut backlog);
        }
    }

    fn flush_locked(&self, backlog: &mut Backlog) {
        let was_waiting = !backlog.is_empty();
        if let Err(why) = backlog.flush(&*self.next) {
            if !was_waiting {
                tracing::warn!(processor = %self.settings.id, reason = %why.reason, spans = backlog.spans(), "sampled traces refused downstream: offered again until taken");
            }
        }
    }

    /// Late spans of traces sampled after their request was reserved.
    fn forward_late(&self, spans: Vec<Forward>) {
        let batch = encode(spans);
        let mut backlog = self.backlog.lock();
        backlog.push(batch);
        self.flush_locked(&mut backlog);
    }
}

impl Forward {
    fn of(group: &TraceGroup) -> Forward {
        Forward {
            parts: vec![group.spans.clone()],
            spans: usize::try_from(group.span_count).unwrap_or(0),
        }
    }
}

fn encode(traces: Vec<Forward>) -> Batch {
    let spans = traces.iter().map(|t| t.spans).sum();
    let parts: Vec<Bytes> = traces.into_iter().flat_map(|t| t.parts).collect();
    Batch::traces(request_of(&parts), spans)
}

/// The traces sampled at one tick as requests of about [`CHUNK_BYTES`] each: one request
/// for all of them could pass any message limit on the way to Tempo.
fn encode_chunks(traces: Vec<Forward>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for trace in traces {
        bytes += trace.parts.iter().map(Bytes::len).sum::<usize>();
        chunk.push(trace);
        if bytes >= CHUNK_BYTES {
            batches.push(encode(std::mem::take(&mut chunk)));
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        batches.push(encode(chunk));
    }
    batches
}

/// A tick's decisions: traces by final decision, and each policy's verdicts.
struct Tally {
    traces: [u64; 3],
    policies: Vec<[u64; 3]>,
}

impl Tally {
    fn new(policies: usize) -> Tally {
        Tally {
            traces: [0; 3],
            policies: vec![[0; 3]; policies],
        }
    }
}

/// The processor as the pipeline sees it.
pub struct Intake(pub Arc<Sampler>);

impl Consumer for Intake {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let sampler = &self.0;
        if sampler.backlog.lock().is_full() {
            return Err(Refused {
                component: sampler.settings.id.clone(),
                reason: "sampled traces are waiting for the pipeline downstream".into(),
                retry_after: TICK,
                permanent: false,
            });
        }
        let groups = by_trace(&batch.raw).map_err(|e| undecodable(&sampler.settings.id, e))?;
        // Spans of traces already sampled go on with this request: if the pipeline refuses
        // them, so is the request, and nothing of it is held.
        let already: Vec<bool> = {
            let state = sampler.state.lock();
            groups
                .iter()
                .map(|g| state.store.is_sampled(&g.id))
                .collect()
        };
        let late: Vec<Forward> = groups
            .iter()
            .zip(&already)
            .filter(|(_, sampled)| **sampled)
            .map(|(g, _)| Forward::of(g))
            .collect();
        let forward = if late.is_empty() {
            None
        } else {
            let batch = encode(late);
            let reservation = sampler.next.reserve(&batch)?;
            Some((batch, reservation))
        };
        Ok(Box::new(Accepted {
            sampler: sampler.clone(),
            groups,
            already,
            forward,
        }))
    }
}

struct Accepted {
    sampler: Arc<Sampler>,
    groups: Vec<TraceGroup>,
    /// Per group: sampled when reserved, so already in `forward`.
    already: Vec<bool>,
    forward: Option<(Batch, Box<dyn Reservation>)>,
}

impl Reservation for Accepted {
    fn commit(self: Box<Self>, _: Batch) {
        let Accepted {
            sampler,
            groups,
            already,
            forward,
        } = *self;
        let counters = &sampler.counters;
        let mut late = Vec::new();
        {
            let mut state = sampler.state.lock();
            for (group, forwarded) in groups.into_iter().zip(already) {
                let spans = u64::try_from(group.span_count).unwrap_or(0);
                if forwarded {
                    if state.store.count_forwarded(&group) {
                        counters.early_release(true, spans);
                    }
                    continue;
                }
                match state.store.add(group) {
                    (Added::Held { new_trace }, _) => {
                        if new_trace {
                            counters.new_trace_ids.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    (Added::Forward { from_cache }, back) => {
                        if from_cache {
                            counters.early_release(true, spans);
                        }
                        late.extend(back.as_ref().map(Forward::of));
                    }
                    (Added::Discard { from_cache }, _) => {
                        if from_cache {
                            counters.early_release(false, spans);
                        }
                    }
                    (Added::TooLarge, _) => counters.too_large(),
                }
            }
        }
        if let Some((batch, reservation)) = forward {
            reservation.commit(batch);
        }
        if !late.is_empty() {
            sampler.forward_late(late);
        }
    }
}

/// The ticking task; stopping it decides what is still waiting.
pub struct Running {
    sampler: Arc<Sampler>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(sampler: Arc<Sampler>) -> Running {
        let ticking = sampler.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut tick = tokio::time::interval_at(start + TICK, TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut retry = tokio::time::interval_at(start + RETRY, RETRY);
            retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        // Deciding and encoding a busy second takes milliseconds: off the
                        // runtime's workers, which serve the clients meanwhile.
                        let sampler = ticking.clone();
                        let _ = tokio::task::spawn_blocking(move || sampler.tick()).await;
                    }
                    _ = retry.tick() => ticking.flush(),
                }
            }
        });
        Running { sampler, task }
    }
}

impl RunningComponent for Running {
    fn shutdown(
        self: Box<Self>,
        deadline: std::time::Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Running { sampler, task } = *self;
        task.abort();
        Box::pin(async move {
            let _ = task.await;
            let deciding = sampler.clone();
            let _ = tokio::task::spawn_blocking(move || deciding.decide_all()).await;
            // The exporters stop after the processors: until the deadline, they take more.
            while !sampler.backlog.lock().is_empty() && std::time::Instant::now() + RETRY < deadline
            {
                tokio::time::sleep(RETRY).await;
                sampler.flush();
            }
            let left = sampler.backlog.lock().spans();
            if left > 0 {
                tracing::error!(processor = %sampler.settings.id, spans = left, "sampled spans dropped at shutdown: the pipeline downstream refused them");
            }
            Ok(())
        })
    }
}

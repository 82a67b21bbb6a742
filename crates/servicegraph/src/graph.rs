//! [`ServiceGraph`]: the pairing store, the edge metrics and the connector's own counters,
//! usable without any pipeline (tests, benches).

use redline_pipeline::CheckAll;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redline_otlp_wire::{self as wire, WireError};
use redline_pipeline::Exemplar;

use crate::config::{Config, Invalid, Settings};
use crate::edge::{ConnType, Edge, PairKey, Side, VirtualNode};
use crate::series::{Observation, SeriesKey, SeriesMap};
use crate::store::{Store, Upsert};
use crate::visitor::Pairer;

/// otelcol's cache cleaning drops series not updated for this long.
pub(crate) const SERIES_IDLE: Duration = Duration::from_secs(15 * 60);

/// How often at most a full store is reported in the log.
const DROP_LOG_EVERY_MS: u64 = 10_000;

/// The service graph state.
pub struct ServiceGraph {
    pub(crate) settings: Settings,
    pub(crate) store: Store,
    pub(crate) series: SeriesMap,
    /// `client_<dim>` then `server_<dim>` label names.
    pub(crate) dim_labels: Vec<String>,
    total_edges: AtomicU64,
    expired_edges: AtomicU64,
    dropped_spans: AtomicU64,
    /// When the full store was last logged (connector clock, ms; 0 = never) and the dropped
    /// count then, so one line per burst says how many were dropped.
    drop_logged_ms: AtomicU64,
    drop_logged_count: AtomicU64,
    base: Instant,
    pub(crate) start_unix_nano: u64,
    /// Added to the monotonic clock: lets tests move time forward.
    clock_offset_ms: AtomicU64,
}

impl ServiceGraph {
    /// Builds the state from a config; the error names the offending key.
    pub fn new(config: &Config) -> Result<Self, Invalid> {
        Ok(Self::from_settings(config.settings()?))
    }

    pub(crate) fn from_settings(settings: Settings) -> Self {
        let dim_labels = ["client", "server"]
            .iter()
            .flat_map(|kind| {
                settings
                    .dimensions
                    .iter()
                    .map(move |d| format!("{kind}_{d}"))
            })
            .collect();
        Self {
            store: Store::new(settings.max_items, settings.ttl.as_millis() as u64),
            series: SeriesMap::new(settings.buckets.clone()),
            dim_labels,
            settings,
            total_edges: AtomicU64::new(0),
            expired_edges: AtomicU64::new(0),
            dropped_spans: AtomicU64::new(0),
            drop_logged_ms: AtomicU64::new(0),
            drop_logged_count: AtomicU64::new(0),
            base: Instant::now(),
            start_unix_nano: redline_pipeline::telemetry::now_unix_nano(),
            clock_offset_ms: AtomicU64::new(0),
        }
    }

    /// Pairs the spans of one encoded `ExportTraceServiceRequest`. The request is checked
    /// first, so a malformed one changes nothing. Returns the spans that took part in an edge
    /// (client, server, producer, consumer spans of resources with `service.name`).
    pub fn consume(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Pairer::new(self);
        wire::walk(raw, &mut v)?;
        Ok(v.finish())
    }

    /// Like [`consume`](Self::consume) for input the receiver validated
    /// (`redline_otlp_wire::walk_validated`): never panics on malformed input; the spans
    /// before a structural fault are paired and the error returned.
    pub fn consume_validated(&self, raw: &[u8]) -> Result<usize, WireError> {
        let mut v = Pairer::new(self);
        let walked = wire::walk_validated(raw, &mut v);
        let n = v.finish();
        walked.map(|_| n)
    }

    /// Expires the edges past `store.ttl` (otelcol's store expiration loop): each counts in
    /// `expired_edges` and may become a virtual node edge. Returns how many expired.
    pub fn expire(&self) -> usize {
        let mut expired = Vec::new();
        self.store.expire(self.now_ms(), &mut expired);
        let n = expired.len();
        self.on_expired(expired);
        n
    }

    /// Removes series not updated for 15 minutes (otelcol's cache loop). Returns how many.
    pub fn clean_series(&self) -> usize {
        self.series
            .remove_idle(self.now_ms(), SERIES_IDLE.as_millis() as u64)
    }

    /// Edges ever created in the store, including database calls complete at once
    /// (`otelcol_connector_servicegraph_total_edges`).
    pub fn total_edges(&self) -> u64 {
        self.total_edges.load(Ordering::Relaxed)
    }

    /// Edges that expired before their other span came (`..._expired_edges`).
    pub fn expired_edges(&self) -> u64 {
        self.expired_edges.load(Ordering::Relaxed)
    }

    /// Spans dropped because the store was full (`..._dropped_spans`).
    pub fn dropped_spans(&self) -> u64 {
        self.dropped_spans.load(Ordering::Relaxed)
    }

    /// Edges waiting in the store now (never more than `store.max_items`).
    pub fn store_len(&self) -> usize {
        self.store.len()
    }

    /// Label sets held.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Moves this instance's clock forward (tests of expiry).
    #[doc(hidden)]
    pub fn advance_clock(&self, by: Duration) {
        self.clock_offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + self.clock_offset_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn now_unix_nano(&self, now_ms: u64) -> u64 {
        self.start_unix_nano
            .saturating_add(now_ms.saturating_mul(1_000_000))
    }

    /// Handles one upsert's outcome; `expired` holds edges a full store swept to make room.
    pub(crate) fn settle(&self, outcome: Upsert, now_ms: u64) {
        match outcome {
            Upsert::Completed { edge, new } => {
                if new {
                    self.total_edges.fetch_add(1, Ordering::Relaxed);
                }
                self.complete(edge, now_ms);
            }
            Upsert::Stored { new } => {
                if new {
                    self.total_edges.fetch_add(1, Ordering::Relaxed);
                }
            }
            Upsert::Dropped => self.dropped(now_ms),
        }
    }

    fn dropped(&self, now_ms: u64) {
        let total = self.dropped_spans.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.drop_logged_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= DROP_LOG_EVERY_MS;
        // One thread wins the right to log this burst.
        if due
            && self
                .drop_logged_ms
                .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let before = self.drop_logged_count.swap(total, Ordering::Relaxed);
            tracing::warn!(
                max_items = self.settings.max_items,
                dropped_since_last_report = total - before,
                dropped_total = total,
                "servicegraph: store.max_items reached; spans of new edges are dropped until \
                 edges complete or expire"
            );
        }
    }

    pub(crate) fn on_expired(&self, expired: Vec<(PairKey, Edge)>) {
        if expired.is_empty() {
            return;
        }
        let now_ms = self.now_ms();
        self.expired_edges
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        if self.settings.peer_attributes.is_empty() {
            return;
        }
        let label = self.settings.virtual_node_extra_label;
        for (key, mut e) in expired {
            e.conn = ConnType::VirtualNode;
            if e.client_name().is_empty() && key.span_is_empty() {
                // A root server span: its caller is the user.
                e.client = Some(virtual_side("user".into(), e.server.as_ref()));
                if label {
                    e.virtual_node = VirtualNode::Client;
                }
                self.complete(e.clone(), now_ms);
            }
            if e.server_name().is_empty() {
                // An uninstrumented peer: named by the client span's peer attributes.
                let peer = e.peer.as_ref().map_or("unknown", |(_, v)| &**v);
                e.server = Some(virtual_side(peer.into(), e.client.as_ref()));
                if label {
                    e.virtual_node = VirtualNode::Server;
                }
                self.complete(e, now_ms);
            }
        }
    }

    /// Records a completed edge (otelcol's `onComplete`).
    fn complete(&self, e: Edge, now_ms: u64) {
        let weight = e.weight();
        let now_unix_nano = self.now_unix_nano(now_ms);
        let exemplar = |side: &Option<Side>| {
            let side = side.as_ref()?;
            if e.trace.iter().all(|b| *b == 0) {
                return None;
            }
            Some(Exemplar {
                value: side.latency_s,
                time_unix_nano: now_unix_nano,
                trace_id: e.trace,
                span_id: side.span_id,
            })
        };
        let obs = Observation {
            weight,
            server_s: e.server.as_ref().map_or(0.0, |s| s.latency_s),
            client_s: e.client.as_ref().map_or(0.0, |s| s.latency_s),
            server_exemplar: exemplar(&e.server),
            client_exemplar: exemplar(&e.client),
            now_ms,
        };
        let Edge {
            conn,
            client,
            server,
            failed,
            dims,
            virtual_node,
            ..
        } = e;
        let key = SeriesKey {
            client: client.map(|s| s.service).unwrap_or_default(),
            server: server.map(|s| s.service).unwrap_or_default(),
            conn,
            failed,
            dims,
            virtual_node,
        };
        self.series.record(key, &obs);
    }
}

/// The made-up side of a virtual node edge: no latency (Go's zero value), and the real side's
/// span and weight so the edge counts and links as that span.
fn virtual_side(service: Arc<str>, real: Option<&Side>) -> Side {
    Side {
        service,
        latency_s: 0.0,
        span_id: real.map_or([0; 8], |s| s.span_id),
        multiplier: real.and_then(|s| s.multiplier),
        adjusted: real.and_then(|s| s.adjusted),
    }
}

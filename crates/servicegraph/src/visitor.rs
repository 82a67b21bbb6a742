//! Walking a request's spans into the pairing store, as otelcol's `aggregateMetrics` does:
//! client and producer spans are keyed by their own span id, server and consumer spans by
//! their parent's; other kinds and resources without `service.name` take no part.

use std::sync::Arc;

use redline_otlp_wire::{AnyValueView, ResourceView, SpanView, TraceVisitor};
use redline_sampling_tracestate::{round_weight, AdjustedCounts};

use crate::edge::{ConnType, Edge, PairKey, Side};
use crate::graph::ServiceGraph;

const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;
const KIND_PRODUCER: i32 = 4;
const KIND_CONSUMER: i32 = 5;
const STATUS_ERROR: i32 = 2;

fn position(list: &[String], key: &[u8]) -> Option<usize> {
    list.iter().position(|k| k.as_bytes() == key)
}

fn number(v: &AnyValueView<'_>) -> Option<f64> {
    match v {
        AnyValueView::Int(i) => Some(*i as f64),
        AnyValueView::Double(d) => Some(*d),
        _ => None,
    }
}

/// The attributes of one span the connector reads, found in one pass over them.
#[derive(Default)]
struct Found<'a> {
    dims: Vec<Option<AnyValueView<'a>>>,
    db: Vec<Option<AnyValueView<'a>>>,
    /// The highest-priority peer attribute: (index in the list, value).
    peer: Option<(usize, AnyValueView<'a>)>,
    multiplier: Option<AnyValueView<'a>>,
}

pub(crate) struct Pairer<'g, 'a> {
    g: &'g ServiceGraph,
    /// `None` while the current resource has no `service.name`.
    service: Option<Arc<str>>,
    /// Dimension and database-name values of the current resource (otelcol looks there
    /// before the span), and its multiplier.
    res_dims: Vec<Option<String>>,
    res_db: Vec<Option<String>>,
    res_multiplier: Option<f64>,
    found: Found<'a>,
    adjusted: AdjustedCounts<'a>,
    /// Edges a full store swept to make room; handled once the walk is done.
    expired: Vec<(PairKey, Edge)>,
    now_ms: u64,
    counted: usize,
}

impl<'g> Pairer<'g, '_> {
    pub(crate) fn new(g: &'g ServiceGraph) -> Self {
        Self {
            g,
            service: None,
            res_dims: Vec::new(),
            res_db: Vec::new(),
            res_multiplier: None,
            found: Found::default(),
            adjusted: AdjustedCounts::new(),
            expired: Vec::new(),
            now_ms: g.now_ms(),
            counted: 0,
        }
    }

    /// Handles what the walk left over; returns the spans that took part in an edge.
    pub(crate) fn finish(self) -> usize {
        self.g.on_expired(self.expired);
        self.counted
    }
}

impl<'a> Pairer<'_, 'a> {
    fn scan(&mut self, span: &SpanView<'a>) {
        let s = &self.g.settings;
        let f = &mut self.found;
        f.dims.clear();
        f.dims.resize(s.dimensions.len(), None);
        f.db.clear();
        f.db.resize(s.database_name_attributes.len(), None);
        f.peer = None;
        f.multiplier = None;
        let mult_key = s.span_multiplier_key.as_deref().map(str::as_bytes);
        // The first occurrence of a key wins, as pdata's `Get`.
        for kv in span.attributes().lazy() {
            let key = kv.key_bytes();
            if let Some(slot) = position(&s.dimensions, key).and_then(|i| f.dims.get_mut(i)) {
                slot.get_or_insert_with(|| kv.value());
            }
            if let Some(slot) =
                position(&s.database_name_attributes, key).and_then(|i| f.db.get_mut(i))
            {
                slot.get_or_insert_with(|| kv.value());
            }
            if let Some(i) = position(&s.peer_attributes, key) {
                if f.peer.as_ref().is_none_or(|(j, _)| i < *j) {
                    f.peer = Some((i, kv.value()));
                }
            }
            if mult_key == Some(key) && f.multiplier.is_none() {
                f.multiplier = Some(kv.value());
            }
        }
    }
}

impl<'a> TraceVisitor<'a> for Pairer<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        let s = &self.g.settings;
        // pdatautil.GetAttributeValue: present means used, whatever its type (AsString).
        let Some(name) = resource.attribute("service.name") else {
            self.service = None;
            return;
        };
        // Consecutive resources of one service (the usual shape) share one allocation.
        let same = match (&self.service, name.as_str()) {
            (Some(prev), Some(now)) => **prev == *now,
            _ => false,
        };
        if !same {
            self.service = Some(Arc::from(name.to_as_string()));
        }
        let get = |k: &String| resource.attribute(k).map(|v| v.to_as_string());
        self.res_dims.clear();
        self.res_dims.extend(s.dimensions.iter().map(get));
        self.res_db.clear();
        self.res_db
            .extend(s.database_name_attributes.iter().map(get));
        self.res_multiplier = s
            .span_multiplier_key
            .as_deref()
            .and_then(|k| resource.attribute(k))
            .and_then(|v| number(&v));
    }

    fn span(&mut self, span: &SpanView<'a>) {
        let Some(service) = self.service.clone() else {
            return;
        };
        let (is_client, conn) = match span.kind() {
            KIND_CLIENT => (true, ConnType::Unset),
            KIND_PRODUCER => (true, ConnType::MessagingSystem),
            KIND_SERVER => (false, ConnType::Unset),
            KIND_CONSUMER => (false, ConnType::MessagingSystem),
            _ => return,
        };
        self.scan(span);
        let g = self.g;
        let n_dims = g.settings.dimensions.len();

        let mut span_id = [0u8; 8];
        for (d, s) in span_id.iter_mut().zip(span.span_id()) {
            *d = *s;
        }
        // The span id is the coin for rounding fractional weights: the same span always
        // weighs the same.
        let random = u64::from_le_bytes(span_id);
        let multiplier = g.settings.span_multiplier_key.as_ref().and_then(|_| {
            let v = self.found.multiplier.as_ref().and_then(number);
            v.or(self.res_multiplier).map(|m| round_weight(m, random))
        });
        let side = Side {
            service,
            // Negative durations count as 0 (Go's unsigned subtraction would wrap).
            latency_s: span
                .end_time_unix_nano()
                .saturating_sub(span.start_time_unix_nano()) as f64
                / 1e9,
            span_id,
            multiplier,
            adjusted: self.adjusted.get(span.trace_state(), random),
        };
        let failed = span.status_code() == STATUS_ERROR;

        // Resource values first, then the span's, as otelcol's lookups.
        let offset = if is_client { 0 } else { n_dims };
        let mut dims: Vec<(usize, Box<str>)> = Vec::new();
        for (i, (res, sp)) in self.res_dims.iter().zip(&self.found.dims).enumerate() {
            let v = match (res, sp) {
                (Some(r), _) => Some(r.as_str().into()),
                (None, Some(v)) => Some(v.to_as_string().into_boxed_str()),
                (None, None) => None,
            };
            if let Some(v) = v {
                dims.push((offset + i, v));
            }
        }

        let key = if is_client {
            PairKey::new(span.trace_id(), span.span_id())
        } else {
            PairKey::new(span.trace_id(), span.parent_span_id())
        };

        let outcome = if is_client {
            let peer = self
                .found
                .peer
                .as_ref()
                .map(|(i, v)| (*i, v.to_as_string().into_boxed_str()));
            // A database call has one span: the database name is the server.
            let db = self
                .res_db
                .iter()
                .zip(&self.found.db)
                .find_map(|(res, sp)| res.clone().or_else(|| sp.map(|v| v.to_as_string())));
            g.store.upsert(
                key,
                self.now_ms,
                n_dims,
                |e| {
                    e.conn = conn;
                    e.failed |= failed;
                    set_dims(e, dims);
                    if let Some((i, v)) = peer {
                        if e.peer.as_ref().is_none_or(|(j, _)| i <= *j) {
                            e.peer = Some((i, v));
                        }
                    }
                    if let Some(db) = db {
                        e.conn = ConnType::Database;
                        e.server = Some(Side {
                            service: db.into(),
                            ..side.clone()
                        });
                    }
                    e.client = Some(side);
                },
                &mut self.expired,
            )
        } else {
            g.store.upsert(
                key,
                self.now_ms,
                n_dims,
                |e| {
                    e.conn = conn;
                    e.failed |= failed;
                    set_dims(e, dims);
                    e.server = Some(side);
                },
                &mut self.expired,
            )
        };
        g.settle(outcome, self.now_ms);
        self.counted += 1;
    }
}

fn set_dims(e: &mut Edge, dims: Vec<(usize, Box<str>)>) {
    for (i, v) in dims {
        if let Some(slot) = e.dims.get_mut(i) {
            *slot = Some(v);
        }
    }
}

//! The running total of every delta stream, keyed by otelcol's stream identity: resource
//! attributes, scope name, version and attributes, metric name, unit, type, monotonicity and
//! temporality, and the point's attributes (attribute order does not matter, as pdata's
//! `MapHash` makes it not matter).

use std::time::{Duration, Instant};

use hashbrown::HashMap;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint,
};
use parking_lot::Mutex;

use crate::aggregate::{aggregate, Added, Dropped, Point};

/// A stream's total, of the type its identity names.
#[derive(Clone, Debug)]
pub enum Total {
    Number(NumberDataPoint),
    Histogram(HistogramDataPoint),
    Exponential(ExponentialHistogramDataPoint),
}

/// Points that carry attributes, so each finds its stream.
pub trait Attributed {
    fn attributes(&self) -> &[KeyValue];
}

/// The points a [`Total`] can hold.
pub trait Tracked: Point {
    fn wrap(self) -> Total;
    fn of(total: &mut Total) -> Option<&mut Self>;
}

macro_rules! tracked {
    ($point:ty, $variant:ident) => {
        impl Attributed for $point {
            fn attributes(&self) -> &[KeyValue] {
                &self.attributes
            }
        }

        impl Tracked for $point {
            fn wrap(self) -> Total {
                Total::$variant(self)
            }
            fn of(total: &mut Total) -> Option<&mut Self> {
                match total {
                    Total::$variant(p) => Some(p),
                    _ => None,
                }
            }
        }
    };
}

tracked!(NumberDataPoint, Number);
tracked!(HistogramDataPoint, Histogram);
tracked!(ExponentialHistogramDataPoint, Exponential);

/// One stream: its total (without attributes and exemplars) and what otelcol forwards with
/// it from the point the total was copied from.
#[derive(Debug)]
struct Entry {
    total: Total,
    attributes: Vec<KeyValue>,
    exemplars: Vec<Exemplar>,
    seen: Instant,
    /// The request that last wrote this entry, so a refused request undoes only what no
    /// later request built on.
    written_by: u64,
}

/// Metric identities (resource, scope, metric) by a small id: a stream's key is its metric's
/// id and its point's attributes, so a lookup hashes and compares a few dozen bytes, not the
/// resource's attributes again for every point.
#[derive(Default)]
struct MetricIds {
    ids: HashMap<Box<[u8]>, u32>,
    /// By id: the identity and the streams that use it.
    used: Vec<Option<(Box<[u8]>, usize)>>,
    free: Vec<u32>,
}

impl MetricIds {
    fn get(&self, identity: &[u8]) -> Option<u32> {
        self.ids.get(identity).copied()
    }

    /// The id of `identity`, with one more stream using it.
    fn acquire(&mut self, identity: &[u8]) -> u32 {
        if let Some(id) = self.get(identity) {
            if let Some((_, streams)) = self.used.get_mut(id as usize).and_then(Option::as_mut) {
                *streams += 1;
            }
            return id;
        }
        let identity: Box<[u8]> = identity.into();
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.used.push(None);
                (self.used.len() - 1) as u32
            }
        };
        self.used[id as usize] = Some((identity.clone(), 1));
        self.ids.insert(identity, id);
        id
    }

    /// One stream fewer uses `id`; the id goes with the last.
    fn release(&mut self, id: u32) {
        let Some(slot) = self.used.get_mut(id as usize) else {
            return;
        };
        if let Some((identity, streams)) = slot {
            *streams -= 1;
            if *streams == 0 {
                self.ids.remove(&identity[..]);
                *slot = None;
                self.free.push(id);
            }
        }
    }
}

/// A stream's key: its metric's id, then its point's attributes.
fn metric_id_of(key: &[u8]) -> Option<u32> {
    key.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

#[derive(Default)]
struct Table {
    metrics: MetricIds,
    /// Stream key -> its slot.
    index: HashMap<Box<[u8]>, usize>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    requests: u64,
}

impl Table {
    fn remove(&mut self, key: &[u8]) {
        if let Some(slot) = self.index.remove(key) {
            self.slots[slot] = None;
            self.free.push(slot);
            if let Some(id) = metric_id_of(key) {
                self.metrics.release(id);
            }
        }
    }
}

/// A metric being converted: its identity, and its id once a stream of it exists.
pub struct MetricRef<'k> {
    identity: &'k [u8],
    id: Option<u32>,
}

/// Every stream's total, shared by the requests of one processor.
pub struct Streams {
    table: Mutex<Table>,
    max_streams: usize,
}

/// What a request changed in one stream, to be put back if it is refused downstream.
struct Change {
    slot: usize,
    /// The stream's identity, when the request created it: undoing removes it.
    created: Option<Box<[u8]>>,
    /// The total before the request.
    total: Total,
    /// The attributes and exemplars before the request, when it replaced them.
    extras: Option<(Vec<KeyValue>, Vec<Exemplar>)>,
}

/// What one request changed, to be undone if it is refused downstream.
pub struct Undo {
    request: u64,
    changes: Vec<Change>,
}

/// The streams a request reaches, locked while it is converted.
pub struct Converting<'a> {
    table: parking_lot::MutexGuard<'a, Table>,
    max_streams: usize,
    now: Instant,
    undo: Undo,
    /// The key of the point being added, built in place.
    key: Vec<u8>,
}

impl Streams {
    pub fn new(max_streams: usize) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            max_streams,
        }
    }

    /// Locks the table for converting one request.
    pub fn convert(&self) -> Converting<'_> {
        let mut table = self.table.lock();
        table.requests += 1;
        let request = table.requests;
        Converting {
            table,
            max_streams: self.max_streams,
            now: Instant::now(),
            undo: Undo {
                request,
                changes: Vec::new(),
            },
            key: Vec::new(),
        }
    }

    /// Puts back what a refused request changed, where no later request wrote since.
    pub fn undo(&self, undo: Undo) {
        let mut table = self.table.lock();
        for change in undo.changes.into_iter().rev() {
            let Some(entry) = table.slots.get_mut(change.slot).and_then(Option::as_mut) else {
                continue;
            };
            if entry.written_by != undo.request {
                continue;
            }
            if let Some(key) = change.created {
                table.remove(&key);
                continue;
            }
            entry.total = change.total;
            if let Some((attributes, exemplars)) = change.extras {
                entry.attributes = attributes;
                entry.exemplars = exemplars;
            }
        }
    }

    /// Forgets the streams not seen for longer than `max_stale`.
    pub fn forget_stale(&self, max_stale: Duration) {
        let now = Instant::now();
        let table = &mut *self.table.lock();
        let stale: Vec<Box<[u8]>> = table
            .index
            .iter()
            .filter(|(_, &slot)| {
                table.slots[slot]
                    .as_ref()
                    .is_none_or(|e| now.duration_since(e.seen) > max_stale)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            table.remove(&key);
        }
    }

    /// The streams tracked now.
    pub fn tracked(&self) -> usize {
        self.table.lock().index.len()
    }
}

impl Converting<'_> {
    /// The metric of `identity` (resource, scope and metric, canonical), for [`Self::add`].
    pub fn metric<'k>(&self, identity: &'k [u8]) -> MetricRef<'k> {
        MetricRef {
            identity,
            id: self.table.metrics.get(identity),
        }
    }

    /// Adds `dp` to the total of its stream (its metric and attributes) and returns what is
    /// forwarded in its place (the total, with the attributes and exemplars of the point it
    /// started from), or why `dp` is dropped.
    pub fn add<P: Tracked + Attributed>(
        &mut self,
        metric: &mut MetricRef<'_>,
        mut dp: P,
    ) -> Result<P, Dropped> {
        let request = self.undo.request;
        let table = &mut *self.table;
        let key = &mut self.key;
        let found = metric.id.and_then(|id| {
            key.clear();
            key.extend(id.to_le_bytes());
            push_attributes(key, dp.attributes());
            table.index.get(&key[..]).copied()
        });
        let mut created = None;
        let slot = match found {
            Some(slot) => slot,
            None if table.index.len() >= self.max_streams => return Err(Dropped::Limit),
            None => {
                let id = table.metrics.acquire(metric.identity);
                metric.id = Some(id);
                key.clear();
                key.extend(id.to_le_bytes());
                push_attributes(key, dp.attributes());
                let entry = Entry {
                    total: P::default().wrap(),
                    attributes: Vec::new(),
                    exemplars: Vec::new(),
                    seen: self.now,
                    written_by: request,
                };
                let slot = match table.free.pop() {
                    Some(slot) => {
                        table.slots[slot] = Some(entry);
                        slot
                    }
                    None => {
                        table.slots.push(Some(entry));
                        table.slots.len() - 1
                    }
                };
                let key: Box<[u8]> = key[..].into();
                table.index.insert(key.clone(), slot);
                created = Some(key);
                slot
            }
        };
        let Some(entry) = table.slots[slot].as_mut() else {
            return Err(Dropped::Limit);
        };
        entry.seen = self.now;
        // The identity names the point type, so a stream holds one type only.
        if P::of(&mut entry.total).is_none() {
            entry.total = P::default().wrap();
        }
        let Some(total) = P::of(&mut entry.total) else {
            return Err(Dropped::Limit);
        };
        let (attributes, exemplars) = dp.take_extras();
        let before = total.clone();
        let added = aggregate(total, dp)?;
        let mut out = total.clone();
        let extras = match added {
            Added::Replaced => {
                out.set_extras(attributes.clone(), exemplars.clone());
                Some((
                    std::mem::replace(&mut entry.attributes, attributes),
                    std::mem::replace(&mut entry.exemplars, exemplars),
                ))
            }
            Added::Summed => {
                // Usually the point's own attributes, in the same order: no copy.
                let attributes = if entry.attributes == attributes {
                    attributes
                } else {
                    entry.attributes.clone()
                };
                out.set_extras(attributes, entry.exemplars.clone());
                None
            }
        };
        self.undo.changes.push(Change {
            slot,
            created,
            total: before.wrap(),
            extras,
        });
        entry.written_by = request;
        Ok(out)
    }

    /// Ends the conversion; what it changed, should the request be refused.
    pub fn finish(self) -> Undo {
        self.undo
    }
}

/// Appends the canonical form of a set of attributes: sorted by key, nested maps too.
pub fn push_attributes(out: &mut Vec<u8>, attributes: &[KeyValue]) {
    push_len(out, attributes.len());
    // Most senders write attributes in one order every time, often sorted: no copy then.
    if attributes.is_sorted_by(|a, b| a.key <= b.key) {
        attributes.iter().for_each(|kv| push_attribute(out, kv));
    } else {
        let mut sorted: Vec<&KeyValue> = attributes.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted.into_iter().for_each(|kv| push_attribute(out, kv));
    }
}

fn push_attribute(out: &mut Vec<u8>, kv: &KeyValue) {
    push_str(out, &kv.key);
    push_value(out, kv.value.as_ref());
}

fn push_value(out: &mut Vec<u8>, value: Option<&AnyValue>) {
    match value.and_then(|v| v.value.as_ref()) {
        None | Some(Value::StringValueStrindex(_)) => out.push(0),
        Some(Value::StringValue(s)) => {
            out.push(1);
            push_str(out, s);
        }
        Some(Value::BoolValue(b)) => out.extend([2, u8::from(*b)]),
        Some(Value::IntValue(i)) => {
            out.push(3);
            out.extend(i.to_le_bytes());
        }
        Some(Value::DoubleValue(d)) => {
            out.push(4);
            out.extend(d.to_bits().to_le_bytes());
        }
        Some(Value::BytesValue(b)) => {
            out.push(5);
            push_len(out, b.len());
            out.extend(b);
        }
        Some(Value::ArrayValue(a)) => {
            out.push(6);
            push_len(out, a.values.len());
            for v in &a.values {
                push_value(out, Some(v));
            }
        }
        Some(Value::KvlistValue(m)) => {
            out.push(7);
            push_attributes(out, &m.values);
        }
    }
}

pub fn push_str(out: &mut Vec<u8>, s: &str) {
    push_len(out, s.len());
    out.extend(s.as_bytes());
}

fn push_len(out: &mut Vec<u8>, n: usize) {
    out.extend((n as u64).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as N;
    use redline_processor_testkit::{kv, string};

    /// A point of stream `name` (its one attribute) at `time`.
    fn number(name: &str, time: u64, v: i64) -> NumberDataPoint {
        NumberDataPoint {
            attributes: vec![kv("stream", string(name))],
            start_time_unix_nano: 1,
            time_unix_nano: time,
            value: Some(N::AsInt(v)),
            ..NumberDataPoint::default()
        }
    }

    /// Adds `dp` to metric `m`'s stream; the total's value.
    fn add(c: &mut Converting<'_>, m: &[u8], dp: NumberDataPoint) -> Result<Option<N>, Dropped> {
        let mut metric = c.metric(m);
        c.add(&mut metric, dp).map(|p| p.value)
    }

    #[test]
    fn attribute_order_does_not_change_the_identity() {
        let (a, b) = (
            kv("a", Value::IntValue(1)),
            kv("b", Value::StringValue("x".into())),
        );
        let (mut one, mut two) = (Vec::new(), Vec::new());
        push_attributes(&mut one, &[a.clone(), b.clone()]);
        push_attributes(&mut two, &[b, a.clone()]);
        assert_eq!(one, two);
        let mut int_as_string = Vec::new();
        push_attributes(
            &mut int_as_string,
            &[kv("a", Value::StringValue("1".into()))],
        );
        let mut int = Vec::new();
        push_attributes(&mut int, &[a]);
        assert_ne!(int, int_as_string);
    }

    #[test]
    fn a_refused_request_is_undone_unless_a_later_one_built_on_it() {
        let streams = Streams::new(10);
        let mut c = streams.convert();
        assert_eq!(add(&mut c, b"m", number("s", 2, 5)), Ok(Some(N::AsInt(5))));
        drop(c.finish());
        let mut c = streams.convert();
        assert_eq!(add(&mut c, b"m", number("s", 3, 1)), Ok(Some(N::AsInt(6))));
        assert!(add(&mut c, b"m", number("t", 3, 1)).is_ok());
        assert!(add(&mut c, b"other", number("s", 3, 1)).is_ok());
        let undo = c.finish();
        streams.undo(undo);
        assert_eq!(streams.tracked(), 1);
        assert_eq!(
            streams.table.lock().metrics.ids.len(),
            1,
            "the new metric's id goes"
        );
        let mut c = streams.convert();
        assert_eq!(add(&mut c, b"m", number("s", 3, 2)), Ok(Some(N::AsInt(7))));
    }

    #[test]
    fn idle_streams_are_forgotten_and_start_over() {
        let streams = Streams::new(10);
        let mut c = streams.convert();
        assert!(add(&mut c, b"m", number("s", 2, 5)).is_ok());
        drop(c.finish());
        streams.forget_stale(Duration::from_secs(60));
        assert_eq!(streams.tracked(), 1);
        std::thread::sleep(Duration::from_millis(5));
        streams.forget_stale(Duration::from_millis(1));
        assert_eq!(streams.tracked(), 0);
        assert!(streams.table.lock().metrics.ids.is_empty());
        let mut c = streams.convert();
        // An older point is a new stream's first now, not out of order.
        assert_eq!(add(&mut c, b"m", number("s", 1, 2)), Ok(Some(N::AsInt(2))));
    }

    #[test]
    fn new_streams_beyond_the_limit_are_dropped() {
        let streams = Streams::new(1);
        let mut c = streams.convert();
        assert!(add(&mut c, b"m", number("a", 2, 1)).is_ok());
        assert_eq!(add(&mut c, b"m", number("b", 2, 1)), Err(Dropped::Limit));
        assert!(add(&mut c, b"m", number("a", 3, 1)).is_ok());
    }
}

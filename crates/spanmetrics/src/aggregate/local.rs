//! Batch-local pre-aggregation: a request's spans are grouped by series first, then each
//! series visits its shard once (one lock, one table probe, one key comparison against the
//! interned strings) for all of its spans in the request.
//!
//! Nothing reaches the shards before [`Local::flush`], so a request can be walked while it is
//! still being validated and dropped unflushed when it turns out malformed or is refused.
//! Within a series the spans are recorded in request order, so sums add up in the same
//! order (and to the same bits) as span-by-span recording.

use std::cell::RefCell;

use hashbrown::HashTable;
use smallvec::SmallVec;

use super::key::{DimSrc, Key, SpanKey};
use super::observe::{Now, Observation};
use super::SpanMetrics;
use crate::config::Settings;

/// A dimension value as the request's series key keeps it.
enum LocalDim<'a> {
    Absent,
    /// Borrowed from the request.
    Str(&'a str),
    /// Converted from a non-string value or taken from the resource: a range of
    /// [`Buffers::text`].
    Text(u32, u32),
    /// The dimension's configured default.
    Default,
}

/// One series of the request: its key, its hashes and its spans (a chain through
/// [`Local::observations`]).
struct LocalSeries<'a> {
    group: u64,
    hash: u64,
    service: Option<&'a str>,
    name: Option<&'a str>,
    kind: u8,
    status: u8,
    dims: SmallVec<[LocalDim<'a>; 4]>,
    first: u32,
    last: u32,
}

/// A request's series with what resolves its values: a [`Key`] like any other.
pub(super) struct LocalKey<'k, 'a> {
    series: &'k LocalSeries<'a>,
    text: &'k str,
    settings: &'k Settings,
}

impl Key for LocalKey<'_, '_> {
    fn service(&self) -> Option<&str> {
        self.series.service
    }
    fn name(&self) -> Option<&str> {
        self.series.name
    }
    fn kind(&self) -> u8 {
        self.series.kind
    }
    fn status(&self) -> u8 {
        self.series.status
    }
    fn dim(&self, i: usize) -> Option<&str> {
        match self.series.dims.get(i)? {
            LocalDim::Absent => None,
            LocalDim::Str(s) => Some(s),
            LocalDim::Text(start, end) => self.text.get(*start as usize..*end as usize),
            LocalDim::Default => self.settings.dimensions.get(i)?.default.as_deref(),
        }
    }
}

const END: u32 = u32::MAX;

/// The buffers of one request that borrow nothing from it, kept per thread between requests
/// so that a request of known series allocates nothing per span.
#[derive(Default)]
struct Buffers {
    table: HashTable<u32>,
    /// Every span's observation, with the index of the next span of the same series.
    observations: Vec<(Observation, u32)>,
    text: String,
}

/// Buffers larger than this (in spans) are not kept: one huge request must not pin its
/// memory in every thread that ever handled one.
const KEEP_UP_TO: usize = 4096;

thread_local! {
    static SPARE: RefCell<Buffers> = RefCell::default();
}

/// The spans of one request, grouped by series, not yet counted anywhere.
pub(super) struct Local<'a> {
    buffers: Buffers,
    series: Vec<LocalSeries<'a>>,
    now: Now,
}

impl Drop for Local<'_> {
    fn drop(&mut self) {
        if self.buffers.observations.capacity() <= KEEP_UP_TO {
            let mut b = std::mem::take(&mut self.buffers);
            b.table.clear();
            b.observations.clear();
            b.text.clear();
            // A thread being torn down has no spare slot any more: the buffers just go.
            let _ = SPARE.try_with(|spare| *spare.borrow_mut() = b);
        }
    }
}

impl<'a> Local<'a> {
    /// `spans`: a guess at the request's spans, to size what cannot be reused; `now`: the
    /// time every span of the request is counted at.
    pub(super) fn with_capacity(spans: usize, now: Now) -> Self {
        let buffers = SPARE
            .try_with(|spare| std::mem::take(&mut *spare.borrow_mut()))
            .unwrap_or_default();
        Self {
            buffers,
            series: Vec::with_capacity(spans.clamp(16, KEEP_UP_TO)),
            now,
        }
    }

    /// Spans held, not yet flushed.
    pub(super) fn len(&self) -> usize {
        self.buffers.observations.len()
    }

    /// Adds one span of series `key`.
    pub(super) fn add(&mut self, m: &SpanMetrics, key: &SpanKey<'_, 'a>, obs: Observation) {
        let b = &mut self.buffers;
        let Ok(at) = u32::try_from(b.observations.len()) else {
            return; // 4 billion spans in one request cannot fit in a request body
        };
        let (group, hash) = m.hash_key(key);
        let series = &mut self.series;
        let text = b.text.as_str();
        let found = b
            .table
            .find(hash, |i| {
                series.get(*i as usize).is_some_and(|s| {
                    let local = LocalKey {
                        series: s,
                        text,
                        settings: &m.settings,
                    };
                    m.key_eq(&local, key)
                })
            })
            .copied();
        match found.and_then(|i| series.get_mut(i as usize)) {
            Some(s) => {
                if let Some(prev) = b.observations.get_mut(s.last as usize) {
                    prev.1 = at;
                }
                s.last = at;
            }
            None => {
                let Ok(index) = u32::try_from(series.len()) else {
                    return;
                };
                let dims = (0..m.layout.n_dims)
                    .map(|i| local_dim(key, i, &mut b.text))
                    .collect();
                series.push(LocalSeries {
                    group,
                    hash,
                    service: key.service,
                    name: key.name,
                    kind: key.kind,
                    status: key.status,
                    dims,
                    first: at,
                    last: at,
                });
                let series = &*series;
                b.table.insert_unique(hash, index, |i| {
                    series.get(*i as usize).map_or(0, |s| s.hash)
                });
            }
        }
        b.observations.push((obs, END));
    }

    /// Counts every span held into `m`'s shards, series by series in order of first
    /// appearance (the order a span-by-span walk admits new series under the cardinality
    /// limit).
    pub(super) fn flush(self, m: &SpanMetrics) {
        let observations = &self.buffers.observations;
        for s in &self.series {
            let key = LocalKey {
                series: s,
                text: &self.buffers.text,
                settings: &m.settings,
            };
            let chain = std::iter::successors(observations.get(s.first as usize), |(_, next)| {
                observations.get(*next as usize)
            })
            .map(|(obs, _)| obs);
            m.observe_series(s.group, s.hash, &key, chain, self.now);
        }
    }
}

fn local_dim<'a>(key: &SpanKey<'_, 'a>, i: usize, text: &mut String) -> LocalDim<'a> {
    match key.srcs.get(i) {
        None | Some(DimSrc::Absent) => LocalDim::Absent,
        Some(DimSrc::Borrowed(s)) => LocalDim::Str(s),
        Some(DimSrc::Default) => LocalDim::Default,
        Some(DimSrc::Scratch | DimSrc::Resource) => {
            let value = key.dim(i).unwrap_or_default();
            let start = text.len();
            text.push_str(value);
            match (u32::try_from(start), u32::try_from(text.len())) {
                (Ok(start), Ok(end)) => LocalDim::Text(start, end),
                // Beyond 4 GiB of converted values: cannot happen within a request body.
                _ => LocalDim::Absent,
            }
        }
    }
}

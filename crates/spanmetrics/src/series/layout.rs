//! The word layout of one series record, and readers of its fixed words.

use std::cmp::Ordering as CmpOrdering;

use crate::config::Settings;

/// Marks an absent dimension (or an excluded default dimension) in a series' id words.
pub(crate) const NONE_ID: u32 = u32::MAX;

pub(crate) const STATUS_ERROR: u8 = 2;

pub(crate) use redline_otlp_wire::enums::{
    SPAN_KIND_NAMES as KIND_NAMES, STATUS_CODE_NAMES as STATUS_NAMES,
};

/// The stored form of an OTLP enum number: itself when it names a value of `names`, else
/// `names.len()`, which has no name and is labelled with an empty value, as otelcol labels
/// numbers outside the enum.
pub(crate) fn enum_index(value: i32, names: &[&str]) -> u8 {
    usize::try_from(value)
        .ok()
        .filter(|v| *v < names.len())
        .map_or(names.len(), |v| v) as u8
}

/// Word offsets of a series record.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub stride: usize,
    pub dims: usize,
    pub n_dims: usize,
    pub counts: usize,
    /// Explicit: one per bucket (one in all when the histogram is off). Exponential: the zero
    /// count, then `max_size` buckets (see `expo`).
    pub n_counts: usize,
    /// The exponential histogram's header word.
    pub expo: Option<usize>,
    pub sum: Option<usize>,
    pub errors: Option<usize>,
    pub exemplar: Option<usize>,
}

pub(crate) const W_IDS: usize = 0;
pub(crate) const W_META: usize = 1;
pub(crate) const W_CREATED: usize = 2;

impl Layout {
    pub(crate) fn new(s: &Settings) -> Self {
        let n_dims = s.dimensions.len();
        let dims = 3;
        let counts = dims + n_dims.div_ceil(2);
        let n_counts = match (&s.histogram, s.exponential_max_size) {
            (Some(bounds), _) => bounds.len() + 1,
            (None, Some(max_size)) => 1 + max_size as usize,
            (None, None) => 1,
        };
        let mut next = counts + n_counts;
        let mut slot = |n: usize| {
            let at = next;
            next += n;
            at
        };
        let expo = s.exponential_max_size.is_some().then(|| slot(1));
        let sum = s.has_duration().then(|| slot(1));
        let errors = (!s.include[3]).then(|| slot(1));
        let exemplar = s.exemplars.then(|| slot(5));
        Self {
            stride: next,
            dims,
            n_dims,
            counts,
            n_counts,
            expo,
            sum,
            errors,
            exemplar,
        }
    }

    pub fn dim_id(&self, words: &[u64], i: usize) -> u32 {
        let w = words.get(self.dims + i / 2).copied().unwrap_or(u64::MAX);
        (w >> ((i % 2) * 32)) as u32
    }

    pub(crate) fn set_dim_id(&self, words: &mut [u64], i: usize, id: u32) {
        if let Some(w) = words.get_mut(self.dims + i / 2) {
            let shift = (i % 2) * 32;
            *w = (*w & !(0xffff_ffffu64 << shift)) | (u64::from(id) << shift);
        }
    }

    pub fn calls(&self, words: &[u64]) -> u64 {
        words
            .get(self.counts..self.counts + self.n_counts)
            .map_or(0, |c| c.iter().fold(0u64, |a, b| a.wrapping_add(*b)))
    }
}

pub(crate) fn ids(words: &[u64]) -> (u32, u32) {
    let w = words.first().copied().unwrap_or(u64::MAX);
    (w as u32, (w >> 32) as u32)
}
pub(crate) fn kind(words: &[u64]) -> u8 {
    words.get(W_META).map_or(0, |w| *w as u8)
}
pub(crate) fn status(words: &[u64]) -> u8 {
    words.get(W_META).map_or(0, |w| (*w >> 8) as u8)
}
pub(crate) fn last_seen_ms(words: &[u64]) -> u64 {
    words.get(W_META).map_or(0, |w| *w >> 16)
}

/// Orders two stored series by their key without `status.code` (the errors family groups).
pub(crate) fn group_cmp(layout: &Layout, a: &[u64], b: &[u64]) -> CmpOrdering {
    let ka = (
        a.first(),
        a.get(W_META).map(|w| w & 0xff),
        a.get(layout.dims..layout.counts),
    );
    let kb = (
        b.first(),
        b.get(W_META).map(|w| w & 0xff),
        b.get(layout.dims..layout.counts),
    );
    ka.cmp(&kb)
}

//! Series keys: a span's borrowed labels or a stored series, hashed and compared alike, so a
//! lookup never builds an owned key.

use std::hash::{BuildHasher, Hasher};

use redline_otlp_wire::{AnyValueView, ResourceView};

use super::SpanMetrics;
use crate::config::{Dimension, Settings};
use crate::series::{ids, kind, status, Interner, Layout};

/// Byte that never occurs in UTF-8, used to separate key parts while hashing.
const SEP: u8 = 0xff;
const ABSENT: u8 = 0xfe;

/// Something that exposes a series key: the borrowed key of a span, or a stored series.
pub(crate) trait Key {
    fn service(&self) -> Option<&str>;
    fn name(&self) -> Option<&str>;
    fn kind(&self) -> u8;
    fn status(&self) -> u8;
    fn dim(&self, i: usize) -> Option<&str>;
}

pub(super) struct StoredKey<'s> {
    pub(super) words: &'s [u64],
    pub(super) strings: &'s Interner,
    pub(super) layout: &'s Layout,
}

impl Key for StoredKey<'_> {
    fn service(&self) -> Option<&str> {
        self.strings.get(ids(self.words).0)
    }
    fn name(&self) -> Option<&str> {
        self.strings.get(ids(self.words).1)
    }
    fn kind(&self) -> u8 {
        kind(self.words)
    }
    fn status(&self) -> u8 {
        status(self.words)
    }
    fn dim(&self, i: usize) -> Option<&str> {
        self.strings.get(self.layout.dim_id(self.words, i))
    }
}

/// Where a span's dimension value comes from; resolved to a `&str` only once all scratch
/// buffers are written.
#[derive(Clone, Copy, Debug)]
pub(super) enum DimSrc<'a> {
    Absent,
    Borrowed(&'a str),
    Scratch,
    Resource,
    Default,
}

impl<'a> DimSrc<'a> {
    /// A value as a dimension holds it: borrowed when it is a string, else written into
    /// `scratch` as otelcol writes it.
    pub(super) fn of(value: AnyValueView<'a>, scratch: &mut String) -> Self {
        match value.as_str() {
            Some(s) => DimSrc::Borrowed(s),
            None => {
                scratch.clear();
                value.write_as_string(scratch);
                DimSrc::Scratch
            }
        }
    }
}

/// Notes, per dimension of `dims`, the first value of its key among the resource's
/// attributes (pdata's `Get`): `has[i]` and `values[i]`, converted once per resource. Keys
/// are compared as bytes and only the dimensions' values decoded (a resource has a dozen
/// attributes or more).
pub(super) fn note_resource_dims(
    resource: &ResourceView<'_>,
    dims: &[Dimension],
    has: &mut [bool],
    values: &mut [String],
) {
    has.fill(false);
    if dims.is_empty() {
        return;
    }
    for kv in resource.attributes().lazy() {
        let Some(i) = dims
            .iter()
            .position(|d| d.name.as_bytes() == kv.key_bytes())
        else {
            continue;
        };
        if let (Some(has), Some(value)) = (has.get_mut(i), values.get_mut(i)) {
            if !*has {
                *has = true;
                value.clear();
                kv.value().write_as_string(value);
            }
        }
    }
}

/// A span's key: strings borrowed from the request (`'a`) or from the walk's buffers (`'k`).
pub(super) struct SpanKey<'k, 'a> {
    pub(super) service: Option<&'a str>,
    pub(super) name: Option<&'a str>,
    pub(super) kind: u8,
    pub(super) status: u8,
    pub(super) srcs: &'k [DimSrc<'a>],
    pub(super) scratch: &'k [String],
    pub(super) resource: &'k [String],
    pub(super) settings: &'k Settings,
}

impl Key for SpanKey<'_, '_> {
    fn service(&self) -> Option<&str> {
        self.service
    }
    fn name(&self) -> Option<&str> {
        self.name
    }
    fn kind(&self) -> u8 {
        self.kind
    }
    fn status(&self) -> u8 {
        self.status
    }
    fn dim(&self, i: usize) -> Option<&str> {
        match self.srcs.get(i)? {
            DimSrc::Absent => None,
            DimSrc::Borrowed(s) => Some(s),
            DimSrc::Scratch => self.scratch.get(i).map(String::as_str),
            DimSrc::Resource => self.resource.get(i).map(String::as_str),
            DimSrc::Default => self.settings.dimensions.get(i)?.default.as_deref(),
        }
    }
}

fn write_part(h: &mut impl Hasher, s: Option<&str>) {
    match s {
        Some(s) => {
            h.write(s.as_bytes());
            h.write_u8(SEP);
        }
        None => h.write_u8(ABSENT),
    }
}

impl SpanMetrics {
    pub(crate) fn hash_key(&self, k: &impl Key) -> (u64, u64) {
        let inc = self.settings.include;
        let mut h = self.hasher.build_hasher();
        if inc[0] {
            write_part(&mut h, k.service());
        }
        if inc[1] {
            write_part(&mut h, k.name());
        }
        if inc[2] {
            h.write_u8(k.kind());
        }
        for i in 0..self.layout.n_dims {
            write_part(&mut h, k.dim(i));
        }
        let group = h.clone().finish();
        if inc[3] {
            h.write_u8(k.status());
        }
        (group, h.finish())
    }

    pub(super) fn key_eq(&self, a: &impl Key, b: &impl Key) -> bool {
        let inc = self.settings.include;
        (!inc[0] || a.service() == b.service())
            && (!inc[1] || a.name() == b.name())
            && (!inc[2] || a.kind() == b.kind())
            && (!inc[3] || a.status() == b.status())
            && (0..self.layout.n_dims).all(|i| a.dim(i) == b.dim(i))
    }
}

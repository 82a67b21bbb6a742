//! Span attribute keys a visitor reads, noted by the walk as it checks each attribute.
//!
//! A visitor that looks up a few keys on every span (the spanmetrics dimensions) would
//! otherwise scan the span's attributes again after the validating walk already read every
//! key. The walk compares each key it reads with these and keeps the first attribute of
//! each, so [`SpanView::lazy_attribute`](super::SpanView::lazy_attribute) is a lookup.

/// Up to [`SpanKeys::MAX`] distinct, non-empty attribute keys. Other keys are still found,
/// by a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanKeys {
    keys: Vec<Box<[u8]>>,
    /// Bit `n` set when some key is `n` bytes long (bit 63: 63 or more): most keys a walk
    /// reads are told apart by their length alone.
    lengths: u64,
}

static NONE: SpanKeys = SpanKeys {
    keys: Vec::new(),
    lengths: 0,
};

impl SpanKeys {
    /// The most keys noted per span; a span view keeps one slot for each.
    pub const MAX: usize = 8;

    /// `keys` without repeats, in order, up to [`Self::MAX`]. The empty key is left out (an
    /// attribute without a key is found by a scan).
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Self {
        let mut set = Self::default();
        for key in keys {
            let key = key.as_ref();
            if set.keys.len() == Self::MAX {
                break;
            }
            if key.is_empty() || set.position(key).is_some() {
                continue;
            }
            set.lengths |= length_bit(key);
            set.keys.push(key.into());
        }
        set
    }

    /// Every key of `sets`, as [`Self::new`] takes them.
    pub fn union<'k>(sets: impl IntoIterator<Item = &'k SpanKeys>) -> Self {
        Self::new(sets.into_iter().flat_map(|s| s.keys.iter()))
    }

    /// No keys: what a walk notes when its visitor asks for none.
    pub fn none() -> &'static SpanKeys {
        &NONE
    }

    /// No keys to note.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys are noted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().map(|k| &**k)
    }

    /// The slot of `key`, if it is one of these.
    #[inline(always)]
    pub(crate) fn position(&self, key: &[u8]) -> Option<usize> {
        if self.lengths & length_bit(key) == 0 {
            return None;
        }
        self.keys.iter().position(|k| **k == *key)
    }
}

#[inline(always)]
fn length_bit(key: &[u8]) -> u64 {
    1 << key.len().min(63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_non_empty_and_at_most_max() {
        let keys = SpanKeys::new(["a", "", "bb", "a", "c", "d", "e", "f", "g", "h", "i", "j"]);
        let listed: Vec<&[u8]> = keys.iter().collect();
        assert_eq!(
            listed,
            [&b"a"[..], b"bb", b"c", b"d", b"e", b"f", b"g", b"h"],
            "in order, the repeat and the empty key left out, cut at MAX"
        );
        assert_eq!(keys.position(b"bb"), Some(1));
        assert_eq!(keys.position(b"i"), None, "past MAX: found by a scan");
        assert_eq!(keys.position(b""), None);
        assert_eq!(
            keys.position(b"zz"),
            None,
            "same length as a key, not a key"
        );
    }

    #[test]
    fn long_keys_share_the_last_length_bit() {
        let long = vec![b'k'; 70];
        let longer = vec![b'k'; 90];
        let keys = SpanKeys::new([&long[..]]);
        assert_eq!(keys.position(&long), Some(0));
        assert_eq!(keys.position(&longer), None);
    }

    #[test]
    fn a_union_keeps_the_first_sets_order() {
        let a = SpanKeys::new(["x", "y"]);
        let b = SpanKeys::new(["y", "z"]);
        let u = SpanKeys::union([&a, &b, SpanKeys::none()]);
        assert_eq!(u, SpanKeys::new(["x", "y", "z"]));
        assert!(SpanKeys::union([SpanKeys::none()]).is_empty());
    }
}

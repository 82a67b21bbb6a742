//! Label strings, interned per shard.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::table_bytes;

/// Per-shard string interner with reference counts, so expired series release their labels.
#[derive(Default)]
pub(crate) struct Interner {
    pub entries: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

impl Interner {
    pub fn get(&self, id: u32) -> Option<&str> {
        match self.entries.get(id as usize) {
            Some(Some((s, _))) => Some(s),
            _ => None,
        }
    }

    fn hash(hb: &DefaultHashBuilder, s: &str) -> u64 {
        hb.hash_one(s)
    }

    pub(crate) fn intern(&mut self, hb: &DefaultHashBuilder, s: &str) -> u32 {
        let h = Self::hash(hb, s);
        let entries = &mut self.entries;
        if let Some(id) = self.index.find(
            h,
            |id| matches!(entries.get(*id as usize), Some(Some((e, _))) if **e == *s),
        ) {
            if let Some(Some((_, refs))) = entries.get_mut(*id as usize) {
                *refs = refs.saturating_add(1);
            }
            return *id;
        }
        let entry = Some((Arc::<str>::from(s), 1));
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(e) = entries.get_mut(id as usize) {
                    *e = entry;
                }
                id
            }
            None => {
                entries.push(entry);
                (entries.len() - 1) as u32
            }
        };
        self.index
            .insert_unique(h, id, |id| match entries.get(*id as usize) {
                Some(Some((e, _))) => hb.hash_one(&**e),
                _ => 0,
            });
        id
    }

    pub(crate) fn release(&mut self, hb: &DefaultHashBuilder, id: u32) {
        let Some(slot) = self.entries.get_mut(id as usize) else {
            return;
        };
        let Some((s, refs)) = slot else { return };
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return;
        }
        let h = Self::hash(hb, s);
        if let Ok(e) = self.index.find_entry(h, |x| *x == id) {
            e.remove();
        }
        *slot = None;
        self.free.push(id);
    }

    pub(super) fn heap_bytes(&self) -> usize {
        let strings: usize = self
            .entries
            .iter()
            .flatten()
            // Arc header (two counters) plus the bytes.
            .map(|(s, _)| 16 + s.len())
            .sum();
        self.entries.capacity() * std::mem::size_of::<Option<(Arc<str>, u32)>>()
            + self.free.capacity() * 4
            + table_bytes(&self.index)
            + strings
    }
}

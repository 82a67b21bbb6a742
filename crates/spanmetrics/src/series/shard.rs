//! One shard of the series map: the arena of series records, its slot table and strings.

use hashbrown::HashTable;
use parking_lot::Mutex;

use super::{table_bytes, Interner};

/// Series per arena chunk: small, so the unused tail of the last chunk of each shard stays
/// negligible next to the series themselves.
pub(crate) const CHUNK_SLOTS: usize = 64;

pub(crate) struct Shard {
    pub table: HashTable<u32>,
    pub chunks: Vec<Box<[u64]>>,
    pub free: Vec<u32>,
    pub next_slot: u32,
    pub strings: Interner,
    /// Bumped for every span recorded here: tells whether a reader saw more than a checkpoint
    /// holds.
    pub version: u64,
}

impl Shard {
    pub(crate) fn new() -> Self {
        Self {
            table: HashTable::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            next_slot: 0,
            strings: Interner::default(),
            version: 0,
        }
    }

    pub fn words(&self, stride: usize, slot: u32) -> &[u64] {
        words_at(&self.chunks, stride, slot)
    }

    /// Bytes held by the arena, the slot table and the strings.
    pub(crate) fn heap_bytes(&self, stride: usize) -> usize {
        self.chunks.len() * (CHUNK_SLOTS * stride * 8 + 16)
            + self.chunks.capacity() * 16
            + self.free.capacity() * 4
            + table_bytes(&self.table)
            + self.strings.heap_bytes()
    }
}

pub(crate) fn words_mut(chunks: &mut [Box<[u64]>], stride: usize, slot: u32) -> &mut [u64] {
    let slot = slot as usize;
    let off = (slot % CHUNK_SLOTS) * stride;
    chunks
        .get_mut(slot / CHUNK_SLOTS)
        .and_then(|c| c.get_mut(off..off + stride))
        .unwrap_or(&mut [])
}

pub(crate) fn words_at(chunks: &[Box<[u64]>], stride: usize, slot: u32) -> &[u64] {
    let slot = slot as usize;
    let off = (slot % CHUNK_SLOTS) * stride;
    chunks
        .get(slot / CHUNK_SLOTS)
        .and_then(|c| c.get(off..off + stride))
        .unwrap_or(&[])
}

/// Keeps each shard's lock on its own cache lines, so threads on different shards do not
/// invalidate each other.
#[repr(align(128))]
pub(crate) struct Padded(pub Mutex<Shard>);

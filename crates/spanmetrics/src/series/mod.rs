//! How series are stored, chosen for the ≤256 bytes/series budget (docs/architecture.md §7):
//! - A series is a fixed number of `u64` words in a per-shard arena of fixed-size chunks (no
//!   per-series heap allocation, no pointer per series). Words: `[service id | name id]`,
//!   `[kind | status | last seen ms]`, created time, dimension value ids (two per word), the
//!   bucket counts (or one count when the histogram is off), the sum, an errors count only when
//!   `status.code` is excluded, and one exemplar (5 words) when exemplars are on.
//! - The shard's hash table stores only the `u32` slot; hashes are recomputed from the stored
//!   key when the table grows, so each entry costs ~5 bytes.
//! - Label strings are interned per shard (`Arc<str>`, reference counted), so a series holds
//!   4-byte ids. Lookups compare the borrowed span bytes with the interned strings in place.

pub(crate) mod expo;
mod interner;
mod layout;
mod shard;

use hashbrown::HashTable;

pub(crate) use interner::Interner;
pub(crate) use layout::{
    enum_index, group_cmp, ids, kind, last_seen_ms, status, Layout, KIND_NAMES, NONE_ID,
    STATUS_ERROR, STATUS_NAMES, W_CREATED, W_IDS, W_META,
};
pub(crate) use shard::{words_at, words_mut, Padded, Shard, CHUNK_SLOTS};

fn table_bytes(t: &HashTable<u32>) -> usize {
    // hashbrown: one u32 and one control byte per bucket, plus a group of trailing control
    // bytes; capacity() is 7/8 of the buckets.
    let buckets = if t.capacity() == 0 {
        0
    } else {
        (t.capacity() * 8 / 7).next_power_of_two()
    };
    buckets * 5 + if buckets > 0 { 16 } else { 0 }
}

//! Span names a statement group's dry run has found to leave unchanged, kept across requests.
//!
//! Evaluation is a pure function of the fields it reads, so once a span's evaluation read
//! nothing but its name and found nothing to change, every span of that name anywhere gets
//! the same answer. Span names are few (they are what spanmetrics makes series of), so after
//! the first requests a dry run over an untouched request is a scan for each span's name and
//! one set lookup, with no `where` clause, regex or UTF-8 check run.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Names kept per shard; a flood of distinct names clears the shard (they are only evaluated
/// again), so memory stays bounded whatever clients send.
const NAMES_PER_SHARD: usize = 4096;
/// Shards so that workers running dry runs at once do not wait on each other.
const SHARDS: usize = 4;

pub(crate) type Names = hashbrown::HashSet<Box<[u8]>>;

#[derive(Debug, Default)]
pub(crate) struct NameMemo {
    shards: [Mutex<Names>; SHARDS],
}

impl NameMemo {
    /// This thread's shard for the length of one dry run; `None` when another dry run holds it
    /// (the run then evaluates every span).
    pub(crate) fn shard(&self) -> Option<MutexGuard<'_, Names>> {
        thread_local! {
            static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let index = SHARD.with(|shard| {
            *shard.get().get_or_insert_with(|| {
                let index = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
                shard.set(Some(index));
                index
            })
        });
        // A poisoned shard only lost an insert: its names are still right.
        match self.shards[index].try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Remembers `name` in a shard, clearing the shard when it is full.
pub(crate) fn remember(names: &mut Names, name: &[u8]) {
    if names.len() >= NAMES_PER_SHARD {
        names.clear();
    }
    names.insert(name.into());
}

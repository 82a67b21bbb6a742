//! Sampled spans the pipeline downstream refused (a full exporter queue), offered again in
//! order until taken. Nothing in it is dropped: while it holds [`FULL_BYTES`] or more, the
//! processor refuses new requests, so the pressure reaches the clients (which retry) instead
//! of growing memory or losing sampled traces.

use std::collections::VecDeque;

use redline_pipeline::{Batch, Consumer, Refused};

/// What the backlog holds before new requests are refused.
pub const FULL_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct Backlog {
    batches: VecDeque<Batch>,
    bytes: usize,
}

impl Backlog {
    pub fn push(&mut self, batch: Batch) {
        self.bytes += batch.byte_len();
        self.batches.push_back(batch);
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.bytes >= FULL_BYTES
    }

    pub fn spans(&self) -> usize {
        self.batches.iter().map(|b| b.items).sum()
    }

    /// Hands `next` what it takes, oldest first; the refusal that stopped it, if any.
    pub fn flush(&mut self, next: &dyn Consumer) -> Result<(), Refused> {
        while let Some(batch) = self.batches.pop_front() {
            match next.reserve(&batch) {
                Ok(reservation) => {
                    self.bytes -= batch.byte_len();
                    reservation.commit(batch);
                }
                Err(refused) => {
                    self.batches.push_front(batch);
                    return Err(refused);
                }
            }
        }
        Ok(())
    }
}

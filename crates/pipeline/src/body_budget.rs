//! A receiver's budget of bytes for request bodies in flight.
//!
//! The `memory_limiter` samples resident memory and is consulted once a request is whole, so
//! many large bodies arriving at once are all read (and decompressed) before it can say no.
//! A receiver takes from this budget before it reads a body (its `Content-Length`, or the
//! gRPC frame header's length) and as it reads more, and gives the bytes back when the
//! request is done; a request the budget cannot cover is refused, retryably, without being
//! read. When the pipelines a receiver feeds have a `memory_limiter`, the budget is its
//! spike allowance (the room it keeps between its soft and hard limits); otherwise
//! [`DEFAULT_BODY_BUDGET`].

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget of a receiver whose pipelines have no `memory_limiter`.
pub const DEFAULT_BODY_BUDGET: u64 = 256 * 1024 * 1024;

/// When a client refused for the budget is told to try again: bodies in flight finish in
/// about that time.
pub const OVER_BUDGET_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes are counted in KiB, so the budget fits a semaphore's permits whatever its size.
const UNIT: u64 = 1024;

/// A budget shared by one receiver's servers.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    capacity_units: u32,
}

/// Bytes taken from a [`BodyBudget`]; they go back when it is dropped.
#[derive(Debug)]
pub struct BodyPermit {
    budget: BodyBudget,
    held: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    pub fn new(bytes: u64) -> Self {
        let capacity_units = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            units: Arc::new(Semaphore::new(capacity_units as usize)),
            capacity_units,
        }
    }

    /// The whole budget, in bytes.
    pub fn capacity(&self) -> u64 {
        u64::from(self.capacity_units) * UNIT
    }

    /// Takes `bytes` now, or `None` when the budget cannot cover them. A body larger than the
    /// whole budget takes all of it: it is served when nothing else is in flight.
    pub fn take(&self, bytes: u64) -> Option<BodyPermit> {
        let mut permit = BodyPermit {
            budget: self.clone(),
            held: None,
        };
        permit.grow(bytes).then_some(permit)
    }

    /// Bytes in use by requests in flight.
    pub fn in_use(&self) -> u64 {
        let free = u64::try_from(self.units.available_permits()).unwrap_or(u64::MAX);
        u64::from(self.capacity_units).saturating_sub(free) * UNIT
    }

    /// Logs a request refused for this budget (`transport`: gRPC, HTTP) and says why, for
    /// the client; the refusal is retryable after [`OVER_BUDGET_RETRY_AFTER`].
    pub fn refusal(&self, transport: &'static str) -> String {
        tracing::debug!(
            transport,
            budget_bytes = self.capacity(),
            in_use_bytes = self.in_use(),
            "request refused: request bodies in flight over the receiver's budget"
        );
        format!(
            "request bodies in flight are over this receiver's budget ({} bytes), retry later",
            self.capacity()
        )
    }
}

impl BodyPermit {
    /// Takes `more` bytes for the same request (the next chunk, the decompressed body).
    /// Returns false, holding what it held, when the budget cannot cover them.
    pub fn grow(&mut self, more: u64) -> bool {
        if more == 0 {
            return true;
        }
        let held = self.held.as_ref().map_or(0, |p| p.num_permits() as u64);
        let room = u64::from(self.budget.capacity_units).saturating_sub(held);
        let units = more.div_ceil(UNIT).min(room);
        if units == 0 {
            // Already holding the whole budget: the oversized body goes on alone.
            return true;
        }
        let Ok(units) = u32::try_from(units) else {
            return false;
        };
        match self.budget.units.clone().try_acquire_many_owned(units) {
            Ok(taken) => {
                match &mut self.held {
                    Some(held) => held.merge(taken),
                    None => self.held = Some(taken),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes this request holds.
    pub fn bytes(&self) -> u64 {
        self.held.as_ref().map_or(0, |p| p.num_permits() as u64) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_grows_and_gives_back() {
        let budget = BodyBudget::new(10 * UNIT);
        let mut a = budget.take(4 * UNIT).expect("fits");
        assert_eq!(budget.in_use(), 4 * UNIT);
        assert!(budget.take(7 * UNIT).is_none(), "4 + 7 > 10");
        assert!(a.grow(UNIT + 1), "rounded up to 2 KiB");
        assert_eq!(a.bytes(), 6 * UNIT);
        let b = budget.take(4 * UNIT).expect("fits exactly");
        assert!(!a.grow(1), "nothing left");
        assert_eq!(a.bytes(), 6 * UNIT, "a failed grow keeps what was held");
        drop(b);
        drop(a);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_body_larger_than_the_budget_passes_alone() {
        let budget = BodyBudget::new(10 * UNIT);
        let mut big = budget.take(100 * UNIT).expect("takes all of it");
        assert_eq!(big.bytes(), 10 * UNIT);
        assert!(big.grow(50 * UNIT), "already holds everything");
        assert!(budget.take(1).is_none());
        drop(big);
        let small = budget.take(UNIT).expect("free again");
        assert!(budget.take(10 * UNIT).is_none(), "not alone any more");
        drop(small);
    }
}

//! Processors for every signal: `batch` and `memory_limiter`, each in its module.

mod batch;
pub mod memory_limiter;

pub use batch::{BatchConfig, BatchProcessorFactory};
pub use memory_limiter::MemoryLimiterFactory;

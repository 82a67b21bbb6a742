//! What the limiter measures: the process's resident memory, and how to give freed memory
//! back to the OS so that the measurement follows what is live.
//!
//! The budget is about resident memory because that is what a cgroup limit (and the OOM
//! killer) counts. Resident memory alone would latch the limiter shut: glibc keeps freed
//! chunks in its arenas, so after a spike RSS stays high although the queue has drained.
//! Releasing that memory (`malloc_trim`) is this runtime's counterpart of the forced GC the
//! Go limiter runs when it is over its limit, and it is what lets the gate reopen.

/// Where the limiter reads the process's memory use; injectable for tests.
pub trait MemoryGauge: Send + Sync + 'static {
    /// Resident set size in bytes, `None` when it cannot be read.
    fn resident_bytes(&self) -> Option<u64>;

    /// Returns memory the allocator holds but nothing uses to the OS.
    fn release_free_memory(&self);
}

/// The running process: VmRSS from /proc/self/status, glibc's `malloc_trim` to release.
pub struct ProcessMemory;

impl MemoryGauge for ProcessMemory {
    fn resident_bytes(&self) -> Option<u64> {
        redline_procfs::resident_bytes()
    }

    fn release_free_memory(&self) {
        release_free_memory();
    }
}

// The workspace denies unsafe code; this FFI call is the one exception in this crate.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists under its arena locks;
    // it takes no pointers from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Memory available to this process: the cgroup limit (v2, else v1) when one is set and below
/// the host's memory, else MemTotal.
pub fn total_memory_bytes() -> Option<u64> {
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| redline_procfs::field(&info, "MemTotal:"))
        .map(|kb| kb.saturating_mul(1024));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| std::fs::read_to_string(path).ok())
    .and_then(|text| cgroup_limit(&text));
    match (cgroup, host) {
        (Some(limit), Some(host)) => Some(limit.min(host)),
        (limit, host) => limit.or(host),
    }
}

/// A cgroup memory limit file's value; `max` (v2) means none. v1 writes a huge number
/// instead, which the caller's `min` with the host's memory takes care of.
fn cgroup_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let own = ProcessMemory
            .resident_bytes()
            .expect("this process has a VmRSS");
        assert!(own > 0);
    }

    #[test]
    fn reads_cgroup_limits() {
        assert_eq!(cgroup_limit("536870912\n"), Some(512 << 20));
        assert_eq!(cgroup_limit("max\n"), None);
        assert!(total_memory_bytes().is_some_and(|b| b > 0));
    }

    /// The reason the limiter trims: freed memory stays resident until released.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn releasing_gives_freed_memory_back() {
        const MIB: u64 = 1 << 20;
        // Many small chunks, so glibc serves them from an arena rather than by mmap; a
        // thread of its own so the arena is not the main one, which trims its top itself.
        let (before, held, after) = std::thread::spawn(|| {
            let before = ProcessMemory.resident_bytes().unwrap_or(0);
            let chunks: Vec<Vec<u8>> = (0..8192).map(|i| vec![i as u8; 8 * 1024]).collect();
            // Keep every 64th chunk so the arena cannot shrink from its top.
            let kept: Vec<Vec<u8>> = chunks.into_iter().step_by(64).collect();
            let held = ProcessMemory.resident_bytes().unwrap_or(0);
            ProcessMemory.release_free_memory();
            let after = ProcessMemory.resident_bytes().unwrap_or(0);
            drop(kept);
            (before, held, after)
        })
        .join()
        .expect("thread");
        assert!(
            held >= before + 32 * MIB,
            "64 MiB allocated then freed stays resident: before {before}, held {held}"
        );
        assert!(
            after + 32 * MIB <= held,
            "release returned it: held {held}, after {after}"
        );
    }
}

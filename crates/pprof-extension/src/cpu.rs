//! The process's one CPU profiler. pprof-rs samples the whole process through SIGPROF and a
//! global collector, so, as with Go's `runtime/pprof`, one profile runs at a time: a second
//! one is refused with Go's error rather than mixing two profiles' samples.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::encode;

/// Samples per second: Go's CPU profiler rate.
pub const FREQUENCY: i32 = 100;

/// Samples that land in these libraries are skipped. libgcc's unwinder holds a mutex while it
/// looks up a frame (a panic unwinding, a backtrace being captured), and pprof-rs hashes each
/// sampled frame through that lookup: a sample taken inside it would wait on its own lock.
/// Everything else is sampled: framehop unwinds through checked loads and takes no lock, so
/// time in the C library (system calls, memcpy, malloc), where a collector at a steady rate
/// spends much of it, is in the profile.
const BLOCKLIST: [&str; 1] = ["libgcc"];

static IN_USE: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Go's wording, which `/debug/pprof/profile` answers with.
    #[error("cpu profiling already in use")]
    Busy,
    #[error("{0}")]
    Start(pprof::Error),
    #[error("cannot collect the samples: {0}")]
    Report(pprof::Error),
    #[error("cannot compress the profile: {0}")]
    Compress(std::io::Error),
    #[error("cannot create `{0}`: {1}")]
    Create(String, std::io::Error),
    #[error("writing `{0}`: {1}")]
    Write(String, std::io::Error),
    /// The blocking task that ran the profiler's work panicked or was cancelled.
    #[error("the profiler task failed: {0}")]
    Task(String),
}

/// Runs blocking profiler work (start, finish) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProfileError> + Send + 'static,
) -> Result<T, ProfileError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ProfileError::Task(e.to_string())))
}

/// A running CPU profile. Dropping it stops the profiler and frees the slot, so a request
/// whose client went away leaves nothing running.
pub struct CpuProfile {
    guard: Option<pprof::ProfilerGuard<'static>>,
}

impl CpuProfile {
    /// Starts profiling, or says another profile is running. Blocks: pprof-rs resolves a
    /// first backtrace when it starts, which reads the binary's debug information.
    pub fn start() -> Result<Self, ProfileError> {
        if IN_USE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(ProfileError::Busy);
        }
        // From here on the slot is ours: dropping `profile` on an error frees it.
        let mut profile = CpuProfile { guard: None };
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(FREQUENCY)
            .blocklist(&BLOCKLIST)
            .build()
            .map_err(ProfileError::Start)?;
        profile.guard = Some(guard);
        load_unwinder();
        Ok(profile)
    }

    /// Stops profiling: the samples so far, symbolized, as a gzipped pprof profile. Blocks
    /// (symbolization reads debug information; run it off the async workers).
    pub fn finish(mut self) -> Result<Vec<u8>, ProfileError> {
        let Some(guard) = self.guard.take() else {
            return Err(ProfileError::Report(pprof::Error::NotRunning));
        };
        let report = guard.report().build().map_err(ProfileError::Report)?;
        drop(guard);
        let profile = encode::Profile::from_report(&report);
        encode::gzip(&encode::encode(&profile)).map_err(ProfileError::Compress)
    }
}

/// Takes the profiler's first sample on this thread. pprof-rs builds its unwinder (the list
/// of loaded objects, read with allocations) lazily, inside the SIGPROF handler of the first
/// sample: on a thread that the signal interrupts inside malloc, that allocation waits on the
/// lock the thread itself holds, and the thread, and every thread that allocates after it,
/// hangs for good. Raised here, the first sample lands on a thread that holds no lock. (The
/// timer's own first signal comes after 10 ms of CPU time; this runs right after it is set.)
/// Once per process: the unwinder stays built, so later profiles get no extra sample.
fn load_unwinder() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        if let Err(error) = nix::sys::signal::raise(nix::sys::signal::Signal::SIGPROF) {
            tracing::warn!(%error, "cannot take the profiler's first sample on the starting thread");
        }
    });
}

impl Drop for CpuProfile {
    fn drop(&mut self) {
        // The profiler stops before the slot is free, so a new profile never meets it running.
        drop(self.guard.take());
        IN_USE.store(false, Ordering::Release);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tests that profile take this: the profiler is one per process, and tests run in
    /// parallel threads of one.
    pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    pub(crate) fn in_use() -> bool {
        IN_USE.load(Ordering::Acquire)
    }

    fn spin(ms: u64) -> u64 {
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        x
    }

    #[test]
    fn one_profile_at_a_time() {
        let _serial = SERIAL.blocking_lock();
        let first = CpuProfile::start().expect("the first starts");
        assert!(matches!(CpuProfile::start(), Err(ProfileError::Busy)));
        assert_eq!(
            ProfileError::Busy.to_string(),
            "cpu profiling already in use"
        );
        drop(first);
        let again = CpuProfile::start().expect("free again once the first is dropped");
        std::hint::black_box(spin(300));
        let gz = again.finish().expect("a profile");
        assert_eq!(&gz[..2], [0x1f, 0x8b]);
        drop(CpuProfile::start().expect("finish frees the slot"));
    }
}

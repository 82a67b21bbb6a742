//! A criterion clock that is either wall time or the measuring thread's CPU time.
//!
//! The benches run on a small machine shared with builds and tests; wall time then measures
//! the neighbours as much as the code. Thread CPU time (`CLOCK_THREAD_CPUTIME_ID`) does not
//! count the time the thread waited for a core, so single-threaded figures stay comparable
//! between runs. Chosen with `REDLINE_BENCH_CLOCK=wall|cpu` (default `cpu`); every bench
//! prints which one it used.
// clock_gettime is the only way to read a thread's CPU clock precisely (the /proc files lag
// by up to a scheduler tick).
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Which clock a [`Clock`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Wall,
    ThreadCpu,
}

impl Mode {
    /// From `REDLINE_BENCH_CLOCK` (`wall` or `cpu`, default `cpu`).
    pub fn from_env() -> Self {
        match std::env::var("REDLINE_BENCH_CLOCK").as_deref() {
            Ok("wall") => Mode::Wall,
            _ => Mode::ThreadCpu,
        }
    }
}

/// CPU time consumed so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time consumed so far by the whole process (all threads).
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The criterion measurement.
pub struct Clock {
    pub mode: Mode,
    wall: WallTime,
}

impl Clock {
    pub fn from_env() -> Self {
        let mode = Mode::from_env();
        eprintln!("bench clock: {mode:?} (REDLINE_BENCH_CLOCK=wall|cpu)");
        Self {
            mode,
            wall: WallTime,
        }
    }
}

/// A point on either clock.
pub enum Mark {
    Wall(Instant),
    Cpu(Duration),
}

impl Mode {
    pub fn now(self) -> Mark {
        match self {
            Mode::Wall => Mark::Wall(Instant::now()),
            Mode::ThreadCpu => Mark::Cpu(thread_cpu_time()),
        }
    }
}

impl Mark {
    pub fn elapsed(&self) -> Duration {
        match self {
            Mark::Wall(t) => t.elapsed(),
            Mark::Cpu(t) => thread_cpu_time().saturating_sub(*t),
        }
    }
}

impl Measurement for Clock {
    type Intermediate = Mark;
    type Value = Duration;

    fn start(&self) -> Mark {
        self.mode.now()
    }
    fn end(&self, i: Mark) -> Duration {
        i.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

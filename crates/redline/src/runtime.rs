//! The async runtime Redline runs on.

use std::ffi::OsString;

use anyhow::{anyhow, bail, Context};

/// tokio's own variable for its worker count, which tokio reads only when none is set and
/// then panics on a value it cannot use; Redline reads it instead, so that a bad value is an
/// error naming it.
const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// More workers than this is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

/// A multi-threaded runtime with one worker per CPU Redline may use, or as many as
/// `TOKIO_WORKER_THREADS` says.
pub(crate) fn build() -> anyhow::Result<tokio::runtime::Runtime> {
    // Always set, so that tokio never reads the variable (it would panic on an empty one).
    let workers = worker_threads(std::env::var_os(WORKER_THREADS_ENV))?.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .thread_name("redline")
        .build()
        .context("starting the async runtime")
}

/// The worker count the variable asks for; `None` when it is unset or empty, for the
/// available parallelism (which counts a cgroup's CPU quota).
fn worker_threads(value: Option<OsString>) -> anyhow::Result<Option<usize>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok_or_else(|| anyhow!("{WORKER_THREADS_ENV} is not valid UTF-8"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(Some(n)),
        _ => bail!(
            "{WORKER_THREADS_ENV}={text:?}: expected a number of runtime worker threads from 1 \
             to {MAX_WORKER_THREADS}, or unset for one per CPU"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(v: &str) -> anyhow::Result<Option<usize>> {
        worker_threads(Some(OsString::from(v)))
    }

    #[test]
    fn worker_threads_from_the_environment() {
        assert_eq!(worker_threads(None).expect("unset"), None);
        assert_eq!(threads("").expect("empty"), None);
        assert_eq!(threads(" 1 ").expect("one"), Some(1));
        assert_eq!(threads("1024").expect("the most"), Some(1024));
        for bad in ["0", "-1", "two", "1.5", "1025", "99999999999999999999999"] {
            let e = threads(bad).expect_err(bad).to_string();
            assert!(e.starts_with("TOKIO_WORKER_THREADS=\""), "{e}");
            assert!(e.contains("from 1 to 1024"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_text_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let e = worker_threads(Some(OsString::from_vec(vec![0xff, b'2']))).expect_err("bytes");
        assert_eq!(e.to_string(), "TOKIO_WORKER_THREADS is not valid UTF-8");
    }
}

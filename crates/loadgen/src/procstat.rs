//! CPU time and peak RSS of another process (the collector under test), from /proc.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unexpected format")]
    Format { path: PathBuf },
}

fn read(path: PathBuf) -> Result<(String, PathBuf), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok((s, path)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// User + system CPU seconds `pid` has used so far (all threads).
pub fn cpu_seconds(pid: u32) -> Result<f64, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/stat")))?;
    redline_procfs::stat_cpu_seconds(&text).ok_or(ProcError::Format { path })
}

/// The process's peak resident set size in bytes (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    redline_procfs::field(&text, "VmHWM:")
        .map(|kb| kb * 1024)
        .ok_or(ProcError::Format { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).expect("own stat") >= 0.0);
        assert!(peak_rss_bytes(pid).expect("own status") > 0);
    }
}

//! CPU time and peak RSS of another process (the collector under test), from /proc.

use std::path::PathBuf;

/// The kernel reports utime/stime in USER_HZ ticks, which Linux fixes at 100 for userspace
/// on every architecture (CONFIG_HZ does not leak into /proc).
const USER_HZ: f64 = 100.0;

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
    parse_stat_cpu(&text).ok_or(ProcError::Format { path })
}

/// The process's peak resident set size in bytes (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> Result<u64, ProcError> {
    let (text, path) = read(PathBuf::from(format!("/proc/{pid}/status")))?;
    parse_status_kb(&text, "VmHWM:")
        .map(|kb| kb * 1024)
        .ok_or(ProcError::Format { path })
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut f = after.split_ascii_whitespace();
    // `after` starts at field 3 (state): utime is field 14, the 12th here.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let stat = "1234 (red line) (x)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 2000000 300 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat), Some(3.25));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn status_hwm() {
        let s = "Name:\tredline\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_status_kb(s, "VmHWM:"), Some(51200));
        assert_eq!(parse_status_kb(s, "Nope:"), None);
    }

    #[test]
    fn own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).expect("own stat") >= 0.0);
        assert!(peak_rss_bytes(pid).expect("own status") > 0);
    }
}

//! Processes as Linux's `/proc` describes them, read when asked: this process's resident
//! memory for the memory limiter and the collector's own metrics, its CPU time, the figures
//! zpages shows; the parsers also serve loadgen, which reads the collector under test. Every
//! reading is `None` where `/proc` is not there (another OS, a sandbox without it).

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat`: the kernel reports them in
/// USER_HZ, which its ABI fixes at 100 on every architecture Redline is built for.
const USER_HZ: f64 = 100.0;

/// `/proc/self/status`, read once, for several of its fields.
pub struct Status(String);

impl Status {
    pub fn read() -> Option<Status> {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .map(Status)
    }

    /// A field given in kB (`VmRSS:`), in bytes.
    pub fn bytes(&self, key: &str) -> Option<u64> {
        self.number(key).map(|kb| kb.saturating_mul(1024))
    }

    /// The first number of the line starting with `key` (`Threads:`, or `VmRSS:` in kB).
    pub fn number(&self, key: &str) -> Option<u64> {
        field(&self.0, key)
    }
}

/// The first number after `key` on the line that starts with it, in a `/proc` key-value file
/// (`/proc/self/status`, `/proc/meminfo`).
pub fn field(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The process's resident memory (VmRSS), in bytes.
pub fn resident_bytes() -> Option<u64> {
    Status::read()?.bytes("VmRSS:")
}

/// User and system CPU time the process has used, every thread's, in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu_seconds(&stat)
}

/// User and system CPU seconds in the text of a `/proc/<pid>/stat`.
pub fn stat_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name in parentheses may hold spaces and `)`; fields 14 and 15 (utime,
    // stime) are the 12th and 13th after its last `)`.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_key() {
        let text = "Name:\tredline\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\nThreads:\t9\n";
        assert_eq!(field(text, "VmRSS:"), Some(40_000));
        assert_eq!(field(text, "Threads:"), Some(9));
        assert_eq!(field(text, "VmSwap:"), None);
        assert_eq!(field("VmRSS:\tlots kB\n", "VmRSS:"), None);
        let status = Status(text.to_owned());
        assert_eq!(status.bytes("VmHWM:"), Some(51_200 * 1024));
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may give itself.
        let stat = "4242 (red line) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(stat_cpu_seconds(stat), Some(3.25));
        assert_eq!(stat_cpu_seconds("4242 (redline) S 1"), None);
    }

    #[test]
    fn this_process_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
            assert!(cpu_seconds().is_some());
            assert!(Status::read()
                .and_then(|s| s.number("Threads:"))
                .is_some_and(|n| n >= 1));
        }
    }
}

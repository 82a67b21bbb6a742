//! Export failures, logged so that an outage does not flood the log.
//!
//! While Tempo is down every sender fails every attempt, each with the same status and
//! message. The first failure of a kind is logged at once; identical ones after it are counted,
//! and the next one after [`SUMMARY_INTERVAL`] is logged with how many were not, as the Go
//! collector's sampled logger keeps an outage to a few lines per interval. A failure of a
//! different kind is logged at once and starts a new count. The exporter's counters
//! (`otelcol_exporter_send_failed_*`) still count every item.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long identical failures are counted before the next one is logged (the tick of
/// otelcol's default log sampling).
pub(crate) const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// One exporter's record of the failure kind it last logged.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    state: Mutex<Option<Logged>>,
}

#[derive(Debug)]
struct Logged {
    kind: String,
    at: Instant,
    not_logged: u64,
}

impl FailureLog {
    /// Whether a failure of `kind` (its status and message) is logged at `now`: `Some(n)`
    /// with `n` identical failures left unlogged since the last line of this kind, or `None`
    /// when this one is only counted.
    pub(crate) fn admit(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        match state.as_mut() {
            Some(logged) if logged.kind == kind => {
                if now.saturating_duration_since(logged.at) < SUMMARY_INTERVAL {
                    logged.not_logged += 1;
                    return None;
                }
                let not_logged = std::mem::take(&mut logged.not_logged);
                logged.at = now;
                Some(not_logged)
            }
            _ => {
                *state = Some(Logged {
                    kind: kind.to_owned(),
                    at: now,
                    not_logged: 0,
                });
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_logs_its_first_failure_then_one_line_per_interval() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(log.admit("UNAVAILABLE: connection refused", at(0)), Some(0));
        // 60 s of failures every 100 ms: one line per interval, each with the count between.
        let logged: Vec<(u64, u64)> = (1..=600)
            .filter_map(|i| {
                log.admit("UNAVAILABLE: connection refused", at(i * 100))
                    .map(|n| (i, n))
            })
            .collect();
        assert_eq!(
            logged,
            [
                (100, 99),
                (200, 99),
                (300, 99),
                (400, 99),
                (500, 99),
                (600, 99)
            ]
        );
    }

    #[test]
    fn a_different_failure_is_logged_at_once_and_counted_apart() {
        let log = FailureLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit("UNAVAILABLE: refused", t0), Some(0));
        assert_eq!(log.admit("UNAVAILABLE: refused", t0), None);
        let later = t0 + Duration::from_millis(1);
        assert_eq!(log.admit("RESOURCE_EXHAUSTED: too big", later), Some(0));
        assert_eq!(log.admit("UNAVAILABLE: refused", later), Some(0));
    }
}

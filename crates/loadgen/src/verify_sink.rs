//! `--verify` for metrics and logs: there are no span metrics to check, so the check is what
//! reached the sink. Every data point or log record of the accepted requests must arrive
//! exactly once (counted by the sink per signal, delta over its counts before the run).
//! Requests are checked exactly only when loadgen sends to its own sink: a collector may
//! merge queued requests (Redline's exporter concatenates them) or split them. Bytes are
//! reported beside the bytes accepted; a collector that forwards the received bytes as they
//! are (Redline uncompressed or gzip, the sink counting after decompression) delivers exactly
//! as many, one that re-encodes does not.

use std::time::{Duration, Instant};

use crate::report::{Report, SinkCheck, VerifyReport};
use crate::signal::Signal;
use crate::sink::{Sink, SinkCounts};

/// Polls the sink until it holds the accepted items (and requests, when `direct`), or the
/// settle timeout.
#[allow(clippy::too_many_arguments)]
pub async fn settle(
    signal: Signal,
    report: &Report,
    accepted_bytes: u64,
    direct: bool,
    sink: Option<&Sink>,
    sink_url: Option<&str>,
    base: SinkCounts,
    timeout: Duration,
) -> anyhow::Result<VerifyReport> {
    let started = Instant::now();
    let expected_items = report.accepted.spans.saturating_sub(report.rejected_spans);
    let expected_requests = direct.then_some(report.accepted.requests);
    let (r0, i0, b0) = base.of(signal);
    loop {
        let now = match crate::cmd_run::sink_counts(sink, sink_url).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => anyhow::bail!("--verify needs --sink or --sink-count-url"),
            Err(e) if Instant::now() < started + timeout => {
                tracing::warn!(error = %e, "reading sink counts failed; retrying");
                None
            }
            Err(e) => return Err(e.context("reading the sink's counts after the run")),
        };
        if let Some(now) = now {
            let (r, i, b) = now.of(signal);
            let check = SinkCheck {
                signal,
                received_spans: i.saturating_sub(i0),
                expected_spans: expected_items,
                received_requests: r.saturating_sub(r0),
                expected_requests,
                received_bytes: b.saturating_sub(b0),
                accepted_bytes: Some(accepted_bytes),
                counts: now,
                ok: false,
            };
            let items_ok = check.received_spans == expected_items;
            let requests_ok = expected_requests.is_none_or(|e| e == check.received_requests);
            let done = items_ok && requests_ok;
            if done || Instant::now() >= started + timeout {
                return Ok(verdict(report, check, done, started, timeout));
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn verdict(
    report: &Report,
    mut check: SinkCheck,
    done: bool,
    started: Instant,
    timeout: Duration,
) -> VerifyReport {
    let mut notes = Vec::new();
    let item = check.signal.items();
    if report.uncertain_requests > 0 {
        notes.push(format!(
            "{} requests timed out or lost their connection: the collector may have forwarded them",
            report.uncertain_requests
        ));
    }
    if report.rejected_spans > 0 {
        notes.push(format!(
            "the collector rejected {} {item} in partial_success; loadgen never sends invalid ones",
            report.rejected_spans
        ));
    }
    if check.expected_requests.is_none() {
        notes.push(format!(
            "{} requests accepted, {} received: a collector may merge or split requests, so only {item} are checked",
            report.accepted.requests, check.received_requests
        ));
    }
    if !done {
        notes.push(format!("counts did not settle within {timeout:?}"));
    }
    let ok = done && report.rejected_spans == 0;
    check.ok = ok;
    VerifyReport {
        ok,
        metrics_url: String::new(),
        baseline: true,
        settle_seconds: started.elapsed().as_secs_f64(),
        expected_spans: check.expected_spans,
        expected_errors: 0,
        counted_spans: check.received_spans,
        counted_errors: 0,
        verdict: Default::default(),
        sink: Some(check),
        notes,
    }
}

//! The end-of-run report: a summary table for people and the same numbers as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::model::ModelConfig;
use crate::signal::Signal;
use crate::sink::SinkCounts;
use crate::verify::Verdict;

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Count {
    pub requests: u64,
    pub spans: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// `intended` (open loop, without coordinated omission) or `send` (closed loop).
    pub measured_from: &'static str,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>, measured_from: &'static str) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self {
                measured_from,
                ..Default::default()
            };
        }
        Self {
            measured_from,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Collector {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub cpu_seconds_per_million_spans: f64,
    pub spans_per_cpu_second: f64,
}

/// What reached the sink, of the run's signal. For metrics and logs, "spans" are data points
/// or log records.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SinkCheck {
    pub signal: Signal,
    /// Items the sink received during the run (delta over its baseline).
    pub received_spans: u64,
    pub expected_spans: u64,
    pub received_requests: u64,
    /// Checked only when loadgen sends to its own sink: a collector may merge requests.
    pub expected_requests: Option<u64>,
    /// Bytes received (after decompression) and bytes of the accepted requests (metrics and
    /// logs): equal when a collector forwards the received bytes as they are.
    pub received_bytes: u64,
    pub accepted_bytes: Option<u64>,
    pub counts: SinkCounts,
    pub ok: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub metrics_url: String,
    pub baseline: bool,
    pub settle_seconds: f64,
    pub expected_spans: u64,
    pub expected_errors: u64,
    /// Σ calls_total deltas over loadgen's services.
    pub counted_spans: u64,
    pub counted_errors: u64,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub sink: Option<SinkCheck>,
    pub notes: Vec<String>,
}

/// The run's report. "spans" fields count the signal's items: spans, metric data points or
/// log records (named by `item`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub signal: Signal,
    pub item: &'static str,
    pub endpoint: String,
    pub protocol: String,
    pub mode: String,
    pub target_spans_per_second: Option<f64>,
    pub connections: usize,
    pub concurrency: usize,
    pub spans_per_request: usize,
    pub templates: usize,
    pub bytes_per_request: f64,
    /// Encoded bytes of the accepted requests (each counted once, however often resent).
    pub accepted_bytes: u64,
    pub elapsed_seconds: f64,
    pub sent: Count,
    pub accepted: Count,
    pub refused: Count,
    pub refused_by_status: BTreeMap<String, Count>,
    /// Requests whose fate is unknown (timeouts, connections lost mid-request).
    pub uncertain_requests: u64,
    /// Resends after retryable refusals.
    pub retries: u64,
    /// Spans the collector rejected in `partial_success`.
    pub rejected_spans: u64,
    pub spans_per_second: f64,
    pub requests_per_second: f64,
    pub latency: Latency,
    pub max_dispatch_lag_ms: Option<f64>,
    pub loadgen_cpu_seconds: Option<f64>,
    pub collector: Option<Collector>,
    pub sink: Option<SinkCounts>,
    pub verify: Option<VerifyReport>,
    /// The trace model (with the seed): enough to reproduce the load.
    pub model: Option<ModelConfig>,
    pub nonce: u32,
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

impl Report {
    /// The summary table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let item = if self.item.is_empty() {
            "spans"
        } else {
            self.item
        };
        let mut row = |k: &str, v: String| {
            let _ = writeln!(o, "  {k:<24} {v}");
        };
        row(
            "endpoint",
            format!(
                "{} ({}, {})",
                self.endpoint,
                self.protocol,
                self.signal.name()
            ),
        );
        let target = self
            .target_spans_per_second
            .map_or(String::new(), |r| format!(", target {} {item}/s", si(r)));
        row(
            "mode",
            format!(
                "{}{target}, {} connections × {} in flight",
                self.mode, self.connections, self.concurrency
            ),
        );
        row(
            "requests",
            format!(
                "{} {item} each, {} templates, {:.0} bytes each",
                self.spans_per_request, self.templates, self.bytes_per_request
            ),
        );
        row("elapsed", format!("{:.2} s", self.elapsed_seconds));
        let c = |c: &Count| format!("{} {item} ({} requests)", c.spans, c.requests);
        row("sent", c(&self.sent));
        row("accepted", c(&self.accepted));
        row("refused", c(&self.refused));
        for (status, n) in &self.refused_by_status {
            row(&format!("  {status}"), c(n));
        }
        if self.uncertain_requests > 0 {
            row(
                "uncertain",
                format!(
                    "{} requests (timeouts, lost connections)",
                    self.uncertain_requests
                ),
            );
        }
        if self.retries > 0 {
            row("retries", format!("{} resends", self.retries));
        }
        if self.rejected_spans > 0 {
            row(
                "rejected (partial)",
                format!("{} {item}", self.rejected_spans),
            );
        }
        row(
            "achieved rate",
            format!(
                "{} {item}/s, {} requests/s",
                si(self.spans_per_second),
                si(self.requests_per_second)
            ),
        );
        let l = &self.latency;
        row(
            &format!("latency (from {})", l.measured_from),
            format!(
                "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            ),
        );
        if let Some(lag) = self.max_dispatch_lag_ms {
            if lag > 10.0 {
                row(
                    "scheduler behind",
                    format!("up to {lag:.1} ms (loadgen or in-flight limit)"),
                );
            }
        }
        if let Some(cpu) = self.loadgen_cpu_seconds {
            row("loadgen cpu", format!("{cpu:.2} s"));
        }
        if let Some(col) = &self.collector {
            row(
                "collector",
                format!(
                    "pid {}: {:.2} cpu s, {:.3} cpu s per million {item} ({} {item} per cpu s), peak rss {:.1} MiB",
                    col.pid,
                    col.cpu_seconds,
                    col.cpu_seconds_per_million_spans,
                    si(col.spans_per_cpu_second),
                    col.peak_rss_bytes as f64 / (1024.0 * 1024.0)
                ),
            );
        }
        if let Some(v) = self
            .verify
            .as_ref()
            .filter(|_| self.signal != Signal::Traces)
        {
            row(
                "verify",
                format!(
                    "{}: the sink received {} of {} {item}",
                    if v.ok { "OK" } else { "FAILED" },
                    v.counted_spans,
                    v.expected_spans,
                ),
            );
            if let Some(s) = &v.sink {
                let requests = s
                    .expected_requests
                    .map_or(String::new(), |e| format!(" of {e}"));
                let bytes = s
                    .accepted_bytes
                    .map_or(String::new(), |a| format!(" (accepted: {a})"));
                row(
                    "forward sink",
                    format!(
                        "{} requests{requests}, {} bytes{bytes}",
                        s.received_requests, s.received_bytes
                    ),
                );
            }
            for n in &v.notes {
                let _ = writeln!(o, "    note: {n}");
            }
        } else if let Some(v) = &self.verify {
            row(
                "verify",
                format!(
                    "{}: {} series, {} values checked, {} mismatches; counted {} of {} spans, {} of {} errors",
                    if v.ok { "OK" } else { "FAILED" },
                    v.verdict.series_expected,
                    v.verdict.values_checked,
                    v.verdict.mismatch_count,
                    v.counted_spans,
                    v.expected_spans,
                    v.counted_errors,
                    v.expected_errors
                ),
            );
            if let Some(s) = &v.sink {
                row(
                    "forward sink",
                    format!(
                        "{}: received {} of {} spans",
                        if s.ok { "OK" } else { "FAILED" },
                        s.received_spans,
                        s.expected_spans
                    ),
                );
            }
            for m in &v.verdict.mismatches {
                let _ = writeln!(o, "    {m}");
            }
            if v.verdict.mismatch_count > v.verdict.mismatches.len() as u64 {
                let _ = writeln!(
                    o,
                    "    ... and {} more",
                    v.verdict.mismatch_count - v.verdict.mismatches.len() as u64
                );
            }
            for n in &v.notes {
                let _ = writeln!(o, "    note: {n}");
            }
        }
        o
    }
}

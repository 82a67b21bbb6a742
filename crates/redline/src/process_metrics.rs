//! otelcol's process metrics among Redline's own (`otelcol_process_uptime`,
//! `otelcol_process_cpu_seconds`, `otelcol_process_memory_rss`): the collector dashboards
//! users have plot them. Go's runtime figures (`otelcol_process_runtime_*`) have no Rust
//! equivalent and are not served. Descriptions are otelcol's, stability tag included.

use std::time::Instant;

use redline_pipeline::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource, NumberPoint};
use redline_pipeline::telemetry::{PROCESS_CPU_SECONDS, PROCESS_MEMORY_RSS, PROCESS_UPTIME};

pub struct ProcessMetrics {
    started: Instant,
    start_time_unix_nano: u64,
}

impl ProcessMetrics {
    /// Uptime counts from now: call it as the process starts. `start_time_unix_nano` is the
    /// telemetry's, which every other counter's points carry.
    pub fn new(start_time_unix_nano: u64) -> Self {
        Self {
            started: Instant::now(),
            start_time_unix_nano,
        }
    }
}

impl MetricsSource for ProcessMetrics {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let counters = [
            (
                PROCESS_UPTIME,
                "Uptime of the process [Alpha]",
                Some(self.started.elapsed().as_secs_f64()),
            ),
            (
                PROCESS_CPU_SECONDS,
                "Total CPU user and system time in seconds [Alpha]",
                redline_procfs::cpu_seconds(),
            ),
        ];
        for (name, description, value) in counters {
            let Some(value) = value else { continue };
            sink.family(&FamilyDesc {
                name,
                description,
                unit: "s",
                kind: MetricKind::Counter,
            });
            sink.number(
                &[],
                &NumberPoint {
                    value,
                    start_time_unix_nano: self.start_time_unix_nano,
                    time_unix_nano: 0,
                    exemplars: &[],
                },
            );
        }
        if let Some(rss) = redline_procfs::resident_bytes() {
            sink.family(&FamilyDesc {
                name: PROCESS_MEMORY_RSS,
                description: "Total physical memory (resident set size) [Alpha]",
                unit: "By",
                kind: MetricKind::Gauge,
            });
            sink.gauge(&[], rss as f64);
        }
    }
}

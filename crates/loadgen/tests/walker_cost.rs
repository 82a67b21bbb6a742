//! The receiver's wire walker per byte on loadgen's own requests, one signal after another:
//! the one signal-specific step of Redline's forward path, measured on exactly the payloads
//! of the end-to-end runs (BENCHMARKS.md, "Forwarding cost per byte by signal"). A
//! measurement, not a check: ignored by default, and meaningful only in release.
//!
//! `cargo test --release -p redline-loadgen --test walker_cost -- --ignored --nocapture`

use std::hint::black_box;

use redline_loadgen::model::{Generator, ModelConfig};

use redline_loadgen::signal::Signal;
use redline_loadgen::templates::prepare;

/// CPU seconds of the calling thread (10 ms resolution: measure for seconds).
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("thread stat");
    redline_procfs::stat_cpu_seconds(&stat).expect("parses")
}

fn walk(signal: Signal, raw: &[u8]) -> usize {
    match signal {
        Signal::Traces => redline_otlp_wire::validate(raw).map_or(0, |s| s.spans),
        Signal::Metrics => redline_otlp_wire::validate_metrics(raw).map_or(0, |s| s.data_points),
        Signal::Logs => redline_otlp_wire::validate_logs(raw).map_or(0, |s| s.log_records),
    }
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn walker_cost_per_byte() {
    let rounds = 3;
    let seconds = 2.0;
    let traces = Generator::new(ModelConfig::default(), 1).expect("model");
    let mut results: Vec<(Signal, Vec<f64>)> = Vec::new();
    for signal in Signal::ALL {
        let t = prepare(signal, &traces, 8, 1_700_000_000_000_000_000, None).expect("templates");
        let bodies: Vec<Vec<u8>> = t.templates.iter().map(|t| t.bytes().to_vec()).collect();
        results.push((signal, Vec::new()));
        for _ in 0..rounds {
            let (mut bytes, mut items) = (0u64, 0usize);
            let start = thread_cpu();
            let mut spent = 0.0;
            while spent < seconds {
                for b in &bodies {
                    items += black_box(walk(signal, black_box(b)));
                    bytes += b.len() as u64;
                }
                spent = thread_cpu() - start;
            }
            assert!(items > 0);
            let ns_per_byte = spent * 1e9 / bytes as f64;
            if let Some(r) = results.last_mut() {
                r.1.push(ns_per_byte);
            }
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let traces_ns = median(&results[0].1);
    for (signal, v) in &results {
        let m = median(v);
        println!(
            "walker {:<8} {m:.3} CPU-ns per byte ({:.2} GiB/s), {:.2}x traces; rounds {v:.3?}",
            signal.name(),
            1.0 / m / 1.073_741_824,
            m / traces_ns
        );
    }
}

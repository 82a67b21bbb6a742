//! spanmetrics aggregation of already-validated requests (`SpanMetrics::aggregate_validated`,
//! what the connector runs for every batch), into existing series, with 1 and 2 threads
//! hammering the same `SpanMetrics`, at 10, 10k and 100k series.
//!
//! `cargo bench -p redline-benches --bench aggregate`
//!
//! Throughput is total spans/s over all threads; per thread divide by the thread count. The
//! 1→2 thread scaling is `thrpt(2 threads) / thrpt(1 thread)` of the same series count.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redline_benches::clock::{Clock, Mode};
use redline_benches::{reference_config, Workload, SPANS_PER_REQUEST};
use redline_spanmetrics::SpanMetrics;

/// Requests per thread in the fixture: enough that consecutive iterations touch different
/// series (no artificially hot cache lines), few enough to stay quick to build.
const REQUESTS_PER_THREAD: usize = 256;

/// Wall clock: from the common start to the last thread's end. CPU clock: the largest
/// thread CPU time, i.e. the wall time the run would take with a core per thread and no
/// neighbours (lock contention still costs CPU: spinning, cache-line transfers).
fn run(mode: Mode, m: &SpanMetrics, per_thread: &[Vec<Bytes>], iters: u64) -> Duration {
    let threads = per_thread.len();
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .iter()
            .map(|reqs| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let cpu = Mode::ThreadCpu.now();
                    for i in 0..iters as usize {
                        let r = &reqs[i % reqs.len()];
                        black_box(m.aggregate_validated(black_box(r)).ok());
                    }
                    let cpu = cpu.elapsed();
                    barrier.wait();
                    cpu
                })
            })
            .collect();
        barrier.wait();
        let wall = Mode::Wall.now();
        barrier.wait();
        let wall = wall.elapsed();
        let cpu = handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .max()
            .unwrap_or(wall);
        match mode {
            Mode::Wall => wall,
            Mode::ThreadCpu => cpu,
        }
    })
}

fn aggregate(c: &mut Criterion<Clock>) {
    let mode = Mode::from_env();
    let mut g = c.benchmark_group("aggregate");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    for series in [10usize, 10_000, 100_000] {
        let w = Workload::new(series);
        let m = SpanMetrics::new(&reference_config()).expect("reference config is valid");
        for r in w.covering_requests() {
            m.aggregate(&r).expect("fixture is valid");
        }
        assert_eq!(m.series_count(), series);
        let fixtures: Vec<Vec<Bytes>> = (0..2)
            .map(|t| w.requests(REQUESTS_PER_THREAD, 100 + t))
            .collect();
        for threads in [1usize, 2] {
            let per_thread = &fixtures[..threads];
            g.throughput(Throughput::Elements((SPANS_PER_REQUEST * threads) as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("{threads}_threads"), format!("{series}_series")),
                &per_thread,
                |b, per_thread| b.iter_custom(|iters| run(mode, &m, per_thread, iters)),
            );
        }
        assert_eq!(m.series_count(), series, "no new series while measuring");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = aggregate
}
criterion_main!(benches);

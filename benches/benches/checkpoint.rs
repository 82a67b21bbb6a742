//! The span-metrics state file (`spanmetrics.storage`) at 100k series: writing it (a copy of
//! every shard, encoding, a SHA-256, write and rename, no fsync) and loading it into an empty
//! connector (checksum, parse, re-insert every series). Prints the file's size.
//!
//! `cargo bench -p redline-benches --bench checkpoint`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use redline_benches::{filled_spanmetrics, reference_config};
use redline_spanmetrics::SpanMetrics;

const SERIES: usize = 100_000;

fn checkpoint(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("redline-checkpoint-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("state");
    let full = filled_spanmetrics(SERIES);
    full.write_checkpoint(&path, false).expect("writes");
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "state file at {SERIES} series: {bytes} bytes ({} per series)",
        bytes / SERIES as u64
    );

    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("write_100k", |b| {
        b.iter(|| full.write_checkpoint(&path, false).expect("writes"))
    });
    g.bench_function("load_100k", |b| {
        b.iter(|| {
            let empty = SpanMetrics::new(&reference_config()).expect("valid");
            let restored = empty.load_checkpoint(&path).expect("loads");
            assert_eq!(restored, Some(SERIES));
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);

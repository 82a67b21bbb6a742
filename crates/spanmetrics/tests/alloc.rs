//! Allocation accounting: no allocation per span for existing series, and the bytes held per
//! series (docs/architecture.md §7 target: ≤ 256 with one dimension, 16 buckets, exemplars on).
//!
//! Run the figures with: `cargo test --release -p redline-spanmetrics --test alloc -- --nocapture --include-ignored`
// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to System.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Mutex;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use redline_spanmetrics::{Config, SpanMetrics};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with the same layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters are process-wide: tests in this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn unlimited_config() -> Config {
    Config {
        // Unlimited: the 1M-series measurement needs more than the default limit.
        aggregation_cardinality_limit: 0,
        ..reference_config()
    }
}

fn allocations_per_request(m: &SpanMetrics, n_spans: usize) -> usize {
    let spans = (0..n_spans)
        .map(|i| {
            // Every third span has a bool value, which is converted into a scratch string.
            let hit = if i % 3 == 0 {
                kv("cdn.cache.hit", Value::BoolValue(i % 2 == 0))
            } else {
                kv("cdn.cache.hit", s("true"))
            };
            span(
                &format!("op{}", i % 10),
                2,
                (i % 3) as i32,
                1_000_000 * i as u64,
                vec![hit],
            )
        })
        .collect();
    let req = encode(vec![service("svc", spans)]);
    m.aggregate(&req).expect("valid");
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..10 {
        m.aggregate(&req).expect("valid");
    }
    (ALLOCS.load(Ordering::Relaxed) - before) / 10
}

#[test]
fn no_allocation_per_span_for_existing_series() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let m = SpanMetrics::new(&unlimited_config()).expect("valid");
    let small = allocations_per_request(&m, 10);
    let large = allocations_per_request(&m, 1000);
    println!("allocations per request: {small} (10 spans), {large} (1000 spans)");
    // Only the per-request scratch buffers allocate: the count does not grow with spans.
    assert_eq!(small, large);
    assert!(small <= 5, "{small} allocations per request");
}

/// Builds `n` distinct series from low-cardinality labels (services × names × kinds ×
/// statuses × cache hit), as real traffic does, and returns bytes per series.
fn bytes_per_series(n: usize) -> (f64, f64) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let services = 50 * n.div_ceil(100_000);
    let names = n / services / 20;
    let mut reqs = Vec::new();
    let mut batch = Vec::new();
    let mut made = 0;
    'outer: for svc in 0..services {
        for name in 0..names {
            for kind in 1..=5 {
                for status in 1..=2 {
                    for hit in ["true", "false"] {
                        batch.push(span(
                            &format!("GET /api/v1/resource-{name}"),
                            kind,
                            status,
                            3_000_000,
                            vec![kv("cdn.cache.hit", s(hit))],
                        ));
                        made += 1;
                        if batch.len() == 1000 || made == n {
                            reqs.push(encode(vec![service(
                                &format!("service-{svc}"),
                                std::mem::take(&mut batch),
                            )]));
                        }
                        if made == n {
                            break 'outer;
                        }
                    }
                }
            }
        }
        if !batch.is_empty() {
            reqs.push(encode(vec![service(
                &format!("service-{svc}"),
                std::mem::take(&mut batch),
            )]));
        }
    }
    let base = LIVE.load(Ordering::Relaxed);
    let m = SpanMetrics::new(&unlimited_config()).expect("valid");
    for r in &reqs {
        m.aggregate(r).expect("valid");
    }
    let held = LIVE.load(Ordering::Relaxed) - base;
    assert_eq!(m.series_count(), n);
    let measured = held as f64 / n as f64;
    let estimated = m.heap_bytes() as f64 / n as f64;
    println!("{n} series: {measured:.1} bytes/series measured, {estimated:.1} by heap_bytes()");
    (measured, estimated)
}

#[test]
fn memory_per_series_100k() {
    let (measured, _) = bytes_per_series(100_000);
    assert!(measured <= 256.0, "{measured} bytes per series");
}

#[test]
#[ignore = "slow in debug builds; run with --release --include-ignored"]
fn memory_per_series_1m() {
    let (measured, _) = bytes_per_series(1_000_000);
    assert!(measured <= 256.0, "{measured} bytes per series");
}

//! The otlp exporter's forward path: reserve + commit of 100-span batches into the exporter,
//! which queues, coalesces and sends the raw bytes over gRPC to an in-process tonic sink, with
//! compression none, gzip, zstd and snappy. One iteration is one batch handed over; the clock stops when
//! the sink has received every byte.
//!
//! `cargo bench -p redline-benches --bench forward`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redline_benches::sink::Sink;
use redline_benches::{process_cpu_seconds, Workload, SPANS_PER_REQUEST};
use redline_otlp_exporter::config::Compression;
use redline_otlp_exporter::Config;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, BuildContext, ComponentId, Consumer};

/// Hands `n` batches to the exporter (waiting out a full queue, as a receiver's client would
/// after UNAVAILABLE) and waits until the sink has them all.
fn forward(exporter: &Arc<dyn Consumer>, sink: &Sink, requests: &[Bytes], n: u64) {
    let mut expected = sink.bytes();
    for i in 0..n as usize {
        let raw = requests[i % requests.len()].clone();
        expected += raw.len() as u64;
        let batch = Batch::traces(raw, SPANS_PER_REQUEST);
        loop {
            match exporter.reserve(&batch) {
                Ok(r) => {
                    r.commit(batch);
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_micros(50)),
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.bytes() < expected {
        assert!(Instant::now() < deadline, "sink did not receive everything");
        std::thread::sleep(Duration::from_micros(100));
    }
}

fn forward_bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let requests = Workload::new(10_000).requests(256, 5);
    let mut g = c.benchmark_group("forward");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    let compressions = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("zstd", Compression::Zstd),
        ("snappy", Compression::Snappy),
    ];
    for (name, compression) in compressions {
        let sink = rt.block_on(Sink::start()).expect("sink starts");
        let mut config = Config::new(sink.addr.to_string());
        config.tls.insecure = true;
        config.compression = compression;
        let (exporter, running) = {
            let _guard = rt.enter();
            redline_otlp_exporter::start(
                &ComponentId::new("otlp", Some("bench")),
                config,
                &BuildContext::new(Telemetry::new()),
                redline_pipeline::Signal::Traces,
            )
            .expect("exporter starts")
        };
        // Connect and warm up.
        forward(&exporter, &sink, &requests, 200);

        // CPU cost of the whole process per span, over a fixed amount of work.
        let n = 20_000u64;
        let (cpu0, t0) = (process_cpu_seconds(), Instant::now());
        forward(&exporter, &sink, &requests, n);
        let (cpu1, wall) = (process_cpu_seconds(), t0.elapsed());
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            let spans = (n as usize * SPANS_PER_REQUEST) as f64;
            println!(
                "forward/{name}: {:.0} spans/s wall, {:.0} spans per CPU-second (process: exporter + sink)",
                spans / wall.as_secs_f64(),
                spans / (b - a).max(1e-9)
            );
        }

        g.bench_function(BenchmarkId::new("batches_of_100_spans", name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                forward(&exporter, &sink, &requests, iters);
                start.elapsed()
            })
        });
        rt.block_on(running.shutdown(Instant::now() + Duration::from_secs(5)))
            .expect("clean shutdown");
        drop(sink);
    }
    g.finish();
}

criterion_group!(benches, forward_bench);
criterion_main!(benches);

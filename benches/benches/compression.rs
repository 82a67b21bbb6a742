//! What compressing and decompressing one request costs with each compression Redline
//! speaks: the load's 100-span requests (`Workload`, ~42.7 KB each), compressed as the
//! exporters do (gzip level 6, zstd level 3, snappy block for otlphttp `snappy`, snappy
//! framed for gRPC `snappy` and otlphttp `x-snappy-framed`) and decompressed as the receiver
//! does. One iteration = one request; thread CPU clock by default (see `clock`). Prints the
//! mean compressed size of each. (gzip here is the exporters' libdeflate; before, flate2.)
//!
//! The `gzip_backends` groups compare gzip implementations at otelcol's default level (6) on
//! one 100-span request and on ten of them concatenated (what the exporter sends when it
//! coalesces queued batches): flate2 streaming as the exporter used to (its backend is
//! zlib-rs, or zlib-ng with `--features zlib-ng`, which switches flate2's backend for the
//! whole build), and libdeflate compressing the whole buffer at once with a compressor kept
//! per thread, as the exporter does now. Every output is decompressed by the receiver's
//! decoder (flate2's `MultiGzDecoder`).
//!
//! The `zstd_context` group compares, at level 3, a new streaming encoder per request (as the
//! exporters compressed before) with one context per thread compressing the whole request
//! (as they do now).
//!
//! `cargo bench -p redline-benches --bench compression`
//! `cargo bench -p redline-benches --features zlib-ng --bench compression -- gzip_backends`

use std::cell::RefCell;
use std::hint::black_box;
use std::io::{Read, Write};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redline_benches::clock::Clock;
use redline_benches::Workload;

type Codec = (&'static str, fn(&[u8]) -> Vec<u8>, fn(&[u8]) -> Vec<u8>);

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(6),
    );
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// The name of flate2's backend in this build.
const FLATE2: &str = if cfg!(feature = "zlib-ng") {
    "flate2-zlib-ng"
} else {
    "flate2-zlib-rs"
};

thread_local! {
    static FLATE2_6: RefCell<flate2::Compress> =
        RefCell::new(flate2::Compress::new_gzip(flate2::Compression::new(6), 15));
    static ZSTD_3: RefCell<zstd::bulk::Compressor<'static>> =
        RefCell::new(zstd::bulk::Compressor::new(3).expect("a zstd level"));
    static LIBDEFLATE_6: RefCell<libdeflater::Compressor> =
        RefCell::new(libdeflater::Compressor::new(
            libdeflater::CompressionLvl::new(6).expect("a libdeflate level"),
        ));
}

/// As the exporter compresses: the whole request at once into a buffer of the worst-case
/// size, with a compressor reused across requests (allocating one costs more than
/// compressing a small request).
fn libdeflate6(data: &[u8]) -> Vec<u8> {
    LIBDEFLATE_6.with_borrow_mut(|c| {
        let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
        let n = c.gzip_compress(data, &mut out).expect("bound is enough");
        out.truncate(n);
        out
    })
}

/// flate2 without its per-request setup: one compressor per thread, reset between requests.
fn gzip_reused(data: &[u8]) -> Vec<u8> {
    FLATE2_6.with_borrow_mut(|c| {
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 4 + 64);
        let start = c.total_in();
        loop {
            let done = usize::try_from(c.total_in() - start).expect("fits");
            if out.len() == out.capacity() {
                out.reserve(data.len() / 4 + 64);
            }
            let status = c
                .compress_vec(&data[done..], &mut out, flate2::FlushCompress::Finish)
                .expect("in memory");
            if status == flate2::Status::StreamEnd {
                return out;
            }
        }
    })
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid");
    out
}

/// As the exporters compress: one frame of the whole request, with a context kept per
/// thread.
fn zstd3(data: &[u8]) -> Vec<u8> {
    ZSTD_3.with_borrow_mut(|c| {
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        c.compress_to_buffer(data, &mut out)
            .expect("bound is enough");
        out
    })
}

/// As the exporters compressed before: a new streaming encoder per request, the size pledged.
fn zstd3_new_encoder(data: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::write::Encoder::new(Vec::with_capacity(data.len() / 4 + 64), 3)
        .expect("encoder");
    e.set_pledged_src_size(Some(data.len() as u64))
        .expect("size");
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

fn unzstd(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    zstd::stream::read::Decoder::with_buffer(data)
        .expect("decoder")
        .read_to_end(&mut out)
        .expect("valid");
    out
}

fn snappy_block(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("compress")
}

fn unsnappy_block(data: &[u8]) -> Vec<u8> {
    snap::raw::Decoder::new()
        .decompress_vec(data)
        .expect("valid")
}

fn snappy_framed(data: &[u8]) -> Vec<u8> {
    let mut e = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2 + 64));
    e.write_all(data).expect("in memory");
    e.into_inner().expect("in memory")
}

fn unsnappy_framed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    snap::read::FrameDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid");
    out
}

const CODECS: [Codec; 4] = [
    ("gzip-6", libdeflate6, gunzip),
    ("zstd-3", zstd3, unzstd),
    ("snappy-block", snappy_block, unsnappy_block),
    ("snappy-framed", snappy_framed, unsnappy_framed),
];

fn compression(c: &mut Criterion<Clock>) {
    let requests: Vec<Bytes> = Workload::new(10_000).requests(64, 5);
    let raw: usize = requests.iter().map(Bytes::len).sum();
    let mean = raw / requests.len();
    println!("request: {mean} B (mean of {})", requests.len());
    for (name, compress, decompress) in CODECS {
        let packed: Vec<Vec<u8>> = requests.iter().map(|r| compress(r)).collect();
        for (p, r) in packed.iter().zip(&requests) {
            assert_eq!(decompress(p), r.as_ref(), "{name} round trip");
        }
        let size: usize = packed.iter().map(Vec::len).sum();
        println!(
            "{name}: {} B per request ({:.1}% of the request)",
            size / packed.len(),
            100.0 * size as f64 / raw as f64
        );
    }

    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(mean as u64));
    for (name, compress, _) in CODECS {
        let mut i = 0;
        g.bench_function(BenchmarkId::new("request_100_spans", name), |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                black_box(compress(black_box(&requests[i])))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("decompress");
    g.throughput(Throughput::Bytes(mean as u64));
    for (name, compress, decompress) in CODECS {
        let packed: Vec<Vec<u8>> = requests.iter().map(|r| compress(r)).collect();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("request_100_spans", name), |b| {
            b.iter(|| {
                i = (i + 1) % packed.len();
                black_box(decompress(black_box(&packed[i])))
            })
        });
    }
    g.finish();
}

/// A named way to compress a request.
type Gzip = (&'static str, fn(&[u8]) -> Vec<u8>);

fn gzip_backends(c: &mut Criterion<Clock>) {
    let reused = if cfg!(feature = "zlib-ng") {
        "flate2-zlib-ng-reused"
    } else {
        "flate2-zlib-rs-reused"
    };
    let backends: [Gzip; 3] = [
        (FLATE2, gzip),
        (reused, gzip_reused),
        ("libdeflate", libdeflate6),
    ];
    let requests: Vec<Bytes> = Workload::new(10_000).requests(64, 5);
    // Ten requests back to back: one coalesced message of the exporter.
    let concatenated: Vec<Bytes> = requests
        .chunks_exact(10)
        .map(|c| Bytes::from(c.concat()))
        .collect();
    let inputs = [
        ("request_100_spans", requests),
        ("concat_10x100_spans", concatenated),
    ];
    for (input, data) in &inputs {
        let raw: usize = data.iter().map(Bytes::len).sum();
        for (name, compress) in backends {
            let packed: Vec<Vec<u8>> = data.iter().map(|r| compress(r)).collect();
            for (p, r) in packed.iter().zip(data) {
                assert_eq!(gunzip(p), r.as_ref(), "{name} round trip");
            }
            let size: usize = packed.iter().map(Vec::len).sum();
            println!(
                "gzip-6 {name}, {input}: {} B in, {} B out ({:.1}%)",
                raw / data.len(),
                size / packed.len(),
                100.0 * size as f64 / raw as f64
            );
        }
    }

    for (input, data) in &inputs {
        let mean = data.iter().map(Bytes::len).sum::<usize>() / data.len();
        bench_compressing(
            c,
            &format!("gzip_backends_compress/{input}"),
            &backends,
            data,
        );

        let mut g = c.benchmark_group(format!("gzip_backends_decompress/{input}"));
        g.throughput(Throughput::Bytes(mean as u64));
        for (name, compress) in backends {
            let packed: Vec<Vec<u8>> = data.iter().map(|r| compress(r)).collect();
            let mut i = 0;
            g.bench_function(name, |b| {
                b.iter(|| {
                    i = (i + 1) % packed.len();
                    black_box(gunzip(black_box(&packed[i])))
                })
            });
        }
        g.finish();
    }
}

/// zstd level 3 on one request: a context per thread against a new encoder per request.
fn zstd_context(c: &mut Criterion<Clock>) {
    let requests: Vec<Bytes> = Workload::new(10_000).requests(64, 5);
    let ways: [Gzip; 2] = [
        ("new_encoder", zstd3_new_encoder),
        ("context_per_thread", zstd3),
    ];
    for (name, compress) in ways {
        for r in &requests {
            assert_eq!(unzstd(&compress(r)), r.as_ref(), "{name} round trip");
        }
    }
    bench_compressing(c, "zstd_context/request_100_spans", &ways, &requests);
}

/// One benchmark per way in `group`, each compressing `data`'s requests in turn.
fn bench_compressing(c: &mut Criterion<Clock>, group: &str, ways: &[Gzip], data: &[Bytes]) {
    let mean = data.iter().map(Bytes::len).sum::<usize>() / data.len();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(mean as u64));
    for (name, compress) in ways {
        let mut i = 0;
        g.bench_function(*name, |b| {
            b.iter(|| {
                i = (i + 1) % data.len();
                black_box(compress(black_box(&data[i])))
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = compression, gzip_backends, zstd_context
}
criterion_main!(benches);

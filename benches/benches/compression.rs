//! What compressing and decompressing one request costs with each compression Redline
//! speaks: the load's 100-span requests (`Workload`, ~42.7 KB each), compressed as the
//! exporters do (gzip level 6, zstd level 3, snappy block for otlphttp `snappy`, snappy
//! framed for gRPC `snappy` and otlphttp `x-snappy-framed`) and decompressed as the receiver
//! does. One iteration = one request; thread CPU clock by default (see `clock`). Prints the
//! mean compressed size of each.
//!
//! `cargo bench -p redline-benches --bench compression`

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

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid");
    out
}

fn zstd3(data: &[u8]) -> Vec<u8> {
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
    ("gzip-6", gzip, gunzip),
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

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = compression
}
criterion_main!(benches);

//! `/metrics` rendering of a spanmetrics source (collect + exposition) at 10k and 100k series,
//! text 0.0.4 and OpenMetrics, plus the whole server path at 100k: an HTTP GET through the
//! exporter's axum server, rendered and gzip-compressed as a Prometheus scrape gets it.
//!
//! `cargo bench -p redline-benches --bench render`

use std::hint::black_box;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redline_benches::clock::{process_cpu_time, Clock, Mode};
use redline_benches::filled_spanmetrics;
use redline_pipeline::{FamilyDesc, HistogramPoint, MetricsSink, MetricsSource};
use redline_prometheus_exporter::{render, Format, RenderOptions};
use redline_spanmetrics::SpanMetrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OPENMETRICS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn source(series: usize) -> Arc<SpanMetrics> {
    Arc::new(filled_spanmetrics(series))
}

/// Discards everything: the cost of `collect` alone (shard snapshots, label lookups).
struct NullSink(u64);

impl MetricsSink for NullSink {
    fn family(&mut self, _: &FamilyDesc<'_>) {}
    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        v: u64,
        _: u64,
        _: Option<&redline_pipeline::Exemplar>,
    ) {
        self.0 = self.0.wrapping_add(v + labels.len() as u64);
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}
    fn histogram(&mut self, labels: &[(&str, &str)], p: &HistogramPoint<'_>) {
        self.0 = self.0.wrapping_add(p.count + labels.len() as u64);
    }
    fn number(&mut self, _: &[(&str, &str)], _: &redline_pipeline::NumberPoint<'_>) {}
    fn summary(&mut self, _: &[(&str, &str)], _: &redline_pipeline::SummaryPoint<'_>) {}
    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        p: &redline_pipeline::ExponentialHistogramPoint<'_>,
    ) {
        self.0 = self.0.wrapping_add(p.count + labels.len() as u64);
    }
}

/// One `GET /metrics` over a fresh HTTP/1.1 connection; returns the raw response bytes.
async fn scrape(addr: SocketAddr, accept: Option<&str>, gzip: bool) -> std::io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut req = String::from("GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n");
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    if gzip {
        req.push_str("Accept-Encoding: gzip\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    Ok(resp)
}

/// The body of a raw HTTP/1.1 response (content-length or chunked).
fn body(resp: &[u8]) -> Vec<u8> {
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response has a header block");
    let head = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let mut data = &resp[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return data.to_vec();
    }
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).expect("hex"), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}

fn render_local(c: &mut Criterion<Clock>) {
    let opts = RenderOptions::new(None, [], true).expect("valid options");
    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for series in [10_000usize, 100_000] {
        let m = source(series);
        let srcs: Vec<Arc<dyn MetricsSource>> = vec![m.clone()];
        g.throughput(Throughput::Elements(series as u64));
        g.bench_with_input(
            BenchmarkId::new("collect_only", format!("{series}_series")),
            &m,
            |b, m| {
                b.iter(|| {
                    let mut sink = NullSink(0);
                    m.collect(&mut sink);
                    sink.0
                })
            },
        );
        for format in [Format::Text, Format::OpenMetrics] {
            let name = match format {
                Format::Text => "text",
                Format::OpenMetrics => "openmetrics",
            };
            let mut out = Vec::new();
            render(&srcs, format, &opts, &mut out);
            println!("render {name} {series} series: {} MB", out.len() >> 20);
            // Warm buffer: the rendering work alone.
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_warm_buffer"), format!("{series}_series")),
                &srcs,
                |b, srcs| {
                    b.iter(|| {
                        out.clear();
                        render(srcs, format, &opts, &mut out);
                        black_box(out.len())
                    })
                },
            );
        }
    }
    g.finish();
}

/// The server path: what a Prometheus scrape costs, over loopback HTTP. With the CPU clock
/// this is the CPU time of the whole process (server threads and the client) per scrape.
fn render_server(c: &mut Criterion<Clock>) {
    let mode = Mode::from_env();
    let opts = RenderOptions::new(None, [], true).expect("valid options");
    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let series = 100_000;
    let m = source(series);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let srcs: Vec<Arc<dyn MetricsSource>> = vec![m];
    let config: redline_prometheus_exporter::Config =
        serde_json_config(r#"{"endpoint": "127.0.0.1:0"}"#);
    let running = rt
        .block_on(redline_prometheus_exporter::start(
            "prometheus",
            &config,
            srcs.clone(),
        ))
        .expect("exporter starts");
    let addr = running.local_addrs()[0].1;
    for (name, accept, format) in [
        ("server_text_gzip", None, Format::Text),
        (
            "server_openmetrics_gzip",
            Some(OPENMETRICS_ACCEPT),
            Format::OpenMetrics,
        ),
    ] {
        // The scrape must be byte-identical to a direct render.
        let resp = rt.block_on(scrape(addr, accept, true)).expect("scrape");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&body(&resp)[..])
            .read_to_end(&mut unzipped)
            .expect("gzip body");
        let mut direct = Vec::new();
        render(&srcs, format, &opts, &mut direct);
        assert!(unzipped == direct, "{name}: scrape differs from render");
        println!(
            "{name} {series} series: {} MB -> {} MB gzip",
            direct.len() >> 20,
            resp.len() >> 20
        );
        g.bench_function(BenchmarkId::new(name, format!("{series}_series")), |b| {
            b.iter_custom(|iters| {
                let (wall, cpu) = (Instant::now(), process_cpu_time());
                for _ in 0..iters {
                    black_box(
                        rt.block_on(scrape(addr, accept, true))
                            .expect("scrape")
                            .len(),
                    );
                }
                match mode {
                    Mode::Wall => wall.elapsed(),
                    Mode::ThreadCpu => process_cpu_time().saturating_sub(cpu),
                }
            })
        });
    }
    rt.block_on(running.shutdown(Instant::now() + Duration::from_secs(5)))
        .expect("clean shutdown");
    g.finish();
}

/// The exporter's config from its JSON form (the YAML loader is not needed here).
fn serde_json_config(json: &str) -> redline_prometheus_exporter::Config {
    serde_json::from_str(json).expect("valid exporter config")
}

criterion_group! {
    name = local;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = render_local
}
criterion_group! {
    name = server;
    config = Criterion::default().with_measurement(Clock::from_env());
    targets = render_server
}
criterion_main!(local, server);

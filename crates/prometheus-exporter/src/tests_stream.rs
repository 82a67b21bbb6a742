//! Streamed scrapes over HTTP: identical bodies, merged families, and a scraper that goes
//! away mid-body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redline_pipeline::{FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::tests::{http_get, test_config};
use crate::{render, start, Format};

/// `n` histogram series in family `name`; counts how many collects ran to their end.
struct Many {
    n: usize,
    name: &'static str,
    finished: AtomicUsize,
}

impl Many {
    fn new(n: usize, name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            n,
            name,
            finished: AtomicUsize::new(0),
        })
    }
}

impl MetricsSource for Many {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: self.name,
            description: "Durations.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        for i in 0..self.n {
            let name = format!("GET /items/{i}");
            sink.histogram(
                &[("span.name", &name)],
                &HistogramPoint {
                    bounds: &[2.0, 4.0, 1400.0],
                    bucket_counts: &[1, 2, 3, i as u64],
                    sum: 12.5 + i as f64,
                    count: 6 + i as u64,
                    start_time_unix_nano: 1,
                    time_unix_nano: 0,
                    exemplars: &[],
                },
            );
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_and_merged_bodies_match_the_in_memory_render() {
    // One family in two sources: the check finds it and the body is merged in memory; the
    // other family streams.
    for sources in [
        vec![Many::new(30_000, "a") as Arc<dyn MetricsSource>],
        vec![
            Many::new(30_000, "a") as Arc<dyn MetricsSource>,
            Many::new(10, "b"),
            Many::new(20_000, "a"),
        ],
    ] {
        let config = test_config(false);
        let running = start("prometheus", &config, sources.clone())
            .await
            .expect("starts");
        let addr = running.local_addrs()[0].1;
        let r = http_get(addr, "/metrics", &[]).await;
        assert_eq!(r.status, 200);
        let o = config.render_options().expect("valid");
        let mut want = Vec::new();
        render(&sources, Format::Text, &o, &mut want);
        assert!(want.len() > 3 << 20, "several chunks: {} bytes", want.len());
        assert!(
            r.body == want,
            "{} bytes, want {}",
            r.body.len(),
            want.len()
        );
        running
            .shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraper_that_goes_away_stops_the_render() {
    let source = Many::new(200_000, "a");
    let running = start("prometheus", &test_config(false), vec![source.clone()])
        .await
        .expect("starts");
    let addr = running.local_addrs()[0].1;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut first = vec![0u8; 64 << 10];
    let n = stream.read(&mut first).await.expect("reads the start");
    assert!(n > 0);
    // The repeated-family check has run once; the render is the second collect.
    let before = source.finished.load(Ordering::SeqCst);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.finished.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the render still runs after the scraper left ({before} collects done)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

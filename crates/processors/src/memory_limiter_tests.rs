use super::*;
use bytes::Bytes;
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::consumer::CommitFn;
use std::sync::atomic::AtomicUsize;

/// RSS set by the test.
struct FakeRss(Arc<AtomicU64>);

impl RssReader for FakeRss {
    fn rss_bytes(&self) -> Option<u64> {
        match self.0.load(Ordering::SeqCst) {
            u64::MAX => None,
            v => Some(v),
        }
    }
}

/// Counts the spans committed to it.
struct Sink(Arc<AtomicUsize>);

impl TracesConsumer for Sink {
    fn reserve(&self, _: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        let spans = self.0.clone();
        Ok(Box::new(CommitFn(move |b: TracesBatch| {
            spans.fetch_add(b.span_count, Ordering::SeqCst);
        })))
    }
}

fn limiter(rss: u64) -> (MemoryLimiter, Arc<AtomicU64>, Arc<AtomicUsize>) {
    let cell = Arc::new(AtomicU64::new(rss));
    let spans = Arc::new(AtomicUsize::new(0));
    let l = MemoryLimiter::new(
        "memory_limiter".into(),
        Arc::new(Sink(spans.clone())),
        Arc::new(FakeRss(cell.clone())),
        100 * MIB,
        20 * MIB,
        Duration::from_millis(250),
    );
    (l, cell, spans)
}

fn batch(len: usize, spans: usize) -> TracesBatch {
    TracesBatch::new(Bytes::from(vec![0u8; len]), spans)
}

#[test]
fn refuses_at_the_soft_limit_and_recovers() {
    let (l, rss, spans) = limiter(10 * MIB);
    l.consume(batch(100, 3)).expect("well under the soft limit");

    rss.store(80 * MIB, Ordering::SeqCst); // soft limit = 100 - 20
    l.check();
    let err = l.consume(batch(100, 5)).expect_err("at the soft limit");
    assert_eq!(err.component, "memory_limiter");
    assert_eq!(err.retry_after, Duration::from_millis(250));

    // The gate follows the samples, not the live value.
    rss.store(79 * MIB, Ordering::SeqCst);
    l.consume(batch(100, 5)).expect_err("not sampled yet");
    l.check();
    l.consume(batch(100, 7))
        .expect("sampled below the soft limit");
    assert_eq!(
        spans.load(Ordering::SeqCst),
        10,
        "refused batches never reach next"
    );
}

#[test]
fn refuses_a_batch_that_would_cross_the_soft_limit() {
    let (l, _, spans) = limiter(79 * MIB);
    l.consume(batch(MIB as usize, 1))
        .expect("ends exactly at the soft limit");
    let err = l
        .consume(batch(MIB as usize + 1, 1))
        .expect_err("one byte over");
    assert!(err.reason.contains("would take"), "{}", err.reason);
    assert_eq!(spans.load(Ordering::SeqCst), 1);
}

#[test]
fn an_unreadable_sample_keeps_the_last_value() {
    let (l, rss, _) = limiter(90 * MIB);
    rss.store(u64::MAX, Ordering::SeqCst);
    l.check();
    l.consume(batch(1, 1))
        .expect_err("still over: last sample kept");
}

#[test]
fn reads_vmrss_in_kib() {
    let s = "Name:\tredline\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
    assert_eq!(status_kb(s, "VmRSS:"), Some(40_000));
    assert_eq!(status_kb(s, "VmSwap:"), None);
    assert_eq!(status_kb("VmRSS:\tlots kB\n", "VmRSS:"), None);
    let own = ProcRss.rss_bytes().expect("this process has a VmRSS");
    assert!(own > 0);
}

fn component(body: &str) -> ComponentConfig {
    let text = format!(
        "processors:\n  memory_limiter:\n{body}service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [memory_limiter]\n      exporters: [debug]\n"
    );
    let cfg = redline_pipeline::config::load_str("test.yaml", &text).expect("loads");
    cfg.processors.into_iter().next().expect("one processor")
}

fn check(body: &str) -> Result<(), String> {
    MemoryLimiterFactory
        .validate(&component(body))
        .map_err(|e| e.to_string())
}

#[test]
fn validate_names_the_key() {
    check("    check_interval: 1s\n    limit_mib: 400\n    spike_limit_mib: 80\n").expect("valid");
    check("    check_interval: 1s\n    limit_percentage: 80\n    spike_limit_percentage: 20\n")
        .expect("valid");
    check("    check_interval: 1s\n    limit_mib: 4\n    min_gc_interval_when_soft_limited: 10s\n")
        .expect("GC knobs accepted");

    let cases = [
        ("    limit_mib: 400\n", "check_interval"),
        (
            "    check_interval: 0s\n    limit_mib: 400\n",
            "check_interval",
        ),
        ("    check_interval: 1s\n", "limit_mib"),
        ("    check_interval: 1s\n    limit_mib: 0\n", "limit_mib"),
        (
            "    check_interval: 1s\n    limit_mib: 4\n    limit_percentage: 50\n",
            "limit_percentage",
        ),
        (
            "    check_interval: 1s\n    limit_mib: 400\n    spike_limit_mib: 400\n",
            "spike_limit_mib",
        ),
        (
            "    check_interval: 1s\n    limit_percentage: 50\n    spike_limit_percentage: 60\n",
            "spike_limit_percentage",
        ),
        (
            "    check_interval: 1s\n    limit_percentage: 101\n",
            "limit_percentage",
        ),
    ];
    for (body, key) in cases {
        let err = check(body).expect_err(body);
        assert!(
            err.contains(&format!("memory_limiter.{key}")),
            "{body}: {err}"
        );
    }
}

#[test]
fn limits_default_the_spike_to_a_fifth() {
    let c = MemoryLimiterConfig {
        limit_mib: Some(500),
        ..Default::default()
    };
    assert_eq!(c.limits(|| None), Ok((500 * MIB, 100 * MIB)));
    let p = MemoryLimiterConfig {
        limit_percentage: Some(50),
        spike_limit_percentage: Some(10),
        ..Default::default()
    };
    assert_eq!(p.limits(|| Some(1000 * MIB)), Ok((500 * MIB, 100 * MIB)));
    assert!(p.limits(|| None).is_err());
}

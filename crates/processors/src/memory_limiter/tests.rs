use super::*;
use bytes::Bytes;
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::consumer::CommitFn;
use std::sync::atomic::AtomicUsize;

/// Resident memory set by the test; a release drops it to `live` and is counted.
#[derive(Default)]
struct FakeMemory {
    resident: AtomicU64,
    live: AtomicU64,
    releases: AtomicUsize,
}

impl MemoryGauge for FakeMemory {
    fn resident_bytes(&self) -> Option<u64> {
        match self.resident.load(Ordering::SeqCst) {
            u64::MAX => None,
            v => Some(v),
        }
    }

    fn release_free_memory(&self) {
        self.releases.fetch_add(1, Ordering::SeqCst);
        let live = self.live.load(Ordering::SeqCst);
        let _ = self
            .resident
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| Some(r.min(live)));
    }
}

impl FakeMemory {
    /// Resident memory that is all live: a release frees nothing.
    fn set(&self, bytes: u64) {
        self.resident.store(bytes, Ordering::SeqCst);
        self.live.store(bytes, Ordering::SeqCst);
    }
}

const SETTINGS: Settings = Settings {
    limit: 100 * MIB,
    spike: 20 * MIB,
    check_interval: Duration::from_millis(250),
    release_interval_soft: Duration::ZERO,
    release_interval_hard: Duration::ZERO,
};

/// Counts the spans committed to it.
struct Sink(Arc<AtomicUsize>);

impl Consumer for Sink {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let spans = self.0.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            spans.fetch_add(b.items, Ordering::SeqCst);
        })))
    }
}

fn limiter_with(
    rss: u64,
    settings: Settings,
) -> (MemoryLimiter, Arc<FakeMemory>, Arc<AtomicUsize>) {
    let memory = Arc::new(FakeMemory::default());
    memory.set(rss);
    let spans = Arc::new(AtomicUsize::new(0));
    let l = MemoryLimiter::new(
        "memory_limiter".into(),
        Arc::new(Sink(spans.clone())),
        memory.clone(),
        settings,
    );
    (l, memory, spans)
}

fn limiter(rss: u64) -> (MemoryLimiter, Arc<FakeMemory>, Arc<AtomicUsize>) {
    limiter_with(rss, SETTINGS)
}

fn batch(len: usize, spans: usize) -> Batch {
    Batch::traces(Bytes::from(vec![0u8; len]), spans)
}

#[test]
fn refuses_at_the_soft_limit_and_recovers() {
    let (l, rss, spans) = limiter(10 * MIB);
    l.consume(batch(100, 3)).expect("well under the soft limit");

    rss.set(80 * MIB); // soft limit = 100 - 20
    l.check();
    let err = l.consume(batch(100, 5)).expect_err("at the soft limit");
    assert_eq!(err.component, "memory_limiter");
    assert_eq!(err.retry_after, Duration::from_millis(250));

    // The gate follows the samples, not the live value.
    rss.set(79 * MIB);
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
fn a_client_gzip_frame_counts_with_its_batch() {
    let (l, _, spans) = limiter(79 * MIB);
    let raw = Bytes::from(vec![0u8; MIB as usize / 2]);
    let frame = Bytes::from(vec![1u8; MIB as usize / 2 + 1]);
    let err = l
        .consume(Batch::traces(raw.clone(), 1).with_gzip_frame(&raw, frame))
        .expect_err("request and frame together are one byte over");
    assert!(err.reason.contains("1048577-byte batch"), "{}", err.reason);
    l.consume(Batch::traces(raw, 1))
        .expect("the request alone fits");
    assert_eq!(spans.load(Ordering::SeqCst), 1);
}

#[test]
fn intake_between_samples_counts_against_the_budget() {
    let (l, memory, spans) = limiter(70 * MIB);
    for _ in 0..10 {
        l.consume(batch(MIB as usize, 1))
            .expect("10 MiB fits under the soft limit");
    }
    l.consume(batch(1, 1))
        .expect_err("the sample has not moved, but 10 MiB were admitted since");
    memory.set(75 * MIB); // the queue drained a little
    l.check();
    l.consume(batch(MIB as usize, 1))
        .expect("a new sample starts a new allowance");
    assert_eq!(spans.load(Ordering::SeqCst), 11);
}

#[test]
fn an_unreadable_sample_keeps_the_last_value() {
    let (l, rss, _) = limiter(90 * MIB);
    rss.set(u64::MAX);
    l.check();
    l.consume(batch(1, 1))
        .expect_err("still over: last sample kept");
}

#[test]
fn releases_freed_memory_before_deciding() {
    let (l, memory, spans) = limiter(10 * MIB);
    // A spike left 90 MiB resident of which 30 MiB is still live.
    memory.resident.store(90 * MIB, Ordering::SeqCst);
    memory.live.store(30 * MIB, Ordering::SeqCst);
    l.check();
    assert_eq!(memory.releases.load(Ordering::SeqCst), 1);
    l.consume(batch(100, 2))
        .expect("what was freed does not keep the gate shut");
    assert_eq!(spans.load(Ordering::SeqCst), 2);

    // Under the soft limit nothing is released.
    l.check();
    assert_eq!(memory.releases.load(Ordering::SeqCst), 1);

    // Live data over the soft limit refuses even after a release.
    memory.set(85 * MIB);
    l.check();
    assert_eq!(memory.releases.load(Ordering::SeqCst), 2);
    l.consume(batch(100, 1)).expect_err("live memory is over");
}

#[test]
fn releases_are_paced_by_the_gc_intervals() {
    let paced = Settings {
        release_interval_soft: Duration::from_secs(3600),
        release_interval_hard: Duration::ZERO,
        ..SETTINGS
    };
    let (l, memory, _) = limiter_with(10 * MIB, paced);
    memory.set(85 * MIB); // soft limited
    l.check();
    l.check();
    assert_eq!(
        memory.releases.load(Ordering::SeqCst),
        1,
        "the second is within the soft interval"
    );
    memory.set(120 * MIB); // over the hard limit: its own interval, zero here
    l.check();
    l.check();
    assert_eq!(memory.releases.load(Ordering::SeqCst), 3);
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
    check("    check_interval: 1s\n    limit_mib: 4\n    min_gc_interval_when_soft_limited: 10s\n    max_gc_interval_when_soft_limited: 30s\n    max_gc_interval_when_hard_limited: 30s\n")
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
        (
            "    check_interval: 1s\n    limit_mib: 4\n    min_gc_interval_when_soft_limited: 1s\n    min_gc_interval_when_hard_limited: 2s\n",
            "min_gc_interval_when_soft_limited",
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

#[test]
fn releases_default_to_every_check() {
    let c = MemoryLimiterConfig {
        check_interval: Some(Duration::from_secs(2)),
        limit_mib: Some(500),
        ..Default::default()
    };
    let s = c.settings(|| None).expect("settings");
    assert_eq!(s.check_interval, Duration::from_secs(2));
    assert_eq!(
        (s.release_interval_soft, s.release_interval_hard),
        (Duration::ZERO, Duration::ZERO)
    );
    let hard_only = MemoryLimiterConfig {
        min_gc_interval_when_hard_limited: Some(Duration::from_secs(5)),
        ..c
    };
    assert_eq!(
        hard_only.release_intervals(),
        (Duration::from_secs(5), Duration::from_secs(5)),
        "the soft interval is never below the hard one"
    );
}

#[test]
fn the_body_budget_is_the_spike_allowance() {
    use redline_pipeline::ProcessorFactory as _;
    let budget = |body: &str| MemoryLimiterFactory.body_budget(&component(body));
    assert_eq!(
        budget("    check_interval: 1s\n    limit_mib: 400\n    spike_limit_mib: 80\n"),
        Some(80 * MIB)
    );
    assert_eq!(
        budget("    check_interval: 1s\n    limit_mib: 400\n"),
        Some(80 * MIB),
        "a fifth of the limit by default"
    );
}

#[test]
fn counts_what_it_lets_through_and_refuses_under_otelcols_names() {
    use redline_pipeline::telemetry::{self, CounterDesc, Telemetry};
    let telemetry = Telemetry::new();
    let (l, rss, _) = limiter(10 * MIB);
    let l = l.with_counters(LimiterCounters::new(
        &telemetry,
        "memory_limiter",
        Signal::Traces,
    ));
    l.consume(batch(100, 3)).expect("under the soft limit");
    l.consume(batch(100, 4)).expect("under the soft limit");
    rss.set(80 * MIB);
    l.check();
    l.consume(batch(100, 5)).expect_err("at the soft limit");

    let series = |name| {
        telemetry
            .counter_family(CounterDesc {
                name,
                description: "",
                unit: "{span}",
            })
            .series(&[("processor", "memory_limiter")])
            .load(Ordering::SeqCst)
    };
    assert_eq!(
        series(telemetry::PROCESSOR_MEMORY_LIMITER_ACCEPTED_SPANS),
        7
    );
    assert_eq!(series(telemetry::PROCESSOR_MEMORY_LIMITER_REFUSED_SPANS), 5);
    let items = telemetry.processor("memory_limiter", Signal::Traces);
    assert_eq!(items.incoming.load(Ordering::SeqCst), 7);
    assert_eq!(items.outgoing.load(Ordering::SeqCst), 7);
}

#[test]
fn span_taps_behind_the_limiter_are_reached() {
    use redline_pipeline::{SpanTap, TapId, TapWalk};

    struct Tap;
    impl SpanTap for Tap {
        fn begin<'a>(&'a self, _: usize) -> Box<dyn TapWalk<'a> + 'a> {
            unreachable!("not walked here")
        }
    }
    struct Tapped(TapId);
    impl Consumer for Tapped {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            Ok(Box::new(CommitFn(|_: Batch| {})))
        }
        fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
            taps.push((self.0, Arc::new(Tap)));
        }
    }
    let id = TapId::unique();
    let memory = Arc::new(FakeMemory::default());
    memory.set(10 * MIB);
    let l = MemoryLimiter::new("m".into(), Arc::new(Tapped(id)), memory, SETTINGS);
    let mut taps = Vec::new();
    l.span_taps(&mut taps);
    assert_eq!(taps.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [id]);
}

//! The send loops with a fake clock (tokio's paused time) and fake collectors.

use std::sync::atomic::AtomicU64;

use bytes::Bytes;

use super::*;
use crate::model::{Generator, ModelConfig};

fn templates(n: u64) -> Arc<Vec<Template>> {
    let g = Generator::new(
        ModelConfig {
            spans_per_request: 10,
            ..Default::default()
        },
        3,
    )
    .expect("model");
    Arc::new(
        (0..n)
            .map(|i| Template::encode(&g.request(i, 0)).expect("encodes"))
            .collect(),
    )
}

/// Answers at once, except that nothing is answered between `stall_from` and `stall_to`
/// (offsets from `origin`): requests arriving then wait until `stall_to`.
#[derive(Clone)]
struct Stalling {
    origin: Instant,
    stall_from: Duration,
    stall_to: Duration,
    calls: Arc<AtomicU64>,
}

impl Sender for Stalling {
    async fn send(&self, _body: Bytes) -> Outcome {
        self.calls.fetch_add(1, Relaxed);
        let at = Instant::now().duration_since(self.origin);
        if at >= self.stall_from && at < self.stall_to {
            tokio::time::sleep_until(self.origin + self.stall_to).await;
        }
        Outcome::Accepted { rejected_spans: 0 }
    }
}

#[test]
fn schedule_spacing() {
    let s = Schedule::new(1000.0);
    assert_eq!(s.intended(0), Duration::ZERO);
    assert_eq!(s.intended(1), Duration::from_millis(1));
    assert_eq!(s.intended(1500), Duration::from_millis(1500));
    assert_eq!(Schedule::new(3.0).intended(3), Duration::from_secs(1));
}

/// A 1 s stall in a 2 s open-loop run at 1000 requests/s: the 1000 requests due during the
/// stall see latencies from 1000 ms down to ~0 when measured from their intended send time,
/// even though the scheduler may only have 16 in flight (it waits, and the wait counts).
#[tokio::test(start_paused = true)]
async fn open_loop_measures_from_the_intended_time() {
    let origin = Instant::now();
    let sender = Stalling {
        origin,
        stall_from: Duration::from_millis(500),
        stall_to: Duration::from_millis(1500),
        calls: Arc::new(AtomicU64::new(0)),
    };
    let live = Arc::new(Live::new(4));
    let plan = Plan {
        rate_rps: Some(1000.0),
        stop: Stop::After(Duration::from_secs(2)),
        connections: 2,
        concurrency: 8,
        retry: Default::default(),
        pacing: Pacing::Timer,
    };
    let elapsed = run(
        plan,
        templates(4),
        vec![sender.clone(), sender.clone()],
        live.clone(),
        0,
    )
    .await;
    assert_eq!(live.requests_sent.load(Relaxed), 2000);
    assert_eq!(live.requests_accepted.load(Relaxed), 2000);
    assert_eq!(live.spans_accepted.load(Relaxed), 20_000);
    assert_eq!(sender.calls.load(Relaxed), 2000);
    assert!(
        elapsed >= Duration::from_millis(1999) && elapsed < Duration::from_millis(2100),
        "{elapsed:?}"
    );
    let h = live.latency_snapshot();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    // 1000 requests at ~0 ms, then one each at 1..=1000 ms: p50 ~0, p75 ~500, p90 ~800.
    assert!(ms(0.5) < 2.0, "p50 {}", ms(0.5));
    assert!((ms(0.75) - 500.0).abs() < 5.0, "p75 {}", ms(0.75));
    assert!((ms(0.90) - 800.0).abs() < 5.0, "p90 {}", ms(0.90));
    assert!(
        (h.max() as f64 / 1000.0 - 1000.0).abs() < 2.0,
        "max {}",
        h.max()
    );
    // The scheduler itself fell ~1 s behind (16 in flight, all stuck).
    assert!(live.max_dispatch_lag_us.load(Relaxed) > 900_000);
    for t in &live.accepted_per_template {
        assert_eq!(t.load(Relaxed), 500);
    }
}

/// The same stall measured closed loop (from the actual send): only the requests that were
/// in flight when it hit see it, which is exactly the coordinated omission the open loop
/// avoids.
#[tokio::test(start_paused = true)]
async fn closed_loop_hides_the_stall_in_few_samples() {
    let origin = Instant::now();
    let sender = Stalling {
        origin,
        stall_from: Duration::from_millis(500),
        stall_to: Duration::from_millis(1500),
        calls: Arc::new(AtomicU64::new(0)),
    };
    let live = Arc::new(Live::new(4));
    // A "server" that answers in 1 ms otherwise: model it by a rate-limited closed loop of
    // one connection with one request in flight.
    #[derive(Clone)]
    struct Slow(Stalling);
    impl Sender for Slow {
        async fn send(&self, body: Bytes) -> Outcome {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.0.send(body).await
        }
    }
    let plan = Plan {
        rate_rps: None,
        stop: Stop::After(Duration::from_secs(2)),
        connections: 1,
        concurrency: 1,
        retry: Default::default(),
        pacing: Pacing::Timer,
    };
    run(plan, templates(4), vec![Slow(sender)], live.clone(), 0).await;
    let h = live.latency_snapshot();
    let n = live.requests_sent.load(Relaxed);
    // ~1000 requests in the two healthy halves, one of them ate the whole stall.
    assert!((990..=1010).contains(&n), "{n} requests");
    assert!(
        h.value_at_quantile(0.99) < 3_000,
        "p99 {} us",
        h.value_at_quantile(0.99)
    );
    assert!(h.max() > 990_000, "max {}", h.max());
}

#[tokio::test(start_paused = true)]
async fn closed_loop_sends_exactly_the_budget_and_counts_refusals() {
    #[derive(Clone)]
    struct EveryThird(Arc<AtomicU64>);
    impl Sender for EveryThird {
        async fn send(&self, _b: Bytes) -> Outcome {
            let n = self.0.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(3)).await;
            if n % 3 == 2 {
                Outcome::Refused {
                    status: "UNAVAILABLE".into(),
                    uncertain: false,
                }
            } else if n % 3 == 1 {
                Outcome::Accepted { rejected_spans: 1 }
            } else {
                Outcome::Accepted { rejected_spans: 0 }
            }
        }
    }
    let live = Arc::new(Live::new(5));
    let s = EveryThird(Arc::new(AtomicU64::new(0)));
    let plan = Plan {
        rate_rps: None,
        stop: Stop::Requests(300),
        connections: 3,
        concurrency: 4,
        retry: Default::default(),
        pacing: Pacing::Timer,
    };
    run(
        plan,
        templates(5),
        vec![s.clone(), s.clone(), s],
        live.clone(),
        0,
    )
    .await;
    assert_eq!(live.requests_sent.load(Relaxed), 300);
    assert_eq!(live.requests_accepted.load(Relaxed), 200);
    assert_eq!(live.requests_refused.load(Relaxed), 100);
    assert_eq!(live.spans_refused.load(Relaxed), 1000);
    assert_eq!(live.rejected_spans.load(Relaxed), 100);
    let by = live.refused_by_status.lock().expect("lock").clone();
    assert_eq!(by.get("UNAVAILABLE"), Some(&(100, 1000)));
    let per: u64 = live
        .accepted_per_template
        .iter()
        .map(|c| c.load(Relaxed))
        .sum();
    assert_eq!(per, 200);
}

#[tokio::test(start_paused = true)]
async fn open_loop_with_a_request_budget() {
    let sender = Stalling {
        origin: Instant::now(),
        stall_from: Duration::ZERO,
        stall_to: Duration::ZERO,
        calls: Arc::new(AtomicU64::new(0)),
    };
    let live = Arc::new(Live::new(2));
    let plan = Plan {
        rate_rps: Some(50.0),
        stop: Stop::Requests(25),
        connections: 1,
        concurrency: 1,
        retry: Default::default(),
        pacing: Pacing::Timer,
    };
    let elapsed = run(plan, templates(2), vec![sender], live.clone(), 0).await;
    assert_eq!(live.requests_accepted.load(Relaxed), 25);
    // 25 requests at 50/s: the last is due at 480 ms.
    assert!(
        elapsed >= Duration::from_millis(480) && elapsed < Duration::from_millis(500),
        "{elapsed:?}"
    );
}

/// Refuses the first `refusals` attempts of every distinct body.
#[derive(Clone)]
struct Stubborn {
    refusals: u32,
    seen: Arc<std::sync::Mutex<std::collections::HashMap<Bytes, u32>>>,
}

impl Sender for Stubborn {
    async fn send(&self, body: Bytes) -> Outcome {
        let n = {
            let mut seen = self.seen.lock().expect("lock");
            let n = seen.entry(body).or_default();
            *n += 1;
            *n
        };
        if n <= self.refusals {
            Outcome::Refused {
                status: "UNAVAILABLE".into(),
                uncertain: false,
            }
        } else {
            Outcome::Accepted { rejected_spans: 0 }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retries_resend_the_same_request_with_backoff() {
    for (retries, accepted) in [(2u32, 40u64), (1, 0)] {
        let s = Stubborn {
            refusals: 2,
            seen: Arc::default(),
        };
        let live = Arc::new(Live::new(4));
        let plan = Plan {
            rate_rps: None,
            stop: Stop::Requests(40),
            connections: 1,
            concurrency: 1,
            retry: Retry {
                retries,
                backoff: Duration::from_millis(10),
            },
            pacing: Pacing::Timer,
        };
        let elapsed = run(plan, templates(4), vec![s.clone()], live.clone(), 0).await;
        assert_eq!(live.requests_sent.load(Relaxed), 40);
        assert_eq!(live.requests_accepted.load(Relaxed), accepted);
        assert_eq!(live.requests_refused.load(Relaxed), 40 - accepted);
        assert_eq!(live.retries.load(Relaxed), 40 * u64::from(retries));
        // Each request is resent with the same bytes (ids included).
        assert_eq!(s.seen.lock().expect("lock").len(), 40);
        // Backoff 10 ms then 20 ms per request; refused ones also pause the worker 10 ms.
        let want = if retries == 2 {
            40 * 30
        } else {
            40 * (10 + 10)
        };
        assert_eq!(elapsed.as_millis(), want, "retries {retries}");
        let lat = live.latency_snapshot();
        assert!(lat.min() >= 10_000, "latency includes the backoff");
    }
}

#[test]
fn what_is_retryable() {
    let r = |status: &str, uncertain| Outcome::Refused {
        status: status.into(),
        uncertain,
    };
    assert!(r("UNAVAILABLE", false).is_retryable());
    assert!(r("HTTP 503", false).is_retryable());
    assert!(!r("UNAVAILABLE", true).is_retryable());
    assert!(!r("INVALID_ARGUMENT", false).is_retryable());
    assert!(!Outcome::Accepted { rejected_spans: 0 }.is_retryable());
}

#[tokio::test]
async fn the_pacer_thread_hands_over_every_request_in_order_never_early() {
    let start = Instant::now();
    let due = Due::new(Stop::Requests(50), 2000.0, start);
    let plan = Plan {
        rate_rps: Some(2000.0),
        stop: Stop::Requests(50),
        connections: 1,
        concurrency: 1,
        retry: Default::default(),
        pacing: Pacing::Thread,
    };
    let mut ticks = Ticks::new(plan, due);
    assert!(matches!(ticks, Ticks::Thread(_)));
    let mut seen = 0;
    while let Some((k, intended)) = ticks.next().await {
        assert_eq!(k, seen);
        assert_eq!(intended, start + Duration::from_micros(500 * k));
        assert!(Instant::now() >= intended, "request {k} handed over early");
        seen += 1;
    }
    assert_eq!(seen, 50);
}

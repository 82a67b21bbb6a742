//! A scrape taken while spans keep arriving shows every series consistently: its `calls`
//! counter equals its histogram's count, and the histogram's buckets add up to that count.
//! Families are emitted one after the other, so if a scrape copied the shards once per
//! family, spans landing in between would make them disagree.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{encode, reference_config, service, span};
use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricsSink, MetricsSource,
    NumberPoint, SummaryPoint,
};
use redline_spanmetrics::SpanMetrics;

const SERIES: usize = 100_000;
const SPANS_PER_REQUEST: usize = 1_000;

/// Per series (labels joined), the `calls` value and the histogram's count and bucket total.
#[derive(Default)]
struct Tally {
    family: usize,
    calls: HashMap<String, u64>,
    histograms: HashMap<String, (u64, u64)>,
}

fn key(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in labels {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push(',');
    }
    out
}

impl MetricsSink for Tally {
    fn family(&mut self, _: &FamilyDesc<'_>) {
        self.family += 1;
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
        // The first family is calls; the second (errors) has other label sets.
        if self.family == 1 {
            self.calls.insert(key(labels), value);
        }
    }

    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}

    fn histogram(&mut self, labels: &[(&str, &str)], point: &HistogramPoint<'_>) {
        let buckets = point.bucket_counts.iter().sum();
        self.histograms.insert(key(labels), (point.count, buckets));
    }

    fn number(&mut self, _: &[(&str, &str)], _: &NumberPoint<'_>) {}

    fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {}

    fn exponential_histogram(&mut self, _: &[(&str, &str)], _: &ExponentialHistogramPoint<'_>) {}
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Requests that together touch every one of `SERIES` label sets once.
fn requests() -> Vec<Vec<u8>> {
    (0..SERIES / SPANS_PER_REQUEST)
        .map(|r| {
            let spans = (0..SPANS_PER_REQUEST)
                .map(|i| {
                    span(
                        &format!("op-{r}-{i}"),
                        2,
                        0,
                        1_000_000 * (i as u64 % 7),
                        vec![],
                    )
                })
                .collect();
            encode(vec![service(&format!("svc-{}", r % 10), spans)])
        })
        .collect()
}

#[test]
fn calls_equal_histogram_counts_in_every_scrape_under_load() {
    let m = SpanMetrics::new(&reference_config()).expect("valid config");
    let requests = requests();
    for r in &requests {
        m.aggregate(r).expect("valid request");
    }
    assert_eq!(m.series_count(), SERIES);

    let done = AtomicBool::new(false);
    let scrapes = std::thread::scope(|s| {
        for part in [0, 1] {
            let (m, requests, done) = (&m, &requests, &done);
            s.spawn(move || {
                // Every series keeps moving for as long as the scrapes run.
                for r in requests.iter().skip(part).step_by(2).cycle() {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    m.aggregate_validated(r).expect("valid");
                }
            });
        }
        // Stops the senders however this thread leaves the scope, a failed assert included.
        let _stop = StopOnDrop(&done);
        let mut scrapes = 0;
        for _ in 0..3 {
            let mut tally = Tally::default();
            m.collect(&mut tally);
            assert_eq!(tally.calls.len(), SERIES);
            assert_eq!(tally.histograms.len(), SERIES);
            let apart: Vec<_> = tally
                .calls
                .iter()
                .filter(|(k, calls)| tally.histograms.get(*k).map(|h| h.0) != Some(**calls))
                .take(3)
                .collect();
            assert!(
                apart.is_empty(),
                "calls and duration count apart: {apart:?}"
            );
            let buckets_apart = tally.histograms.values().filter(|(n, b)| n != b).count();
            assert_eq!(buckets_apart, 0, "series whose buckets do not add up");
            scrapes += 1;
        }
        scrapes
    });
    assert_eq!(scrapes, 3);
}

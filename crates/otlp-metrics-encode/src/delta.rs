//! Delta temporality: what each series reported last, so the next request carries the change.

use std::collections::HashMap;

use redline_pipeline::metrics::HistogramPoint;

/// A series: its family's name and its labels.
type Key = (String, Vec<(String, String)>);

#[derive(Debug, Default)]
pub(crate) struct DeltaState {
    series: HashMap<Key, Last>,
    /// Time of the previous request; 0 before the first.
    last_time: u64,
    /// Counts requests, so series a walk did not report can be forgotten.
    generation: u64,
}

#[derive(Debug)]
struct Last {
    /// The series' own start: a new one means the source restarted it.
    start: u64,
    value: LastValue,
    generation: u64,
}

#[derive(Debug)]
enum LastValue {
    Counter(u64),
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// A histogram point as a delta.
pub(crate) struct HistogramDelta {
    pub start: u64,
    /// Exemplars taken at or before this time were sent already.
    pub since: u64,
    pub bucket_counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

impl DeltaState {
    /// The change of a counter since the previous request: (value, start, exemplars after).
    /// A series seen for the first time, or restarted (a new start, or a lower total),
    /// reports its whole total since its start.
    pub fn counter(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        total: u64,
        start: u64,
    ) -> (u64, u64, u64) {
        let generation = self.generation;
        let last_time = self.last_time;
        let last = self.series.insert(
            key(name, labels),
            Last {
                start,
                value: LastValue::Counter(total),
                generation,
            },
        );
        match last {
            Some(Last {
                start: s,
                value: LastValue::Counter(before),
                ..
            }) if s == start && total >= before => (total - before, last_time, last_time),
            _ => (total, start, 0),
        }
    }

    /// The change of a histogram since the previous request, by the same rules as counters.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        point: &HistogramPoint<'_>,
        start: u64,
    ) -> HistogramDelta {
        let generation = self.generation;
        let last_time = self.last_time;
        let last = self.series.insert(
            key(name, labels),
            Last {
                start,
                value: LastValue::Histogram {
                    bounds: point.bounds.to_vec(),
                    counts: point.bucket_counts.to_vec(),
                    sum: point.sum,
                    count: point.count,
                },
                generation,
            },
        );
        if let Some(Last {
            start: s,
            value:
                LastValue::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                },
            ..
        }) = last
        {
            let continues = s == start
                && bounds == point.bounds
                && counts.len() == point.bucket_counts.len()
                && point.count >= count
                && point.bucket_counts.iter().zip(&counts).all(|(n, b)| n >= b);
            if continues {
                return HistogramDelta {
                    start: last_time,
                    since: last_time,
                    bucket_counts: point
                        .bucket_counts
                        .iter()
                        .zip(&counts)
                        .map(|(n, b)| n - b)
                        .collect(),
                    sum: point.sum - sum,
                    count: point.count - count,
                };
            }
        }
        HistogramDelta {
            start,
            since: 0,
            bucket_counts: point.bucket_counts.to_vec(),
            sum: point.sum,
            count: point.count,
        }
    }

    /// Ends a request made at `time`: series it did not report are forgotten, so a source
    /// that drops series (expiry) does not make this state grow.
    pub fn finish(&mut self, time: u64) {
        let generation = self.generation;
        self.series.retain(|_, last| last.generation == generation);
        self.last_time = time;
        self.generation += 1;
    }
}

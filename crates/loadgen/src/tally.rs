//! loadgen's own count of what it sent: the series a spanmetrics connector must produce from
//! the spans of accepted requests, computed from the generated requests themselves (not from
//! the generator's knobs), so the check does not share assumptions with the model.
//!
//! Each template's contribution is computed once; the run only counts accepted sends per
//! template, and the expected totals are `Σ accepted[i] × contribution[i]` in integers.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use serde::Serialize;

use crate::model::DURATION_QUANTUM_NS;

/// The histogram unit configured in the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum Unit {
    #[serde(rename = "ms")]
    #[value(name = "ms")]
    Ms,
    #[serde(rename = "s")]
    #[value(name = "s")]
    S,
}

impl Unit {
    pub fn nanos(self) -> f64 {
        match self {
            Unit::Ms => 1e6,
            Unit::S => 1e9,
        }
    }

    /// The Prometheus unit suffix of the duration histogram.
    pub fn word(self) -> &'static str {
        match self {
            Unit::Ms => "milliseconds",
            Unit::S => "seconds",
        }
    }
}

/// A configured spanmetrics dimension (`name`, optional `default`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dimension {
    pub name: String,
    pub default: Option<String>,
}

impl std::str::FromStr for Dimension {
    type Err = String;

    /// `cdn.cache.hit` or `cdn.cache.hit=unknown` (with a default).
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, default) = match s.split_once('=') {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (s, None),
        };
        if name.is_empty() {
            return Err("a dimension needs a name".into());
        }
        Ok(Self {
            name: name.to_owned(),
            default,
        })
    }
}

/// What the collector is configured to compute (must match its spanmetrics config).
#[derive(Clone, Debug, Serialize)]
pub struct TallySpec {
    pub dimensions: Vec<Dimension>,
    pub buckets: Vec<f64>,
    pub unit: Unit,
}

/// One series: the calls label set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub service: String,
    pub span_name: String,
    pub kind: i32,
    pub status: i32,
    pub dims: Vec<Option<String>>,
}

/// RED values of one series. `buckets` are per bucket (not cumulative), the last is +Inf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesStats {
    pub calls: u64,
    pub errors: u64,
    pub buckets: Vec<u64>,
    pub sum_ns: u128,
}

impl SeriesStats {
    fn add_scaled(&mut self, other: &SeriesStats, times: u64) {
        self.calls += other.calls * times;
        self.errors += other.errors * times;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b * times;
        }
        self.sum_ns += other.sum_ns * u128::from(times);
    }

    /// The duration sum in `unit`. Exact (as a collector adding the same f64 durations in any
    /// order gets it) when every duration was a multiple of the 1/64 ms quantum.
    pub fn sum(&self, unit: Unit) -> f64 {
        if unit == Unit::Ms && self.sum_ns.is_multiple_of(u128::from(DURATION_QUANTUM_NS)) {
            (self.sum_ns / u128::from(DURATION_QUANTUM_NS)) as f64 / 64.0
        } else {
            self.sum_ns as f64 / unit.nanos()
        }
    }
}

pub type Contribution = HashMap<SeriesKey, SeriesStats>;

/// The series `request` adds to, as the spanmetrics connector computes them.
pub fn contribution(spec: &TallySpec, request: &ExportTraceServiceRequest) -> Contribution {
    let mut out = Contribution::new();
    for rs in &request.resource_spans {
        let res_attrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
        // Spans without service.name are forwarded but not counted.
        let Some(service) = find(res_attrs, "service.name") else {
            continue;
        };
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let dims = spec
                    .dimensions
                    .iter()
                    .map(|d| {
                        find(&span.attributes, &d.name)
                            .or_else(|| find(res_attrs, &d.name))
                            .or_else(|| d.default.clone())
                    })
                    .collect();
                let status = span.status.as_ref().map_or(0, |s| s.code);
                let key = SeriesKey {
                    service: service.clone(),
                    span_name: span.name.clone(),
                    kind: if (0..=5).contains(&span.kind) {
                        span.kind
                    } else {
                        0
                    },
                    status: if (0..=2).contains(&status) { status } else { 0 },
                    dims,
                };
                let ns = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano);
                let value = ns as f64 / spec.unit.nanos();
                let bucket = spec.buckets.partition_point(|b| *b < value);
                let e = out.entry(key).or_insert_with(|| SeriesStats {
                    buckets: vec![0; spec.buckets.len() + 1],
                    ..Default::default()
                });
                e.calls += 1;
                e.errors += u64::from(status == 2);
                if let Some(b) = e.buckets.get_mut(bucket) {
                    *b += 1;
                }
                e.sum_ns += u128::from(ns);
            }
        }
    }
    out
}

/// An attribute's value as the spanmetrics connector stringifies it for a label.
fn find(attrs: &[KeyValue], key: &str) -> Option<String> {
    let kv = attrs.iter().find(|kv| kv.key == key)?;
    Some(match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        // The generator produces no doubles, bytes or lists in attributes a dimension could
        // name; this mirrors Go for plain cases only.
        Some(any_value::Value::DoubleValue(f)) => f.to_string(),
        Some(other) => format!("{other:?}"),
    })
}

/// Totals over a run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub series: HashMap<SeriesKey, SeriesStats>,
}

impl Tally {
    /// Adds `times` accepted sends of a request with contribution `c`.
    pub fn add(&mut self, c: &Contribution, times: u64) {
        if times == 0 {
            return;
        }
        for (k, v) in c {
            self.series
                .entry(k.clone())
                .or_default()
                .add_scaled(v, times);
        }
    }

    pub fn spans(&self) -> u64 {
        self.series.values().map(|s| s.calls).sum()
    }

    pub fn errors(&self) -> u64 {
        self.series.values().map(|s| s.errors).sum()
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;

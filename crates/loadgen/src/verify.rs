//! `--verify`: loadgen's tally against what a spanmetrics pipeline exposes to Prometheus.
//!
//! Works on deltas: a scrape taken before sending is the baseline, so a collector that has
//! already counted other traffic can be checked as long as nothing else sends spans of the
//! services loadgen generates (`--service-prefix` keeps them apart).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::expo::{escape, Sample};
use crate::tally::{SeriesKey, Tally, TallySpec, Unit};

/// A label set, sorted by name (without `le`).
pub type Labels = Vec<(String, String)>;

/// The sample names of the spanmetrics families for a namespace and unit.
#[derive(Clone, Debug, Serialize)]
pub struct Names {
    pub calls: String,
    pub errors: String,
    pub bucket: String,
    pub sum: String,
    pub count: String,
}

impl Names {
    /// `namespace` as configured (`traces.spanmetrics`) or already translated.
    pub fn new(namespace: &str, unit: Unit) -> Self {
        let ns: Vec<&str> = namespace
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
            .filter(|t| !t.is_empty())
            .collect();
        let p = if ns.is_empty() {
            String::new()
        } else {
            format!("{}_", ns.join("_"))
        };
        let d = format!("{p}duration_{}", unit.word());
        Self {
            calls: format!("{p}calls_total"),
            errors: format!("{p}errors_total"),
            bucket: format!("{d}_bucket"),
            sum: format!("{d}_sum"),
            count: format!("{d}_count"),
        }
    }
}

/// An OTel attribute key as a Prometheus label name (otelcol `NormalizeLabel`).
pub fn label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    s
}

pub fn kind_label(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        0 => "SPAN_KIND_UNSPECIFIED",
        // Outside the enum: an empty label value, as otelcol writes it.
        _ => "",
    }
}

pub fn status_label(status: i32) -> &'static str {
    match status {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        0 => "STATUS_CODE_UNSET",
        _ => "",
    }
}

fn labels_of(spec: &TallySpec, k: &SeriesKey, with_status: bool) -> Labels {
    let mut l: Labels = vec![
        ("service_name".into(), k.service.clone()),
        ("span_name".into(), k.span_name.clone()),
        ("span_kind".into(), kind_label(k.kind).into()),
    ];
    if with_status {
        l.push(("status_code".into(), status_label(k.status).into()));
    }
    for (d, v) in spec.dimensions.iter().zip(&k.dims) {
        if let Some(v) = v {
            l.push((label_name(&d.name), v.clone()));
        }
    }
    l.sort();
    l
}

/// What the collector must show (as deltas over the baseline).
#[derive(Debug, Default)]
pub struct Expected {
    pub calls: HashMap<Labels, u64>,
    pub errors: HashMap<Labels, u64>,
    /// Cumulative bucket counts (one per bound, then +Inf) and the sum.
    pub hist: HashMap<Labels, (Vec<u64>, f64)>,
    pub services: HashSet<String>,
    pub spans: u64,
    pub errors_total: u64,
    pub buckets: Vec<f64>,
}

impl Expected {
    pub fn new(spec: &TallySpec, tally: &Tally, services: HashSet<String>) -> Self {
        let mut e = Expected {
            services,
            buckets: spec.buckets.clone(),
            ..Default::default()
        };
        for (k, s) in &tally.series {
            if s.calls == 0 {
                continue;
            }
            let labels = labels_of(spec, k, true);
            *e.calls.entry(labels.clone()).or_default() += s.calls;
            *e.errors.entry(labels_of(spec, k, false)).or_default() += s.errors;
            let mut cum = Vec::with_capacity(s.buckets.len());
            let mut acc = 0u64;
            for b in &s.buckets {
                acc += b;
                cum.push(acc);
            }
            e.hist.insert(labels, (cum, s.sum(spec.unit)));
            e.spans += s.calls;
            e.errors_total += s.errors;
        }
        e
    }
}

/// The spanmetrics samples of one scrape, by label set.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    pub calls: HashMap<Labels, f64>,
    pub errors: HashMap<Labels, f64>,
    pub buckets: HashMap<Labels, Vec<(f64, f64)>>,
    pub sum: HashMap<Labels, f64>,
    pub count: HashMap<Labels, f64>,
}

impl Scrape {
    /// Indexes `samples`; labels in `ignore` (added by a scraper or exporter) are dropped.
    pub fn new(samples: Vec<Sample>, names: &Names, ignore: &[String]) -> Self {
        let mut s = Scrape::default();
        for sample in samples {
            let mut le = None;
            let mut labels: Labels = Vec::with_capacity(sample.labels.len());
            for (k, v) in sample.labels {
                if k == "le" {
                    le = crate::expo::parse_value(&v);
                } else if !ignore.contains(&k) {
                    labels.push((k, v));
                }
            }
            labels.sort();
            let n = &sample.name;
            if *n == names.calls {
                s.calls.insert(labels, sample.value);
            } else if *n == names.errors {
                s.errors.insert(labels, sample.value);
            } else if *n == names.sum {
                s.sum.insert(labels, sample.value);
            } else if *n == names.count {
                s.count.insert(labels, sample.value);
            } else if *n == names.bucket {
                if let Some(le) = le {
                    s.buckets
                        .entry(labels)
                        .or_default()
                        .push((le, sample.value));
                }
            }
        }
        s
    }
}

/// One difference between the tally and the collector.
#[derive(Clone, Debug, Serialize)]
pub struct Mismatch {
    pub series: String,
    pub expected: f64,
    pub got: f64,
    pub problem: &'static str,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (expected {}, got {})",
            self.series, self.problem, self.expected, self.got
        )
    }
}

/// The outcome of one comparison.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub series_expected: usize,
    pub values_checked: u64,
    pub mismatch_count: u64,
    pub mismatches: Vec<Mismatch>,
    /// Σ calls deltas over loadgen's services (what the collector counted); reported as
    /// integers by the run report.
    #[serde(skip)]
    pub counted_spans: f64,
    #[serde(skip)]
    pub counted_errors: f64,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mismatch_count == 0
    }
}

fn render(metric: &str, labels: &Labels, le: Option<&str>) -> String {
    let mut inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        inner.push(format!("le=\"{le}\""));
    }
    format!("{metric}{{{}}}", inner.join(","))
}

struct Checker {
    v: Verdict,
    keep: usize,
}

impl Checker {
    fn check(&mut self, series: impl FnOnce() -> String, expected: f64, got: f64, exact: bool) {
        self.v.values_checked += 1;
        let same = if exact {
            expected == got
        } else {
            (expected - got).abs() <= 1e-9 * got.abs().max(1.0)
        };
        if !same {
            self.v.mismatch_count += 1;
            if self.v.mismatches.len() < self.keep {
                let problem = if got == 0.0 { "missing" } else { "wrong value" };
                self.v.mismatches.push(Mismatch {
                    series: series(),
                    expected,
                    got,
                    problem,
                });
            }
        }
    }

    fn unexpected(&mut self, metric: &str, labels: &Labels, got: f64) {
        self.v.values_checked += 1;
        self.v.mismatch_count += 1;
        if self.v.mismatches.len() < self.keep {
            self.v.mismatches.push(Mismatch {
                series: render(metric, labels, None),
                expected: 0.0,
                got,
                problem: "series loadgen never generated",
            });
        }
    }
}

fn delta(cur: &HashMap<Labels, f64>, base: &HashMap<Labels, f64>, k: &Labels) -> f64 {
    cur.get(k).copied().unwrap_or(0.0) - base.get(k).copied().unwrap_or(0.0)
}

fn ours(services: &HashSet<String>, l: &Labels) -> bool {
    l.iter()
        .any(|(k, v)| k == "service_name" && services.contains(v))
}

/// Compares `current - baseline` with `exp`, keeping the first `keep` mismatches.
pub fn compare(
    exp: &Expected,
    names: &Names,
    baseline: &Scrape,
    current: &Scrape,
    keep: usize,
) -> Verdict {
    let mut c = Checker {
        v: Verdict {
            series_expected: exp.calls.len(),
            ..Default::default()
        },
        keep,
    };
    let mut keys: Vec<&Labels> = exp.calls.keys().collect();
    keys.sort();
    for k in keys {
        let calls = exp.calls.get(k).copied().unwrap_or(0) as f64;
        let d = delta(&current.calls, &baseline.calls, k);
        c.check(|| render(&names.calls, k, None), calls, d, true);
        let d = delta(&current.count, &baseline.count, k);
        c.check(|| render(&names.count, k, None), calls, d, true);
        if let Some((cum, sum)) = exp.hist.get(k) {
            let base_sum = baseline.sum.get(k).copied().unwrap_or(0.0);
            let d = delta(&current.sum, &baseline.sum, k);
            c.check(|| render(&names.sum, k, None), *sum, d, base_sum == 0.0);
            let empty = Vec::new();
            let cur_b = current.buckets.get(k).unwrap_or(&empty);
            let base_b = baseline.buckets.get(k).unwrap_or(&empty);
            let at = |v: &Vec<(f64, f64)>, le: f64| {
                v.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, x)| *x)
            };
            for (i, want) in cum.iter().enumerate() {
                let le = exp.buckets.get(i).copied().unwrap_or(f64::INFINITY);
                let d = at(cur_b, le) - at(base_b, le);
                let le_s = if le.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    le.to_string()
                };
                c.check(
                    || render(&names.bucket, k, Some(&le_s)),
                    *want as f64,
                    d,
                    true,
                );
            }
        }
    }
    let mut ekeys: Vec<&Labels> = exp.errors.keys().collect();
    ekeys.sort();
    for k in ekeys {
        let want = exp.errors.get(k).copied().unwrap_or(0) as f64;
        let d = delta(&current.errors, &baseline.errors, k);
        c.check(|| render(&names.errors, k, None), want, d, true);
    }
    // Anything else that moved for loadgen's services was never sent.
    for (k, v) in &current.calls {
        if ours(&exp.services, k) {
            let d = v - baseline.calls.get(k).copied().unwrap_or(0.0);
            c.v.counted_spans += d;
            if d != 0.0 && !exp.calls.contains_key(k) {
                c.unexpected(&names.calls, k, d);
            }
        }
    }
    for (k, v) in &current.errors {
        if ours(&exp.services, k) {
            let d = v - baseline.errors.get(k).copied().unwrap_or(0.0);
            c.v.counted_errors += d;
            if d != 0.0 && !exp.errors.contains_key(k) {
                c.unexpected(&names.errors, k, d);
            }
        }
    }
    c.v
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;

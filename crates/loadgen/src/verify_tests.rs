use std::collections::HashSet;
use std::fmt::Write;

use super::*;
use crate::expo;
use crate::model::DEFAULT_BUCKETS_MS;
use crate::tally::{Dimension, SeriesStats};

#[test]
fn names_and_labels() {
    let n = Names::new("traces.spanmetrics", Unit::Ms);
    assert_eq!(n.calls, "traces_spanmetrics_calls_total");
    assert_eq!(n.errors, "traces_spanmetrics_errors_total");
    assert_eq!(n.bucket, "traces_spanmetrics_duration_milliseconds_bucket");
    assert_eq!(
        Names::new("traces_spanmetrics", Unit::S).sum,
        "traces_spanmetrics_duration_seconds_sum"
    );
    assert_eq!(
        Names::new("", Unit::Ms).count,
        "duration_milliseconds_count"
    );
    assert_eq!(label_name("cdn.cache.hit"), "cdn_cache_hit");
    assert_eq!(label_name("9lives"), "key_9lives");
    assert_eq!(label_name("_x"), "key_x");
    assert_eq!(label_name("__x"), "__x");
}

fn spec() -> TallySpec {
    TallySpec {
        dimensions: vec![Dimension {
            name: "cdn.cache.hit".into(),
            default: None,
        }],
        buckets: DEFAULT_BUCKETS_MS.to_vec(),
        unit: Unit::Ms,
    }
}

fn tally() -> Tally {
    let mut t = Tally::default();
    let mut add =
        |name: &str, status: i32, hit: Option<&str>, calls: u64, bucket: usize, sum_ns: u128| {
            let mut buckets = vec![0; 17];
            buckets[bucket] = calls;
            t.series.insert(
                SeriesKey {
                    service: "edge".into(),
                    span_name: name.into(),
                    kind: 2,
                    status,
                    dims: vec![hit.map(str::to_owned)],
                },
                SeriesStats {
                    calls,
                    errors: if status == 2 { calls } else { 0 },
                    buckets,
                    sum_ns,
                },
            );
        };
    add("SELECT \"sku\" FROM t", 0, Some("true"), 5, 4, 50_000_000);
    add(
        "SELECT \"sku\" FROM t",
        2,
        Some("true"),
        2,
        16,
        40_000_015_625,
    );
    add("re ^/v\\d+/", 1, None, 3, 0, 46_875);
    t
}

/// Renders `exp` (plus `extra`) as a Prometheus exposition the way an exporter would.
fn exposition(exp: &Expected, n: &Names, extra: &str) -> String {
    let lbl = |l: &Labels, le: Option<&str>| {
        let mut parts: Vec<String> = l
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", expo::escape(v)))
            .collect();
        if let Some(le) = le {
            parts.push(format!("le=\"{le}\""));
        }
        format!("{{{}}}", parts.join(","))
    };
    let mut o = String::from("# HELP x y\n# TYPE x counter\n");
    for (l, c) in &exp.calls {
        let _ = writeln!(o, "{}{} {c}", n.calls, lbl(l, None));
        let _ = writeln!(o, "{}{} {c}", n.count, lbl(l, None));
        let (cum, sum) = &exp.hist[l];
        let _ = writeln!(o, "{}{} {sum}", n.sum, lbl(l, None));
        for (i, v) in cum.iter().enumerate() {
            let le = exp
                .buckets
                .get(i)
                .map_or("+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(o, "{}{} {v}", n.bucket, lbl(l, Some(&le)));
        }
    }
    for (l, e) in &exp.errors {
        let _ = writeln!(o, "{}{} {e}", n.errors, lbl(l, None));
    }
    o + extra
}

fn scrape(text: &str, n: &Names) -> Scrape {
    Scrape::new(expo::parse(text).expect("parses"), n, &[])
}

fn expected() -> (Expected, Names) {
    let services: HashSet<String> = ["edge".to_owned()].into();
    (
        Expected::new(&spec(), &tally(), services),
        Names::new("traces.spanmetrics", Unit::Ms),
    )
}

#[test]
fn a_matching_collector_passes() {
    let (exp, n) = expected();
    assert_eq!(exp.spans, 10);
    assert_eq!(exp.errors_total, 2);
    // Errors are keyed without status_code: the two SELECT series share one.
    assert_eq!(exp.errors.len(), 2);
    let other = "traces_spanmetrics_calls_total{service_name=\"someone-else\",span_name=\"x\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_OK\"} 99\n";
    let v = compare(
        &exp,
        &n,
        &Scrape::default(),
        &scrape(&exposition(&exp, &n, other), &n),
        10,
    );
    assert!(v.ok(), "{:?}", v.mismatches);
    assert_eq!(v.series_expected, 3);
    assert_eq!(v.counted_spans, 10.0);
    assert_eq!(v.counted_errors, 2.0);
    // 3 series × (calls, count, sum, 17 buckets) + 2 errors series.
    assert_eq!(v.values_checked, 3 * 20 + 2);
}

#[test]
fn deltas_over_a_baseline() {
    let (exp, n) = expected();
    let base_text = exposition(&exp, &n, "");
    // After: every value doubled (the same traffic counted again on top of the baseline).
    let doubled: String = base_text
        .lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((head, v)) if !l.starts_with('#') => {
                format!("{head} {}\n", v.parse::<f64>().expect("number") * 2.0)
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let v = compare(&exp, &n, &scrape(&base_text, &n), &scrape(&doubled, &n), 10);
    assert!(v.ok(), "{:?}", v.mismatches);
    // Absolute comparison of the doubled values fails.
    assert!(!compare(&exp, &n, &Scrape::default(), &scrape(&doubled, &n), 10).ok());
}

#[test]
fn every_kind_of_difference_is_reported() {
    let (exp, n) = expected();
    let good = exposition(&exp, &n, "");
    let cases: [(&str, &str, &str); 4] = [
        // One bucket off by one (escaped span name in the label).
        (
            "traces_spanmetrics_duration_milliseconds_bucket{cdn_cache_hit=\"true\",service_name=\"edge\",span_kind=\"SPAN_KIND_SERVER\",span_name=\"SELECT \\\"sku\\\" FROM t\",status_code=\"STATUS_CODE_UNSET\",le=\"10\"} 5",
            " 4",
            "wrong value",
        ),
        // A sum that is not exact.
        (
            "traces_spanmetrics_duration_milliseconds_sum{cdn_cache_hit=\"true\",service_name=\"edge\",span_kind=\"SPAN_KIND_SERVER\",span_name=\"SELECT \\\"sku\\\" FROM t\",status_code=\"STATUS_CODE_UNSET\"} 50",
            " 50.000001",
            "wrong value",
        ),
        // A series that vanished.
        (
            "traces_spanmetrics_calls_total{service_name=\"edge\",span_kind=\"SPAN_KIND_SERVER\",span_name=\"re ^/v\\\\d+/\",status_code=\"STATUS_CODE_OK\"} 3",
            "",
            "missing",
        ),
        // errors_total off.
        (
            "traces_spanmetrics_errors_total{cdn_cache_hit=\"true\",service_name=\"edge\",span_kind=\"SPAN_KIND_SERVER\",span_name=\"SELECT \\\"sku\\\" FROM t\"} 2",
            " 1",
            "wrong value",
        ),
    ];
    for (line, replacement, problem) in cases {
        assert!(good.contains(line), "exposition lacks {line}\n{good}");
        let changed = if replacement.is_empty() {
            good.replace(&format!("{line}\n"), "")
        } else {
            let head = line.rsplit_once(' ').expect("value").0;
            good.replace(line, &format!("{head}{replacement}"))
        };
        let v = compare(&exp, &n, &Scrape::default(), &scrape(&changed, &n), 10);
        assert_eq!(v.mismatch_count, 1, "{line}: {:?}", v.mismatches);
        assert_eq!(v.mismatches[0].problem, problem);
    }
    // A series of loadgen's service that it never generated.
    let extra = "traces_spanmetrics_calls_total{service_name=\"edge\",span_name=\"ghost\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_OK\"} 1\n";
    let v = compare(
        &exp,
        &n,
        &Scrape::default(),
        &scrape(&exposition(&exp, &n, extra), &n),
        10,
    );
    assert_eq!(v.mismatch_count, 1);
    assert_eq!(v.mismatches[0].problem, "series loadgen never generated");
    // Only the first `keep` mismatches are kept, all are counted.
    let v = compare(&exp, &n, &Scrape::default(), &Scrape::default(), 2);
    assert_eq!(v.mismatches.len(), 2);
    assert!(v.mismatch_count > 40);
}

#[test]
fn ignored_labels_are_dropped() {
    let (exp, n) = expected();
    let text = exposition(&exp, &n, "").replace("service_name=", "job=\"x\",service_name=");
    let with_job = Scrape::new(expo::parse(&text).expect("parses"), &n, &[]);
    assert!(!compare(&exp, &n, &Scrape::default(), &with_job, 1).ok());
    let dropped = Scrape::new(expo::parse(&text).expect("parses"), &n, &["job".to_owned()]);
    assert!(compare(&exp, &n, &Scrape::default(), &dropped, 1).ok());
}

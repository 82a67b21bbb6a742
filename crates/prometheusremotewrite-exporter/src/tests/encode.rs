//! The encoding, decoded back with the prost messages: names, labels, values, timestamps,
//! exemplars, splitting, metadata.

use std::sync::Arc;

use redline_pipeline::MetricsSource;

use super::*;
use crate::encode::{encode, format_le, EncodeOptions};
use crate::proto::MetricType;

const TS: i64 = 1_700_000_123_456;

fn options() -> EncodeOptions {
    EncodeOptions {
        namespace: String::new(),
        add_metric_suffixes: true,
        external_labels: vec![
            ("env".into(), "prod".into()),
            ("instance".into(), "redline-1".into()),
        ],
        send_metadata: false,
        max_request_bytes: 3_000_000,
        export_created: false,
    }
}

fn sources(n: usize) -> Vec<Arc<dyn MetricsSource>> {
    (0..n)
        .map(|_| Arc::new(Spanlike::new(17)) as Arc<dyn MetricsSource>)
        .collect()
}

fn s(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn decoded(enc: &crate::Encoded) -> (BTreeMap<String, Series>, Vec<MetricMetadata>) {
    let reqs: Vec<WriteRequest> = enc.requests.iter().map(|r| decode(&r.body)).collect();
    series_of(&reqs)
}

#[test]
fn golden_series_labels_values_and_exemplars() {
    let enc = encode(&sources(1), &options(), TS);
    assert_eq!(enc.requests.len(), 1);
    assert_eq!(enc.timeseries, 2 + 6 + 1);
    assert_eq!(enc.duplicates, 0);
    let (got, meta) = decoded(&enc);
    assert!(meta.is_empty(), "send_metadata is off");

    let base = [
        ("env", "prod"),
        ("instance", "redline-1"),
        ("service_name", "checkout"),
        ("span_kind", "SPAN_KIND_SERVER"),
        ("span_name", "GET /cart"),
        ("status_code", "STATUS_CODE_UNSET"),
    ];
    let with = |name: &str, extra: &[(&str, &str)]| {
        let mut v = vec![("__name__", name)];
        v.extend_from_slice(extra);
        v.extend_from_slice(&base);
        let mut v = s(&v);
        v.sort();
        v
    };
    let mut want: Vec<(Vec<(String, String)>, f64)> = vec![
        (
            with(
                "traces_spanmetrics_calls_total",
                &[("cdn_cache_hit", "true")],
            ),
            17.0,
        ),
        (
            s(&[
                ("HTTP_Method", "POST"),
                ("__name__", "traces_spanmetrics_calls_total"),
                ("env", "prod"),
                ("instance", "redline-1"),
                ("service_name", "billing"),
            ]),
            3.0,
        ),
        (
            s(&[
                ("__name__", "queue_utilization_ratio"),
                ("env", "prod"),
                ("instance", "own"),
            ]),
            0.25,
        ),
        (
            with("traces_spanmetrics_duration_milliseconds_sum", &[]),
            80123.25,
        ),
        (
            with("traces_spanmetrics_duration_milliseconds_count", &[]),
            7.0,
        ),
    ];
    for (le, v) in [("2", 1.0), ("10", 3.0), ("15000.5", 3.0), ("+Inf", 7.0)] {
        want.push((
            with(
                "traces_spanmetrics_duration_milliseconds_bucket",
                &[("le", le)],
            ),
            v,
        ));
    }
    assert_eq!(got.len(), want.len(), "{:#?}", got.keys());
    for (labels, value) in &want {
        let k = key(labels);
        let series = got
            .get(&k)
            .unwrap_or_else(|| panic!("missing {k}; got {:#?}", got.keys()));
        // Sorted by name on the wire, as the remote-write spec requires.
        assert_eq!(&series.labels, labels, "{k}");
        assert_eq!(series.samples, vec![(*value, TS)], "{k}");
    }

    let calls = with(
        "traces_spanmetrics_calls_total",
        &[("cdn_cache_hit", "true")],
    );
    assert_eq!(
        got[&key(&calls)].exemplars,
        vec![(
            s(&[("trace_id", TRACE_HEX), ("span_id", SPAN_HEX)]),
            1.0,
            1_700_000_000_500
        )]
    );
    let bucket = |le: &str| {
        got[&key(&with(
            "traces_spanmetrics_duration_milliseconds_bucket",
            &[("le", le)],
        ))]
            .exemplars
            .clone()
    };
    assert_eq!(
        bucket("10"),
        vec![(
            s(&[("trace_id", TRACE_HEX), ("span_id", SPAN_HEX)]),
            7.5,
            1_700_000_001_000
        )]
    );
    assert_eq!(bucket("+Inf").len(), 1);
    assert_eq!(bucket("+Inf")[0].1, 20000.0);
    assert!(bucket("2").is_empty() && bucket("15000.5").is_empty());
}

#[test]
fn namespace_and_suffixes_follow_the_scrape_exporter() {
    let mut o = options();
    o.namespace = "redline".into();
    o.external_labels.clear();
    let (got, _) = decoded(&encode(&sources(1), &o, TS));
    let names: std::collections::BTreeSet<&str> =
        got.values().filter_map(|s| s.label("__name__")).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec![
            "redline_queue_utilization_ratio",
            "redline_traces_spanmetrics_calls_total",
            "redline_traces_spanmetrics_duration_milliseconds_bucket",
            "redline_traces_spanmetrics_duration_milliseconds_count",
            "redline_traces_spanmetrics_duration_milliseconds_sum",
        ]
    );
    o.add_metric_suffixes = false;
    let (got, _) = decoded(&encode(&sources(1), &o, TS));
    assert!(got
        .values()
        .any(|s| s.label("__name__") == Some("redline_traces_spanmetrics_calls")));
    assert!(got
        .values()
        .any(|s| s.label("__name__") == Some("redline_traces_spanmetrics_duration_bucket")));
}

#[test]
fn requests_split_at_the_byte_limit_without_losing_series() {
    let whole = encode(&sources(1), &options(), TS);
    let (all, _) = decoded(&whole);
    let mut o = options();
    o.max_request_bytes = 300;
    let split = encode(&sources(1), &o, TS);
    assert!(
        split.requests.len() > 3,
        "{} requests",
        split.requests.len()
    );
    assert_eq!(split.timeseries, whole.timeseries);
    assert_eq!(
        split.requests.iter().map(|r| r.timeseries).sum::<usize>(),
        whole.timeseries
    );
    for r in &split.requests {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&r.body)
            .expect("snappy");
        let n = decode(&r.body).timeseries.len();
        assert_eq!(n, r.timeseries);
        // Only a request holding a single (oversized) series may exceed the limit.
        assert!(
            raw.len() <= 300 || n == 1,
            "{} bytes, {n} series",
            raw.len()
        );
    }
    assert_eq!(decoded(&split).0, all);
    assert_eq!(split.uncompressed_bytes, whole.uncompressed_bytes);
}

#[test]
fn a_metric_from_two_sources_is_sent_once() {
    let enc = encode(&sources(2), &options(), TS);
    assert_eq!(
        enc.duplicates, 4,
        "two calls series, one histogram, one gauge"
    );
    assert_eq!(
        decoded(&enc).0,
        decoded(&encode(&sources(1), &options(), TS)).0
    );
}

#[test]
fn metadata_names_every_family_once() {
    let mut o = options();
    o.send_metadata = true;
    let (_, meta) = decoded(&encode(&sources(2), &o, TS));
    let got: Vec<(i32, &str, &str, &str)> = meta
        .iter()
        .map(|m| {
            (
                m.r#type,
                m.metric_family_name.as_str(),
                m.help.as_str(),
                m.unit.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                MetricType::Counter as i32,
                "traces_spanmetrics_calls_total",
                "Number of spans, per label set.",
                ""
            ),
            (
                MetricType::Histogram as i32,
                "traces_spanmetrics_duration_milliseconds",
                "Span durations.",
                "milliseconds"
            ),
            (
                MetricType::Gauge as i32,
                "queue_utilization_ratio",
                "A gauge.",
                ""
            ),
        ]
    );
}

#[test]
fn le_values_are_go_f_formatting() {
    for (v, want) in [
        (2.0, "2"),
        (0.5, "0.5"),
        (15000.0, "15000"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (0.1 + 0.2, "0.30000000000000004"),
        (f64::INFINITY, "+Inf"),
    ] {
        assert_eq!(format_le(v), want, "{v}");
    }
}

#[test]
fn nothing_to_send_makes_no_request() {
    struct Empty;
    impl MetricsSource for Empty {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            sink.family(&FamilyDesc {
                name: "unused",
                description: "",
                unit: "1",
                kind: MetricKind::Counter,
            });
        }
    }
    let enc = encode(&[Arc::new(Empty) as Arc<dyn MetricsSource>], &options(), TS);
    assert!(enc.requests.is_empty());
    assert_eq!(enc.timeseries, 0);
}

/// One counter and one histogram started at `START_NS`, and a counter with no start time.
struct Started;

const START_NS: u64 = 1_699_999_000_123_456_789;

impl MetricsSource for Started {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: "calls",
            description: "",
            unit: "1",
            kind: MetricKind::Counter,
        });
        sink.counter(&[("span.name", "a")], 5, START_NS, None);
        sink.counter(&[("span.name", "unknown start")], 2, 0, None);
        sink.family(&FamilyDesc {
            name: "duration",
            description: "",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        sink.histogram(
            &[("span.name", "a")],
            &HistogramPoint {
                bounds: &[1.0],
                bucket_counts: &[1, 1],
                sum: 3.0,
                count: 2,
                start_time_unix_nano: START_NS,
                time_unix_nano: 0,
                exemplars: &[],
            },
        );
    }
}

#[test]
fn created_series_carry_the_start_time_in_ms_as_otelcol_writes_them() {
    let source: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Started)];
    let plain = EncodeOptions {
        external_labels: Vec::new(),
        ..options()
    };
    let without = encode(&source, &plain, TS);
    let (got, _) = decoded(&without);
    assert!(
        got.keys().all(|k| !k.contains("_created")),
        "off by default: {:#?}",
        got.keys()
    );

    let with_created = EncodeOptions {
        export_created: true,
        ..plain
    };
    let enc = encode(&source, &with_created, TS);
    assert_eq!(enc.timeseries, without.timeseries + 2);
    let (got, _) = decoded(&enc);
    let start_ms = (START_NS / 1_000_000) as f64;
    for name in ["calls_total_created", "duration_milliseconds_created"] {
        let k = key(&s(&[("__name__", name), ("span_name", "a")]));
        let series = got
            .get(&k)
            .unwrap_or_else(|| panic!("missing {k}; got {:#?}", got.keys()));
        assert_eq!(series.samples, vec![(start_ms, TS)], "{k}");
    }
    let unknown = key(&s(&[
        ("__name__", "calls_total_created"),
        ("span_name", "unknown start"),
    ]));
    assert!(!got.contains_key(&unknown), "no start time, no _created");
}

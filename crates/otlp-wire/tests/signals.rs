//! Hand-built metrics and logs requests: counts, oneof merging, errors (what and where),
//! wire types, packed scalars and the recursion limit, each checked against prost too.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used)]

mod support;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, summary_data_point::ValueAtQuantile,
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint,
};
use prost::Message;
use redline_otlp_wire::{
    validate_logs, validate_metrics, LogsStats, MetricsStats, WireErrorKind, WireType,
};
use support::{key, ld, wrap, wrap_path};

fn metrics_request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: None,
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn logs_request(log_records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn metric(name: &str, data: Option<Data>) -> Metric {
    Metric {
        name: name.into(),
        data,
        ..Metric::default()
    }
}

fn gauge(points: usize) -> Data {
    Data::Gauge(Gauge {
        data_points: vec![NumberDataPoint::default(); points],
    })
}

fn sum(points: usize) -> Data {
    Data::Sum(Sum {
        data_points: vec![NumberDataPoint::default(); points],
        aggregation_temporality: 2,
        is_monotonic: true,
    })
}

/// The verdicts of prost and of the validator, which must agree.
fn metrics_verdict(bytes: &[u8]) -> Result<MetricsStats, redline_otlp_wire::WireError> {
    let ours = validate_metrics(bytes);
    let theirs = ExportMetricsServiceRequest::decode(bytes);
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours {ours:?} theirs {theirs:?}"
    );
    ours
}

fn logs_verdict(bytes: &[u8]) -> Result<LogsStats, redline_otlp_wire::WireError> {
    let ours = validate_logs(bytes);
    let theirs = ExportLogsServiceRequest::decode(bytes);
    assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours {ours:?} theirs {theirs:?}"
    );
    ours
}

#[test]
fn empty_requests_count_nothing() {
    assert_eq!(metrics_verdict(&[]).unwrap(), MetricsStats::default());
    assert_eq!(logs_verdict(&[]).unwrap(), LogsStats::default());
    // Envelopes without content.
    let stats = metrics_verdict(&metrics_request(vec![]).encode_to_vec()).unwrap();
    assert_eq!(
        stats,
        MetricsStats {
            resource_metrics: 1,
            scope_metrics: 1,
            metrics: 0,
            data_points: 0
        }
    );
    let stats = logs_verdict(&logs_request(vec![]).encode_to_vec()).unwrap();
    assert_eq!(
        stats,
        LogsStats {
            resource_logs: 1,
            scope_logs: 1,
            log_records: 0
        }
    );
}

#[test]
fn metric_without_data_counts_zero_points() {
    let req = metrics_request(vec![metric("no.data", None), metric("g", Some(gauge(2)))]);
    let stats = metrics_verdict(&req.encode_to_vec()).unwrap();
    assert_eq!(stats.metrics, 2);
    assert_eq!(stats.data_points, 2);
    // Data of every kind but without points.
    let empty = [
        gauge(0),
        sum(0),
        Data::Summary(Summary::default()),
        Data::Histogram(Histogram::default()),
        Data::ExponentialHistogram(ExponentialHistogram::default()),
    ];
    let req = metrics_request(empty.into_iter().map(|d| metric("e", Some(d))).collect());
    let stats = metrics_verdict(&req.encode_to_vec()).unwrap();
    assert_eq!((stats.metrics, stats.data_points), (5, 0));
}

#[test]
fn every_metric_kind_counts_its_points() {
    let req = metrics_request(vec![
        metric("gauge", Some(gauge(1))),
        metric("sum", Some(sum(2))),
        metric(
            "histogram",
            Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![0.5, 1.0],
                        exemplars: vec![Exemplar::default()],
                        sum: Some(1.5),
                        ..HistogramDataPoint::default()
                    };
                    3
                ],
                aggregation_temporality: 1,
            })),
        ),
        metric(
            "exponential",
            Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![
                    ExponentialHistogramDataPoint {
                        scale: -3,
                        positive: Some(Buckets {
                            offset: -2,
                            bucket_counts: vec![u64::MAX, 0, 7],
                        }),
                        negative: Some(Buckets::default()),
                        ..ExponentialHistogramDataPoint::default()
                    };
                    4
                ],
                aggregation_temporality: 2,
            })),
        ),
        metric(
            "summary",
            Some(Data::Summary(Summary {
                data_points: vec![
                    SummaryDataPoint {
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.99,
                            value: 12.0,
                        }],
                        ..SummaryDataPoint::default()
                    };
                    5
                ],
            })),
        ),
    ]);
    let stats = metrics_verdict(&req.encode_to_vec()).unwrap();
    assert_eq!(stats.metrics, 5);
    assert_eq!(stats.data_points, 1 + 2 + 3 + 4 + 5);
}

/// A metric whose `data` oneof occurs several times: protobuf keeps the last variant and
/// merges consecutive occurrences of it, so the count is that of the last run.
#[test]
fn repeated_data_oneof_counts_like_prost() {
    let occurrence = |d: Data| metric("", Some(d)).encode_to_vec();
    let cases: &[(&[Data], usize)] = &[
        (&[], 0),
        // Same variant twice: data points concatenate.
        (&[gauge(2), gauge(3)], 5),
        // A new variant replaces the old one.
        (&[gauge(2), sum(1)], 1),
        (&[sum(2), gauge(1), sum(3)], 3),
        (&[gauge(2), sum(1), sum(3)], 4),
        (&[sum(2), sum(0)], 2),
        (&[sum(2), gauge(0)], 0),
    ];
    for (occurrences, want) in cases {
        let body: Vec<u8> = occurrences.iter().cloned().flat_map(occurrence).collect();
        let bytes = wrap_path(&[1, 2, 2], &body);
        let stats = metrics_verdict(&bytes).unwrap();
        let decoded = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            decoded.resource_metrics[0].scope_metrics[0].metrics.len(),
            1
        );
        assert_eq!(stats.data_points, *want, "{occurrences:?}");
        assert_eq!(stats.metrics, 1);
    }
}

#[test]
fn invalid_utf8_in_a_metric_name() {
    let mut bytes =
        metrics_request(vec![metric("ok", None), metric("bad\u{e9}", None)]).encode_to_vec();
    // "é" is c3 a9: cut it into a lone continuation byte.
    let pos = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
    bytes[pos] = b'x';
    let err = metrics_verdict(&bytes).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::InvalidUtf8);
    assert_eq!(
        err.path(),
        "field 1 (name) of metric 1 of scope_metrics 0 of resource_metrics 0"
    );
    assert_eq!(err.offset(), pos - 3);
}

#[test]
fn invalid_utf8_in_a_log_body_string() {
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("hello".into())),
        }),
        ..LogRecord::default()
    };
    let mut bytes = logs_request(vec![record]).encode_to_vec();
    let pos = bytes.windows(5).position(|w| w == b"hello").unwrap();
    bytes[pos + 1] = 0xff;
    let err = logs_verdict(&bytes).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::InvalidUtf8);
    assert_eq!(
        err.path(),
        "field 1 (string_value) of field 5 (body) of log_record 0 of scope_logs 0 of resource_logs 0"
    );
    assert_eq!(err.offset(), pos);
    // In bytes_value, the same bytes are fine.
    let mut bytes_body = Vec::new();
    ld(7, b"h\xffllo", &mut bytes_body);
    let stats = logs_verdict(&wrap_path(&[1, 2, 2, 5], &bytes_body)).unwrap();
    assert_eq!(stats.log_records, 1);
}

#[test]
fn every_string_field_is_checked_and_no_bytes_field_is() {
    let bad = b"\xff";
    // Metrics: (path to the message, field number) of each string; each bytes field.
    let strings: &[(&[u32], u32)] = &[
        (&[1], 3),                   // ResourceMetrics.schema_url
        (&[1, 2], 3),                // ScopeMetrics.schema_url
        (&[1, 2, 1], 1),             // InstrumentationScope.name
        (&[1, 2, 1], 2),             // InstrumentationScope.version
        (&[1, 1, 3], 3),             // EntityRef.id_keys
        (&[1, 2, 2], 2),             // Metric.description
        (&[1, 2, 2], 3),             // Metric.unit
        (&[1, 2, 2, 12], 1),         // Metric.metadata key
        (&[1, 2, 2, 12, 2], 1),      // Metric.metadata value
        (&[1, 2, 2, 5, 1, 5, 7], 1), // Exemplar.filtered_attributes key
    ];
    for (path, tag) in strings {
        let bytes = wrap_path(path, &wrap(*tag, bad));
        let err = metrics_verdict(&bytes).unwrap_err();
        assert_eq!(err.kind(), &WireErrorKind::InvalidUtf8, "{path:?} {tag}");
    }
    let byte_fields: &[(&[u32], u32)] = &[
        (&[1, 2, 2, 5, 1, 5], 4), // Exemplar.span_id
        (&[1, 2, 2, 5, 1, 5], 5), // Exemplar.trace_id
        (&[1, 2, 2, 12, 2], 7),   // AnyValue.bytes_value
    ];
    for (path, tag) in byte_fields {
        metrics_verdict(&wrap_path(path, &wrap(*tag, bad))).unwrap();
    }
    // Logs.
    let strings: &[(&[u32], u32)] = &[
        (&[1], 3),          // ResourceLogs.schema_url
        (&[1, 2], 3),       // ScopeLogs.schema_url
        (&[1, 2, 2], 3),    // LogRecord.severity_text
        (&[1, 2, 2], 12),   // LogRecord.event_name
        (&[1, 2, 2, 6], 1), // LogRecord.attributes key
    ];
    for (path, tag) in strings {
        let err = logs_verdict(&wrap_path(path, &wrap(*tag, bad))).unwrap_err();
        assert_eq!(err.kind(), &WireErrorKind::InvalidUtf8, "{path:?} {tag}");
    }
    for tag in [9, 10] {
        // LogRecord.trace_id, span_id.
        logs_verdict(&wrap_path(&[1, 2, 2], &wrap(tag, bad))).unwrap();
    }
}

#[test]
fn wrong_wire_type_on_a_known_field() {
    let wrong = |expected, actual| WireErrorKind::UnexpectedWireType { expected, actual };
    // NumberDataPoint.time_unix_nano (fixed64) as a varint.
    let mut point = Vec::new();
    key(3, 0, &mut point);
    point.push(1);
    let err = metrics_verdict(&wrap_path(&[1, 2, 2, 5, 1], &point)).unwrap_err();
    assert_eq!(err.kind(), &wrong(WireType::Fixed64, WireType::Varint));
    assert_eq!(
        err.path(),
        "field 3 (time_unix_nano) of data_point 0 of field 5 (gauge) of metric 0 \
         of scope_metrics 0 of resource_metrics 0"
    );
    // Metric.sum (a message) as a fixed64.
    let mut m = Vec::new();
    key(7, 1, &mut m);
    m.extend_from_slice(&[0; 8]);
    let err = metrics_verdict(&wrap_path(&[1, 2, 2], &m)).unwrap_err();
    assert_eq!(err.kind(), &wrong(WireType::Len, WireType::Fixed64));
    // Sum.is_monotonic (bool) as a fixed32.
    let mut s = Vec::new();
    key(3, 5, &mut s);
    s.extend_from_slice(&[0; 4]);
    let err = metrics_verdict(&wrap_path(&[1, 2, 2, 7], &s)).unwrap_err();
    assert_eq!(err.kind(), &wrong(WireType::Varint, WireType::Fixed32));
    // LogRecord.flags (fixed32) as a fixed64.
    let mut r = Vec::new();
    key(8, 1, &mut r);
    r.extend_from_slice(&[0; 8]);
    let err = logs_verdict(&wrap_path(&[1, 2, 2], &r)).unwrap_err();
    assert_eq!(err.kind(), &wrong(WireType::Fixed32, WireType::Fixed64));
    assert_eq!(
        err.path(),
        "field 8 (flags) of log_record 0 of scope_logs 0 of resource_logs 0"
    );
    // LogRecord.body as a start-group.
    let mut r = Vec::new();
    key(5, 3, &mut r);
    key(5, 4, &mut r);
    let err = logs_verdict(&wrap_path(&[1, 2, 2], &r)).unwrap_err();
    assert_eq!(err.kind(), &wrong(WireType::Len, WireType::StartGroup));
}

/// Reserved (removed) field numbers are unknown to prost: skipped whatever their type.
#[test]
fn reserved_fields_are_skipped() {
    let cases: &[(&[u32], u32)] = &[
        (&[1, 2, 2], 4),          // Metric: IntGauge
        (&[1, 2, 2], 6),          // Metric: IntSum
        (&[1, 2, 2], 8),          // Metric: IntHistogram
        (&[1, 2, 2, 9, 1], 1),    // HistogramDataPoint: labels
        (&[1, 2, 2, 5, 1], 1),    // NumberDataPoint: labels
        (&[1, 2, 2, 11, 1], 1),   // SummaryDataPoint: labels
        (&[1, 2, 2, 5, 1, 5], 1), // Exemplar: filtered_labels
        (&[1], 1000),             // ResourceMetrics: instrumentation_library_metrics
    ];
    for (path, tag) in cases {
        for wt in [0u8, 1, 5] {
            let mut f = Vec::new();
            key(*tag, wt, &mut f);
            match wt {
                0 => f.push(0x7f),
                1 => f.extend_from_slice(&[0xff; 8]),
                _ => f.extend_from_slice(&[0xff; 4]),
            }
            metrics_verdict(&wrap_path(path, &f)).unwrap();
        }
        metrics_verdict(&wrap_path(path, &wrap(*tag, b"\xff"))).unwrap();
    }
    // LogRecord field 4 and ResourceLogs field 1000.
    logs_verdict(&wrap_path(&[1, 2, 2], &wrap(4, b"\xff"))).unwrap();
    logs_verdict(&wrap_path(&[1], &wrap(1000, b"\xff"))).unwrap();
}

#[test]
fn repeated_scalars_packed_or_not() {
    let hist_point = |body: &[u8]| wrap_path(&[1, 2, 2, 9, 1], body);
    let buckets = |body: &[u8]| wrap_path(&[1, 2, 2, 10, 1, 8], body);
    // bucket_counts unpacked (fixed64 each), mixed with a packed run.
    let mut p = Vec::new();
    key(6, 1, &mut p);
    p.extend_from_slice(&7u64.to_le_bytes());
    ld(6, &[0; 16], &mut p);
    key(7, 1, &mut p);
    p.extend_from_slice(&0.5f64.to_le_bytes());
    let bytes = hist_point(&p);
    assert_eq!(metrics_verdict(&bytes).unwrap().data_points, 1);
    let decoded = ExportMetricsServiceRequest::decode(bytes.as_slice()).unwrap();
    let Some(Data::Histogram(h)) = &decoded.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("not a histogram");
    };
    assert_eq!(h.data_points[0].bucket_counts, [7, 0, 0]);
    // A packed run of 8-byte values must hold whole values.
    for len in [1, 7, 9, 15] {
        let err = metrics_verdict(&hist_point(&wrap(7, &vec![0; len]))).unwrap_err();
        assert_eq!(err.kind(), &WireErrorKind::Truncated, "{len}");
    }
    // explicit_bounds as varints or fixed32: wrong type.
    for (wt, value) in [(0u8, &[1u8][..]), (5, &[0; 4][..])] {
        let mut p = Vec::new();
        key(7, wt, &mut p);
        p.extend_from_slice(value);
        let err = metrics_verdict(&hist_point(&p)).unwrap_err();
        assert!(matches!(
            err.kind(),
            WireErrorKind::UnexpectedWireType { .. }
        ));
    }
    // Buckets.bucket_counts: varints, packed or not; a packed varint cut at the end fails.
    let mut b = Vec::new();
    key(2, 0, &mut b);
    b.push(0x05);
    ld(2, &[0x01, 0xff, 0x01, 0x00], &mut b);
    metrics_verdict(&buckets(&b)).unwrap();
    let err = metrics_verdict(&buckets(&wrap(2, &[0x01, 0xff]))).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::Truncated);
    // Eleven-byte varint in a packed run.
    let err = metrics_verdict(&buckets(&wrap(2, &[0xff; 11]))).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::VarintOverflow);
    // bucket_counts as fixed64: wrong type for uint64.
    let mut b = Vec::new();
    key(2, 1, &mut b);
    b.extend_from_slice(&[0; 8]);
    assert!(metrics_verdict(&buckets(&b)).is_err());
}

/// The error path names every level down to an exemplar attribute.
#[test]
fn errors_say_where_in_a_metric() {
    let mut kv = Vec::new();
    ld(1, b"\xff", &mut kv);
    let exemplar = wrap(7, &kv);
    let point = wrap(8, &exemplar);
    let mut histogram = wrap(1, &[]);
    histogram.extend_from_slice(&wrap(1, &point));
    let bytes = wrap_path(&[1, 2, 2, 9], &histogram);
    let err = metrics_verdict(&bytes).unwrap_err();
    assert_eq!(
        err.path(),
        "field 1 (key) of attribute 0 of exemplar 0 of data_point 1 of field 9 (histogram) \
         of metric 0 of scope_metrics 0 of resource_metrics 0"
    );
}

/// An `AnyValue` nested `levels` kvlists deep (`{"k": {"k": ... 1}}`), built inside-out as
/// a list of headers so 100k levels stay linear in size and time.
fn nested_kvlist(levels: usize) -> Vec<u8> {
    let core = [0x18, 0x01]; // int_value: 1
    let mut size = core.len();
    let mut headers: Vec<Vec<u8>> = Vec::with_capacity(levels * 3);
    for _ in 0..levels {
        // KeyValue { key: "k", value: <inner> }, KeyValueList { values }, AnyValue { kvlist }.
        for (prefix, tag_byte) in [
            (&b"\x0a\x01k"[..], 0x12u8),
            (&[][..], 0x0a),
            (&[][..], 0x32),
        ] {
            let mut h = vec![tag_byte];
            prost::encoding::encode_varint(size as u64, &mut h);
            let mut header = prefix.to_vec();
            header.extend_from_slice(&h);
            size += header.len();
            headers.push(header);
        }
    }
    let mut v: Vec<u8> = headers.into_iter().rev().flatten().collect();
    v.extend_from_slice(&core);
    v
}

#[test]
fn log_body_recursion_limit_matches_prost_exactly() {
    let mut boundary = None;
    for levels in 0..40 {
        let bytes = wrap_path(&[1, 2, 2, 5], &nested_kvlist(levels));
        let ours = logs_verdict(&bytes);
        match ours {
            Ok(stats) => assert_eq!(stats.log_records, 1),
            Err(e) => {
                assert_eq!(e.kind(), &WireErrorKind::TooDeep, "levels {levels}");
                boundary.get_or_insert(levels);
            }
        }
    }
    // request 100 → ResourceLogs 99 → ScopeLogs 98 → LogRecord 97 → body 96; each kvlist
    // level costs three (KeyValueList, KeyValue, AnyValue): 32 levels leave the innermost
    // AnyValue a budget of 0, enough for its scalar; 33 is one message too deep.
    assert_eq!(boundary, Some(33));
}

#[test]
fn metric_attribute_recursion_limit_matches_prost_exactly() {
    let mut boundary = None;
    for levels in 0..40 {
        let mut kv = wrap(1, b"k");
        kv.extend_from_slice(&wrap(2, &nested_kvlist(levels)));
        // A gauge data point's attribute.
        let bytes = wrap_path(&[1, 2, 2, 5, 1, 7], &kv);
        if metrics_verdict(&bytes).is_err() {
            boundary.get_or_insert(levels);
        }
    }
    // Request → ResourceMetrics → ScopeMetrics → Metric → Gauge → NumberDataPoint →
    // KeyValue → AnyValue (budget 93): three messages deeper than a log body, exactly one
    // kvlist level.
    assert_eq!(boundary, Some(32));
}

#[test]
fn very_deep_input_is_too_deep_not_a_stack_overflow() {
    let body = nested_kvlist(100_000);
    let err = logs_verdict(&wrap_path(&[1, 2, 2, 5], &body)).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::TooDeep);
    let mut kv = wrap(1, b"k");
    kv.extend_from_slice(&wrap(2, &body));
    let err = metrics_verdict(&wrap_path(&[1, 2, 2, 12], &kv)).unwrap_err();
    assert_eq!(err.kind(), &WireErrorKind::TooDeep);
}

#[test]
fn concatenated_requests_merge() {
    let metrics = metrics_request(vec![metric("g", Some(gauge(3)))]).encode_to_vec();
    let stats = metrics_verdict(&[metrics.clone(), metrics].concat()).unwrap();
    assert_eq!(
        (stats.resource_metrics, stats.metrics, stats.data_points),
        (2, 2, 6)
    );
    let record = LogRecord {
        event_name: "e".into(),
        attributes: vec![KeyValue {
            key: "k".into(),
            value: None,
            key_strindex: 0,
        }],
        ..LogRecord::default()
    };
    let logs = logs_request(vec![record.clone(), record]).encode_to_vec();
    let stats = logs_verdict(&[logs.clone(), logs].concat()).unwrap();
    assert_eq!((stats.resource_logs, stats.log_records), (2, 4));
}

//! Golden text and OpenMetrics bodies for the OTLP point kinds and `send_timestamps`,
//! written from what client_golang's expfmt writes for otelcol's const metrics.

use std::sync::Arc;

use redline_pipeline::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricKind, MetricsSink,
    MetricsSource, NumberPoint, SummaryPoint,
};

use crate::{render, Format, RenderOptions};

pub(crate) const TRACE: [u8; 16] = [0xab; 16];
pub(crate) const SPAN: [u8; 8] = [0xcd; 8];
/// 2023-11-14T22:13:20.123456789Z.
pub(crate) const T: u64 = 1_700_000_000_123_456_789;

/// One family of every OTLP kind.
pub(crate) struct Otlp;

impl MetricsSource for Otlp {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let ex = [
            Exemplar {
                value: 7.0,
                time_unix_nano: T,
                trace_id: [0; 16],
                span_id: [0; 8],
            },
            Exemplar {
                value: 2.5,
                time_unix_nano: 1_700_000_000_500_000_000,
                trace_id: TRACE,
                span_id: SPAN,
            },
        ];
        sink.family(&FamilyDesc {
            name: "http.requests",
            description: "Requests.",
            unit: "1",
            kind: MetricKind::Counter,
        });
        sink.number(
            &[("method", "GET")],
            &NumberPoint {
                value: 12.5,
                start_time_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: T,
                exemplars: &ex,
            },
        );
        sink.number(
            &[("method", "POST")],
            &NumberPoint {
                value: 3e6,
                start_time_unix_nano: 0,
                time_unix_nano: T,
                exemplars: &ex[..1],
            },
        );
        sink.family(&FamilyDesc {
            name: "temperature",
            description: "Temp.",
            unit: "Cel",
            kind: MetricKind::Gauge,
        });
        sink.number(
            &[],
            &NumberPoint {
                value: -1.0,
                start_time_unix_nano: 0,
                time_unix_nano: T,
                exemplars: &ex,
            },
        );
        sink.family(&FamilyDesc {
            name: "rpc.latency",
            description: "Latency.",
            unit: "s",
            kind: MetricKind::Summary,
        });
        sink.summary(
            &[("svc", "a")],
            &SummaryPoint {
                count: 2_000_000,
                sum: 1.25,
                quantiles: &[(0.99, 4.0), (0.5, 1.0), (0.99, 5.0), (1.0, 9.0)],
                start_time_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: T,
            },
        );
        sink.family(&FamilyDesc {
            name: "payload",
            description: "Sizes.",
            unit: "By",
            kind: MetricKind::ExponentialHistogram,
        });
        sink.exponential_histogram(
            &[("svc", "a")],
            &ExponentialHistogramPoint {
                scale: 3,
                count: 6,
                sum: None,
                zero_count: 1,
                zero_threshold: 0.0,
                positive_offset: 2,
                positive_counts: &[1, 0, 2],
                negative_offset: -1,
                negative_counts: &[2],
                start_time_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: T,
                exemplars: &ex,
            },
        );
        // Refused like otelcol does: buckets that do not add up to the count.
        sink.exponential_histogram(
            &[("svc", "bad")],
            &ExponentialHistogramPoint {
                scale: 3,
                count: 60,
                sum: Some(1.0),
                zero_count: 0,
                zero_threshold: 0.0,
                positive_offset: 0,
                positive_counts: &[1],
                negative_offset: 0,
                negative_counts: &[],
                start_time_unix_nano: 0,
                time_unix_nano: T,
                exemplars: &[],
            },
        );
        sink.family(&FamilyDesc {
            name: "op.duration",
            description: "Ops.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        sink.histogram(
            &[],
            &HistogramPoint {
                bounds: &[1.0],
                bucket_counts: &[1, 1],
                sum: 3.0,
                count: 2,
                start_time_unix_nano: 1,
                time_unix_nano: T,
                exemplars: &[],
            },
        );
    }
}

fn body(format: Format, send_timestamps: bool) -> String {
    let o = RenderOptions::new(None, [], true)
        .expect("valid")
        .with_send_timestamps(send_timestamps);
    let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Otlp)];
    let mut out = Vec::new();
    render(&sources, format, &o, &mut out);
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn otlp_kinds_text() {
    let want = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET"} 12.5
http_requests_total{method="POST"} 3e+06
# HELP temperature_celsius Temp.
# TYPE temperature_celsius gauge
temperature_celsius -1
# HELP rpc_latency_seconds Latency.
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{svc="a",quantile="0.5"} 1
rpc_latency_seconds{svc="a",quantile="0.99"} 5
rpc_latency_seconds{svc="a",quantile="1"} 9
rpc_latency_seconds_sum{svc="a"} 1.25
rpc_latency_seconds_count{svc="a"} 2e+06
# HELP payload_bytes Sizes.
# TYPE payload_bytes histogram
payload_bytes_bucket{svc="a",le="+Inf"} 6
payload_bytes_sum{svc="a"} 0
payload_bytes_count{svc="a"} 6
# HELP op_duration_milliseconds Ops.
# TYPE op_duration_milliseconds histogram
op_duration_milliseconds_bucket{le="1"} 1
op_duration_milliseconds_bucket{le="+Inf"} 2
op_duration_milliseconds_sum 3
op_duration_milliseconds_count 2
"#;
    assert_eq!(body(Format::Text, false), want);
}

#[test]
fn otlp_kinds_openmetrics() {
    // The counter's last exemplar is shown; one without ids has no labels and is not
    // written; gauges and native histograms carry none.
    let want = r#"# HELP http_requests Requests.
# TYPE http_requests counter
http_requests_total{method="GET"} 12.5 # {trace_id="abababababababababababababababab",span_id="cdcdcdcdcdcdcdcd"} 2.5 1700000000.5
http_requests_total{method="POST"} 3e+06
# HELP temperature_celsius Temp.
# TYPE temperature_celsius gauge
# UNIT temperature_celsius celsius
temperature_celsius -1.0
# HELP rpc_latency_seconds Latency.
# TYPE rpc_latency_seconds summary
# UNIT rpc_latency_seconds seconds
rpc_latency_seconds{svc="a",quantile="0.5"} 1.0
rpc_latency_seconds{svc="a",quantile="0.99"} 5.0
rpc_latency_seconds{svc="a",quantile="1.0"} 9.0
rpc_latency_seconds_sum{svc="a"} 1.25
rpc_latency_seconds_count{svc="a"} 2000000
# HELP payload_bytes Sizes.
# TYPE payload_bytes histogram
# UNIT payload_bytes bytes
payload_bytes_bucket{svc="a",le="+Inf"} 6
payload_bytes_sum{svc="a"} 0.0
payload_bytes_count{svc="a"} 6
# HELP op_duration_milliseconds Ops.
# TYPE op_duration_milliseconds histogram
# UNIT op_duration_milliseconds milliseconds
op_duration_milliseconds_bucket{le="1.0"} 1
op_duration_milliseconds_bucket{le="+Inf"} 2
op_duration_milliseconds_sum 3.0
op_duration_milliseconds_count 2
# EOF
"#;
    assert_eq!(body(Format::OpenMetrics, false), want);
}

#[test]
fn send_timestamps_writes_point_times_in_ms() {
    let text = body(Format::Text, true);
    for line in [
        "http_requests_total{method=\"GET\"} 12.5 1700000000123\n",
        "temperature_celsius -1 1700000000123\n",
        "rpc_latency_seconds{svc=\"a\",quantile=\"0.5\"} 1 1700000000123\n",
        "rpc_latency_seconds_count{svc=\"a\"} 2e+06 1700000000123\n",
        "payload_bytes_bucket{svc=\"a\",le=\"+Inf\"} 6 1700000000123\n",
        "op_duration_milliseconds_bucket{le=\"1\"} 1 1700000000123\n",
        "op_duration_milliseconds_count 2 1700000000123\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let om = body(Format::OpenMetrics, true);
    // The timestamp comes before the exemplar, in seconds through Go's float formatting.
    for line in [
        "http_requests_total{method=\"GET\"} 12.5 1.700000000123e+09 # {trace_id=\"abababababababababababababababab\",span_id=\"cdcdcdcdcdcdcdcd\"} 2.5 1700000000.5\n",
        "op_duration_milliseconds_sum 3.0 1.700000000123e+09\n",
    ] {
        assert!(om.contains(line), "missing {line:?} in\n{om}");
    }
}

/// A connector's live state has no point times: the scrape's time is written.
#[test]
fn send_timestamps_uses_now_for_live_state() {
    struct Live;
    impl MetricsSource for Live {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            sink.family(&FamilyDesc {
                name: "calls",
                description: "",
                unit: "1",
                kind: MetricKind::Counter,
            });
            sink.counter(&[], 1_234_567, 1, None);
        }
    }
    let o = RenderOptions::new(None, [], true)
        .expect("valid")
        .with_send_timestamps(true);
    let sources: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Live)];
    let before = super::render::kinds_now_ms();
    let mut out = Vec::new();
    render(&sources, Format::Text, &o, &mut out);
    let text = String::from_utf8(out).expect("UTF-8");
    let line = text.lines().last().unwrap_or_default();
    let (value, ts) = line
        .strip_prefix("calls_total ")
        .and_then(|r| r.split_once(' '))
        .unwrap_or_default();
    assert_eq!(value, "1.234567e+06");
    let ts: u64 = ts.parse().unwrap_or(0);
    assert!(ts >= before && ts < before + 60_000, "{line}");
}

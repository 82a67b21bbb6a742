//! Golden expositions, negotiation over real HTTP, gzip, and promtool validation.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redline_pipeline::{
    Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const TRACE: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
const SPAN: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];

/// A source shaped like spanmetrics plus the odd cases: escaping, UTF-8, an empty family.
struct Fake;

impl MetricsSource for Fake {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.calls",
            description: "Number of calls.",
            unit: "1",
            kind: MetricKind::Counter,
        });
        let ex = Exemplar {
            value: 1.0,
            time_unix_nano: 1_700_000_000_500_000_000,
            trace_id: TRACE,
            span_id: SPAN,
        };
        sink.counter(
            &[
                ("service.name", "checkout"),
                ("span.name", "GET /cart"),
                ("span.kind", "SPAN_KIND_SERVER"),
                ("status.code", "STATUS_CODE_UNSET"),
            ],
            17,
            1,
            Some(&ex),
        );
        sink.counter(
            &[("service.name", "we\"ird\\svc\nünï"), ("span.name", "x")],
            3,
            1,
            None,
        );

        // No points: must not appear at all.
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.unused",
            description: "Never has points.",
            unit: "1",
            kind: MetricKind::Counter,
        });

        sink.family(&FamilyDesc {
            name: "queue.size",
            description: "Current \"size\"\nof queue \\ items",
            unit: "{batches}",
            kind: MetricKind::Gauge,
        });
        sink.gauge(&[], 2.5);

        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.duration",
            description: "Span duration.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        let exemplars = [
            Exemplar {
                value: 0.5,
                time_unix_nano: 1_700_000_000_123_000_000,
                trace_id: TRACE,
                span_id: SPAN,
            },
            Exemplar {
                value: f64::NAN,
                time_unix_nano: 1,
                trace_id: TRACE,
                span_id: SPAN,
            },
            Exemplar {
                value: 2000.0,
                time_unix_nano: 1_700_000_001_000_000_000,
                trace_id: TRACE,
                span_id: SPAN,
            },
        ];
        sink.histogram(
            &[("service.name", "checkout")],
            &HistogramPoint {
                bounds: &[0.5, 2.0, 1400.0],
                bucket_counts: &[1, 0, 3, 2],
                sum: 2012.5,
                count: 6,
                start_time_unix_nano: 1,
                time_unix_nano: 0,
                exemplars: &exemplars,
            },
        );
    }
}

pub(crate) fn sources() -> Vec<Arc<dyn MetricsSource>> {
    vec![Arc::new(Fake)]
}

fn opts(namespace: Option<&str>, consts: &[(&str, &str)]) -> RenderOptions {
    RenderOptions::new(namespace, consts.iter().copied(), true).expect("valid options")
}

fn rendered(sources: &[Arc<dyn MetricsSource>], format: Format, o: &RenderOptions) -> String {
    let mut out = Vec::new();
    render(sources, format, o, &mut out);
    String::from_utf8(out).expect("expositions are UTF-8")
}

const TEXT_GOLDEN: &str = r#"# HELP traces_spanmetrics_calls_total Number of calls.
# TYPE traces_spanmetrics_calls_total counter
traces_spanmetrics_calls_total{service_name="checkout",span_name="GET /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",env="prod"} 17
traces_spanmetrics_calls_total{service_name="we\"ird\\svc\nünï",span_name="x",env="prod"} 3
# HELP queue_size Current "size"\nof queue \\ items
# TYPE queue_size gauge
queue_size{env="prod"} 2.5
# HELP traces_spanmetrics_duration_milliseconds Span duration.
# TYPE traces_spanmetrics_duration_milliseconds histogram
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="0.5"} 1
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="2"} 1
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="1400"} 4
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="+Inf"} 6
traces_spanmetrics_duration_milliseconds_sum{service_name="checkout",env="prod"} 2012.5
traces_spanmetrics_duration_milliseconds_count{service_name="checkout",env="prod"} 6
"#;

const OPENMETRICS_GOLDEN: &str = r#"# HELP traces_spanmetrics_calls Number of calls.
# TYPE traces_spanmetrics_calls counter
traces_spanmetrics_calls_total{service_name="checkout",span_name="GET /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",env="prod"} 17 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 1.0 1700000000.5
traces_spanmetrics_calls_total{service_name="we\"ird\\svc\nünï",span_name="x",env="prod"} 3
# HELP queue_size Current \"size\"\nof queue \\ items
# TYPE queue_size gauge
queue_size{env="prod"} 2.5
# HELP traces_spanmetrics_duration_milliseconds Span duration.
# TYPE traces_spanmetrics_duration_milliseconds histogram
# UNIT traces_spanmetrics_duration_milliseconds milliseconds
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="0.5"} 1 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 0.5 1700000000.123
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="2.0"} 1
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="1400.0"} 4
traces_spanmetrics_duration_milliseconds_bucket{service_name="checkout",env="prod",le="+Inf"} 6 # {trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"} 2000.0 1700000001
traces_spanmetrics_duration_milliseconds_sum{service_name="checkout",env="prod"} 2012.5
traces_spanmetrics_duration_milliseconds_count{service_name="checkout",env="prod"} 6
# EOF
"#;

#[test]
fn text_exposition_golden() {
    let o = opts(None, &[("env", "prod")]);
    assert_eq!(rendered(&sources(), Format::Text, &o), TEXT_GOLDEN);
}

#[test]
fn openmetrics_exposition_golden() {
    let o = opts(None, &[("env", "prod")]);
    assert_eq!(
        rendered(&sources(), Format::OpenMetrics, &o),
        OPENMETRICS_GOLDEN
    );
}

#[test]
fn namespace_prefixes_every_family() {
    let o = opts(Some("red.line"), &[]);
    let text = rendered(&sources(), Format::Text, &o);
    assert!(text.contains("# TYPE red_line_traces_spanmetrics_calls_total counter\n"));
    assert!(text.contains("\nred_line_queue_size 2.5\n"), "{text}");
    assert!(text.contains(
        "\nred_line_traces_spanmetrics_duration_milliseconds_bucket{service_name=\"checkout\",le=\"2\"} 1\n"
    ));
    assert!(text.contains("\nred_line_traces_spanmetrics_duration_milliseconds_sum{service_name=\"checkout\"} 2012.5\n"));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("red_line_"), "{line}");
    }
}

#[test]
fn without_suffixes_openmetrics_counter_is_unknown() {
    let o = RenderOptions::new(None, [], false).expect("valid");
    let om = rendered(&sources(), Format::OpenMetrics, &o);
    assert!(
        om.contains("# TYPE traces_spanmetrics_calls unknown\n"),
        "{om}"
    );
    // `unknown` may not carry exemplars.
    assert!(om.contains("\ntraces_spanmetrics_calls{service_name=\"checkout\",span_name=\"GET /cart\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"} 17\n"), "{om}");
    assert!(om.contains("# TYPE traces_spanmetrics_duration histogram\n"));
    assert!(!om.contains("# UNIT"));
    let text = rendered(&sources(), Format::Text, &o);
    assert!(text.contains("# TYPE traces_spanmetrics_calls counter\n"));
}

/// The default spanmetrics buckets in ms render as the dashboards expect.
#[test]
fn default_spanmetrics_buckets_render_as_prometheus_does() {
    struct Buckets;
    const BOUNDS: [f64; 16] = [
        2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
        10000.0, 15000.0,
    ];
    impl MetricsSource for Buckets {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            sink.family(&FamilyDesc {
                name: "d",
                description: "d",
                unit: "ms",
                kind: MetricKind::Histogram,
            });
            sink.histogram(
                &[],
                &HistogramPoint {
                    bounds: &BOUNDS,
                    bucket_counts: &[1; 17],
                    sum: 0.0,
                    count: 17,
                    start_time_unix_nano: 0,
                    time_unix_nano: 0,
                    exemplars: &[],
                },
            );
        }
    }
    let src: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Buckets)];
    let text = rendered(&src, Format::Text, &opts(None, &[]));
    let les: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once("le=\"").map(|(_, r)| r))
        .filter_map(|r| r.split_once('"').map(|(le, _)| le))
        .collect();
    assert_eq!(
        les,
        [
            "2", "4", "6", "8", "10", "50", "100", "200", "400", "800", "1000", "1400", "2000",
            "5000", "10000", "15000", "+Inf"
        ]
    );
    // Cumulative counts, +Inf = count.
    assert!(text.contains("d_milliseconds_bucket{le=\"2\"} 1\n"));
    assert!(text.contains("d_milliseconds_bucket{le=\"15000\"} 16\n"));
    assert!(text.contains("d_milliseconds_bucket{le=\"+Inf\"} 17\n"));
    assert!(text.contains("d_milliseconds_sum 0\nd_milliseconds_count 17\n"));
}

/// Two sources exporting the same family: one contiguous family, one HELP/TYPE.
#[test]
fn duplicate_families_are_merged_and_conflicts_dropped() {
    /// Exports `name` (kind `kind`) with one series labelled `src`, then a gauge `src`.
    struct Calls(&'static str, &'static str, MetricKind);
    impl MetricsSource for Calls {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            let Calls(name, src, kind) = *self;
            sink.family(&FamilyDesc {
                name,
                description: "Calls.",
                unit: "",
                kind,
            });
            match kind {
                MetricKind::Counter => sink.counter(&[("src", src)], 1, 0, None),
                _ => sink.gauge(&[("src", src)], 1.0),
            }
            sink.family(&FamilyDesc {
                name: src,
                description: "Other.",
                unit: "",
                kind: MetricKind::Gauge,
            });
            sink.gauge(&[], 5.0);
        }
    }
    let src: Vec<Arc<dyn MetricsSource>> = vec![
        Arc::new(Calls("calls", "a", MetricKind::Counter)),
        Arc::new(Calls("calls", "b", MetricKind::Counter)),
        // Same Prometheus name, other type: dropped.
        Arc::new(Calls("calls.total", "c", MetricKind::Gauge)),
    ];
    let text = rendered(&src, Format::Text, &opts(None, &[]));
    assert_eq!(
        text,
        "# HELP calls_total Calls.\n# TYPE calls_total counter\ncalls_total{src=\"a\"} 1\ncalls_total{src=\"b\"} 1\n\
         # HELP a Other.\n# TYPE a gauge\na 5\n\
         # HELP b Other.\n# TYPE b gauge\nb 5\n\
         # HELP c Other.\n# TYPE c gauge\nc 5\n"
    );
    let om = rendered(&src, Format::OpenMetrics, &opts(None, &[]));
    assert!(om.ends_with("# TYPE c gauge\nc 5.0\n# EOF\n"), "{om}");
    assert!(om.starts_with("# HELP calls Calls.\n# TYPE calls counter\ncalls_total{src=\"a\"} 1\ncalls_total{src=\"b\"} 1\n# HELP a"), "{om}");
}

/// client_golang refuses a series whose label names repeat after translation, or repeat a
/// const label's: otelcol logs and leaves it out. A key with no valid form is left out alone.
#[test]
fn colliding_label_names_drop_the_series() {
    struct Src;
    impl MetricsSource for Src {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            sink.family(&FamilyDesc {
                name: "g",
                description: "",
                unit: "",
                kind: MetricKind::Gauge,
            });
            sink.gauge(&[("a.b", "1"), ("a_b", "2")], 1.0);
            sink.gauge(&[("x", "1"), ("env", "series")], 2.0);
            sink.gauge(&[("a.b", "1"), ("", "3"), ("9x", "4")], 3.0);
            // A source sending a point of another kind is ignored.
            sink.counter(&[], 1, 0, None);
        }
    }
    let src: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Src)];
    let o = opts(None, &[("env", "prod"), ("region", "eu")]);
    assert_eq!(
        rendered(&src, Format::Text, &o),
        "# HELP g \n# TYPE g gauge\ng{a_b=\"1\",key_9x=\"4\",env=\"prod\",region=\"eu\"} 3\n"
    );
    let mut proto = Vec::new();
    crate::render_proto::render_protobuf(&src, &o, false, &mut |c| {
        proto.extend_from_slice(c);
        Ok(())
    })
    .expect("renders");
    let families = crate::tests_proto::decode_all(&proto);
    let values: Vec<Option<f64>> = families
        .iter()
        .flat_map(|f| {
            f.metric
                .iter()
                .map(|m| m.gauge.as_ref().and_then(|g| g.value))
        })
        .collect();
    assert_eq!(values, vec![Some(3.0)]);
}

#[test]
fn points_before_any_family_are_ignored() {
    struct Src;
    impl MetricsSource for Src {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            sink.gauge(&[], 1.0);
            sink.family(&FamilyDesc {
                name: "...",
                description: "",
                unit: "",
                kind: MetricKind::Gauge,
            });
            sink.gauge(&[], 1.0);
        }
    }
    let src: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Src)];
    assert_eq!(rendered(&src, Format::Text, &opts(None, &[])), "");
    assert_eq!(
        rendered(&src, Format::OpenMetrics, &opts(None, &[])),
        "# EOF\n"
    );
}

#[test]
fn render_appends_to_existing_buffer() {
    let mut out = b"prefix\n".to_vec();
    render(
        &sources(),
        Format::Text,
        &opts(None, &[("env", "prod")]),
        &mut out,
    );
    assert_eq!(out.get(..7), Some(&b"prefix\n"[..]));
    assert_eq!(out.get(7..), Some(TEXT_GOLDEN.as_bytes()));
}

// ---- promtool ----

/// A realistic spanmetrics exposition: several services and span names, labels with spaces
/// and quotes, the default buckets, plus Redline's own telemetry.
struct Realistic;

impl MetricsSource for Realistic {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        const BOUNDS: [f64; 16] = [
            2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0,
            5000.0, 10000.0, 15000.0,
        ];
        let services = ["makiatto-api", "makiatto-cdn", "wasm \"runner\""];
        let spans = [
            ("http.server", "SPAN_KIND_SERVER"),
            ("cdn.file.read", "SPAN_KIND_INTERNAL"),
            ("wasm.invoke", "SPAN_KIND_CLIENT"),
        ];
        let statuses = ["STATUS_CODE_UNSET", "STATUS_CODE_ERROR"];
        for (name, help) in [
            ("traces.spanmetrics.calls", "Number of spans."),
            (
                "traces.spanmetrics.errors",
                "Number of spans with status ERROR.",
            ),
        ] {
            sink.family(&FamilyDesc {
                name,
                description: help,
                unit: "1",
                kind: MetricKind::Counter,
            });
            for s in services {
                for (span, kind) in spans {
                    for st in statuses {
                        sink.counter(
                            &[
                                ("service.name", s),
                                ("span.name", span),
                                ("span.kind", kind),
                                ("status.code", st),
                                ("cdn.cache.hit", "true"),
                            ],
                            42,
                            1,
                            None,
                        );
                    }
                }
            }
        }
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.duration",
            description: "Span duration in milliseconds.",
            unit: "ms",
            kind: MetricKind::Histogram,
        });
        let counts: Vec<u64> = (0..17).collect();
        let count: u64 = counts.iter().sum();
        for s in services {
            for (span, kind) in spans {
                sink.histogram(
                    &[
                        ("service.name", s),
                        ("span.name", span),
                        ("span.kind", kind),
                        ("status.code", "STATUS_CODE_UNSET"),
                    ],
                    &HistogramPoint {
                        bounds: &BOUNDS,
                        bucket_counts: &counts,
                        sum: 123456.789,
                        count,
                        start_time_unix_nano: 1,
                        time_unix_nano: 0,
                        exemplars: &[],
                    },
                );
            }
        }
        sink.family(&FamilyDesc {
            name: "traces.spanmetrics.calls.overflow",
            description: "Overflow with \\ and\nnewline in help.",
            unit: "1",
            kind: MetricKind::Counter,
        });
        sink.counter(&[("otel.metric.overflow", "true")], 7, 1, None);
    }
}

#[test]
fn promtool_accepts_a_realistic_exposition() {
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    telemetry
        .receiver("otlp", "grpc", redline_pipeline::Signal::Traces)
        .accepted
        .store(10, std::sync::atomic::Ordering::Relaxed);
    telemetry.exporter("otlp/tempo", redline_pipeline::Signal::Traces);
    let src: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Realistic), Arc::new(telemetry)];
    let text = rendered(
        &src,
        Format::Text,
        &opts(None, &[("deployment", "sidecar")]),
    );

    let promtool = std::path::Path::new("/usr/bin/promtool");
    let promtool = if promtool.exists() {
        promtool.to_path_buf()
    } else {
        match which("promtool") {
            Some(p) => p,
            None if std::env::var("REDLINE_ALLOW_SKIP").as_deref() == Ok("1") => {
                println!("SKIPPED: promtool not installed (REDLINE_ALLOW_SKIP=1)");
                return;
            }
            None => panic!(
                "promtool is not installed: install it (apt-get install prometheus) or set \
                 REDLINE_ALLOW_SKIP=1 to skip"
            ),
        }
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin.write_all(text.as_bytes()).expect("write exposition");
    }
    let output = child.wait_with_output().expect("promtool finishes");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Exit 1 is a parse error. Exit 3 is lint findings: the only one allowed is the
    // millisecond unit of the duration histogram, which is otelcol's name and the metric
    // contract (docs/architecture.md §4) — promlint would rather have seconds.
    let allowed = "traces_spanmetrics_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"";
    let findings: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    match output.status.code() {
        Some(0) => {}
        Some(3) if findings.iter().all(|l| l.trim() == allowed) => {}
        other => {
            panic!("promtool check metrics failed ({other:?}):\n{report}\n--- exposition:\n{text}")
        }
    }
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(bin))
            .find(|p| p.is_file())
    })
}

// ---- HTTP ----

pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 GET: enough to check what a scraper sees, without a client dependency.
pub(crate) async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

pub(crate) fn test_config(enable_open_metrics: bool) -> Config {
    let json = format!(
        r#"{{"endpoint": "127.0.0.1:0", "const_labels": {{"env": "prod"}}, "enable_open_metrics": {enable_open_metrics}}}"#
    );
    serde_json::from_str(&json).expect("valid config")
}

const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_both_formats_and_gzip_over_http() {
    let running = start("prometheus", &test_config(true), sources())
        .await
        .expect("starts");
    let addr = running
        .local_addrs()
        .into_iter()
        .find(|(name, _)| *name == "metrics")
        .map(|(_, a)| a)
        .expect("metrics address");
    assert_ne!(addr.port(), 0);

    let r = http_get(addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    assert_eq!(String::from_utf8_lossy(&r.body), OPENMETRICS_GOLDEN);

    let r = http_get(addr, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    assert_eq!(String::from_utf8_lossy(&r.body), TEXT_GOLDEN);

    let r = http_get(
        addr,
        "/metrics",
        &[("Accept", PROMETHEUS_ACCEPT), ("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&r.body[..])
        .read_to_string(&mut decoded)
        .expect("valid gzip");
    assert_eq!(decoded, OPENMETRICS_GOLDEN);

    let r = http_get(addr, "/", &[]).await;
    assert_eq!(r.status, 404);

    let deadline = Instant::now() + Duration::from_secs(5);
    running.shutdown(deadline).await.expect("clean shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_metrics_disabled_always_serves_text() {
    let running = start("prometheus", &test_config(false), sources())
        .await
        .expect("starts");
    let addr = running.local_addrs()[0].1;
    let r = http_get(addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    assert_eq!(String::from_utf8_lossy(&r.body), TEXT_GOLDEN);
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_failure_is_a_start_error() {
    let first = start("prometheus", &test_config(true), sources())
        .await
        .expect("starts");
    let port = first.local_addrs()[0].1.port();
    let mut taken = test_config(true);
    taken.endpoint = format!("127.0.0.1:{port}");
    let err = start("prometheus", &taken, sources())
        .await
        .err()
        .expect("port in use");
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    first
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

/// Not a timed assertion (docs/architecture.md §7: performance is measured in benches/): prints how long a
/// 100k-series render takes. `cargo test --release -p redline-prometheus-exporter -- --ignored --nocapture`
#[test]
#[ignore = "manual timing aid; the render bench lives in benches/"]
fn render_100k_histogram_series_timing() {
    struct Many;
    impl MetricsSource for Many {
        fn collect(&self, sink: &mut dyn MetricsSink) {
            const BOUNDS: [f64; 16] = [
                2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0,
                5000.0, 10000.0, 15000.0,
            ];
            let names: Vec<String> = (0..1000)
                .map(|i| format!("GET /api/v1/items/{i}"))
                .collect();
            let services: Vec<String> = (0..100).map(|i| format!("service-{i}")).collect();
            let counts = [3u64; 17];
            let ex = [Exemplar {
                value: 12.5,
                time_unix_nano: 1_700_000_000_123_000_000,
                trace_id: TRACE,
                span_id: SPAN,
            }];
            sink.family(&FamilyDesc {
                name: "traces.spanmetrics.duration",
                description: "Span duration.",
                unit: "ms",
                kind: MetricKind::Histogram,
            });
            for s in &services {
                for n in &names {
                    sink.histogram(
                        &[
                            ("service.name", s),
                            ("span.name", n),
                            ("span.kind", "SPAN_KIND_SERVER"),
                            ("status.code", "STATUS_CODE_UNSET"),
                        ],
                        &HistogramPoint {
                            bounds: &BOUNDS,
                            bucket_counts: &counts,
                            sum: 1234.5678,
                            count: 51,
                            start_time_unix_nano: 1,
                            time_unix_nano: 0,
                            exemplars: &ex,
                        },
                    );
                }
            }
        }
    }
    let src: Vec<Arc<dyn MetricsSource>> = vec![Arc::new(Many)];
    let o = opts(None, &[]);
    for _ in 0..3 {
        let t = Instant::now();
        let repeated = crate::server::has_repeated_families(&src, &o);
        println!("repeated-family check: {repeated} in {:?}", t.elapsed());
        let t = Instant::now();
        let mut bytes = 0usize;
        let r = crate::render_proto::render_protobuf(&src, &o, false, &mut |c| {
            bytes += c.len();
            Ok(())
        });
        println!(
            "protobuf: 100k histogram series, {} MB in {:?} ({r:?})",
            bytes >> 20,
            t.elapsed()
        );
    }
    for format in [Format::Text, Format::OpenMetrics] {
        let mut out = Vec::new();
        render(&src, format, &o, &mut out);
        let cap = out.len();
        for _ in 0..3 {
            let mut out = Vec::with_capacity(cap + cap / 8);
            let t = Instant::now();
            render(&src, format, &o, &mut out);
            println!(
                "{format}: 100k histogram series, {} MB in {:?} (fresh buffer)",
                out.len() >> 20,
                t.elapsed()
            );
        }
        let mut out = Vec::with_capacity(cap + cap / 8);
        for _ in 0..3 {
            out.clear();
            let t = Instant::now();
            render(&src, format, &o, &mut out);
            println!(
                "{format}: 100k histogram series, {} MB in {:?} (reused buffer)",
                out.len() >> 20,
                t.elapsed()
            );
        }
        let t = Instant::now();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &out).expect("gzip");
        let gz = enc.finish().expect("gzip");
        println!(
            "{format}: gzip fast {} MB -> {} MB in {:?}",
            out.len() >> 20,
            gz.len() >> 20,
            t.elapsed()
        );
    }
}

// ---- config through the pipeline's YAML loader ----

pub(crate) fn exporter_section(body: &str) -> redline_pipeline::ComponentConfig {
    let text = format!(
        "exporters:\n  prometheus:\n{body}\nservice:\n  pipelines:\n    metrics:\n      receivers: [spanmetrics]\n      exporters: [prometheus]\n"
    );
    let loaded = redline_pipeline::config::load_str("redline.yaml", &text)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    loaded.exporters.into_iter().next().expect("one exporter")
}

#[test]
fn reference_config_section_parses() {
    // The reference otelcol pipeline (shared/reference/otelcol-tempo.yaml), inlined so the
    // crate's tests do not depend on files outside the repository.
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317\n\
connectors:\n  spanmetrics:\n    namespace: traces.spanmetrics\n    dimensions:\n      - name: cdn.cache.hit\n\
exporters:\n  otlp/tempo:\n    endpoint: systemd-tempo:4317\n    tls:\n      insecure: true\n  prometheus:\n    endpoint: 0.0.0.0:9464\n\
service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [spanmetrics, otlp/tempo]\n    metrics:\n      receivers: [spanmetrics]\n      exporters: [prometheus]\n";
    let loaded = redline_pipeline::config::load_str("otelcol-tempo.yaml", text)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    let section = loaded
        .exporters
        .iter()
        .find(|c| c.id().type_name() == "prometheus")
        .expect("prometheus exporter");
    assert!(PrometheusExporterFactory.validate(section).is_ok());
    let c = Config::from_component(section).expect("valid");
    assert_eq!(c.endpoint, "0.0.0.0:9464");
    assert!(c.enable_open_metrics && c.add_metric_suffixes);
}

#[test]
fn yaml_errors_name_the_key() {
    let err = |body: &str| {
        PrometheusExporterFactory
            .validate(&exporter_section(body))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let ok = exporter_section(
        "    endpoint: 127.0.0.1:0\n    namespace: redline\n    const_labels:\n      env: prod\n    metric_expiration: 5m\n    enable_open_metrics: false",
    );
    let c = Config::from_component(&ok).expect("valid");
    assert_eq!(c.metric_expiration, Some(Duration::from_secs(300)));
    assert_eq!(c.const_labels.get("env").map(String::as_str), Some("prod"));
    assert!(!c.enable_open_metrics);

    let e = err("    endpoint: 0.0.0.0:9464\n    endpoitn: x");
    assert!(e.contains("endpoitn"), "{e}");
    let e = err("    endpoint: 0.0.0.0:9464\n    cors:\n      allowed_origins: [x]");
    assert!(
        e.contains("exporters.prometheus.cors") && e.contains("does not support yet"),
        "{e}"
    );
    let e = err("    endpoint: 0.0.0.0:9464\n    tls:\n      insecure: true");
    assert!(
        e.contains("exporters.prometheus.tls.insecure") && e.contains("unknown field"),
        "{e}"
    );
    let e = err("    endpoint: nowhere");
    assert!(e.contains("exporters.prometheus.endpoint"), "{e}");
    let e = err("    endpoint: 0.0.0.0:9464\n    send_timestamps: tru");
    assert!(e.contains("exporters.prometheus.send_timestamps"), "{e}");
    let e = err("    endpoint: 0.0.0.0:9464\n    const_labels:\n      \"\": x");
    assert!(e.contains("const_labels"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factory_builds_and_serves() {
    let section = exporter_section("    endpoint: 127.0.0.1:0");
    let ctx = redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    assert_eq!(PrometheusExporterFactory.type_name(), "prometheus");
    assert_eq!(PrometheusExporterFactory.signals(), &[Signal::Metrics]);
    let (_, running) = PrometheusExporterFactory
        .build_metrics_reader(&section, &ctx, sources())
        .await
        .unwrap_or_else(|e| panic!("builds: {e}"));
    let addr = running.local_addrs()[0].1;
    let r = http_get(addr, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.ends_with(b"# EOF\n"));
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

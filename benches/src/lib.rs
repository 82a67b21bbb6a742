//! Shared fixtures for the criterion benches (docs/architecture.md §7).
//!
//! The load is the one the performance targets are stated for: OTLP requests of 100 spans,
//! ~400 encoded bytes and 10 attributes per span (`cdn.cache.hit` among them), built with the
//! opentelemetry-proto prost types the SDKs' wire format matches. The number of distinct
//! spanmetrics series the requests produce is a parameter: a series is (service, span name,
//! kind, status, `cdn.cache.hit`), and span `j` of service `k` is series `k + j·services`.

pub mod clock;
pub mod sink;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_spanmetrics::config::Dimension;

/// Spans per request, as the OTel SDKs' batch span processor sends them by default (512) is
/// larger; 100 is the load docs/architecture.md §7 states its peer figures for.
pub const SPANS_PER_REQUEST: usize = 100;

/// The dimension of the reference config (shared/reference/otelcol-tempo.yaml).
pub const DIMENSION: &str = "cdn.cache.hit";

/// The spanmetrics section of the reference config: namespace `traces.spanmetrics`, one
/// dimension `cdn.cache.hit`, default buckets, exemplars on.
pub fn reference_config() -> redline_spanmetrics::Config {
    redline_spanmetrics::Config {
        namespace: "traces.spanmetrics".into(),
        dimensions: vec![Dimension {
            name: DIMENSION.into(),
            default: None,
            glob: None,
        }],
        ..redline_spanmetrics::Config::default()
    }
}

/// A reference-config connector holding exactly `series` series, each counted twice (so
/// counts, sums and exemplars are not all the first span's).
pub fn filled_spanmetrics(series: usize) -> redline_spanmetrics::SpanMetrics {
    let w = Workload::new(series);
    let m = redline_spanmetrics::SpanMetrics::new(&reference_config())
        .expect("reference config is valid");
    for _ in 0..2 {
        for r in w.covering_requests() {
            m.aggregate(&r).expect("fixture is valid");
        }
    }
    assert_eq!(m.series_count(), series);
    m
}

/// Deterministic xorshift64*: fixtures are identical on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn bytes<const N: usize>(&mut self) -> Vec<u8> {
        (0..N).map(|_| (self.next_u64() >> 24) as u8 | 1).collect()
    }
}

/// How the series are spread over services.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub series: usize,
    pub services: usize,
}

impl Workload {
    /// `series` distinct label sets over a realistic number of services (1 for tiny loads,
    /// one per 2,000 series up to 50).
    pub fn new(series: usize) -> Self {
        let series = series.max(1);
        let services = (series / 2000).clamp(1, 50);
        Self { series, services }
    }

    /// Series of service `svc`.
    fn per_service(&self, svc: usize) -> usize {
        (self.series + self.services - 1 - svc) / self.services
    }

    /// Requests that together create every series exactly once (warm-up).
    pub fn covering_requests(&self) -> Vec<Bytes> {
        let mut rng = Rng::new(7);
        let mut out = Vec::new();
        for svc in 0..self.services {
            let n = self.per_service(svc);
            let mut j = 0;
            while j < n {
                let end = (j + SPANS_PER_REQUEST).min(n);
                let spans = (j..end).map(|j| make_span(&mut rng, j)).collect();
                out.push(encode(request(svc, spans)));
                j = end;
            }
        }
        out
    }

    /// `count` requests of [`SPANS_PER_REQUEST`] spans, each from one service (an SDK
    /// batch comes from one process), spans picked uniformly among that service's series.
    pub fn requests(&self, count: usize, seed: u64) -> Vec<Bytes> {
        let mut rng = Rng::new(seed);
        (0..count)
            .map(|i| {
                let svc = i % self.services;
                let n = self.per_service(svc) as u64;
                let spans = (0..SPANS_PER_REQUEST)
                    .map(|_| {
                        let j = rng.below(n) as usize;
                        make_span(&mut rng, j)
                    })
                    .collect();
                encode(request(svc, spans))
            })
            .collect()
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::StringValue(v.into())
}

fn request(svc: usize, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(format!("service-{svc}"))),
                    kv("service.version", s("1.42.0")),
                    kv("host.name", s(format!("node-{}.cluster.local", svc % 7))),
                    kv("k8s.pod.name", s(format!("service-{svc}-7d9f8b6c5-x2x9q"))),
                    kv("telemetry.sdk.language", s("python")),
                    kv("telemetry.sdk.name", s("opentelemetry")),
                    kv("telemetry.sdk.version", s("1.27.0")),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.flask".into(),
                    version: "0.48b0".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Span number `j` of its service: `j` fixes the series (name, kind, status, cache hit).
fn make_span(rng: &mut Rng, j: usize) -> Span {
    let route = j / 4;
    let error = (j / 2) % 2 == 1;
    let hit = j % 2 == 1;
    let kind = match route % 3 {
        0 => SpanKind::Server,
        1 => SpanKind::Client,
        _ => SpanKind::Internal,
    };
    // Log-uniform-ish durations from ~0.5 ms to ~4 s, so every bucket gets used.
    let duration_ns = 500_000u64 << rng.below(13);
    let duration_ns = duration_ns + rng.below(duration_ns);
    let start = 1_700_000_000_000_000_000u64 + rng.below(1_000_000_000_000);
    let method = if route.is_multiple_of(5) {
        "POST"
    } else {
        "GET"
    };
    let path = format!("/api/v1/resource-{route}");
    Span {
        trace_id: rng.bytes::<16>(),
        span_id: rng.bytes::<8>(),
        parent_span_id: rng.bytes::<8>(),
        name: format!("{method} {path}"),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + duration_ns,
        attributes: vec![
            kv("http.request.method", s(method)),
            kv("http.route", s(path.clone())),
            kv(
                "http.response.status_code",
                Value::IntValue(if error { 500 } else { 200 }),
            ),
            kv(
                "http.request.body.size",
                Value::IntValue(rng.below(4096) as i64),
            ),
            kv("server.address", s("api.local")),
            kv("server.port", Value::IntValue(8080)),
            kv("network.protocol.version", s("1.1")),
            kv("user_agent.original", s("python-requests/2.32.3")),
            kv(
                "client.address",
                s(format!("10.12.{}.{}", rng.below(256), rng.below(256))),
            ),
            kv(DIMENSION, s(if hit { "true" } else { "false" })),
        ],
        status: Some(Status {
            code: if error {
                StatusCode::Error as i32
            } else {
                StatusCode::Unset as i32
            },
            message: String::new(),
        }),
        flags: 0x101,
        ..Default::default()
    }
}

fn encode(req: ExportTraceServiceRequest) -> Bytes {
    Bytes::from(req.encode_to_vec())
}

/// Sum of the spans in `requests`.
pub fn span_count(requests: &[Bytes]) -> usize {
    requests
        .iter()
        .map(|r| redline_otlp_wire::validate(r).map_or(0, |s| s.spans))
        .sum()
}

/// Process CPU time (user + system) in seconds, from `/proc/self/stat` (10 ms ticks on
/// Linux: only meaningful over runs of a second or more). `None` off Linux.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_shape_matches_the_stated_load() {
        let w = Workload::new(10_000);
        let reqs = w.requests(20, 1);
        assert_eq!(span_count(&reqs), 20 * SPANS_PER_REQUEST);
        let bytes: usize = reqs.iter().map(Bytes::len).sum();
        let per_span = bytes as f64 / (20 * SPANS_PER_REQUEST) as f64;
        assert!((350.0..=450.0).contains(&per_span), "{per_span} bytes/span");
    }

    #[test]
    fn covering_requests_create_exactly_the_series() {
        for n in [10, 10_000] {
            let w = Workload::new(n);
            let m = redline_spanmetrics::SpanMetrics::new(&reference_config()).expect("valid");
            for r in w.covering_requests() {
                m.aggregate(&r).expect("valid");
            }
            assert_eq!(m.series_count(), n);
            for r in w.requests(10, 3) {
                m.aggregate(&r).expect("valid");
            }
            assert_eq!(
                m.series_count(),
                n,
                "random requests stay within the series"
            );
        }
    }
}

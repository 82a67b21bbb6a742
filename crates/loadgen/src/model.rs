//! The trace model: what the generated traffic looks like.
//!
//! Every request is a pure function of `(seed, run nonce, template index)`, so a seed
//! reproduces the same load. Durations are whole multiples of [`DURATION_QUANTUM_NS`] so that
//! a duration in milliseconds is exact in `f64` and any sum of them is exact in any addition
//! order: that is what lets `--verify` check `_sum` series for equality, not closeness.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde::Serialize;

use crate::ids;
use crate::rng::Rng;

/// otelcol spanmetrics' default explicit buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10000.0, 15000.0,
];

/// 1/64 ms: the coarsest step that keeps durations realistic and every multiple of it (and
/// every sum of them below 2^53/64 ms) exactly representable in binary floating point.
pub const DURATION_QUANTUM_NS: u64 = 15_625;

/// Longest duration the log-normal tail may produce (one hour).
const MAX_DURATION_NS: u64 = 3_600_000_000_000;

/// The attribute `--verify` users most often configure as a dimension (the reference config).
pub const CACHE_HIT_KEY: &str = "cdn.cache.hit";
/// The high-cardinality attribute, present when `high_cardinality > 0`.
pub const HIGH_CARD_KEY: &str = "user.id";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("{name} must be within [0, 1], got {value}")]
    Ratio { name: &'static str, value: f64 },
    #[error("latency median {median_ms} ms must be > 0 and <= p99 {p99_ms} ms")]
    Latency { median_ms: f64, p99_ms: f64 },
    #[error("spans per request must be below 16777216")]
    TooManySpans,
}

/// Knobs of the generated traffic (each has a `loadgen run` flag).
#[derive(Clone, Debug, Serialize)]
pub struct ModelConfig {
    pub seed: u64,
    pub services: usize,
    pub span_names_per_service: usize,
    pub pods_per_service: usize,
    /// Resources (service instances) whose spans one request carries, like an agent or
    /// gateway batch; an SDK export is 1.
    pub resources_per_request: usize,
    pub spans_per_request: usize,
    /// Mean spans per trace; traces are 1..=2×this long.
    pub spans_per_trace: usize,
    pub error_ratio: f64,
    pub latency_median_ms: f64,
    pub latency_p99_ms: f64,
    /// Fraction of spans whose duration is exactly a bucket bound (or one quantum above).
    pub boundary_ratio: f64,
    /// Bucket bounds used for boundary durations (the collector's histogram buckets).
    pub buckets_ms: Vec<f64>,
    /// Attributes per span, `cdn.cache.hit` included when present.
    pub attributes: usize,
    /// Fraction of spans without `cdn.cache.hit`.
    pub cache_missing_ratio: f64,
    /// Of the spans that have `cdn.cache.hit`, the fraction with `true`.
    pub cache_hit_ratio: f64,
    /// Distinct values of `user.id`; 0 leaves the attribute off.
    pub high_cardinality: u64,
    pub service_prefix: String,
    /// `--signal metrics`: sums and histograms in delta temporality, each point covering the
    /// second before it (an SDK exporting deltas every second), instead of cumulative.
    pub delta_metrics: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            services: 10,
            span_names_per_service: 10,
            pods_per_service: 3,
            resources_per_request: 2,
            spans_per_request: 100,
            spans_per_trace: 10,
            error_ratio: 0.05,
            latency_median_ms: 20.0,
            latency_p99_ms: 1000.0,
            boundary_ratio: 0.05,
            buckets_ms: DEFAULT_BUCKETS_MS.to_vec(),
            attributes: 10,
            cache_missing_ratio: 0.34,
            cache_hit_ratio: 0.8,
            high_cardinality: 0,
            service_prefix: String::new(),
            delta_metrics: false,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, v) in [
            ("services", self.services),
            ("span names per service", self.span_names_per_service),
            ("pods per service", self.pods_per_service),
            ("resources per request", self.resources_per_request),
            ("spans per request", self.spans_per_request),
            ("spans per trace", self.spans_per_trace),
        ] {
            if v == 0 {
                return Err(ModelError::Zero(name));
            }
        }
        if self.spans_per_request >= ids::MAX_SPANS_PER_REQUEST {
            return Err(ModelError::TooManySpans);
        }
        for (name, value) in [
            ("error ratio", self.error_ratio),
            ("boundary ratio", self.boundary_ratio),
            ("cache missing ratio", self.cache_missing_ratio),
            ("cache hit ratio", self.cache_hit_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ModelError::Ratio { name, value });
            }
        }
        let (m, p) = (self.latency_median_ms, self.latency_p99_ms);
        if !(m > 0.0 && m.is_finite() && p.is_finite() && p >= m) {
            return Err(ModelError::Latency {
                median_ms: m,
                p99_ms: p,
            });
        }
        Ok(())
    }
}

pub(crate) const SERVICES: [&str; 20] = [
    "frontend",
    "checkout",
    "cart",
    "payment",
    "shipping",
    "email",
    "currency",
    "recommendation",
    "ad",
    "quote",
    "product-catalog",
    "auth",
    "search",
    "makiatto-edge",
    "makiatto-wasm",
    "inventory",
    "pricing",
    "accounts",
    "notification",
    "gateway",
];

/// Span names with their kind. Two carry `"` and `\` so that label escaping is exercised end
/// to end, the way real SQL and regex span names do.
const OPERATIONS: [(&str, SpanKind); 22] = [
    ("http.server", SpanKind::Server),
    ("cdn.file.read", SpanKind::Internal),
    ("wasm.invoke", SpanKind::Internal),
    ("http.client", SpanKind::Client),
    ("GET /api/products/{id}", SpanKind::Server),
    ("POST /api/cart/items", SpanKind::Server),
    ("SELECT \"sku\" FROM products", SpanKind::Client),
    ("redis GET", SpanKind::Client),
    ("kafka.produce orders", SpanKind::Producer),
    ("kafka.consume orders", SpanKind::Consumer),
    ("grpc.server", SpanKind::Server),
    ("grpc.client", SpanKind::Client),
    ("render.template", SpanKind::Internal),
    ("auth.verify", SpanKind::Internal),
    ("regex.match ^/api/v\\d+/", SpanKind::Internal),
    ("image.resize", SpanKind::Internal),
    ("json.encode", SpanKind::Internal),
    ("db.query", SpanKind::Client),
    ("cache.get", SpanKind::Client),
    ("queue.publish", SpanKind::Producer),
    ("queue.process", SpanKind::Consumer),
    ("feature.flags.evaluate", SpanKind::Unspecified),
];

pub(crate) const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
];
pub(crate) const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];

struct Service {
    name: String,
    ops: Vec<(String, SpanKind)>,
    resources: Vec<Resource>,
}

/// Builds requests for one run.
pub struct Generator {
    cfg: ModelConfig,
    services: Vec<Service>,
    nonce: u32,
    mu: f64,
    sigma: f64,
}

impl Generator {
    /// `nonce` goes into every trace id, so runs with the same seed do not repeat ids.
    pub fn new(cfg: ModelConfig, nonce: u32) -> Result<Self, ModelError> {
        cfg.validate()?;
        // Log-normal through its median and 99th percentile (z(0.99) = 2.3263).
        let mu = cfg.latency_median_ms.ln();
        let sigma = (cfg.latency_p99_ms.ln() - mu) / 2.326_347_874;
        let mut rng = Rng::new(cfg.seed, u64::MAX);
        let services = (0..cfg.services)
            .map(|s| build_service(&cfg, s, &mut rng))
            .collect();
        Ok(Self {
            cfg,
            services,
            nonce,
            mu,
            sigma,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn nonce(&self) -> u32 {
        self.nonce
    }

    /// Every `service.name` this generator can produce.
    pub fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    /// Template `index` of the run; span times start at `base_time_ns` (within one second).
    pub fn request(&self, index: u64, base_time_ns: u64) -> ExportTraceServiceRequest {
        let cfg = &self.cfg;
        let mut rng = Rng::new(cfg.seed, index);
        // (service, pod) of each span, in generation order.
        let mut placed: Vec<(usize, usize, Span)> = Vec::with_capacity(cfg.spans_per_request);
        let all = self.services.len() * cfg.pods_per_service;
        let mut resources: Vec<(usize, usize)> = Vec::new();
        while resources.len() < cfg.resources_per_request.min(all) {
            let r = (
                rng.index(self.services.len()),
                rng.index(cfg.pods_per_service),
            );
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
        let mut trace_index: u32 = 0;
        while placed.len() < cfg.spans_per_request {
            let remaining = cfg.spans_per_request - placed.len();
            let len = (1 + rng.index(2 * cfg.spans_per_trace - 1)).min(remaining);
            let trace_id = ids::trace_id(trace_index, self.nonce, 0);
            trace_index = trace_index.wrapping_add(1);
            let first = placed.len();
            for j in 0..len {
                let (svc, pod) = resources[rng.index(resources.len())];
                let parent = (j > 0).then(|| first + rng.index(j));
                let mut span = self.span(&mut rng, svc, placed.len(), base_time_ns);
                span.trace_id = trace_id.to_vec();
                if let Some(p) = parent {
                    span.parent_span_id = ids::span_id(p as u32, 0).to_vec();
                }
                placed.push((svc, pod, span));
            }
        }
        let mut groups: Vec<((usize, usize), Vec<Span>)> = Vec::new();
        for (svc, pod, span) in placed {
            match groups.iter_mut().find(|(k, _)| *k == (svc, pod)) {
                Some((_, spans)) => spans.push(span),
                None => groups.push(((svc, pod), vec![span])),
            }
        }
        let resource_spans = groups
            .into_iter()
            .map(|((svc, pod), spans)| ResourceSpans {
                resource: self
                    .services
                    .get(svc)
                    .and_then(|s| s.resources.get(pod))
                    .cloned(),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "redline-loadgen".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }

    fn span(&self, rng: &mut Rng, svc: usize, idx: usize, base_time_ns: u64) -> Span {
        let cfg = &self.cfg;
        let service = &self.services[svc.min(self.services.len() - 1)];
        let (name, kind) = service.ops[rng.index(service.ops.len())].clone();
        let is_error = rng.chance(cfg.error_ratio);
        let code = if is_error {
            StatusCode::Error
        } else if rng.chance(0.3) {
            StatusCode::Ok
        } else {
            StatusCode::Unset
        };
        let duration = self.duration_ns(rng);
        let start = base_time_ns.saturating_add(rng.below(1_000_000_000));
        let mut attributes = generic_attributes(rng, &service.name, &name, is_error, cfg);
        if !rng.chance(cfg.cache_missing_ratio) {
            attributes.push(kv(CACHE_HIT_KEY, bool_v(rng.chance(cfg.cache_hit_ratio))));
        }
        if cfg.high_cardinality > 0 {
            let user = format!("user-{:08}", rng.below(cfg.high_cardinality));
            attributes.push(kv(HIGH_CARD_KEY, str_v(user)));
        }
        Span {
            trace_id: Vec::new(),
            span_id: ids::span_id(idx as u32, 0).to_vec(),
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start.saturating_add(duration),
            attributes,
            status: Some(Status {
                message: if is_error {
                    "upstream returned 503".into()
                } else {
                    String::new()
                },
                code: code as i32,
            }),
            flags: 0x101,
            ..Default::default()
        }
    }

    /// A duration in ns, a multiple of [`DURATION_QUANTUM_NS`].
    pub fn duration_ns(&self, rng: &mut Rng) -> u64 {
        let buckets = &self.cfg.buckets_ms;
        if !buckets.is_empty() && rng.chance(self.cfg.boundary_ratio) {
            let bound_ns = quantize(buckets[rng.index(buckets.len())] * 1e6);
            // Mostly exactly on the bound (upper-inclusive), sometimes just past it.
            return if rng.chance(0.67) {
                bound_ns
            } else {
                bound_ns + DURATION_QUANTUM_NS
            };
        }
        let ms = (self.mu + self.sigma * rng.normal()).exp();
        quantize(ms * 1e6)
    }
}

fn quantize(ns: f64) -> u64 {
    let q = (ns / DURATION_QUANTUM_NS as f64).round();
    // NaN and negatives (from a degenerate distribution) become 0.
    if q.is_nan() || q < 0.0 {
        return 0;
    }
    ((q as u64).saturating_mul(DURATION_QUANTUM_NS)).min(MAX_DURATION_NS)
}

/// The name of service number `s`: the same for every signal, so one `--service-prefix`
/// keeps all of a run's traffic apart.
pub(crate) fn service_name(prefix: &str, s: usize) -> String {
    let base = SERVICES[s % SERVICES.len()];
    match s / SERVICES.len() {
        0 => format!("{prefix}{base}"),
        n => format!("{prefix}{base}-{n}"),
    }
}

fn build_service(cfg: &ModelConfig, s: usize, rng: &mut Rng) -> Service {
    let name = service_name(&cfg.service_prefix, s);
    // http.server first (every service serves), then a per-service rotation of the rest so
    // that ten services of ten names cover every operation, escaping cases included.
    let mut ops = vec![(OPERATIONS[0].0.to_owned(), OPERATIONS[0].1)];
    let rest = OPERATIONS.len() - 1;
    for j in 0..cfg.span_names_per_service.saturating_sub(1) {
        if j < rest {
            let (n, k) = OPERATIONS[1 + (s * 3 + j) % rest];
            ops.push((n.to_owned(), k));
        } else {
            ops.push((format!("op-{j}"), SpanKind::Internal));
        }
    }
    let version = format!("1.{}.{}", rng.below(20), rng.below(10));
    let resources = (0..cfg.pods_per_service)
        .map(|p| {
            let pod = format!(
                "{name}-7d9f{:05x}-{:05x}",
                rng.below(1 << 20),
                rng.below(1 << 20)
            );
            let node = format!("node-{}", rng.below(8));
            Resource {
                attributes: vec![
                    kv("service.name", str_v(name.clone())),
                    kv("service.namespace", str_v("shop".into())),
                    kv("service.version", str_v(version.clone())),
                    kv(
                        "service.instance.id",
                        str_v(format!("{:016x}{:04x}", rng.next_u64(), p)),
                    ),
                    kv("host.name", str_v(node.clone())),
                    kv("k8s.namespace.name", str_v("prod".into())),
                    kv("k8s.pod.name", str_v(pod)),
                    kv("k8s.node.name", str_v(node)),
                    kv("deployment.environment.name", str_v("production".into())),
                    kv("telemetry.sdk.name", str_v("opentelemetry".into())),
                    kv("telemetry.sdk.language", str_v("rust".into())),
                    kv("telemetry.sdk.version", str_v("0.31.0".into())),
                ],
                ..Default::default()
            }
        })
        .collect();
    Service {
        name,
        ops,
        resources,
    }
}

/// `attributes - 1` realistic attributes (the last slot is `cdn.cache.hit`'s).
fn generic_attributes(
    rng: &mut Rng,
    service: &str,
    op: &str,
    is_error: bool,
    cfg: &ModelConfig,
) -> Vec<KeyValue> {
    let n = cfg.attributes.saturating_sub(1);
    let mut out = Vec::with_capacity(n + 2);
    for i in 0..n {
        let attr = match i {
            0 => kv(
                "http.request.method",
                str_v(METHODS[rng.index(METHODS.len())].into()),
            ),
            1 => kv(
                "http.response.status_code",
                int_v(if is_error {
                    503
                } else if rng.chance(0.05) {
                    404
                } else {
                    200
                }),
            ),
            2 => kv(
                "url.path",
                str_v(format!("/api/v1/products/{}", rng.below(100_000))),
            ),
            3 => kv("server.address", str_v(format!("{service}.prod.svc"))),
            4 => kv("server.port", int_v(8080)),
            5 => kv(
                "network.peer.address",
                str_v(format!(
                    "10.{}.{}.{}",
                    rng.below(4),
                    rng.below(256),
                    rng.below(256)
                )),
            ),
            6 => kv(
                "user_agent.original",
                str_v(USER_AGENTS[rng.index(USER_AGENTS.len())].into()),
            ),
            7 => kv(
                "thread.name",
                str_v(format!("tokio-runtime-worker-{}", rng.below(8))),
            ),
            8 => kv(
                "code.function",
                str_v(format!("handle_{}", op.len() + rng.index(4))),
            ),
            _ => kv(
                &format!("app.attr.{i}"),
                str_v(format!("value-{}", rng.below(16))),
            ),
        };
        out.push(attr);
    }
    out
}

pub(crate) fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn str_v(s: String) -> any_value::Value {
    any_value::Value::StringValue(s)
}

pub(crate) fn int_v(i: i64) -> any_value::Value {
    any_value::Value::IntValue(i)
}

pub(crate) fn bool_v(b: bool) -> any_value::Value {
    any_value::Value::BoolValue(b)
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;

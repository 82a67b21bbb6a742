//! Generated metrics (`--signal metrics`): what an SDK or agent exports every interval.
//!
//! Each request carries `resources_per_request` service instances; each instance exports
//! cumulative sums (counters and up-down counters, integer points) and explicit-bucket
//! histograms (the semantic-convention bounds), alternating, from two instrumentation scopes,
//! until its share of the byte budget is used. Every data point has 4 attributes of the
//! reference load's sizes, and all points of one instance share its collection time (as an
//! SDK's collection does), which [`crate::encode::Template`] moves forward per send.
//! Start times stay at the instance's start. No exemplars.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message;

use crate::model::{int_v, kv, str_v, ModelConfig, ModelError, METHODS};
use crate::model_signals::{field_len, scope, share, Fleet};
use crate::rng::Rng;

/// The semantic conventions' advisory bounds for HTTP durations (seconds).
const HTTP_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The SDKs' default explicit bounds.
const DEFAULT_BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    UpDown,
    Histogram(&'static [f64]),
}

/// Attribute keys and the values each draws from (`#` marks an integer attribute).
type Attr = (&'static str, &'static [&'static str]);

const ROUTES: &[&str] = &[
    "/api/v1/products/{id}",
    "/api/v1/cart/items",
    "/api/v1/checkout",
    "/api/v1/users/{id}/orders",
    "/api/v1/search",
    "/healthz",
    "/api/v1/recommendations",
    "/api/v1/currency/convert",
];
const STATUS: &[&str] = &["#200", "#200", "#200", "#201", "#404", "#503"];
const PEERS: &[&str] = &[
    "cart.prod.svc",
    "payment.prod.svc",
    "inventory.prod.svc",
    "pricing.prod.svc",
    "postgres-main.prod.svc",
    "redis-cache.prod.svc",
];

struct Def {
    scope: usize,
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    kind: Kind,
    attrs: [Attr; 4],
}

const SCOPES: [(&str, &str); 2] = [("io.opentelemetry.http", "2.8.0"), ("shop.app", "1.4.2")];

const DEFS: [Def; 8] = [
    Def {
        scope: 0,
        name: "http.server.request.duration",
        description: "Duration of HTTP server requests.",
        unit: "s",
        kind: Kind::Histogram(&HTTP_BOUNDS),
        attrs: [
            ("http.route", ROUTES),
            ("http.request.method", &METHODS),
            ("http.response.status_code", STATUS),
            ("url.scheme", &["https"]),
        ],
    },
    Def {
        scope: 0,
        name: "http.server.active_requests",
        description: "Number of active HTTP server requests.",
        unit: "{request}",
        kind: Kind::UpDown,
        attrs: [
            ("http.request.method", &["GET", "POST", "PUT", "DELETE"]),
            ("url.scheme", &["https", "http"]),
            ("server.address", PEERS),
            ("server.port", &["#8080", "#8443"]),
        ],
    },
    Def {
        scope: 0,
        name: "http.client.request.duration",
        description: "Duration of HTTP client requests.",
        unit: "s",
        kind: Kind::Histogram(&HTTP_BOUNDS),
        attrs: [
            ("server.address", PEERS),
            ("http.request.method", &METHODS),
            ("http.response.status_code", STATUS),
            ("server.port", &["#8080"]),
        ],
    },
    Def {
        scope: 0,
        name: "http.server.request.count",
        description: "Number of HTTP server requests.",
        unit: "{request}",
        kind: Kind::Counter,
        attrs: [
            ("http.route", ROUTES),
            ("http.request.method", &METHODS),
            ("http.response.status_code", STATUS),
            ("network.protocol.version", &["1.1", "2"]),
        ],
    },
    Def {
        scope: 1,
        name: "db.client.operation.duration",
        description: "Duration of database client operations.",
        unit: "ms",
        kind: Kind::Histogram(&DEFAULT_BOUNDS),
        attrs: [
            (
                "db.collection.name",
                &["products", "orders", "users", "carts", "prices", "stock"],
            ),
            (
                "db.operation.name",
                &["SELECT", "INSERT", "UPDATE", "DELETE"],
            ),
            ("db.system.name", &["postgresql"]),
            ("server.address", PEERS),
        ],
    },
    Def {
        scope: 1,
        name: "app.orders.processed",
        description: "Orders processed by the checkout.",
        unit: "{order}",
        kind: Kind::Counter,
        attrs: [
            (
                "order.type",
                &[
                    "standard",
                    "express",
                    "pickup",
                    "subscription",
                    "gift",
                    "bulk",
                ],
            ),
            ("payment.method", &["card", "paypal", "invoice", "voucher"]),
            ("cloud.region", &["eu-central-1", "eu-west-1", "us-east-1"]),
            ("order.status", &["completed", "failed", "cancelled"]),
        ],
    },
    Def {
        scope: 1,
        name: "messaging.client.consumed.messages",
        description: "Messages consumed from the broker.",
        unit: "{message}",
        kind: Kind::Counter,
        attrs: [
            (
                "messaging.destination.name",
                &[
                    "orders",
                    "payments",
                    "shipments",
                    "emails",
                    "audit",
                    "stock-updates",
                ],
            ),
            ("messaging.system", &["kafka"]),
            ("messaging.operation.name", &["poll", "process"]),
            (
                "messaging.consumer.group.name",
                &["checkout-workers", "mailer"],
            ),
        ],
    },
    Def {
        scope: 1,
        name: "db.client.connection.count",
        description: "Connections in the pool by state.",
        unit: "{connection}",
        kind: Kind::UpDown,
        attrs: [
            (
                "db.client.connection.pool.name",
                &["main", "replica-1", "replica-2", "reporting"],
            ),
            ("db.client.connection.state", &["idle", "used"]),
            ("db.system.name", &["postgresql"]),
            ("server.address", PEERS),
        ],
    },
];

/// Builds `ExportMetricsServiceRequest`s for one run.
pub struct MetricsGenerator {
    cfg: ModelConfig,
    fleet: Fleet,
    target_bytes: usize,
}

impl MetricsGenerator {
    /// Requests of about `target_bytes` encoded bytes each.
    pub fn new(cfg: ModelConfig, target_bytes: usize) -> Result<Self, ModelError> {
        let fleet = Fleet::new(&cfg, 0x6d65_7472)?;
        Ok(Self {
            cfg,
            fleet,
            target_bytes,
        })
    }

    pub fn service_names(&self) -> &[String] {
        self.fleet.service_names()
    }

    /// Template `index`; collection times within one second after `base_time_ns`. Returns
    /// the request and its number of data points.
    pub fn request(&self, index: u64, base_time_ns: u64) -> (ExportMetricsServiceRequest, usize) {
        let mut rng = Rng::new(self.cfg.seed ^ 0x6d65_7472, index);
        let picked = self.fleet.pick(&mut rng);
        let budget = share(self.target_bytes, picked.len());
        let mut points = 0;
        let resource_metrics = picked
            .into_iter()
            .map(|(svc, resource)| {
                let time = base_time_ns.saturating_add(rng.below(1_000_000_000));
                let since = if self.cfg.delta_metrics {
                    1_000_000_000
                } else {
                    3_600_000_000_000 + rng.below(1 << 40)
                };
                let start = time.saturating_sub(since);
                let mut scopes: Vec<ScopeMetrics> = SCOPES
                    .iter()
                    .map(|(n, v)| ScopeMetrics {
                        scope: scope(n, v),
                        ..Default::default()
                    })
                    .collect();
                let mut used = field_len(resource.encoded_len());
                let first = (svc * 3 + index as usize) % DEFS.len();
                let mut k = 0;
                while used < budget {
                    let def = &DEFS[(first + k) % DEFS.len()];
                    let round = k / DEFS.len();
                    k += 1;
                    let wanted = 2 + rng.index(11);
                    let (mut m, n, len) =
                        metric(def, round, wanted, budget - used, &mut rng, start, time);
                    if self.cfg.delta_metrics {
                        set_delta(&mut m);
                    }
                    used += len;
                    points += n;
                    scopes[def.scope].metrics.push(m);
                }
                ResourceMetrics {
                    resource: Some(resource.clone()),
                    scope_metrics: scopes
                        .into_iter()
                        .filter(|s| !s.metrics.is_empty())
                        .collect(),
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }
            })
            .collect();
        (ExportMetricsServiceRequest { resource_metrics }, points)
    }
}

/// Makes a sum or histogram a delta one (the encoded length does not change: one varint
/// byte either way).
fn set_delta(m: &mut Metric) {
    let delta = AggregationTemporality::Delta as i32;
    match &mut m.data {
        Some(metric::Data::Sum(s)) => s.aggregation_temporality = delta,
        Some(metric::Data::Histogram(h)) => h.aggregation_temporality = delta,
        _ => {}
    }
}

/// One metric of `def` with up to `wanted` points (fewer when `room` bytes run out, at least
/// one); returns it, its points and about the bytes it adds to the request.
fn metric(
    def: &Def,
    round: usize,
    wanted: usize,
    room: usize,
    rng: &mut Rng,
    start: u64,
    time: u64,
) -> (Metric, usize, usize) {
    let name = match round {
        0 => def.name.to_owned(),
        r => format!("{}.{r}", def.name),
    };
    let mut used =
        field_len(name.len()) + field_len(def.description.len()) + field_len(def.unit.len()) + 8;
    let offset = rng.index(def.attrs[0].1.len());
    let mut number = Vec::new();
    let mut hist = Vec::new();
    let mut n = 0;
    while n < wanted && (n == 0 || used < room) {
        let attributes = point_attributes(def, offset + n, rng);
        let len = match def.kind {
            Kind::Counter | Kind::UpDown => {
                let v = rng.below(1 << 20) as i64
                    - if matches!(def.kind, Kind::UpDown) {
                        1 << 19
                    } else {
                        0
                    };
                let p = NumberDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsInt(v)),
                    ..Default::default()
                };
                let len = p.encoded_len();
                number.push(p);
                len
            }
            Kind::Histogram(bounds) => {
                let bucket_counts: Vec<u64> = (0..=bounds.len()).map(|_| rng.below(40)).collect();
                let count: u64 = bucket_counts.iter().sum();
                let p = HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count,
                    sum: Some(count as f64 * (0.01 + rng.f64())),
                    bucket_counts,
                    explicit_bounds: bounds.to_vec(),
                    min: Some(0.001),
                    max: Some(1.0 + rng.f64()),
                    ..Default::default()
                };
                let len = p.encoded_len();
                hist.push(p);
                len
            }
        };
        used += field_len(len);
        n += 1;
    }
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match def.kind {
        Kind::Counter | Kind::UpDown => metric::Data::Sum(Sum {
            data_points: number,
            aggregation_temporality: cumulative,
            is_monotonic: matches!(def.kind, Kind::Counter),
        }),
        Kind::Histogram(_) => metric::Data::Histogram(Histogram {
            data_points: hist,
            aggregation_temporality: cumulative,
        }),
    };
    let m = Metric {
        name,
        description: def.description.into(),
        unit: def.unit.into(),
        data: Some(data),
        ..Default::default()
    };
    (m, n, used)
}

/// The 4 attributes of point `j` of a metric: the first key walks its values (so the points
/// of one metric differ, as an SDK's do), the others are drawn.
fn point_attributes(def: &Def, j: usize, rng: &mut Rng) -> Vec<KeyValue> {
    def.attrs
        .iter()
        .enumerate()
        .map(|(i, (key, values))| {
            let v = if i == 0 {
                values[j % values.len()]
            } else {
                values[rng.index(values.len())]
            };
            match v.strip_prefix('#').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) => kv(key, int_v(n)),
                None => kv(key, str_v(v.to_owned())),
            }
        })
        .collect()
}

//! Generated logs (`--signal logs`): access and application logs as an SDK's log bridge
//! exports them.
//!
//! Each request carries `resources_per_request` service instances, each with one scope and
//! as many records as its share of the byte budget holds. A record has a ~100-byte string
//! body, severity (mostly INFO, some WARN and ERROR), 6 attributes of the reference load's
//! sizes, and the trace context of the request it belongs to (16-byte trace id, 8-byte span
//! id, sampled flag). Timestamps are spread over one second and moved forward per send by
//! [`crate::encode::Template`].

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::AnyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use prost::Message;

use crate::model::{int_v, kv, str_v, ModelConfig, ModelError, METHODS, USER_AGENTS};
use crate::model_signals::{field_len, scope, share, Fleet};
use crate::rng::Rng;

const ROUTES: [&str; 8] = [
    "/api/v1/products/{id}",
    "/api/v1/cart/items",
    "/api/v1/checkout",
    "/api/v1/users/{id}/orders",
    "/api/v1/search",
    "/api/v1/recommendations",
    "/api/v1/currency/convert",
    "/api/v1/shipping/quote",
];

/// Builds `ExportLogsServiceRequest`s for one run.
pub struct LogsGenerator {
    cfg: ModelConfig,
    fleet: Fleet,
    nonce: u32,
    target_bytes: usize,
}

impl LogsGenerator {
    /// Requests of about `target_bytes` encoded bytes each; `nonce` goes into trace ids.
    pub fn new(cfg: ModelConfig, nonce: u32, target_bytes: usize) -> Result<Self, ModelError> {
        let fleet = Fleet::new(&cfg, 0x6c6f_6773)?;
        Ok(Self {
            cfg,
            fleet,
            nonce,
            target_bytes,
        })
    }

    pub fn service_names(&self) -> &[String] {
        self.fleet.service_names()
    }

    /// Template `index`; record times within one second after `base_time_ns`. Returns the
    /// request and its number of log records.
    pub fn request(&self, index: u64, base_time_ns: u64) -> (ExportLogsServiceRequest, usize) {
        let mut rng = Rng::new(self.cfg.seed ^ 0x6c6f_6773, index);
        let picked = self.fleet.pick(&mut rng);
        let budget = share(self.target_bytes, picked.len());
        let mut total = 0;
        let resource_logs = picked
            .into_iter()
            .map(|(svc, resource)| {
                let mut used = field_len(resource.encoded_len()) + 40;
                let mut log_records = Vec::new();
                while used < budget {
                    let r = self.record(&mut rng, svc, total, base_time_ns);
                    used += field_len(r.encoded_len());
                    log_records.push(r);
                    total += 1;
                }
                ResourceLogs {
                    resource: Some(resource.clone()),
                    scope_logs: vec![ScopeLogs {
                        scope: scope("shop.http.access", "1.4.2"),
                        log_records,
                        schema_url: String::new(),
                    }],
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }
            })
            .collect();
        (ExportLogsServiceRequest { resource_logs }, total)
    }

    fn record(&self, rng: &mut Rng, svc: usize, i: usize, base_time_ns: u64) -> LogRecord {
        let method = METHODS[rng.index(METHODS.len())];
        let route = ROUTES[rng.index(ROUTES.len())];
        let (status, severity, text) = match rng.f64() {
            x if x < 0.05 => (503, SeverityNumber::Error, "ERROR"),
            x if x < 0.15 => (404, SeverityNumber::Warn, "WARN"),
            _ => (200, SeverityNumber::Info, "INFO"),
        };
        let ms = rng.below(250_000) as f64 / 1000.0;
        let body = format!(
            "{method} {route} -> {status} in {ms:.3} ms; user={:08} request_id={:016x} cache={}",
            rng.below(100_000_000),
            rng.next_u64(),
            if rng.chance(0.8) { "hit" } else { "miss" }
        );
        let time = base_time_ns.saturating_add(rng.below(1_000_000_000));
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&rng.next_u64().to_be_bytes());
        trace_id[8..12].copy_from_slice(&self.nonce.to_be_bytes());
        trace_id[12..].copy_from_slice(&(i as u32 + 1).to_be_bytes());
        let span_id = (rng.next_u64() | 1).to_be_bytes();
        LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: time + rng.below(5_000_000),
            severity_number: severity as i32,
            severity_text: text.into(),
            body: Some(AnyValue {
                value: Some(str_v(body)),
            }),
            attributes: vec![
                kv("http.request.method", str_v(method.into())),
                kv("http.route", str_v(route.into())),
                kv("http.response.status_code", int_v(status)),
                kv(
                    "client.address",
                    str_v(format!(
                        "10.{}.{}.{}",
                        rng.below(4),
                        rng.below(256),
                        rng.below(256)
                    )),
                ),
                kv(
                    "user_agent.original",
                    str_v(USER_AGENTS[rng.index(USER_AGENTS.len())].into()),
                ),
                kv(
                    "thread.name",
                    str_v(format!("worker-{}-{}", svc, rng.below(8))),
                ),
            ],
            flags: 1,
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            ..Default::default()
        }
    }
}

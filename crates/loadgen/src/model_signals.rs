//! What the generated metrics and logs have in common with each other and with the traces:
//! the services (same names as the trace model, so `--service-prefix` keeps a run's traffic
//! apart), their instances (pods) as OTLP resources, the pick of resources per request (an
//! agent's batch carries a few), and the byte budget that makes a request as large as the
//! traces ones (`--signal metrics|logs` is meant to compare per-byte costs with traces).
//!
//! Resources carry 6 attributes of the sizes of the reference load: `service.name`,
//! `service.namespace`, `service.version`, `service.instance.id`, `k8s.pod.name`,
//! `deployment.environment.name`.

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::encoding::encoded_len_varint;

use crate::model::{kv, service_name, str_v, ModelConfig, ModelError};
use crate::rng::Rng;

/// Resources of every (service, pod), built once per generator.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// `[service][pod]`.
    resources: Vec<Vec<Resource>>,
    names: Vec<String>,
    resources_per_request: usize,
}

impl Fleet {
    /// `stream` separates the signals' random draws (same seed, different fleets' ids).
    pub fn new(cfg: &ModelConfig, stream: u64) -> Result<Self, ModelError> {
        for (name, v) in [
            ("services", cfg.services),
            ("pods per service", cfg.pods_per_service),
            ("resources per request", cfg.resources_per_request),
        ] {
            if v == 0 {
                return Err(ModelError::Zero(name));
            }
        }
        let mut rng = Rng::new(cfg.seed, stream);
        let names: Vec<String> = (0..cfg.services)
            .map(|s| service_name(&cfg.service_prefix, s))
            .collect();
        let resources = names
            .iter()
            .map(|name| {
                let version = format!("1.{}.{}", rng.below(20), rng.below(10));
                (0..cfg.pods_per_service)
                    .map(|p| Resource {
                        attributes: vec![
                            kv("service.name", str_v(name.clone())),
                            kv("service.namespace", str_v("shop".into())),
                            kv("service.version", str_v(version.clone())),
                            kv(
                                "service.instance.id",
                                str_v(format!("{:016x}{:04x}", rng.next_u64(), p)),
                            ),
                            kv(
                                "k8s.pod.name",
                                str_v(format!(
                                    "{name}-7d9f{:05x}-{:05x}",
                                    rng.below(1 << 20),
                                    rng.below(1 << 20)
                                )),
                            ),
                            kv("deployment.environment.name", str_v("production".into())),
                        ],
                        ..Default::default()
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            resources,
            names,
            resources_per_request: cfg.resources_per_request,
        })
    }

    pub fn service_names(&self) -> &[String] {
        &self.names
    }

    /// Distinct (service, pod) resources for one request, as many as configured (or exist).
    pub fn pick(&self, rng: &mut Rng) -> Vec<(usize, &Resource)> {
        let pods = self.resources.first().map_or(0, Vec::len);
        let all = self.resources.len() * pods;
        let mut picked: Vec<(usize, usize)> = Vec::new();
        while picked.len() < self.resources_per_request.min(all) {
            let r = (rng.index(self.resources.len()), rng.index(pods));
            if !picked.contains(&r) {
                picked.push(r);
            }
        }
        picked
            .into_iter()
            .filter_map(|(s, p)| Some((s, self.resources.get(s)?.get(p)?)))
            .collect()
    }
}

/// An instrumentation scope as the SDKs send it.
pub fn scope(name: &str, version: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.into(),
        version: version.into(),
        ..Default::default()
    })
}

/// Bytes a length-delimited field of `len` bytes takes with a one-byte tag.
pub fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Splits `target` encoded bytes between `n` resources: each resource's items are added while
/// its running size stays below its share.
pub fn share(target: usize, n: usize) -> usize {
    target / n.max(1)
}

#[cfg(test)]
#[path = "model_signals_tests.rs"]
mod tests;

//! `resource_detection` settings with otelcol's keys and defaults. Only the `env` and
//! `system` detectors exist in Redline; every other detector, and its section, is refused by
//! name.

use std::time::Duration;

use redline_pipeline::config::Unsupported;
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

use crate::system::SystemConfig;

pub const SUPPORTED: &str = "env, system";

/// Detector names otelcol-contrib v0.161 knows.
const OTELCOL_DETECTORS: &[&str] = &[
    "env",
    "system",
    "gcp",
    "ec2",
    "ecs",
    "elastic_beanstalk",
    "eks",
    "lambda",
    "azure",
    "aks",
    "azureappservice",
    "azurecontainerapps",
    "heroku",
    "openshift",
    "dynatrace",
    "consul",
    "docker",
    "k8s_api",
    "k8snode",
    "kubeadm",
    "hetzner",
    "akamai",
    "scaleway",
    "vultr",
    "oraclecloud",
    "digitalocean",
    "nova",
    "upcloud",
    "alibaba_ecs",
    "tencent_cvm",
    "ibmcloud_vpc",
    "ibmcloud_classic",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    Env,
    System,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_detectors")]
    pub detectors: Vec<String>,
    #[serde(default = "default_override", rename = "override")]
    pub override_existing: bool,
    /// Bounds a detection session in otelcol; Redline's detectors read local files only.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub timeout: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub refresh_interval: Option<Duration>,
    /// For network detectors only: nothing to change for `env` and `system`.
    #[serde(default)]
    pub fail_on_missing_metadata: bool,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub system: SystemConfig,

    // The HTTP client settings of the network detectors.
    pub endpoint: Option<Unsupported>,
    pub proxy_url: Option<Unsupported>,
    pub tls: Option<Unsupported>,
    pub headers: Option<Unsupported>,
    pub auth: Option<Unsupported>,
    pub compression: Option<Unsupported>,
    pub read_buffer_size: Option<Unsupported>,
    pub write_buffer_size: Option<Unsupported>,
    pub max_idle_conns: Option<Unsupported>,
    pub max_idle_conns_per_host: Option<Unsupported>,
    pub max_conns_per_host: Option<Unsupported>,
    pub idle_conn_timeout: Option<Unsupported>,
    pub disable_keep_alives: Option<Unsupported>,
    pub http2_read_idle_timeout: Option<Unsupported>,
    pub http2_ping_timeout: Option<Unsupported>,
    pub force_attempt_http2: Option<Unsupported>,
    pub cookies: Option<Unsupported>,
    pub middlewares: Option<Unsupported>,

    // The sections of detectors Redline does not have.
    pub alibaba_ecs: Option<Unsupported>,
    pub ec2: Option<Unsupported>,
    pub ecs: Option<Unsupported>,
    pub eks: Option<Unsupported>,
    pub elasticbeanstalk: Option<Unsupported>,
    pub lambda: Option<Unsupported>,
    pub azure: Option<Unsupported>,
    pub aks: Option<Unsupported>,
    pub azureappservice: Option<Unsupported>,
    pub azurecontainerapps: Option<Unsupported>,
    pub consul: Option<Unsupported>,
    pub digitalocean: Option<Unsupported>,
    pub docker: Option<Unsupported>,
    pub gcp: Option<Unsupported>,
    pub heroku: Option<Unsupported>,
    pub hetzner: Option<Unsupported>,
    pub ibmcloud_classic: Option<Unsupported>,
    pub ibmcloud_vpc: Option<Unsupported>,
    pub openshift: Option<Unsupported>,
    pub nova: Option<Unsupported>,
    pub oraclecloud: Option<Unsupported>,
    pub k8s_api: Option<Unsupported>,
    pub k8snode: Option<Unsupported>,
    pub kubeadm: Option<Unsupported>,
    pub akamai: Option<Unsupported>,
    pub scaleway: Option<Unsupported>,
    pub tencent_cvm: Option<Unsupported>,
    pub upcloud: Option<Unsupported>,
    pub vultr: Option<Unsupported>,
}

/// otelcol's retry of failed detections. Redline's detectors fail only on bad local input
/// (a malformed `OTEL_RESOURCE_ATTRIBUTES`), which no retry mends: the keys are validated
/// as otelcol validates them, and a failure stops the start at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_override")]
    pub enabled: bool,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub initial_interval: Option<Duration>,
    #[serde(default)]
    pub randomization_factor: Option<f64>,
    #[serde(default)]
    pub multiplier: Option<f64>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub max_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub max_elapsed_time: Option<Duration>,
}

fn default_detectors() -> Vec<String> {
    vec!["env".to_owned()]
}

fn default_override() -> bool {
    true
}

/// otelcol's default `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl Config {
    /// The detectors in order, or the first problem with the config.
    pub fn validate(&self, config: &ComponentConfig) -> Result<Vec<Detector>, ConfigError> {
        if self.refresh_interval.is_some_and(|d| !d.is_zero()) {
            return Err(config.invalid(
                "refresh_interval",
                "is not supported by Redline: detection runs once, at start",
            ));
        }
        if let Some(retry) = &self.retry {
            let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
            if retry.enabled
                && timeout.is_zero()
                && retry.max_elapsed_time.unwrap_or_default().is_zero()
            {
                return Err(config.invalid(
                    "retry",
                    "retry.enabled requires either timeout > 0 or retry.max_elapsed_time > 0 to bound detection",
                ));
            }
        }
        self.system
            .validate()
            .map_err(|(key, reason)| config.invalid(&format!("system.{key}"), reason))?;
        if self.detectors.is_empty() {
            return Err(config.invalid(
                "detectors",
                "resource detection failed: no detectors succeeded",
            ));
        }
        self.detectors
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let name = name.trim();
                match name {
                    "env" => Ok(Detector::Env),
                    "system" => Ok(Detector::System),
                    _ if OTELCOL_DETECTORS.contains(&name) => Err(config.invalid(
                        &format!("detectors[{i}]"),
                        format!(
                            "detector {name:?} is not supported by Redline; supported: {SUPPORTED}"
                        ),
                    )),
                    _ => Err(config.invalid(
                        &format!("detectors[{i}]"),
                        format!("invalid detector key: {name}; supported: {SUPPORTED}"),
                    )),
                }
            })
            .collect()
    }
}

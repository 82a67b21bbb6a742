//! The `servicegraph` connector section, with otelcol's keys and defaults.
//!
//! Every otelcol key is here. `exponential_histogram_max_size` above 0 is refused (Redline
//! keeps explicit buckets only); `metrics_exporter` (a no-op in otelcol) and the deprecated
//! `database_name_attribute` are accepted with a warning (see [`Config::warnings`]).
//! `span_multiplier_key` is Redline's (Tempo's name).

mod settings;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use settings::{Invalid, Settings};

/// otelcol's default latency buckets, in seconds.
pub const DEFAULT_BUCKETS_S: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// otelcol's default `virtual_node_peer_attributes`, in priority order.
pub const DEFAULT_PEER_ATTRIBUTES: [&str; 3] = ["peer.service", "db.name", "db.system"];

/// otelcol's default `database_name_attributes`.
pub const DEFAULT_DATABASE_NAME_ATTRIBUTES: [&str; 1] = ["db.name"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `None`: otelcol's default buckets.
    #[serde(deserialize_with = "deserialize_durations")]
    pub latency_histogram_buckets: Option<Vec<Duration>>,
    /// 0 (explicit buckets) is the only value Redline supports; signed so a negative value
    /// gets otelcol's error.
    pub exponential_histogram_max_size: i64,
    pub dimensions: Vec<String>,
    pub store: StoreConfig,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub cache_loop: Duration,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub store_expiration_loop: Duration,
    /// `None`: otelcol's default list; an empty list turns virtual nodes off, as in otelcol.
    pub virtual_node_peer_attributes: Option<Vec<String>>,
    pub virtual_node_extra_label: bool,
    /// `None`: 60 s; 0: a push after every batch of spans, as otelcol flushes then.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub metrics_flush_interval: Option<Duration>,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub metrics_timestamp_offset: Duration,
    /// Empty: otelcol's default (`db.name`).
    pub database_name_attributes: Vec<String>,
    /// Deprecated in otelcol (v0.124) in favour of `database_name_attributes`; used when
    /// that list is empty.
    pub database_name_attribute: Option<String>,
    /// A no-op in otelcol (the pipeline names the exporters); accepted with a warning.
    pub metrics_exporter: Option<String>,
    /// Redline's key (Tempo's name): an attribute whose numeric value is how many requests a
    /// span stands for; the span's attribute first, then its resource's.
    pub span_multiplier_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            latency_histogram_buckets: None,
            exponential_histogram_max_size: 0,
            dimensions: Vec::new(),
            store: StoreConfig::default(),
            cache_loop: Duration::from_secs(60),
            store_expiration_loop: Duration::from_secs(2),
            virtual_node_peer_attributes: None,
            virtual_node_extra_label: false,
            metrics_flush_interval: None,
            metrics_timestamp_offset: Duration::ZERO,
            database_name_attributes: Vec::new(),
            database_name_attribute: None,
            metrics_exporter: None,
            span_multiplier_key: None,
        }
    }
}

/// `store`: the edges waiting for their other half.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub ttl: Duration,
    /// Signed so that 0 and negative values get a clear error.
    pub max_items: i64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(2),
            max_items: 1000,
        }
    }
}

fn deserialize_durations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Duration>>, D::Error> {
    let raw = Option::<Vec<String>>::deserialize(d)?;
    raw.map(|v| {
        v.iter()
            .map(|s| redline_pipeline::duration::parse(s).map_err(serde::de::Error::custom))
            .collect()
    })
    .transpose()
}

impl Config {
    /// What a valid config does differently from what its keys say, for `redline validate`
    /// and the start: accepted otelcol keys without effect, deprecated spellings.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.metrics_exporter.is_some() {
            out.push(
                "`metrics_exporter` is deprecated in otelcol and has no effect: the metrics \
                 pipeline names the exporters"
                    .to_owned(),
            );
        }
        if self.database_name_attribute.is_some() {
            let effect = if self.database_name_attributes.is_empty() {
                "it is used as the only entry of `database_name_attributes`"
            } else {
                "it is ignored because `database_name_attributes` is set"
            };
            out.push(format!(
                "`database_name_attribute` is deprecated in otelcol; use \
                 `database_name_attributes` ({effect})"
            ));
        }
        out
    }
}

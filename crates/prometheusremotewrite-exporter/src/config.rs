//! The `prometheusremotewrite` exporter's config: otelcol contrib's keys and defaults
//! (exporter/prometheusremotewriteexporter: confighttp client settings at the top level or
//! under `http`, exporterhelper `timeout`, `retry_on_failure`, `remote_write_queue`, the
//! translation keys), plus Redline's `push_interval`. Keys otelcol has and Redline does not
//! implement are refused by name.

use std::collections::BTreeMap;
use std::time::Duration;

use redline_http_client::{ConnectionKeys, CookiesConfig, HttpKeepaliveConfig};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::config::{Secret, Unsupported};
use redline_pipeline::duration;
use redline_pipeline::extension::ClientAuthConfig;
use redline_pipeline::only_bool::OnlyBool;
use redline_pipeline::retry::RetryConfig;
use redline_prometheus_translate::ResourceLabelsConfig;
use serde::{Deserialize, Deserializer};

/// otelcol's default `max_batch_size_bytes` (~2.86 MiB of uncompressed protobuf).
pub const DEFAULT_MAX_BATCH_SIZE_BYTES: u64 = 3_000_000;
/// Redline's byte bound on pushes waiting to be sent (compressed), on top of `queue_size`.
pub const DEFAULT_QUEUE_SIZE_BYTES: u64 = 64 * 1024 * 1024;
/// The push interval when neither `push_interval` nor a source's flush interval says.
pub const DEFAULT_PUSH_INTERVAL: Duration = Duration::from_secs(60);

fn default_true() -> bool {
    true
}

/// Declares a config struct holding otelcol's `confighttp.ClientConfig` keys next to its own
/// fields, and [`HttpClientKeys`] to read them. The exporter takes these keys at its top level
/// or nested under `http`; serde cannot flatten a struct into one that refuses unknown keys,
/// so this one list serves both places.
macro_rules! with_http_client_keys {
    ($(#[$attr:meta])* pub struct $name:ident { $($own:tt)* }) => {
        $(#[$attr])*
        pub struct $name {
            /// The remote-write URL, e.g. `http://prometheus:9090/api/v1/write`.
            #[serde(default)]
            pub endpoint: Option<String>,
            #[serde(default)]
            pub headers: BTreeMap<String, Secret>,
            #[serde(default)]
            pub tls: Option<ClientTlsConfig>,
            /// `snappy` (the default) only: the protocol requires it.
            #[serde(default)]
            pub compression: Option<String>,
            /// Per HTTP request; zero means none. Default 5s.
            #[serde(default, deserialize_with = "duration::deserialize_opt")]
            pub timeout: Option<Duration>,
            /// Every request through this http:// proxy; unset or empty: `HTTP_PROXY`,
            /// `HTTPS_PROXY` and `NO_PROXY`, as Go's default transport reads them.
            #[serde(default)]
            pub proxy_url: Option<String>,
            /// `authenticator: <extension id>`: its credentials go with every request.
            #[serde(default)]
            pub auth: Option<ClientAuthConfig>,
            #[serde(default)]
            pub compression_params: Option<Unsupported>,
            // confighttp's connection settings, read through `ConnectionKeys`.
            #[serde(default)]
            pub read_buffer_size: Option<i64>,
            #[serde(default)]
            pub write_buffer_size: Option<i64>,
            #[serde(default)]
            pub max_idle_conns: Option<i64>,
            #[serde(default)]
            pub max_idle_conns_per_host: Option<i64>,
            #[serde(default)]
            pub max_conns_per_host: Option<i64>,
            #[serde(default, deserialize_with = "duration::deserialize_opt")]
            pub idle_conn_timeout: Option<Duration>,
            #[serde(default)]
            pub disable_keep_alives: Option<bool>,
            #[serde(default, deserialize_with = "duration::deserialize_opt")]
            pub http2_read_idle_timeout: Option<Duration>,
            #[serde(default, deserialize_with = "duration::deserialize_opt")]
            pub http2_ping_timeout: Option<Duration>,
            #[serde(default)]
            pub cookies: Option<CookiesConfig>,
            #[serde(default)]
            pub middlewares: Option<Unsupported>,
            #[serde(default)]
            pub force_attempt_http2: Option<bool>,
            /// The newer spelling of the idle-connection keys above.
            #[serde(default)]
            pub keepalive: Option<HttpKeepaliveConfig>,
            $($own)*
        }

        impl $name {
            /// The HTTP client keys Redline implements, as written here.
            pub fn http_client_keys(&self) -> HttpClientKeys<'_> {
                HttpClientKeys {
                    endpoint: self.endpoint.as_deref(),
                    headers: &self.headers,
                    tls: self.tls.as_ref(),
                    compression: self.compression.as_deref(),
                    timeout: self.timeout,
                    auth: self.auth.as_ref(),
                    proxy_url: self.proxy_url.as_deref(),
                    connection: redline_http_client::connection_keys!(self),
                }
            }
        }
    };
}

/// The HTTP client keys Redline implements, from the top level or from `http`.
#[derive(Clone, Copy, Debug)]
pub struct HttpClientKeys<'a> {
    pub endpoint: Option<&'a str>,
    pub headers: &'a BTreeMap<String, Secret>,
    pub tls: Option<&'a ClientTlsConfig>,
    pub compression: Option<&'a str>,
    pub timeout: Option<Duration>,
    pub auth: Option<&'a ClientAuthConfig>,
    pub proxy_url: Option<&'a str>,
    pub connection: ConnectionKeys<'a>,
}

with_http_client_keys! {
    /// The exporter's section, e.g. `exporters.prometheusremotewrite/mimir`.
    #[derive(Clone, Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        /// otelcol's newer nested form of the HTTP client settings; takes the place of the
        /// top-level `endpoint`, `headers`, `tls`, `compression`.
        #[serde(default)]
        pub http: Option<HttpClientConfig>,

        /// Prefix of every metric name (`<namespace>_`).
        #[serde(default)]
        pub namespace: Option<String>,
        /// Labels added to every series that has no label of that name (the series' own wins).
        /// A value left empty (`${env:UNSET}`) is refused when the config is checked.
        #[serde(default)]
        pub external_labels: BTreeMap<String, Option<String>>,
        /// This exporter's defaults (otelcol contrib's), not otelcol's general ones: quick
        /// retries, since every push is superseded by the next.
        #[serde(default = "default_retry", deserialize_with = "deserialize_retry")]
        pub retry_on_failure: RetryConfig,
        #[serde(default)]
        pub remote_write_queue: QueueConfig,
        /// Largest uncompressed request; larger pushes are split at series boundaries. 0: default.
        #[serde(default)]
        pub max_batch_size_bytes: Option<u64>,
        /// How many requests of one push are in flight at once; default `num_consumers`.
        #[serde(default)]
        pub max_batch_request_parallelism: Option<u64>,
        #[serde(default = "default_true")]
        pub add_metric_suffixes: bool,
        #[serde(default)]
        pub translation_strategy: Option<String>,
        /// Send type, help and unit of every family (`MetricMetadata`) with each push.
        #[serde(default)]
        pub send_metadata: bool,
        /// `prometheus.WriteRequest` (remote write 1.0) only.
        #[serde(default)]
        pub protobuf_message: Option<String>,
        /// Resource attributes of OTLP batches that become labels of every series
        /// (spanmetrics series carry no resource, so it changes nothing for them); otelcol's
        /// deprecated spelling of `resource_constant_labels`.
        #[serde(default)]
        pub resource_to_telemetry_conversion: ResourceLabelsConfig,
        /// A `target_info` series per resource of an OTLP batch (on by default).
        #[serde(default)]
        pub target_info: TargetInfo,
        /// No `otel_scope_*` labels on the series of OTLP batches.
        #[serde(default)]
        pub disable_scope_info: bool,
        /// Older otelcol spelling of `disable_scope_info: true`: `enabled: false` only.
        #[serde(default)]
        pub scope_info: Option<EnabledOnly<false>>,
        /// `_created` series for counters and histograms (their start time in ms). Older
        /// otelcol-contrib releases had it; v0.161 refuses the key. Redline keeps it.
        #[serde(default)]
        pub export_created_metric: Option<Enabled>,
        #[serde(default)]
        pub convert_explicit_histograms_to_nhcb: Option<OnlyBool<false>>,
        /// Only meaningful with native histograms, which Redline does not send: no effect.
        #[serde(default)]
        pub keep_classic_histograms: Option<bool>,

        /// Redline: how often to collect and push. Absent: the `metrics_flush_interval` of the
        /// spanmetrics connector(s) feeding the pipeline (the cadence otelcol pushes at), else 60s.
        #[serde(default, deserialize_with = "duration::deserialize_opt")]
        pub push_interval: Option<Duration>,

        #[serde(default)]
        pub wal: Option<Unsupported>,
        /// `included` and `excluded` key patterns of the resource attributes that become labels.
        #[serde(default)]
        pub resource_constant_labels: ResourceLabelsConfig,
        #[serde(default)]
        pub include_metadata_keys: Option<Unsupported>,
        #[serde(default)]
        pub sending_queue: Option<Unsupported>,
    }
}

with_http_client_keys! {
    /// otelcol's `confighttp.ClientConfig` under `http:`.
    #[derive(Clone, Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpClientConfig {}
}

/// otelcol contrib's `retry_on_failure` defaults for this exporter.
fn default_retry() -> RetryConfig {
    RetryConfig {
        initial_interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        max_elapsed_time: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

fn deserialize_retry<'de, D: Deserializer<'de>>(d: D) -> Result<RetryConfig, D::Error> {
    RetryConfig::deserialize_over(default_retry(), d)
}

/// `{enabled: bool}`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    #[serde(default)]
    pub enabled: bool,
}

/// `{enabled: ALLOWED}`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledOnly<const ALLOWED: bool> {
    #[serde(default)]
    pub enabled: Option<OnlyBool<ALLOWED>>,
}

/// `target_info: {enabled}`; otelcol's default is on, also when the section is present
/// without `enabled`.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetInfo {
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for TargetInfo {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// otelcol's `remote_write_queue`, plus Redline's byte bound.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// False: each push is sent before the next collection starts (no queue).
    pub enabled: bool,
    /// Pushes waiting to be sent; when full the oldest waiting push is dropped.
    pub queue_size: i64,
    /// Requests of one push sent in parallel.
    pub num_consumers: i64,
    /// Redline: bound on the compressed bytes of waiting pushes.
    pub queue_size_bytes: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue_size: 10_000,
            num_consumers: 5,
            queue_size_bytes: DEFAULT_QUEUE_SIZE_BYTES,
        }
    }
}

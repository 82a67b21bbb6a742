//! The `otlp` exporter's config: otelcol's otlpexporter keys (configgrpc client settings,
//! exporterhelper timeout, `retry_on_failure` and `sending_queue`), with the same names and
//! defaults, so a user's otelcol file parses unchanged. Keys otelcol knows and Redline does
//! not implement yet are refused by name instead of being ignored.
//!
//! The settings every client shares (`tls`, `retry_on_failure`, the endpoint's form) are the
//! pipeline core's; this module adds what is gRPC's or this exporter's own.

mod compression;
mod headers;
mod http_client;
mod otlphttp;
mod queue;

use std::collections::BTreeMap;
use std::time::Duration;

use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::config::{Secret, Unsupported};
use redline_pipeline::duration;
use redline_pipeline::endpoint::parse_grpc_endpoint;
use redline_pipeline::extension::ClientAuthConfig;
use serde::Deserialize;

pub use compression::{Compression, CompressionParams, MessageEncoding, DEFAULT_GZIP_LEVEL};
pub use http_client::{ConnectionReuse, CookiesConfig, HttpCompression, HttpKeepaliveConfig};
pub use otlphttp::{Encoding, HttpConfig};
pub use queue::{
    BatchConfig, QueueConfig, Sizer, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_QUEUE_SIZE_BYTES,
};
pub use redline_pipeline::retry::RetryConfig;
pub use redline_pipeline::Invalid;

/// The exporter's section, e.g. `exporters.otlp/tempo`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`, `http://host:port` or `https://host:port` (the latter turns TLS on).
    pub endpoint: String,
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// Sent as gRPC metadata with every request (e.g. `X-Scope-OrgID`). Values are secrets:
    /// they never appear in logs or `Debug` output.
    #[serde(default, deserialize_with = "headers::deserialize")]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub compression: Compression,
    /// The gzip level (`compression_params.level`). A Redline extension for gRPC: otelcol takes
    /// this key only in its HTTP client settings (`confighttp`), with the same levels.
    #[serde(default)]
    pub compression_params: Option<CompressionParams>,
    /// Per attempt; zero means no timeout (as in otelcol).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
    /// otelcol's defaults: the first retry after about 5s, none after 5 minutes.
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    #[serde(default)]
    pub sending_queue: QueueConfig,
    /// HTTP/2 keepalive pings. Absent: none (tonic's default).
    #[serde(default)]
    pub keepalive: Option<KeepaliveConfig>,
    /// `round_robin` (unset: otelcol's default) spreads calls over every address the
    /// endpoint's name resolves to; `pick_first` (or empty, grpc-go's own default) keeps one
    /// connection to the first address that answers.
    #[serde(default)]
    pub balancer_name: Option<String>,
    /// Overrides the `:authority` of requests.
    #[serde(default)]
    pub authority: Option<String>,
    /// Replaces Redline's own user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `false` (otelcol's default): a call fails at once while no connection can be made,
    /// and the exporter retries it with backoff. `true`: the call waits for a connection
    /// (retried with grpc-go's backoff) until its `timeout`.
    #[serde(default)]
    pub wait_for_ready: bool,
    /// Accepted for compatibility: grpc-go's connection buffer sizes. hyper sizes its
    /// buffers itself, so the values have no effect (noted at startup), as on the receiver.
    #[serde(default)]
    pub read_buffer_size: Option<i64>,
    #[serde(default)]
    pub write_buffer_size: Option<i64>,
    /// `authenticator: <extension id>`: the extension's credentials go with every call
    /// (`bearertokenauth`, `basicauth` with `client_auth`). Over TLS only, as in otelcol.
    #[serde(default)]
    pub auth: Option<ClientAuthConfig>,
    #[serde(default)]
    pub middlewares: Option<Unsupported>,
    /// Deprecated otelcol batching section (moved to `sending_queue.batch`).
    #[serde(default)]
    pub batcher: Option<Unsupported>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Config {
    /// A config with every default, as an otelcol file holding only `endpoint` would give.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            tls: ClientTlsConfig::default(),
            headers: BTreeMap::new(),
            compression: Compression::default(),
            compression_params: None,
            timeout: default_timeout(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            keepalive: None,
            balancer_name: None,
            authority: None,
            user_agent: None,
            wait_for_ready: false,
            read_buffer_size: None,
            write_buffer_size: None,
            auth: None,
            middlewares: None,
            batcher: None,
        }
    }
}

/// otelcol's `configgrpc.KeepaliveClientConfig`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    #[serde(deserialize_with = "duration::deserialize")]
    pub time: Duration,
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            permit_without_stream: false,
        }
    }
}

impl Config {
    /// Calls are spread over the endpoint's addresses (see `balance`).
    pub fn round_robin(&self) -> bool {
        self.balancer_name
            .as_deref()
            .is_none_or(|b| b == "round_robin")
    }

    /// Whether the connection uses TLS, by otelcol's rule: on unless `tls.insecure` is set, and
    /// always on for an `https://` endpoint or when a CA is configured.
    pub fn uses_tls(&self) -> bool {
        let https = parse_grpc_endpoint(&self.endpoint)
            .map(|t| t.https)
            .unwrap_or(false);
        https || !self.tls.insecure || self.tls.has_ca()
    }

    /// Every semantic check serde cannot express; each problem names its key.
    pub fn check(&self) -> Result<(), Invalid> {
        parse_grpc_endpoint(&self.endpoint).map_err(|r| Invalid::new("endpoint", r))?;
        headers::check(&self.headers)?;

        if let Some(b) = &self.balancer_name {
            if !["", "pick_first", "round_robin"].contains(&b.as_str()) {
                // otelcol's words (configgrpc); its binary registers no other balancer.
                return Err(Invalid::new(
                    "balancer_name",
                    format!("invalid balancer_name: {b} (use `round_robin` or `pick_first`)"),
                ));
            }
        }
        if let Some(auth) = &self.auth {
            let id = auth
                .id()
                .map_err(|e| Invalid::new("auth.authenticator", e))?;
            // `headers_setter` sets plain headers, which grpc-go lets through a plaintext
            // channel (its credentials do not ask for transport security).
            if !self.uses_tls() && id.type_name() != "headers_setter" {
                // grpc-go refuses credentials on a plaintext channel, so otelcol's exporter
                // fails to start with this config.
                return Err(Invalid::new(
                    "auth",
                    "credentials are sent over TLS only (otelcol's exporter fails to start \
                     without it): remove `tls.insecure: true` or use an `https://` endpoint",
                ));
            }
        }
        if let Some(a) = &self.authority {
            if a.is_empty() || http::uri::Authority::try_from(a.as_str()).is_err() {
                return Err(Invalid::new("authority", "must be a valid host[:port]"));
            }
        }
        if let Some(ua) = &self.user_agent {
            if http::HeaderValue::try_from(ua.as_str()).is_err() {
                return Err(Invalid::new("user_agent", "must be visible ASCII"));
            }
        }
        if let Some(k) = &self.keepalive {
            if k.time.is_zero() {
                return Err(Invalid::new("keepalive.time", "must be positive"));
            }
        }

        self.check_compression()?;
        self.tls
            .check()
            .map_err(|e| Invalid::new(format!("tls.{}", e.key), e.reason))?;
        self.retry_on_failure
            .check()
            .map_err(|e| Invalid::new(format!("retry_on_failure.{}", e.key), e.reason))?;
        self.sending_queue.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_on_by_default_like_otelcol() {
        let mut c = Config::new("tempo:4317");
        assert!(c.uses_tls());
        c.tls.insecure = true;
        assert!(!c.uses_tls());
        c.endpoint = "https://tempo:4317".into();
        assert!(c.uses_tls(), "https overrides insecure");
        c.endpoint = "tempo:4317".into();
        c.tls.ca_file = Some("/ca.pem".into());
        assert!(c.uses_tls(), "a CA overrides insecure");
    }

    #[test]
    fn checks_name_the_bad_key() {
        let key = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::new("tempo:4317");
            f(&mut c);
            c.check().expect_err("invalid").key_path
        };
        assert_eq!(key(&|c| c.endpoint = "tempo".into()), "endpoint");
        assert_eq!(
            key(&|c| c.retry_on_failure.multiplier = 0.5),
            "retry_on_failure.multiplier"
        );
        assert_eq!(
            key(&|c| c.retry_on_failure.randomization_factor = 2.0),
            "retry_on_failure.randomization_factor"
        );
        assert_eq!(
            key(&|c| c.sending_queue.num_consumers = 0),
            "sending_queue.num_consumers"
        );
        assert_eq!(
            key(&|c| c.sending_queue.queue_size = 0),
            "sending_queue.queue_size"
        );
        assert_eq!(
            key(&|c| c.tls.cert_file = Some("c.pem".into())),
            "tls.key_file"
        );
        assert_eq!(
            key(&|c| c.balancer_name = Some("least_request_experimental".into())),
            "balancer_name"
        );
        assert_eq!(
            key(&|c| {
                c.headers.insert("bad header".into(), Secret::from("v"));
            }),
            "headers.bad header"
        );
        let err = Config {
            headers: [("X-Scope-OrgID".to_owned(), Secret::from("sec\nret"))].into(),
            ..Config::new("tempo:4317")
        }
        .check()
        .expect_err("control character");
        assert_eq!(err.key_path, "headers.X-Scope-OrgID");
        assert!(!err.reason.contains("sec"), "the value must not be echoed");
        assert!(Config::new("tempo:4317").check().is_ok());
    }

    #[test]
    fn header_values_are_not_debug_printed() {
        let mut c = Config::new("tempo:4317");
        c.headers
            .insert("authorization".into(), Secret::from("Bearer hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

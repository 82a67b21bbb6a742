//! The `otlphttp` exporter's config: otelcol's otlphttpexporter keys (the confighttp client
//! settings, `encoding`, the per-signal endpoints, `retry_on_failure` and `sending_queue`) with
//! the same names and defaults. Connection-tuning keys that have no counterpart in Redline's
//! HTTP client are accepted and reported once at start (see `http_client`); keys that would
//! change what is sent (`middlewares`) are refused by name instead.

use std::collections::BTreeMap;
use std::time::Duration;

use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::config::{Secret, Unsupported};
use redline_pipeline::duration;
use redline_pipeline::endpoint::parse_http_endpoint;
use redline_pipeline::extension::ClientAuthConfig;
use redline_pipeline::retry::RetryConfig;
use redline_pipeline::Signal;
use serde::Deserialize;

use super::compression::CompressionParams;
use super::http_client::{CookiesConfig, HttpCompression, HttpKeepaliveConfig};
use super::{headers, Invalid, QueueConfig};

/// How requests are encoded on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The received protobuf bytes, forwarded untouched (otelcol's default).
    #[default]
    Proto,
    /// OTLP/JSON, converted from the protobuf request.
    Json,
}

/// The exporter's section, e.g. `exporters.otlphttp/loki`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Base URL: `/v1/traces`, `/v1/metrics` or `/v1/logs` is appended.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Full URLs, used as written, in place of `endpoint` for their signal.
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
    #[serde(default)]
    pub logs_endpoint: Option<String>,
    /// Redline carries no profiles: accepted so otelcol files parse, never used.
    #[serde(default)]
    pub profiles_endpoint: Option<String>,
    #[serde(default)]
    pub encoding: Encoding,
    /// Used for `https://` URLs; the scheme alone decides whether TLS is used.
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// Sent with every request. Values are secrets: never in logs or `Debug` output.
    #[serde(default, deserialize_with = "headers::deserialize")]
    pub headers: BTreeMap<String, Secret>,
    #[serde(default)]
    pub compression: HttpCompression,
    #[serde(default)]
    pub compression_params: Option<CompressionParams>,
    /// Per attempt, connecting included; zero means none. otelcol's default for this exporter.
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    #[serde(default)]
    pub sending_queue: QueueConfig,

    // confighttp's connection settings.
    #[serde(default)]
    pub read_buffer_size: Option<i64>,
    #[serde(default)]
    pub write_buffer_size: Option<i64>,
    /// Idle connections kept for reuse (Redline talks to one host, so this caps that host).
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
    /// The newer spelling of the four keys above.
    #[serde(default)]
    pub keepalive: Option<HttpKeepaliveConfig>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub http2_read_idle_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration::deserialize_opt")]
    pub http2_ping_timeout: Option<Duration>,
    #[serde(default)]
    pub force_attempt_http2: Option<bool>,
    #[serde(default)]
    pub cookies: Option<CookiesConfig>,
    /// Every request through this http:// proxy; unset or empty: `HTTP_PROXY`, `HTTPS_PROXY`
    /// and `NO_PROXY`, as Go's default transport reads them.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// `authenticator: <extension id>`: the extension's credentials go with every request
    /// (`bearertokenauth`, `basicauth` with `client_auth`).
    #[serde(default)]
    pub auth: Option<ClientAuthConfig>,
    #[serde(default)]
    pub middlewares: Option<Unsupported>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl HttpConfig {
    /// A config with every default, as an otelcol file holding only `endpoint` would give.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: Some(endpoint.into()),
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            profiles_endpoint: None,
            encoding: Encoding::default(),
            tls: ClientTlsConfig::default(),
            headers: BTreeMap::new(),
            compression: HttpCompression::default(),
            compression_params: None,
            timeout: default_timeout(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            read_buffer_size: None,
            write_buffer_size: None,
            max_idle_conns: None,
            max_idle_conns_per_host: None,
            max_conns_per_host: None,
            idle_conn_timeout: None,
            disable_keep_alives: None,
            keepalive: None,
            http2_read_idle_timeout: None,
            http2_ping_timeout: None,
            force_attempt_http2: None,
            cookies: None,
            proxy_url: None,
            auth: None,
            middlewares: None,
        }
    }

    /// The key holding `signal`'s own URL.
    pub fn signal_key(signal: Signal) -> &'static str {
        match signal {
            Signal::Traces => "traces_endpoint",
            Signal::Metrics => "metrics_endpoint",
            Signal::Logs => "logs_endpoint",
        }
    }

    fn signal_endpoint(&self, signal: Signal) -> Option<&str> {
        let e = match signal {
            Signal::Traces => &self.traces_endpoint,
            Signal::Metrics => &self.metrics_endpoint,
            Signal::Logs => &self.logs_endpoint,
        };
        e.as_deref().filter(|e| !e.is_empty())
    }

    /// Where `signal` is sent, and the key it comes from: the signal's own endpoint as written,
    /// else `endpoint` with `/v1/<signal>` appended (otelcol's rule, so `http://loki:3100/otlp`
    /// sends logs to `/otlp/v1/logs`). `None` when neither is set.
    pub fn url(&self, signal: Signal) -> Option<(String, &'static str)> {
        if let Some(e) = self.signal_endpoint(signal) {
            return Some((e.to_owned(), Self::signal_key(signal)));
        }
        let base = self.endpoint.as_deref().filter(|e| !e.is_empty())?;
        let path = signal.http_path();
        let url = match base.strip_suffix('/') {
            Some(b) => format!("{b}{path}"),
            None => format!("{base}{path}"),
        };
        Some((url, "endpoint"))
    }

    /// Every semantic check serde cannot express; each problem names its key.
    pub fn check(&self) -> Result<(), Invalid> {
        let endpoints = [
            ("endpoint", &self.endpoint),
            ("traces_endpoint", &self.traces_endpoint),
            ("metrics_endpoint", &self.metrics_endpoint),
            ("logs_endpoint", &self.logs_endpoint),
            ("profiles_endpoint", &self.profiles_endpoint),
        ];
        let mut any = false;
        for (key, value) in endpoints {
            let Some(e) = value.as_deref().filter(|e| !e.is_empty()) else {
                continue;
            };
            any |= key != "profiles_endpoint";
            parse_http_endpoint(e).map_err(|r| Invalid::new(key, r))?;
        }
        if !any {
            return Err(Invalid::new(
                "endpoint",
                "is required: set `endpoint` (a base URL such as http://collector:4318), or \
                 `traces_endpoint`, `metrics_endpoint` or `logs_endpoint`",
            ));
        }
        if let Some(e) = self.endpoint.as_deref().filter(|e| !e.is_empty()) {
            // The composed URLs must be URLs too (a query string in the base would not be).
            for signal in Signal::ALL {
                if let Some((url, "endpoint")) = self.url(signal) {
                    url.parse::<http::Uri>().map_err(|_| {
                        Invalid::new(
                            "endpoint",
                            format!("`{e}` does not take `{}` appended", signal.http_path()),
                        )
                    })?;
                }
            }
        }
        headers::check_http(&self.headers)?;
        if let Some(auth) = &self.auth {
            auth.id()
                .map_err(|e| Invalid::new("auth.authenticator", e))?;
        }
        self.check_compression()?;
        self.connection_keys().check()?;
        self.proxy()?;
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
#[path = "otlphttp_tests.rs"]
mod tests;

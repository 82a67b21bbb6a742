//! `receivers: zipkin:`, with otelcol's keys: confighttp's server settings and
//! `parse_string_tags`.

use std::collections::BTreeMap;
use std::time::Duration;

use redline_http_server::receive::ContentEncoding;
use redline_http_server::{HttpKeepalive, HttpServerTimeouts};
use redline_pipeline::config::{present, Unsupported};
use redline_pipeline::endpoint::{ListenerDialer, TcpTransport};
use redline_pipeline::extension::ServerAuthConfig;
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

/// otelcol's default: the Zipkin port, on localhost (as every otelcol server since v0.104).
pub const DEFAULT_ENDPOINT: &str = "localhost:9411";
/// confighttp's `defaultMaxRequestBodySize`.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 20 * 1024 * 1024;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub endpoint: String,
    /// Only `tcp`.
    pub transport: TcpTransport,
    pub dialer: Option<ListenerDialer>,
    /// Tag values that read as an int, a double or a bool become attributes of that type.
    pub parse_string_tags: bool,
    /// Bytes, for the body as received and again once decompressed; 0 or less: 20 MiB.
    pub max_request_body_size: i64,
    /// Default: every encoding Redline decodes (`""`, `gzip`, `zlib`, `deflate`, `zstd`).
    pub compression_algorithms: Option<Vec<String>>,
    pub response_headers: BTreeMap<String, String>,
    /// Accepted: no Redline component reads client metadata.
    pub include_metadata: bool,
    pub include_tls_metadata: bool,
    #[serde(deserialize_with = "present")]
    pub tls: Option<ServerTlsConfig>,
    pub auth: Option<ServerAuthConfig>,
    pub cors: Option<Unsupported>,
    pub middlewares: Option<Unsupported>,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub read_header_timeout: Option<Duration>,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub read_timeout: Option<Duration>,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub write_timeout: Option<Duration>,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub idle_timeout: Option<Duration>,
    pub keep_alives_enabled: Option<bool>,
    pub keepalive: Option<HttpKeepalive>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            transport: TcpTransport,
            dialer: None,
            parse_string_tags: false,
            max_request_body_size: 0,
            compression_algorithms: None,
            response_headers: BTreeMap::new(),
            include_metadata: false,
            include_tls_metadata: false,
            tls: None,
            auth: None,
            cors: None,
            middlewares: None,
            read_header_timeout: None,
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            keep_alives_enabled: None,
            keepalive: None,
        }
    }
}

impl Config {
    /// Parses and checks a component section.
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        let parsed: Config = config.parse()?;
        parsed.check(config)?;
        Ok(parsed)
    }

    /// confighttp's server deadlines. otelcol's Zipkin receiver turns them and keep-alive
    /// off; Redline keeps confighttp's defaults (docs/compatibility.md).
    pub fn timeouts(&self) -> HttpServerTimeouts {
        redline_http_server::http_server_timeouts!(self)
    }

    pub fn max_request_body_size(&self) -> usize {
        usize::try_from(self.max_request_body_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_REQUEST_BODY_SIZE)
    }

    /// The accepted encodings; call after [`Config::check`], which refuses unknown names.
    pub fn encodings(&self) -> Vec<ContentEncoding> {
        match &self.compression_algorithms {
            None => ContentEncoding::ALL.to_vec(),
            Some(names) => names
                .iter()
                .filter_map(|n| ContentEncoding::parse(n))
                .collect(),
        }
    }

    /// The checks serde cannot express; errors name the key.
    pub fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::endpoint::split_listen_endpoint(&self.endpoint)
            .map_err(|e| config.invalid("endpoint", e))?;
        for name in self.compression_algorithms.iter().flatten() {
            if ContentEncoding::parse(name).is_none() {
                return Err(config.invalid(
                    "compression_algorithms",
                    format!(
                        "`{name}` is not an encoding Redline's zipkin receiver decodes \
                         (supported: {})",
                        ContentEncoding::NAMES
                    ),
                ));
            }
        }
        redline_http_server::response_headers(&self.response_headers).map_err(|name| {
            config.invalid(
                &format!("response_headers.{name}"),
                "is not a valid HTTP header",
            )
        })?;
        self.timeouts()
            .check()
            .map_err(|(key, reason)| config.invalid(key, reason))?;
        if self.include_tls_metadata {
            return Err(config.invalid(
                "include_tls_metadata",
                "`true` is an otelcol setting Redline does not support yet",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.check()
                .map_err(|e| config.invalid(&format!("tls.{}", e.key), e.reason))?;
        }
        if let Some(auth) = &self.auth {
            auth.id()
                .map_err(|e| config.invalid("auth.authenticator", e))?;
        }
        Ok(())
    }
}

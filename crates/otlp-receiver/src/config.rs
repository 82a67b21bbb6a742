//! The `otlp` receiver's config section, with otelcol's keys and defaults.
//!
//! Every key of otelcol's `otlpreceiver.Config` (configgrpc.ServerConfig, confighttp.ServerConfig
//! and the URL paths) is either implemented here or typed [`Unsupported`], so a file written
//! for otelcol either works the same or fails with a message naming the key. Unknown keys fail
//! (`deny_unknown_fields`), as otelcol's strict unmarshalling does.

use std::collections::BTreeMap;
use std::time::Duration;

use redline_grpc_server::DefaultEndpoint;
pub use redline_grpc_server::{
    KeepaliveConfig, KeepaliveEnforcementPolicy, KeepaliveServerParameters,
    DEFAULT_MAX_RECV_MSG_SIZE_MIB,
};
pub use redline_http_server::HttpKeepalive;
use redline_http_server::HttpServerTimeouts;
use redline_pipeline::config::{present, Unsupported};
use redline_pipeline::endpoint::{ListenerDialer, TcpTransport};
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{ComponentConfig, ConfigError, Signal};
use serde::Deserialize;

/// otelcol's default gRPC endpoint. Since v0.104 otelcol binds `localhost` by default
/// (the `component.UseLocalHostAsDefaultHost` gate went stable) rather than `0.0.0.0`, so a
/// receiver with no `endpoint` is not reachable from other hosts or containers. Redline
/// follows the current otelcol; containers set `endpoint: 0.0.0.0:4317` explicitly, as the
/// reference config does.
pub const DEFAULT_GRPC_ENDPOINT: &str = "localhost:4317";
/// otelcol's default HTTP endpoint (same `localhost` rule as gRPC).
pub const DEFAULT_HTTP_ENDPOINT: &str = "localhost:4318";
/// confighttp's `defaultMaxRequestBodySize`.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: u64 = 20 * 1024 * 1024;
pub const DEFAULT_TRACES_URL_PATH: &str = "/v1/traces";
pub const DEFAULT_METRICS_URL_PATH: &str = "/v1/metrics";
pub const DEFAULT_LOGS_URL_PATH: &str = "/v1/logs";

/// `receivers.otlp`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub protocols: Protocols,
}

/// `protocols`: a protocol is enabled by its key being present, even with an empty value
/// (`grpc:`), exactly as in otelcol.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocols {
    #[serde(default, deserialize_with = "present")]
    pub grpc: Option<GrpcConfig>,
    #[serde(default, deserialize_with = "present")]
    pub http: Option<HttpConfig>,
}

/// `protocols.grpc` (otelcol's configgrpc.ServerConfig), on port 4317 by default.
pub type GrpcConfig = redline_grpc_server::GrpcConfig<OtlpGrpcEndpoint>;

/// The `otlp` receiver's default gRPC endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpGrpcEndpoint;

impl DefaultEndpoint for OtlpGrpcEndpoint {
    const ENDPOINT: &'static str = DEFAULT_GRPC_ENDPOINT;
}

/// `protocols.http` (otelcol's confighttp.ServerConfig plus the URL paths).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub endpoint: String,
    pub traces_url_path: String,
    pub metrics_url_path: String,
    pub logs_url_path: String,
    /// Bytes; 0 or negative means the default (20 MiB), as in confighttp. Applies to the body
    /// as received and again to the decompressed body.
    pub max_request_body_size: i64,
    /// Content-Encodings accepted; `""` (or `identity`) is an uncompressed body. Default:
    /// every encoding Redline implements (`""`, `gzip`, `zstd`, `zlib`, `deflate`, `snappy`,
    /// `x-snappy-framed`; otelcol's default adds `lz4`).
    pub compression_algorithms: Option<Vec<String>>,
    /// Headers added to every response.
    pub response_headers: BTreeMap<String, String>,
    /// Time allowed to read a request's head (HTTP/1), from its first byte; 0: no limit.
    /// Default 1m, as in confighttp.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub read_header_timeout: Option<Duration>,
    /// Accepted: no Redline component reads client metadata, so there is nothing to keep.
    pub include_metadata: bool,
    /// Only `false`: batches carry no client metadata yet.
    pub include_tls_metadata: bool,
    #[serde(deserialize_with = "present")]
    pub tls: Option<ServerTlsConfig>,
    #[serde(deserialize_with = "present")]
    pub cors: Option<crate::http::CorsConfig>,
    pub auth: Option<AuthConfig>,
    pub middlewares: Option<Unsupported>,
    /// Time allowed to read a whole request (HTTP/1), head and body, from its first byte;
    /// default 0: no limit, as in confighttp.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub read_timeout: Option<Duration>,
    /// Time allowed from the end of a request's head (HTTP/1) to the end of its response;
    /// 0: no limit. Default 30s, as in confighttp.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub write_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.idle_timeout`; still read, with a warning.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub idle_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.enabled`; still read, with a warning.
    pub keep_alives_enabled: Option<bool>,
    /// `null` is no section, as in confighttp.
    pub keepalive: Option<HttpKeepalive>,
    /// Only `tcp`, as for gRPC.
    pub transport: TcpTransport,
    pub dialer: Option<ListenerDialer>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_HTTP_ENDPOINT.to_owned(),
            traces_url_path: DEFAULT_TRACES_URL_PATH.to_owned(),
            metrics_url_path: DEFAULT_METRICS_URL_PATH.to_owned(),
            logs_url_path: DEFAULT_LOGS_URL_PATH.to_owned(),
            max_request_body_size: 0,
            compression_algorithms: None,
            response_headers: BTreeMap::new(),
            read_header_timeout: None,
            include_metadata: false,
            include_tls_metadata: false,
            tls: None,
            cors: None,
            auth: None,
            middlewares: None,
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            keep_alives_enabled: None,
            keepalive: None,
            transport: TcpTransport,
            dialer: None,
        }
    }
}

/// A server's `auth` section, as every Redline server spells it.
pub use redline_pipeline::extension::ServerAuthConfig as AuthConfig;

/// Checks the `tls` and `auth` keys of one protocol; `prefix` is `protocols.grpc`.
fn check_security(
    config: &ComponentConfig,
    prefix: &str,
    tls: Option<&ServerTlsConfig>,
    auth: Option<&AuthConfig>,
) -> Result<(), ConfigError> {
    if let Some(tls) = tls {
        tls.check()
            .map_err(|e| config.invalid(&format!("{prefix}.tls.{}", e.key), e.reason))?;
    }
    if let Some(auth) = auth {
        auth.id()
            .map_err(|e| config.invalid(&format!("{prefix}.auth.authenticator"), e))?;
    }
    Ok(())
}

/// A Content-Encoding the HTTP server can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    Identity,
    Gzip,
    /// `deflate` and `zlib` are both zlib streams (RFC 1950), as in otelcol.
    Zlib,
    Zstd,
    /// `snappy`: the block format, or the framed format when the body starts with the
    /// framed stream identifier (otelcol's rule, kept for senders of the older framed
    /// `snappy`).
    Snappy,
    /// `x-snappy-framed`: the snappy framed format.
    SnappyFramed,
}

impl ContentEncoding {
    /// Parses a config name or a `Content-Encoding` value. `None` for an encoding otelcol
    /// knows but Redline does not decode (lz4) and for unknown names.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "identity" | "none" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zlib" | "deflate" => Some(Self::Zlib),
            "zstd" => Some(Self::Zstd),
            "snappy" => Some(Self::Snappy),
            "x-snappy-framed" => Some(Self::SnappyFramed),
            _ => None,
        }
    }
}

impl HttpConfig {
    pub fn max_request_body_size(&self) -> usize {
        if self.max_request_body_size <= 0 {
            DEFAULT_MAX_REQUEST_BODY_SIZE as usize
        } else {
            usize::try_from(self.max_request_body_size).unwrap_or(usize::MAX)
        }
    }

    /// `traces_url_path` sanitized like otelcol's SanitizedURLPath: a relative path gets a
    /// leading `/`.
    pub fn traces_path(&self) -> String {
        sanitized_path(&self.traces_url_path)
    }

    /// The URL path of a signal (`traces_url_path`, `metrics_url_path`, `logs_url_path`),
    /// sanitized.
    pub fn path(&self, signal: Signal) -> String {
        sanitized_path(self.url_path(signal))
    }

    fn url_path(&self, signal: Signal) -> &str {
        match signal {
            Signal::Traces => &self.traces_url_path,
            Signal::Metrics => &self.metrics_url_path,
            Signal::Logs => &self.logs_url_path,
        }
    }

    /// The keys bounding a connection's life, for the server and its checks.
    pub fn timeouts(&self) -> HttpServerTimeouts {
        redline_http_server::http_server_timeouts!(self)
    }

    /// The accepted encodings. Call after [`Config::check`], which rejects unknown names.
    pub fn encodings(&self) -> Vec<ContentEncoding> {
        match &self.compression_algorithms {
            None => vec![
                ContentEncoding::Identity,
                ContentEncoding::Gzip,
                ContentEncoding::Zstd,
                ContentEncoding::Zlib,
                ContentEncoding::Snappy,
                ContentEncoding::SnappyFramed,
            ],
            Some(names) => names
                .iter()
                .filter_map(|n| ContentEncoding::parse(n))
                .collect(),
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

    /// The checks serde cannot express; errors name the key path.
    pub fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let p = &self.protocols;
        if p.grpc.is_none() && p.http.is_none() {
            return Err(config.invalid(
                "protocols",
                "must specify at least one protocol when using the OTLP receiver \
                 (`grpc` and/or `http`)",
            ));
        }
        if let Some(g) = &p.grpc {
            g.check(config, "protocols.grpc")?;
        }
        if let Some(h) = &p.http {
            check_endpoint(&h.endpoint)
                .map_err(|e| config.invalid("protocols.http.endpoint", e))?;
            for signal in Signal::ALL {
                let path = h.path(signal);
                if path.contains(['?', '#']) || path.chars().any(|c| c.is_whitespace()) {
                    return Err(config.invalid(
                        &format!("protocols.http.{signal}_url_path"),
                        format!("`{}` is not a URL path", h.url_path(signal)),
                    ));
                }
            }
            if let Some(names) = &h.compression_algorithms {
                for name in names {
                    if ContentEncoding::parse(name).is_none() {
                        let reason = if name == "lz4" {
                            format!("`{name}` is an otelcol setting Redline does not support yet")
                        } else {
                            format!(
                                "unknown compression `{name}` (supported: \"\", gzip, zstd, zlib, deflate, snappy, x-snappy-framed)"
                            )
                        };
                        return Err(config.invalid("protocols.http.compression_algorithms", reason));
                    }
                }
            }
            redline_http_server::response_headers(&h.response_headers).map_err(|name| {
                config.invalid(
                    &format!("protocols.http.response_headers.{name}"),
                    "is not a valid HTTP header",
                )
            })?;
            h.timeouts().check().map_err(|(key, reason)| {
                config.invalid(&format!("protocols.http.{key}"), reason)
            })?;
            if h.include_tls_metadata {
                return Err(config.invalid(
                    "protocols.http.include_tls_metadata",
                    "`true` is an otelcol setting Redline does not support yet",
                ));
            }
            check_security(config, "protocols.http", h.tls.as_ref(), h.auth.as_ref())?;
        }
        Ok(())
    }
}

fn sanitized_path(p: &str) -> String {
    let p = p.trim();
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

/// `host:port` with a numeric port, as Go's net.SplitHostPort accepts it (the host may be
/// empty, meaning every interface, or a bracketed IPv6 literal).
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    redline_pipeline::endpoint::split_listen_endpoint(endpoint).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_otelcol() {
        let g = GrpcConfig::default();
        assert_eq!(g.endpoint, "localhost:4317");
        assert_eq!(g.max_recv_msg_size(), 4 * 1024 * 1024);
        let h = HttpConfig::default();
        assert_eq!(h.endpoint, "localhost:4318");
        assert_eq!(h.traces_path(), "/v1/traces");
        assert_eq!(h.max_request_body_size(), 20 * 1024 * 1024);
        // otelcol's defaults but lz4.
        assert_eq!(
            h.encodings(),
            [
                ContentEncoding::Identity,
                ContentEncoding::Gzip,
                ContentEncoding::Zstd,
                ContentEncoding::Zlib,
                ContentEncoding::Snappy,
                ContentEncoding::SnappyFramed,
            ]
        );
    }

    #[test]
    fn sanitizes_traces_path() {
        let h = HttpConfig {
            traces_url_path: "custom/traces".into(),
            ..HttpConfig::default()
        };
        assert_eq!(h.traces_path(), "/custom/traces");
    }

    #[test]
    fn parses_content_encodings() {
        assert_eq!(ContentEncoding::parse("GZIP"), Some(ContentEncoding::Gzip));
        assert_eq!(ContentEncoding::parse(""), Some(ContentEncoding::Identity));
        assert_eq!(
            ContentEncoding::parse("deflate"),
            Some(ContentEncoding::Zlib)
        );
        assert_eq!(ContentEncoding::parse("zstd"), Some(ContentEncoding::Zstd));
        assert_eq!(
            ContentEncoding::parse("snappy"),
            Some(ContentEncoding::Snappy)
        );
        assert_eq!(
            ContentEncoding::parse("x-snappy-framed"),
            Some(ContentEncoding::SnappyFramed)
        );
        assert_eq!(ContentEncoding::parse("lz4"), None);
        assert_eq!(ContentEncoding::parse("br"), None);
    }
}

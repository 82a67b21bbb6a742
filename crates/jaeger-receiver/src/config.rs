//! `receivers: jaeger:`, with otelcol's keys: `protocols` (`grpc` with configgrpc's server
//! settings, `thrift_http` with confighttp's, `thrift_compact` and `thrift_binary` with the
//! UDP server's) and the removed `remote_sampling`. A protocol listens when its key is present, even empty.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use redline_http_server::receive::ContentEncoding;
use redline_http_server::{HttpKeepalive, HttpServerTimeouts};
use redline_pipeline::config::{present, Unsupported};
use redline_pipeline::endpoint::{ListenerDialer, TcpTransport};
use redline_pipeline::extension::ServerAuthConfig;
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::de::{Deserializer, Error, IgnoredAny};

/// `protocols.grpc` (otelcol's configgrpc.ServerConfig), on port 14250 by default.
pub type GrpcConfig = redline_grpc_server::GrpcConfig<JaegerGrpcEndpoint>;

/// The `jaeger` receiver's default gRPC endpoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct JaegerGrpcEndpoint;

impl redline_grpc_server::DefaultEndpoint for JaegerGrpcEndpoint {
    const ENDPOINT: &'static str = DEFAULT_GRPC_ENDPOINT;
}
use serde::Deserialize;

/// otelcol's defaults: Jaeger's ports, on localhost.
pub const DEFAULT_GRPC_ENDPOINT: &str = "localhost:14250";
pub const DEFAULT_THRIFT_HTTP_ENDPOINT: &str = "localhost:14268";
pub const DEFAULT_THRIFT_COMPACT_ENDPOINT: &str = "localhost:6831";
pub const DEFAULT_THRIFT_BINARY_ENDPOINT: &str = "localhost:6832";
/// confighttp's `defaultMaxRequestBodySize`.
pub const DEFAULT_MAX_REQUEST_BODY_SIZE: usize = 20 * 1024 * 1024;
/// The UDP servers' defaults in otelcol.
pub const DEFAULT_QUEUE_SIZE: usize = 1_000;
pub const DEFAULT_MAX_PACKET_SIZE: usize = 65_000;
pub const DEFAULT_WORKERS: usize = 10;
/// Bounds Redline sets where otelcol has none: a queue of a million datagrams already holds
/// up to 64 GiB, and each worker is a task.
const MAX_QUEUE_SIZE: i64 = 1 << 20;
const MAX_WORKERS: i64 = 1024;
/// No UDP payload is longer (without IPv6 jumbograms): a larger `max_packet_size` reads what
/// arrives whole, as otelcol's does, without a larger buffer.
const LONGEST_DATAGRAM: usize = 65_536;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub protocols: Protocols,
    /// Removed from the receiver in otelcol, which refuses it; so does Redline, with its text.
    #[serde(deserialize_with = "remote_sampling")]
    pub remote_sampling: Option<()>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Protocols {
    #[serde(deserialize_with = "present")]
    pub grpc: Option<GrpcConfig>,
    #[serde(deserialize_with = "present")]
    pub thrift_http: Option<ThriftHttpConfig>,
    #[serde(deserialize_with = "present")]
    pub thrift_compact: Option<CompactUdpConfig>,
    #[serde(deserialize_with = "present")]
    pub thrift_binary: Option<BinaryUdpConfig>,
}

fn remote_sampling<'de, D: Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    IgnoredAny::deserialize(d)?;
    Err(D::Error::custom(
        "remote sampling config detected in the Jaeger receiver; use the \
         `jaegerremotesampling` extension instead",
    ))
}

/// `protocols.thrift_http`: confighttp's server settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThriftHttpConfig {
    pub endpoint: String,
    /// Only `tcp`.
    pub transport: TcpTransport,
    pub dialer: Option<ListenerDialer>,
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

impl Default for ThriftHttpConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_THRIFT_HTTP_ENDPOINT.to_owned(),
            transport: TcpTransport,
            dialer: None,
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

impl ThriftHttpConfig {
    /// confighttp's server deadlines. otelcol's Jaeger receiver turns them and keep-alive
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

    /// The accepted encodings; unknown names were refused by [`Config::check`].
    pub fn encodings(&self) -> Vec<ContentEncoding> {
        match &self.compression_algorithms {
            None => ContentEncoding::ALL.to_vec(),
            Some(names) => names
                .iter()
                .filter_map(|n| ContentEncoding::parse(n))
                .collect(),
        }
    }

    fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let key = |k: &str| format!("protocols.thrift_http.{k}");
        check_endpoint(&self.endpoint).map_err(|e| config.invalid(&key("endpoint"), e))?;
        for name in self.compression_algorithms.iter().flatten() {
            if ContentEncoding::parse(name).is_none() {
                return Err(config.invalid(
                    &key("compression_algorithms"),
                    format!(
                        "`{name}` is not an encoding Redline's jaeger receiver decodes \
                         (supported: {})",
                        ContentEncoding::NAMES
                    ),
                ));
            }
        }
        redline_http_server::response_headers(&self.response_headers).map_err(|name| {
            config.invalid(
                &key(&format!("response_headers.{name}")),
                "is not a valid HTTP header",
            )
        })?;
        self.timeouts()
            .check()
            .map_err(|(k, reason)| config.invalid(&key(k), reason))?;
        if self.include_tls_metadata {
            return Err(config.invalid(
                &key("include_tls_metadata"),
                "`true` is an otelcol setting Redline does not support yet",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.check()
                .map_err(|e| config.invalid(&key(&format!("tls.{}", e.key)), e.reason))?;
        }
        if let Some(auth) = &self.auth {
            auth.id()
                .map_err(|e| config.invalid(&key("auth.authenticator"), e))?;
        }
        Ok(())
    }
}

/// `protocols.thrift_compact` and `protocols.thrift_binary`: the agent's UDP servers. The two
/// differ only in their default port, which `P` gives.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, bound = "P: AgentPort")]
pub struct UdpConfig<P> {
    pub endpoint: String,
    /// Packets received but not yet read, beyond which new ones are dropped.
    pub queue_size: i64,
    /// A longer datagram is cut to this many bytes (and then fails to decode), as in otelcol.
    pub max_packet_size: i64,
    /// Packets decoded at once.
    pub workers: i64,
    /// The socket's receive buffer (`SO_RCVBUF`); 0 keeps the system's.
    pub socket_buffer_size: i64,
    #[serde(skip)]
    port: PhantomData<P>,
}

/// The default endpoint of one of the agent's ports.
pub trait AgentPort: Clone + std::fmt::Debug {
    const DEFAULT_ENDPOINT: &'static str;
}

#[derive(Clone, Debug)]
pub struct CompactPort;

impl AgentPort for CompactPort {
    const DEFAULT_ENDPOINT: &'static str = DEFAULT_THRIFT_COMPACT_ENDPOINT;
}

#[derive(Clone, Debug)]
pub struct BinaryPort;

impl AgentPort for BinaryPort {
    const DEFAULT_ENDPOINT: &'static str = DEFAULT_THRIFT_BINARY_ENDPOINT;
}

pub type CompactUdpConfig = UdpConfig<CompactPort>;
pub type BinaryUdpConfig = UdpConfig<BinaryPort>;

impl<P: AgentPort> Default for UdpConfig<P> {
    fn default() -> Self {
        Self {
            endpoint: P::DEFAULT_ENDPOINT.to_owned(),
            queue_size: DEFAULT_QUEUE_SIZE as i64,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE as i64,
            workers: DEFAULT_WORKERS as i64,
            socket_buffer_size: 0,
            port: PhantomData,
        }
    }
}

impl<P> UdpConfig<P> {
    fn check(&self, config: &ComponentConfig, name: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("protocols.{name}.{k}");
        check_endpoint(&self.endpoint).map_err(|e| config.invalid(&key("endpoint"), e))?;
        for (field, value, least, most) in [
            ("queue_size", self.queue_size, 0, MAX_QUEUE_SIZE),
            ("max_packet_size", self.max_packet_size, 1, i64::MAX),
            ("workers", self.workers, 1, MAX_WORKERS),
            (
                "socket_buffer_size",
                self.socket_buffer_size,
                0,
                i64::from(i32::MAX),
            ),
        ] {
            if value < least {
                return Err(config.invalid(&key(field), format!("must be at least {least}")));
            }
            if value > most {
                return Err(config.invalid(&key(field), format!("must be at most {most}")));
            }
        }
        Ok(())
    }

    pub fn queue_size(&self) -> usize {
        usize::try_from(self.queue_size).unwrap_or(DEFAULT_QUEUE_SIZE)
    }

    pub fn max_packet_size(&self) -> usize {
        usize::try_from(self.max_packet_size)
            .unwrap_or(DEFAULT_MAX_PACKET_SIZE)
            .min(LONGEST_DATAGRAM)
    }

    pub fn workers(&self) -> usize {
        usize::try_from(self.workers).unwrap_or(DEFAULT_WORKERS)
    }

    pub fn socket_buffer_size(&self) -> Option<usize> {
        usize::try_from(self.socket_buffer_size)
            .ok()
            .filter(|n| *n > 0)
    }
}

/// `host:port`; port 0 (any free port) is Redline's, for tests.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    redline_pipeline::endpoint::split_listen_endpoint(endpoint).map(drop)
}

impl Config {
    /// Parses and checks a component section.
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        let parsed: Config = config.parse()?;
        parsed.check(config)?;
        Ok(parsed)
    }

    /// The checks serde cannot express; errors name the key.
    pub fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let p = &self.protocols;
        if p.grpc.is_none()
            && p.thrift_http.is_none()
            && p.thrift_compact.is_none()
            && p.thrift_binary.is_none()
        {
            return Err(config.invalid(
                "protocols",
                "must specify at least one protocol when using the Jaeger receiver \
                 (grpc, thrift_http, thrift_compact or thrift_binary)",
            ));
        }
        if let Some(grpc) = &p.grpc {
            grpc.check(config, "protocols.grpc")?;
        }
        if let Some(http) = &p.thrift_http {
            http.check(config)?;
        }
        if let Some(udp) = &p.thrift_compact {
            udp.check(config, "thrift_compact")?;
        }
        if let Some(udp) = &p.thrift_binary {
            udp.check(config, "thrift_binary")?;
        }
        Ok(())
    }
}

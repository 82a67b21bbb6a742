//! `protocols.grpc`: otelcol's configgrpc.ServerConfig, every key either implemented or typed
//! [`Unsupported`], with its checks and the notes on keys that take no effect.

use std::marker::PhantomData;
use std::time::Duration;

use redline_pipeline::config::{present, Unsupported};
use redline_pipeline::endpoint::{ListenerDialer, TcpTransport};
use redline_pipeline::extension::ServerAuthConfig;
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{ComponentConfig, ComponentId, ConfigError};
use serde::Deserialize;

/// grpc-go's default receive limit, which otelcol keeps when `max_recv_msg_size_mib` is 0.
pub const DEFAULT_MAX_RECV_MSG_SIZE_MIB: u64 = 4;
/// Request metadata allowed per call when `max_header_list_size_kib` is 0: what hyper and
/// gRPC's C core allow (grpc-go allows 16 MiB).
pub const DEFAULT_MAX_HEADER_LIST_SIZE_KIB: u32 = 16;
/// grpc-go's default, as the ceiling of the setting.
const MAX_HEADER_LIST_SIZE_KIB_LIMIT: u32 = 16 * 1024;
/// The gRPC length prefix is a u32, so no message can be larger than this.
const MAX_RECV_MSG_SIZE_MIB_LIMIT: u64 = 4095;

/// `protocols.grpc` (otelcol's configgrpc.ServerConfig); `P` gives the receiver's default
/// endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, bound = "P: DefaultEndpoint")]
pub struct GrpcConfig<P> {
    pub endpoint: String,
    /// Only `tcp`: Redline does not listen on unix sockets yet.
    pub transport: TcpTransport,
    /// 0 means the default (4 MiB), as in otelcol.
    pub max_recv_msg_size_mib: u64,
    /// Redline's own key (otelcol has none; grpc-go's `MaxHeaderListSize`): request metadata
    /// allowed per call, as HTTP/2 counts it. A call over it fails alone, RESOURCE_EXHAUSTED;
    /// 0 means 16 KiB.
    pub max_header_list_size_kib: u32,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection; 0 keeps hyper's default (200;
    /// grpc-go has no limit).
    pub max_concurrent_streams: u32,
    /// Accepted for compatibility: a grpc-go socket buffer size. hyper sizes its buffers
    /// itself, so the value has no effect (logged at startup).
    pub read_buffer_size: Option<u64>,
    /// Same as `read_buffer_size`.
    pub write_buffer_size: Option<u64>,
    #[serde(deserialize_with = "present")]
    pub keepalive: Option<KeepaliveConfig>,
    /// Accepted: no Redline component reads client metadata, so there is nothing to keep.
    pub include_metadata: bool,
    /// Serve over TLS (otelcol's configtls server keys); `client_ca_file` makes it mutual.
    #[serde(deserialize_with = "present")]
    pub tls: Option<ServerTlsConfig>,
    /// `authenticator: <extension id>`: every request must pass that extension's check.
    pub auth: Option<ServerAuthConfig>,
    pub middlewares: Option<Unsupported>,
    pub dialer: Option<ListenerDialer>,
    #[serde(skip)]
    pub default_endpoint: PhantomData<P>,
}

/// A receiver's default gRPC endpoint.
pub trait DefaultEndpoint {
    const ENDPOINT: &'static str;
}

impl<P: DefaultEndpoint> Default for GrpcConfig<P> {
    fn default() -> Self {
        Self {
            endpoint: P::ENDPOINT.to_owned(),
            transport: TcpTransport,
            max_recv_msg_size_mib: 0,
            max_header_list_size_kib: 0,
            max_concurrent_streams: 0,
            read_buffer_size: None,
            write_buffer_size: None,
            keepalive: None,
            include_metadata: false,
            tls: None,
            auth: None,
            middlewares: None,
            dialer: None,
            default_endpoint: PhantomData,
        }
    }
}

impl<P> GrpcConfig<P> {
    /// The receive limit in bytes, for both the compressed frame and the decompressed message.
    pub fn max_recv_msg_size(&self) -> usize {
        let mib = if self.max_recv_msg_size_mib == 0 {
            DEFAULT_MAX_RECV_MSG_SIZE_MIB
        } else {
            self.max_recv_msg_size_mib.min(MAX_RECV_MSG_SIZE_MIB_LIMIT)
        };
        usize::try_from(mib * 1024 * 1024).unwrap_or(usize::MAX)
    }

    /// Request metadata allowed per call, in bytes.
    pub fn max_header_list_size(&self) -> u32 {
        let kib = match self.max_header_list_size_kib {
            0 => DEFAULT_MAX_HEADER_LIST_SIZE_KIB,
            kib => kib.min(MAX_HEADER_LIST_SIZE_KIB_LIMIT),
        };
        kib * 1024
    }

    /// What the HTTP/2 layer decodes before it gives up on the whole connection: well above
    /// the per-call limit, so that a call over that limit is decoded and refused alone
    /// rather than taking every other call of its connection down with it.
    pub fn connection_header_list_size(&self) -> u32 {
        self.max_header_list_size()
            .saturating_mul(4)
            .max(256 * 1024)
    }
}

/// `protocols.grpc.keepalive`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepaliveConfig {
    #[serde(deserialize_with = "present")]
    pub server_parameters: Option<KeepaliveServerParameters>,
    /// Accepted and read, without effect (noted at startup): hyper answers every client ping
    /// and never closes a connection for pinging too often, so no policy (grpc-go's default
    /// one included) is enforced. Files set it to let clients ping more often than grpc-go's
    /// default allows, which Redline always does.
    #[serde(deserialize_with = "present")]
    pub enforcement_policy: Option<KeepaliveEnforcementPolicy>,
}

/// `protocols.grpc.keepalive.enforcement_policy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepaliveEnforcementPolicy {
    /// The shortest time between client pings grpc-go tolerates (its default: 5m).
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub min_time: Option<Duration>,
    /// grpc-go tolerates pings on a connection without calls only with this set.
    pub permit_without_stream: bool,
}

/// `protocols.grpc.keepalive.server_parameters`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepaliveServerParameters {
    /// Interval of server-initiated HTTP/2 pings on an idle connection.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub time: Option<Duration>,
    /// How long to wait for a ping's ack before closing the connection.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub timeout: Option<Duration>,
    /// A connection with no call in flight this long gets a GOAWAY; 0 or unset: never.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub max_connection_idle: Option<Duration>,
    /// A connection this old (±10%) gets a GOAWAY; 0 or unset: never.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub max_connection_age: Option<Duration>,
    /// After the GOAWAY for age, the calls still running get this long before the connection
    /// closes; 0 or unset: as long as they take.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub max_connection_age_grace: Option<Duration>,
}

impl<P> GrpcConfig<P> {
    /// The checks serde cannot express; `prefix` is the section's key path
    /// (`protocols.grpc`), for the errors.
    pub fn check(&self, config: &ComponentConfig, prefix: &str) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{prefix}.{k}");
        redline_pipeline::endpoint::split_listen_endpoint(&self.endpoint)
            .map_err(|e| config.invalid(&key("endpoint"), e))?;
        if self.max_recv_msg_size_mib > MAX_RECV_MSG_SIZE_MIB_LIMIT {
            return Err(config.invalid(
                &key("max_recv_msg_size_mib"),
                format!(
                    "{} MiB is larger than a gRPC message can be ({MAX_RECV_MSG_SIZE_MIB_LIMIT} MiB)",
                    self.max_recv_msg_size_mib
                ),
            ));
        }
        if self.max_header_list_size_kib > MAX_HEADER_LIST_SIZE_KIB_LIMIT {
            return Err(config.invalid(
                &key("max_header_list_size_kib"),
                format!(
                    "{} KiB is more than grpc-go allows ({MAX_HEADER_LIST_SIZE_KIB_LIMIT} KiB)",
                    self.max_header_list_size_kib
                ),
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
        if let Some(sp) = self
            .keepalive
            .as_ref()
            .and_then(|k| k.server_parameters.as_ref())
        {
            if sp.timeout == Some(Duration::ZERO) && sp.time.is_some() {
                return Err(config.invalid(
                    &key("keepalive.server_parameters.timeout"),
                    "must be greater than 0 when `time` is set",
                ));
            }
        }
        Ok(())
    }

    /// Logs, at startup, the keys that are accepted without effect.
    pub fn note_ineffective_keys(&self, receiver: &ComponentId, prefix: &str) {
        for (key, value) in [
            ("read_buffer_size", self.read_buffer_size),
            ("write_buffer_size", self.write_buffer_size),
        ] {
            if value.is_some() {
                tracing::info!(
                    %receiver,
                    "{prefix}.{key} has no effect in Redline: hyper sizes its buffers itself"
                );
            }
        }
        if self
            .keepalive
            .as_ref()
            .is_some_and(|k| k.enforcement_policy.is_some())
        {
            tracing::info!(
                %receiver,
                "{prefix}.keepalive.enforcement_policy has no effect in Redline: every client \
                 ping is answered, and none closes its connection"
            );
        }
    }
}

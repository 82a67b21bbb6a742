//! otelcol's `confighttp.ClientConfig` connection keys, shared by every component whose
//! section holds them (`otlphttp`, `prometheusremotewrite`): connection reuse in either
//! spelling (the legacy top-level keys or `keepalive`), and the keys Redline's HTTP/1.1 client
//! takes without effect. Each component declares the keys in its own section (serde cannot
//! flatten into a section that refuses unknown keys) and reads them through [`ConnectionKeys`].

use std::time::Duration;

use redline_pipeline::duration;
use redline_pipeline::only_bool::OnlyBool;
use redline_pipeline::Invalid;
use serde::Deserialize;

use crate::{ConnectionReuse, DEFAULT_IDLE_TIMEOUT};

/// What a component says at start about the keys [`ConnectionKeys::ignored`] lists.
pub const IGNORED_KEYS_NOTE: &str = "these otelcol HTTP client settings have no effect in \
     Redline (HTTP/1.1 client with its own buffer sizes); accepted and ignored";

/// otelcol's `confighttp.KeepaliveClientConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpKeepaliveConfig {
    pub enabled: Option<bool>,
    #[serde(deserialize_with = "duration::deserialize_opt")]
    pub idle_conn_timeout: Option<Duration>,
    pub max_idle_conns: Option<i64>,
    pub max_idle_conns_per_host: Option<i64>,
}

/// `cookies`: Redline's client keeps no cookie jar.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesConfig {
    #[serde(default)]
    pub enabled: Option<OnlyBool<false>>,
}

/// A section's [`ConnectionKeys`], from a config struct whose fields carry the keys' names
/// and types (`keepalive` is an `Option<HttpKeepaliveConfig>`).
#[macro_export]
macro_rules! connection_keys {
    ($section:expr) => {
        $crate::ConnectionKeys {
            read_buffer_size: $section.read_buffer_size,
            write_buffer_size: $section.write_buffer_size,
            max_idle_conns: $section.max_idle_conns,
            max_idle_conns_per_host: $section.max_idle_conns_per_host,
            max_conns_per_host: $section.max_conns_per_host,
            idle_conn_timeout: $section.idle_conn_timeout,
            disable_keep_alives: $section.disable_keep_alives,
            keepalive: $section.keepalive.as_ref(),
            http2_read_idle_timeout: $section.http2_read_idle_timeout,
            http2_ping_timeout: $section.http2_ping_timeout,
            force_attempt_http2: $section.force_attempt_http2,
        }
    };
}

/// A section's connection keys, as written.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectionKeys<'a> {
    pub read_buffer_size: Option<i64>,
    pub write_buffer_size: Option<i64>,
    /// Idle connections kept for reuse (Redline talks to one host, so this caps that host).
    pub max_idle_conns: Option<i64>,
    pub max_idle_conns_per_host: Option<i64>,
    pub max_conns_per_host: Option<i64>,
    pub idle_conn_timeout: Option<Duration>,
    pub disable_keep_alives: Option<bool>,
    /// The newer spelling of the four keys above.
    pub keepalive: Option<&'a HttpKeepaliveConfig>,
    pub http2_read_idle_timeout: Option<Duration>,
    pub http2_ping_timeout: Option<Duration>,
    pub force_attempt_http2: Option<bool>,
}

impl ConnectionKeys<'_> {
    /// otelcol's checks: no negative count, and one spelling only. Keys are relative to the
    /// section.
    pub fn check(&self) -> Result<(), Invalid> {
        let k = self.keepalive;
        let counts = [
            ("read_buffer_size", self.read_buffer_size),
            ("write_buffer_size", self.write_buffer_size),
            ("max_idle_conns", self.max_idle_conns),
            ("max_idle_conns_per_host", self.max_idle_conns_per_host),
            ("max_conns_per_host", self.max_conns_per_host),
            ("keepalive.max_idle_conns", k.and_then(|k| k.max_idle_conns)),
            (
                "keepalive.max_idle_conns_per_host",
                k.and_then(|k| k.max_idle_conns_per_host),
            ),
        ];
        if let Some((key, _)) = counts.iter().find(|(_, v)| v.is_some_and(|v| v < 0)) {
            return Err(Invalid::new(*key, "must not be negative"));
        }
        if k.is_some() {
            let legacy = [
                ("max_idle_conns", self.max_idle_conns.is_some()),
                (
                    "max_idle_conns_per_host",
                    self.max_idle_conns_per_host.is_some(),
                ),
                ("idle_conn_timeout", self.idle_conn_timeout.is_some()),
                ("disable_keep_alives", self.disable_keep_alives.is_some()),
            ];
            if let Some((key, _)) = legacy.into_iter().find(|(_, set)| *set) {
                return Err(Invalid::new(
                    key,
                    "cannot be combined with `keepalive`: give the connection settings in one place",
                ));
            }
        }
        Ok(())
    }

    /// Connection reuse from `keepalive` or the legacy keys (call after [`Self::check`]).
    pub fn reuse(&self) -> ConnectionReuse {
        let k = self.keepalive.cloned().unwrap_or_default();
        let keep_alive = match (k.enabled, self.disable_keep_alives) {
            (Some(enabled), _) => enabled,
            (None, Some(disabled)) => !disabled,
            (None, None) => true,
        };
        let per_host = k
            .max_idle_conns_per_host
            .or(self.max_idle_conns_per_host)
            .filter(|n| *n > 0);
        let total = k.max_idle_conns.or(self.max_idle_conns).filter(|n| *n > 0);
        // One host: the smaller of the two limits is the one that applies.
        let max_idle = match (per_host, total) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .and_then(|n| usize::try_from(n).ok());
        ConnectionReuse {
            keep_alive,
            idle_timeout: k
                .idle_conn_timeout
                .or(self.idle_conn_timeout)
                .unwrap_or(DEFAULT_IDLE_TIMEOUT),
            max_idle,
        }
    }

    /// The first key written, if any.
    pub fn first_written(&self) -> Option<&'static str> {
        [
            ("read_buffer_size", self.read_buffer_size.is_some()),
            ("write_buffer_size", self.write_buffer_size.is_some()),
            ("max_idle_conns", self.max_idle_conns.is_some()),
            (
                "max_idle_conns_per_host",
                self.max_idle_conns_per_host.is_some(),
            ),
            ("max_conns_per_host", self.max_conns_per_host.is_some()),
            ("idle_conn_timeout", self.idle_conn_timeout.is_some()),
            ("disable_keep_alives", self.disable_keep_alives.is_some()),
            ("keepalive", self.keepalive.is_some()),
        ]
        .into_iter()
        .chain(self.no_effect())
        .find_map(|(key, set)| set.then_some(key))
    }

    /// Keys that were set and have no effect in Redline's HTTP/1.1 client, for a note at
    /// start.
    pub fn ignored(&self) -> Vec<&'static str> {
        let buffers = [
            ("read_buffer_size", self.read_buffer_size.is_some()),
            ("write_buffer_size", self.write_buffer_size.is_some()),
            ("max_conns_per_host", self.max_conns_per_host.is_some()),
        ];
        buffers
            .into_iter()
            .chain(self.no_effect())
            .filter_map(|(key, set)| set.then_some(key))
            .collect()
    }

    /// The HTTP/2 keys: Redline's client speaks HTTP/1.1.
    fn no_effect(&self) -> [(&'static str, bool); 3] {
        [
            (
                "http2_read_idle_timeout",
                self.http2_read_idle_timeout.is_some(),
            ),
            ("http2_ping_timeout", self.http2_ping_timeout.is_some()),
            ("force_attempt_http2", self.force_attempt_http2.is_some()),
        ]
    }
}

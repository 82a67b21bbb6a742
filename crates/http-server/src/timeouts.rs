//! confighttp's keys that bound a connection's life, resolved as otelcol resolves them.
//!
//! serde cannot flatten a struct into a config that refuses unknown keys, so each server's
//! config declares the four keys itself and hands them over as [`HttpServerTimeouts`].

use std::time::Duration;

use serde::Deserialize;

use crate::lifetime::Lifetime;

/// confighttp's default `read_header_timeout`.
pub const DEFAULT_READ_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

/// confighttp's default `idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A server's `keepalive` section: whether connections stay open between requests, and for
/// how long. Present, it replaces the deprecated `idle_timeout` and `keep_alives_enabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpKeepalive {
    pub enabled: bool,
    /// Unset: the default (1m) or the deprecated key's value.
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize_opt")]
    pub idle_timeout: Option<Duration>,
}

impl Default for HttpKeepalive {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_timeout: None,
        }
    }
}

/// The keys as one server's config has them (`None`: not in the file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpServerTimeouts {
    pub read_header_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.enabled`.
    pub keep_alives_enabled: Option<bool>,
    /// `null` in the file is no section, as in confighttp.
    pub keepalive: Option<HttpKeepalive>,
}

impl HttpServerTimeouts {
    /// The head's deadline; `None` for 0, which Go's server takes as no deadline (with
    /// `read_timeout`, which Redline does not support, unset).
    pub fn read_header_timeout(&self) -> Option<Duration> {
        Some(
            self.read_header_timeout
                .unwrap_or(DEFAULT_READ_HEADER_TIMEOUT),
        )
        .filter(|d| !d.is_zero())
    }

    /// How long a kept-alive connection waits for its next request; `None` for 0 (no
    /// deadline, as in Go's server with `read_timeout` unset). `keepalive.idle_timeout`, else
    /// the deprecated `idle_timeout`, else 1m.
    pub fn idle_timeout(&self) -> Option<Duration> {
        let set = self.keepalive.and_then(|k| k.idle_timeout);
        Some(set.or(self.idle_timeout).unwrap_or(DEFAULT_IDLE_TIMEOUT)).filter(|d| !d.is_zero())
    }

    /// Whether a connection stays open for the next request: `keepalive.enabled`, else the
    /// deprecated `keep_alives_enabled`.
    pub fn keep_alives(&self) -> bool {
        match self.keepalive {
            Some(k) => k.enabled,
            None => self.keep_alives_enabled.unwrap_or(true),
        }
    }

    /// The deadlines a connection is held to.
    pub fn lifetime(&self) -> Lifetime {
        Lifetime {
            header_read: self.read_header_timeout(),
            idle: self.idle_timeout(),
            ..Lifetime::default()
        }
    }

    /// The deprecated keys in use, as otelcol warns of them; `prefix` is the server's key path
    /// (`protocols.http.`, or empty). Values that change nothing are not deprecated use.
    pub fn deprecation_warnings(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.idle_timeout.is_some_and(|d| !d.is_zero()) {
            out.push(format!(
                "{prefix}idle_timeout is deprecated; use {prefix}keepalive.idle_timeout instead"
            ));
        }
        if self.keep_alives_enabled == Some(false) {
            out.push(format!(
                "{prefix}keep_alives_enabled is deprecated; set {prefix}keepalive.enabled to false instead"
            ));
        }
        out
    }

    /// otelcol refuses a file that sets a deprecated key (to a value that changes something)
    /// beside the `keepalive` section: `Err((key, reason))`.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if self.keepalive.is_none() {
            return Ok(());
        }
        const REASON: &str =
            "cannot be used alongside the `keepalive` section (as in otelcol): move it into `keepalive`";
        if self.keep_alives_enabled == Some(false) {
            return Err(("keep_alives_enabled", REASON));
        }
        if self.idle_timeout.is_some_and(|d| !d.is_zero()) {
            return Err(("idle_timeout", REASON));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn defaults_are_confighttps() {
        let t = HttpServerTimeouts::default();
        assert_eq!(t.read_header_timeout(), secs(60));
        assert_eq!(t.idle_timeout(), secs(60));
        assert!(t.keep_alives());
        assert!(t.deprecation_warnings("").is_empty());
        assert_eq!(t.check(), Ok(()));
    }

    #[test]
    fn zero_is_no_deadline() {
        let t = HttpServerTimeouts {
            read_header_timeout: secs(0),
            keepalive: Some(HttpKeepalive {
                enabled: true,
                idle_timeout: secs(0),
            }),
            ..HttpServerTimeouts::default()
        };
        assert_eq!(t.lifetime(), Lifetime::default());
    }

    #[test]
    fn the_section_wins_and_may_not_be_mixed() {
        let section = Some(HttpKeepalive {
            enabled: true,
            idle_timeout: secs(5),
        });
        let t = HttpServerTimeouts {
            idle_timeout: secs(0),
            keep_alives_enabled: Some(true),
            keepalive: section,
            ..HttpServerTimeouts::default()
        };
        assert_eq!(t.idle_timeout(), secs(5));
        assert_eq!(
            t.check(),
            Ok(()),
            "values that change nothing do not conflict"
        );
        let mixed = HttpServerTimeouts {
            idle_timeout: secs(90),
            ..t
        };
        assert_eq!(mixed.check().map_err(|e| e.0), Err("idle_timeout"));
        let deprecated = HttpServerTimeouts {
            idle_timeout: secs(90),
            keep_alives_enabled: Some(false),
            ..HttpServerTimeouts::default()
        };
        assert_eq!(deprecated.idle_timeout(), secs(90));
        assert!(!deprecated.keep_alives());
        assert_eq!(deprecated.deprecation_warnings("x.").len(), 2);
    }
}

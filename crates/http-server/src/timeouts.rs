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

/// confighttp's default `write_timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The whole request, head and body, from the head's first byte; 0 (the default) is no
    /// limit.
    pub read_timeout: Option<Duration>,
    /// From the end of a request's head to the end of its response; default 30s.
    pub write_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.enabled`.
    pub keep_alives_enabled: Option<bool>,
    /// `null` in the file is no section, as in confighttp.
    pub keepalive: Option<HttpKeepalive>,
}

/// The [`HttpServerTimeouts`] of a server config whose fields carry confighttp's names
/// (`read_header_timeout`, `read_timeout`, `write_timeout`, `idle_timeout`,
/// `keep_alives_enabled`, `keepalive`): every server section spells them the same way.
#[macro_export]
macro_rules! http_server_timeouts {
    ($config:expr) => {
        $crate::HttpServerTimeouts {
            read_header_timeout: $config.read_header_timeout,
            read_timeout: $config.read_timeout,
            write_timeout: $config.write_timeout,
            idle_timeout: $config.idle_timeout,
            keep_alives_enabled: $config.keep_alives_enabled,
            keepalive: $config.keepalive,
        }
    };
}

impl HttpServerTimeouts {
    /// The head's deadline. Go's server takes a 0 here as `read_timeout`, and a 0 there as
    /// no deadline (`None`).
    pub fn read_header_timeout(&self) -> Option<Duration> {
        nonzero(
            self.read_header_timeout
                .unwrap_or(DEFAULT_READ_HEADER_TIMEOUT),
        )
        .or(self.read_timeout())
    }

    /// How long a kept-alive connection waits for its next request: `keepalive.idle_timeout`,
    /// else the deprecated `idle_timeout`, else 1m. A 0 is `read_timeout`, as in Go's server,
    /// and a 0 there is no deadline (`None`).
    pub fn idle_timeout(&self) -> Option<Duration> {
        let set = self.keepalive.and_then(|k| k.idle_timeout);
        nonzero(set.or(self.idle_timeout).unwrap_or(DEFAULT_IDLE_TIMEOUT)).or(self.read_timeout())
    }

    /// The whole request's deadline, from its head's first byte; `None` for 0 or unset.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.and_then(nonzero)
    }

    /// The response's deadline, from the end of the request's head; `None` for 0.
    pub fn write_timeout(&self) -> Option<Duration> {
        nonzero(self.write_timeout.unwrap_or(DEFAULT_WRITE_TIMEOUT))
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
            read: self.read_timeout(),
            write: self.write_timeout(),
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

fn nonzero(d: Duration) -> Option<Duration> {
    Some(d).filter(|d| !d.is_zero())
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
        assert_eq!(t.read_timeout(), None);
        assert_eq!(t.write_timeout(), secs(30));
        assert!(t.keep_alives());
        assert!(t.deprecation_warnings("").is_empty());
        assert_eq!(t.check(), Ok(()));
    }

    #[test]
    fn zero_is_no_deadline() {
        let t = HttpServerTimeouts {
            read_header_timeout: secs(0),
            write_timeout: secs(0),
            keepalive: Some(HttpKeepalive {
                enabled: true,
                idle_timeout: secs(0),
            }),
            ..HttpServerTimeouts::default()
        };
        assert_eq!(t.lifetime(), Lifetime::default());
    }

    #[test]
    fn read_timeout_stands_in_for_a_zero_header_or_idle_timeout() {
        let t = HttpServerTimeouts {
            read_header_timeout: secs(0),
            read_timeout: secs(7),
            keepalive: Some(HttpKeepalive {
                enabled: true,
                idle_timeout: secs(0),
            }),
            ..HttpServerTimeouts::default()
        };
        assert_eq!(t.read_header_timeout(), secs(7));
        assert_eq!(t.idle_timeout(), secs(7));
        // Set, the narrower keys keep their own values.
        let own = HttpServerTimeouts {
            read_header_timeout: secs(2),
            keepalive: None,
            ..t
        };
        assert_eq!(own.read_header_timeout(), secs(2));
        assert_eq!(own.idle_timeout(), secs(60));
        assert_eq!(own.lifetime().read, secs(7));
        assert_eq!(own.lifetime().write, secs(30));
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

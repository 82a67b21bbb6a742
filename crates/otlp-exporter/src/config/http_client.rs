//! The confighttp client keys of the `otlphttp` exporter beyond the endpoint: body
//! compression (`compression`, `compression_params`) and connection reuse (the legacy
//! top-level keys or `keepalive`), with what otelcol accepts and Redline ignores.

use redline_http_client::ConnectionKeys;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::{HttpConfig, Invalid};

/// Body compression (`Content-Encoding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpCompression {
    /// otelcol's default for this exporter.
    #[default]
    Gzip,
    Zstd,
    /// zlib streams, as otelcol sends for both `zlib` and `deflate`.
    Zlib,
    Deflate,
    /// `snappy`: the snappy block format, as otelcol sends it.
    Snappy,
    /// `x-snappy-framed`: the snappy framed format.
    SnappyFramed,
    None,
}

impl HttpCompression {
    /// The `Content-Encoding` value, `None` for an uncompressed body.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            HttpCompression::Gzip => Some("gzip"),
            HttpCompression::Zstd => Some("zstd"),
            HttpCompression::Zlib => Some("zlib"),
            HttpCompression::Deflate => Some("deflate"),
            HttpCompression::Snappy => Some("snappy"),
            HttpCompression::SnappyFramed => Some("x-snappy-framed"),
            HttpCompression::None => None,
        }
    }
}

impl<'de> Deserialize<'de> for HttpCompression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        match s.as_str() {
            "gzip" => Ok(HttpCompression::Gzip),
            "zstd" => Ok(HttpCompression::Zstd),
            "zlib" => Ok(HttpCompression::Zlib),
            "deflate" => Ok(HttpCompression::Deflate),
            "snappy" => Ok(HttpCompression::Snappy),
            "x-snappy-framed" => Ok(HttpCompression::SnappyFramed),
            "none" | "" => Ok(HttpCompression::None),
            "lz4" => Err(de::Error::custom(format!(
                "compression `{s}` is not supported by Redline; use `gzip`, `zstd`, `zlib`, `deflate`, `snappy`, `x-snappy-framed` or `none`"
            ))),
            other => Err(de::Error::custom(format!(
                "unknown compression `{other}`; use `gzip`, `zstd`, `zlib`, `deflate`, `snappy`, `x-snappy-framed` or `none`"
            ))),
        }
    }
}

pub use redline_http_client::{CookiesConfig, HttpKeepaliveConfig};

/// How connections are reused: what the keys below resolve to, as the HTTP client takes it.
pub use redline_http_client::ConnectionReuse;

impl HttpConfig {
    /// The compression level, resolved as otelcol does: unset (0) or -1 is zlib's default for
    /// gzip and zlib, and zstd's fastest level (where otelcol's zstd library maps -1); snappy
    /// has no levels (0). `None` for an uncompressed body. Call after [`HttpConfig::check`].
    pub fn compression_level(&self) -> Option<i32> {
        let level = self.compression_params.map_or(0, |p| p.level);
        match self.compression {
            HttpCompression::None => None,
            HttpCompression::Snappy | HttpCompression::SnappyFramed => Some(0),
            HttpCompression::Gzip | HttpCompression::Zlib | HttpCompression::Deflate => Some(
                i32::try_from(level)
                    .ok()
                    .filter(|l| (1..=9).contains(l))
                    .unwrap_or(super::DEFAULT_GZIP_LEVEL as i32),
            ),
            HttpCompression::Zstd => {
                let range = zstd::compression_level_range();
                Some(match level {
                    0 | -1 => 1,
                    l => i32::try_from(l)
                        .unwrap_or(*range.end())
                        .clamp(*range.start(), *range.end()),
                })
            }
        }
    }

    /// The connection keys as the HTTP client reads them.
    pub fn connection_keys(&self) -> ConnectionKeys<'_> {
        redline_http_client::connection_keys!(self)
    }

    /// The proxy requests go through (`proxy_url`, else the environment).
    pub fn proxy(&self) -> Result<redline_http_client::Proxy, Invalid> {
        redline_http_client::Proxy::from_config(self.proxy_url.as_deref())
            .map_err(|e| Invalid::new(e.key, e.reason))
    }

    /// Connection reuse from `keepalive` or the legacy keys (otelcol refuses both at once).
    pub fn connection_reuse(&self) -> ConnectionReuse {
        self.connection_keys().reuse()
    }

    /// Keys that were set and have no effect in Redline, for a note at start.
    pub fn ignored_keys(&self) -> Vec<&'static str> {
        let mut keys = self.connection_keys().ignored();
        if self
            .profiles_endpoint
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            keys.push("profiles_endpoint");
        }
        keys
    }

    pub(super) fn check_compression(&self) -> Result<(), Invalid> {
        let Some(level) = self.compression_params.map(|p| p.level) else {
            return Ok(());
        };
        let key = "compression_params.level";
        match self.compression {
            // otelcol's rule: 0 (unset) is the only level a type without levels accepts.
            HttpCompression::None if level != 0 => Err(Invalid::new(
                key,
                format!("`{level}` is a level, but `compression` is `none`: set a compression or remove the level"),
            )),
            HttpCompression::Gzip | HttpCompression::Zlib | HttpCompression::Deflate
                if level == -2 =>
            {
                Err(Invalid::new(
                    key,
                    "`-2` (Huffman-only) is not supported by Redline yet; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)",
                ))
            }
            HttpCompression::Gzip | HttpCompression::Zlib | HttpCompression::Deflate
                if !(-1..=9).contains(&level) =>
            {
                Err(Invalid::new(
                    key,
                    format!("`{level}` is not a gzip/zlib level; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)"),
                ))
            }
            HttpCompression::Snappy | HttpCompression::SnappyFramed if level != 0 => Err(Invalid::new(
                key,
                format!("`{level}` is a level, but snappy has none (as in otelcol, only 0 is accepted): remove the level"),
            )),
            // zstd takes any level and maps it to the nearest it has, as otelcol's does.
            _ => Ok(()),
        }
    }
}

//! `compression` and `compression_params`: gzip (otelcol's default for the OTLP exporter) or
//! zstd at a chosen level, snappy, or none.

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::{Config, Invalid};

/// gRPC message compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// otelcol's default for the OTLP exporter.
    #[default]
    Gzip,
    Zstd,
    /// grpc-encoding `snappy`: the snappy framed format, as otelcol's configgrpc sends it.
    Snappy,
    None,
}

/// How the messages of a `otlp` exporter are compressed, resolved from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageEncoding {
    /// gzip at a zlib level, 1..=9.
    Gzip(u32),
    /// zstd at a zstd level (the library clamps it to what it supports).
    Zstd(i32),
    /// snappy's framed format (no levels).
    Snappy,
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        match s.as_str() {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "snappy" => Ok(Compression::Snappy),
            "none" | "" => Ok(Compression::None),
            // configcompression takes these names, but configgrpc has no compressor for them
            // and otelcol's exporter fails at start.
            "x-snappy-framed" | "zlib" | "deflate" | "lz4" => Err(de::Error::custom(format!(
                "compression `{s}` is not available over gRPC (otelcol's gRPC exporter refuses it at start); use `gzip`, `zstd`, `snappy` or `none`"
            ))),
            other => Err(de::Error::custom(format!(
                "unknown compression `{other}`; use `gzip`, `zstd`, `snappy` or `none`"
            ))),
        }
    }
}

/// `compression_params`, as in otelcol's `configcompression.CompressionParams`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompressionParams {
    /// zlib's levels: 1 (fastest) to 9 (smallest); 0 or -1 mean the default.
    pub level: i64,
}

/// zlib's `Z_DEFAULT_COMPRESSION`, which Go's gzip (and so otelcol's gRPC exporter) also uses.
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

impl Config {
    /// How messages are compressed, or `None` when they are sent uncompressed. Call after
    /// [`Config::check`]; an unchecked invalid gzip level falls back to the default.
    pub fn message_encoding(&self) -> Option<MessageEncoding> {
        let level = self.compression_params.map_or(0, |p| p.level);
        match self.compression {
            Compression::None => None,
            Compression::Gzip => Some(MessageEncoding::Gzip(
                u32::try_from(level)
                    .ok()
                    .filter(|l| (1..=9).contains(l))
                    .unwrap_or(DEFAULT_GZIP_LEVEL),
            )),
            // otelcol takes any zstd level; 0 is zstd's own default (3).
            Compression::Zstd => Some(MessageEncoding::Zstd(
                i32::try_from(level.clamp(-(1 << 17), 22)).unwrap_or(0),
            )),
            Compression::Snappy => Some(MessageEncoding::Snappy),
        }
    }

    pub(super) fn check_compression(&self) -> Result<(), Invalid> {
        let Some(level) = self.compression_params.map(|p| p.level) else {
            return Ok(());
        };
        match self.compression {
            // otelcol's rule: 0 (unset) is the only level a type without levels accepts.
            Compression::None if level != 0 => Err(Invalid::new(
                "compression_params.level",
                format!("`{level}` is a level, but `compression` is `none`: set `compression: gzip` or remove the level"),
            )),
            Compression::None => Ok(()),
            Compression::Snappy if level != 0 => Err(Invalid::new(
                "compression_params.level",
                format!("`{level}` is a level, but snappy has none (as in otelcol, only 0 is accepted): remove the level"),
            )),
            Compression::Snappy => Ok(()),
            Compression::Gzip if level == -2 => Err(Invalid::new(
                "compression_params.level",
                "`-2` (Huffman-only) is not supported by Redline yet; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)",
            )),
            Compression::Gzip if !(-1..=9).contains(&level) => Err(Invalid::new(
                "compression_params.level",
                format!("`{level}` is not a gzip level; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)"),
            )),
            Compression::Gzip => Ok(()),
            // As otelcol: zstd maps any level to the nearest one it supports.
            Compression::Zstd => Ok(()),
        }
    }
}

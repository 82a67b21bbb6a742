//! The `otlp` exporter's config: otelcol's otlpexporter keys (configgrpc client settings,
//! exporterhelper timeout, `retry_on_failure` and `sending_queue`), with the same names and
//! defaults, so a user's otelcol file parses unchanged. Keys otelcol knows and Redline does
//! not implement yet are refused by name instead of being ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use redline_pipeline::config::Unsupported;
use redline_pipeline::duration;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Largest request Redline sends when it coalesces queued batches, unless `sending_queue.batch`
/// says otherwise: Tempo (like every grpc-go server) refuses messages above 4 MiB by default,
/// and the limit applies to the decompressed message, so stay under it with some headroom.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 4 * 1024 * 1024 - 64 * 1024;

/// Redline's byte bound on the sending queue when the sizer is not `bytes`: otelcol bounds the
/// queue only in requests, which lets 1000 large requests take gigabytes; Redline promises
/// bounded memory (DESIGN §5).
pub const DEFAULT_QUEUE_SIZE_BYTES: u64 = 128 * 1024 * 1024;

/// The exporter's section, e.g. `exporters.otlp/tempo`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port`, `http://host:port` or `https://host:port` (the latter turns TLS on).
    pub endpoint: String,
    #[serde(default)]
    pub tls: TlsConfig,
    /// Sent as gRPC metadata with every request (e.g. `X-Scope-OrgID`). Values are secrets:
    /// they never appear in logs or `Debug` output.
    #[serde(default, deserialize_with = "deserialize_headers")]
    pub headers: BTreeMap<String, Opaque>,
    #[serde(default)]
    pub compression: Compression,
    /// The gzip level (`compression_params.level`). A Redline extension for gRPC: otelcol takes
    /// this key only in its HTTP client settings (`confighttp`), with the same levels.
    #[serde(default)]
    pub compression_params: Option<CompressionParams>,
    /// Per attempt; zero means no timeout (as in otelcol).
    #[serde(
        default = "default_timeout",
        deserialize_with = "duration::deserialize"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub retry_on_failure: RetryConfig,
    #[serde(default)]
    pub sending_queue: QueueConfig,
    /// HTTP/2 keepalive pings. Absent: none (tonic's default).
    #[serde(default)]
    pub keepalive: Option<KeepaliveConfig>,
    /// `pick_first` (or empty) only: Redline holds one HTTP/2 connection to the endpoint.
    #[serde(default)]
    pub balancer_name: Option<String>,
    /// Overrides the `:authority` of requests.
    #[serde(default)]
    pub authority: Option<String>,
    /// Replaces Redline's own user agent.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// `false` only: a call fails fast while the connection is down, then is retried with
    /// backoff, which is otelcol's default behaviour.
    #[serde(default)]
    pub wait_for_ready: Option<OnlyBool<false>>,
    #[serde(default)]
    pub read_buffer_size: Option<Unsupported>,
    #[serde(default)]
    pub write_buffer_size: Option<Unsupported>,
    #[serde(default)]
    pub auth: Option<Unsupported>,
    #[serde(default)]
    pub middlewares: Option<Unsupported>,
    /// Deprecated otelcol batching section (moved to `sending_queue.batch`).
    #[serde(default)]
    pub batcher: Option<Unsupported>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Config {
    /// A config with every default, as an otelcol file holding only `endpoint` would give.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            tls: TlsConfig::default(),
            headers: BTreeMap::new(),
            compression: Compression::default(),
            compression_params: None,
            timeout: default_timeout(),
            retry_on_failure: RetryConfig::default(),
            sending_queue: QueueConfig::default(),
            keepalive: None,
            balancer_name: None,
            authority: None,
            user_agent: None,
            wait_for_ready: None,
            read_buffer_size: None,
            write_buffer_size: None,
            auth: None,
            middlewares: None,
            batcher: None,
        }
    }
}

/// A config value that must not be logged (header values carry tenant ids and tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct Opaque(pub String);

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for Opaque {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Opaque)
    }
}

/// otelcol's `headers` is a map, or (newer releases) a list of `{name, value}`: take both.
fn deserialize_headers<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Opaque>, D::Error> {
    struct HeadersVisitor;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        name: String,
        value: Opaque,
    }

    impl<'de> Visitor<'de> for HeadersVisitor {
        type Value = BTreeMap<String, Opaque>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of header names to values, or a list of {name, value}")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Opaque>()? {
                if out.insert(k.clone(), v).is_some() {
                    return Err(de::Error::custom(format!("header `{k}` is given twice")));
                }
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Pair { name, value }) = seq.next_element::<Pair>()? {
                if out.insert(name.clone(), value).is_some() {
                    return Err(de::Error::custom(format!("header `{name}` is given twice")));
                }
            }
            Ok(out)
        }
    }

    d.deserialize_any(HeadersVisitor)
}

/// A boolean otelcol accepts both ways of which Redline implements only `ALLOWED`: a file that
/// spells out the supported value parses, the other value is refused by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OnlyBool<const ALLOWED: bool>;

impl<'de, const ALLOWED: bool> Deserialize<'de> for OnlyBool<ALLOWED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = bool::deserialize(d)?;
        if v == ALLOWED {
            Ok(OnlyBool)
        } else {
            Err(de::Error::custom(format!(
                "`{v}` is an otelcol setting Redline does not support yet (only `{ALLOWED}` is)"
            )))
        }
    }
}

/// otelcol's `configtls` client settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Plaintext when true, unless a CA is given or the endpoint is `https://` (otelcol's rule).
    pub insecure: bool,
    pub insecure_skip_verify: Option<OnlyBool<false>>,
    pub ca_file: Option<String>,
    pub ca_pem: Option<Opaque>,
    /// Also trust the system's roots when a CA is given.
    pub include_system_ca_certs_pool: bool,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert_pem: Option<Opaque>,
    pub key_pem: Option<Opaque>,
    pub server_name_override: Option<String>,
    /// Only what rustls does anyway: TLS 1.2 (or empty) as minimum, 1.3 (or empty) as maximum.
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Unsupported>,
    pub curve_preferences: Option<Unsupported>,
    pub reload_interval: Option<Unsupported>,
    pub tpm_config: Option<Unsupported>,
}

/// gRPC message compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// otelcol's default for the OTLP exporter.
    #[default]
    Gzip,
    None,
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        match s.as_str() {
            "gzip" => Ok(Compression::Gzip),
            "none" | "" => Ok(Compression::None),
            "zstd" | "snappy" | "x-snappy-framed" | "zlib" | "deflate" | "lz4" => {
                Err(de::Error::custom(format!(
                    "compression `{s}` is not supported by Redline yet; use `gzip` or `none`"
                )))
            }
            other => Err(de::Error::custom(format!(
                "unknown compression `{other}`; use `gzip` or `none`"
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
    /// The gzip level requests are compressed with, or `None` when they are sent uncompressed.
    /// Call after [`Config::check`]; an unchecked invalid level falls back to the default.
    pub fn gzip_level(&self) -> Option<u32> {
        match self.compression {
            Compression::None => None,
            Compression::Gzip => {
                let level = self.compression_params.map_or(0, |p| p.level);
                Some(
                    u32::try_from(level)
                        .ok()
                        .filter(|l| (1..=9).contains(l))
                        .unwrap_or(DEFAULT_GZIP_LEVEL),
                )
            }
        }
    }
}

/// otelcol's `configretry.BackOffConfig`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub enabled: bool,
    #[serde(deserialize_with = "duration::deserialize")]
    pub initial_interval: Duration,
    pub randomization_factor: f64,
    pub multiplier: f64,
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_interval: Duration,
    /// Zero: retry forever.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// How `queue_size` and batch sizes are measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// One unit per received request (one `TracesBatch`).
    #[default]
    Requests,
    /// One unit per span.
    Items,
    /// One unit per byte of encoded request.
    Bytes,
}

impl Sizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Sizer::Requests => "requests",
            Sizer::Items => "items",
            Sizer::Bytes => "bytes",
        }
    }
}

/// otelcol's exporterhelper `sending_queue`, plus Redline's byte bound.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `true` only: a synchronous exporter would block receivers on Tempo.
    pub enabled: OnlyBool<true>,
    pub num_consumers: usize,
    /// In `sizer` units.
    pub queue_size: u64,
    pub sizer: Sizer,
    /// Redline extension: bound on the encoded bytes held (queued or being sent) when the
    /// sizer is not `bytes`.
    pub queue_size_bytes: u64,
    pub block_on_overflow: Option<OnlyBool<false>>,
    /// The pre-0.12x spelling of `block_on_overflow`.
    pub blocking: Option<OnlyBool<false>>,
    pub wait_for_result: Option<OnlyBool<false>>,
    /// Id of a storage extension (`file_storage`): the queue is then kept on disk, so
    /// batches accepted while Tempo is down survive a restart or crash of Redline.
    pub storage: Option<String>,
    /// How queued requests are coalesced into one send. Absent: whatever is queued when a
    /// sender becomes free is sent together, up to [`DEFAULT_MAX_REQUEST_BYTES`], with no wait.
    pub batch: Option<BatchConfig>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            enabled: OnlyBool,
            num_consumers: 10,
            queue_size: 1000,
            sizer: Sizer::Requests,
            queue_size_bytes: DEFAULT_QUEUE_SIZE_BYTES,
            block_on_overflow: None,
            blocking: None,
            wait_for_result: None,
            storage: None,
            batch: None,
        }
    }
}

/// otelcol's `sending_queue.batch`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// How long a sender waits for `min_size` to accumulate before sending what it has.
    #[serde(deserialize_with = "duration::deserialize")]
    pub flush_timeout: Duration,
    /// `items` or `bytes`; absent: the queue's sizer.
    pub sizer: Option<Sizer>,
    pub min_size: u64,
    /// Zero: no limit other than [`DEFAULT_MAX_REQUEST_BYTES`].
    pub max_size: u64,
    pub partition: Option<Unsupported>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        // otelcol's defaults for an explicit `batch` section.
        Self {
            flush_timeout: Duration::from_millis(200),
            sizer: None,
            min_size: 8192,
            max_size: 0,
            partition: None,
        }
    }
}

/// otelcol's `configgrpc.KeepaliveClientConfig`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveConfig {
    #[serde(deserialize_with = "duration::deserialize")]
    pub time: Duration,
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    pub permit_without_stream: bool,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            permit_without_stream: false,
        }
    }
}

/// Where a config problem is and why: the key path is relative to the component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub key_path: String,
    pub reason: String,
}

fn invalid(key_path: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        key_path: key_path.into(),
        reason: reason.into(),
    }
}

/// The endpoint split into what the channel needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, host as written (brackets kept for IPv6).
    pub authority: String,
    pub host: String,
    /// The `https://` scheme was given, which turns TLS on whatever `tls.insecure` says.
    pub https: bool,
}

/// Parses `endpoint` as otelcol does: an optional `http://`, `https://` or `dns://` prefix,
/// then `host:port` with a numeric port.
pub fn parse_endpoint(endpoint: &str) -> Result<Target, String> {
    let e = endpoint.trim();
    if e.is_empty() {
        return Err("is required (e.g. `tempo:4317`)".into());
    }
    let (rest, https) = if let Some(r) = e.strip_prefix("https://") {
        (r, true)
    } else if let Some(r) = e.strip_prefix("http://") {
        (r, false)
    } else if let Some(r) = e
        .strip_prefix("dns:///")
        .or_else(|| e.strip_prefix("dns://"))
    {
        (r, false)
    } else if e.contains("://") {
        return Err(format!(
            "`{e}`: only http://, https:// and dns:// schemes are supported"
        ));
    } else {
        (e, false)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(format!("`{e}` must be host:port, without a path"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("`{e}` has no port (expected host:port)"))?;
    if host.is_empty() {
        return Err(format!("`{e}` has an empty host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{e}`: write IPv6 addresses in brackets, [::1]:4317"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("`{e}` has an invalid port `{port}`"))?;
    Ok(Target {
        authority: rest.to_owned(),
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        https,
    })
}

/// Header names Redline (or gRPC) sets itself: overriding them breaks the protocol.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "te",
    "user-agent",
    "content-length",
    "connection",
    "host",
];

impl Config {
    /// Whether the connection uses TLS, by otelcol's rule: on unless `tls.insecure` is set, and
    /// always on for an `https://` endpoint or when a CA is configured.
    pub fn uses_tls(&self) -> bool {
        let https = parse_endpoint(&self.endpoint)
            .map(|t| t.https)
            .unwrap_or(false);
        let has_ca = self.tls.ca_file.is_some() || self.tls.ca_pem.is_some();
        https || !self.tls.insecure || has_ca
    }

    /// Every semantic check serde cannot express; each problem names its key.
    pub fn check(&self) -> Result<(), Invalid> {
        parse_endpoint(&self.endpoint).map_err(|r| invalid("endpoint", r))?;

        for (name, value) in &self.headers {
            let key = format!("headers.{name}");
            let lower = name.to_ascii_lowercase();
            if tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(lower.as_bytes())
                .is_err()
            {
                return Err(invalid(key, "is not a valid header name"));
            }
            if lower.ends_with("-bin") {
                return Err(invalid(key, "binary (`-bin`) headers are not supported"));
            }
            if lower.starts_with(':')
                || lower.starts_with("grpc-")
                || RESERVED_HEADERS.contains(&lower.as_str())
            {
                return Err(invalid(
                    key,
                    "is set by gRPC itself and cannot be overridden",
                ));
            }
            // The value is a secret: say what is wrong with it, never what it is.
            if tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(value.0.as_str())
                .is_err()
            {
                return Err(invalid(
                    key,
                    "value must be visible ASCII (no control characters or non-ASCII text)",
                ));
            }
        }

        if let Some(b) = &self.balancer_name {
            if !(b.is_empty() || b == "pick_first") {
                return Err(invalid(
                    "balancer_name",
                    format!("`{b}` is not supported yet; Redline connects with `pick_first`"),
                ));
            }
        }
        if let Some(a) = &self.authority {
            if a.is_empty() || http::uri::Authority::try_from(a.as_str()).is_err() {
                return Err(invalid("authority", "must be a valid host[:port]"));
            }
        }
        if let Some(ua) = &self.user_agent {
            if http::HeaderValue::try_from(ua.as_str()).is_err() {
                return Err(invalid("user_agent", "must be visible ASCII"));
            }
        }
        if let Some(k) = &self.keepalive {
            if k.time.is_zero() {
                return Err(invalid("keepalive.time", "must be positive"));
            }
        }

        self.check_compression()?;
        self.check_tls()?;
        self.check_retry()?;
        self.check_queue()
    }

    fn check_compression(&self) -> Result<(), Invalid> {
        let Some(level) = self.compression_params.map(|p| p.level) else {
            return Ok(());
        };
        match self.compression {
            // otelcol's rule: 0 (unset) is the only level a type without levels accepts.
            Compression::None if level != 0 => Err(invalid(
                "compression_params.level",
                format!("`{level}` is a level, but `compression` is `none`: set `compression: gzip` or remove the level"),
            )),
            Compression::None => Ok(()),
            Compression::Gzip if level == -2 => Err(invalid(
                "compression_params.level",
                "`-2` (Huffman-only) is not supported by Redline yet; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)",
            )),
            Compression::Gzip if !(-1..=9).contains(&level) => Err(invalid(
                "compression_params.level",
                format!("`{level}` is not a gzip level; use 1 (fastest) to 9 (smallest), or 0 / -1 for the default (6)"),
            )),
            Compression::Gzip => Ok(()),
        }
    }

    fn check_tls(&self) -> Result<(), Invalid> {
        let t = &self.tls;
        if t.ca_file.is_some() && t.ca_pem.is_some() {
            return Err(invalid(
                "tls.ca_pem",
                "give either ca_file or ca_pem, not both",
            ));
        }
        if t.cert_file.is_some() && t.cert_pem.is_some() {
            return Err(invalid(
                "tls.cert_pem",
                "give either cert_file or cert_pem, not both",
            ));
        }
        if t.key_file.is_some() && t.key_pem.is_some() {
            return Err(invalid(
                "tls.key_pem",
                "give either key_file or key_pem, not both",
            ));
        }
        let has_cert = t.cert_file.is_some() || t.cert_pem.is_some();
        let has_key = t.key_file.is_some() || t.key_pem.is_some();
        if has_cert && !has_key {
            return Err(invalid(
                "tls.key_file",
                "is required when a client certificate is given",
            ));
        }
        if has_key && !has_cert {
            return Err(invalid(
                "tls.cert_file",
                "is required when a client key is given",
            ));
        }
        if let Some(v) = t.min_version.as_deref() {
            if !(v.is_empty() || v == "1.2") {
                return Err(invalid(
                    "tls.min_version",
                    format!("`{v}` is not supported yet; Redline uses TLS 1.2 as the minimum"),
                ));
            }
        }
        if let Some(v) = t.max_version.as_deref() {
            if !(v.is_empty() || v == "1.3") {
                return Err(invalid(
                    "tls.max_version",
                    format!("`{v}` is not supported yet; Redline allows up to TLS 1.3"),
                ));
            }
        }
        if let Some(name) = &t.server_name_override {
            if name.is_empty() {
                return Err(invalid("tls.server_name_override", "must not be empty"));
            }
        }
        Ok(())
    }

    fn check_retry(&self) -> Result<(), Invalid> {
        let r = &self.retry_on_failure;
        if !r.enabled {
            return Ok(());
        }
        if !r.randomization_factor.is_finite() || !(0.0..=1.0).contains(&r.randomization_factor) {
            return Err(invalid(
                "retry_on_failure.randomization_factor",
                "must be within [0, 1]",
            ));
        }
        if !r.multiplier.is_finite() || r.multiplier < 1.0 {
            return Err(invalid(
                "retry_on_failure.multiplier",
                "must be a number >= 1 (the backoff must not shrink)",
            ));
        }
        if r.initial_interval.is_zero() {
            return Err(invalid(
                "retry_on_failure.initial_interval",
                "must be positive",
            ));
        }
        if r.max_interval < r.initial_interval {
            return Err(invalid(
                "retry_on_failure.max_interval",
                "must not be less than initial_interval",
            ));
        }
        if !r.max_elapsed_time.is_zero() && r.max_elapsed_time < r.initial_interval {
            return Err(invalid(
                "retry_on_failure.max_elapsed_time",
                "must be 0 (retry forever) or not less than initial_interval",
            ));
        }
        Ok(())
    }

    fn check_queue(&self) -> Result<(), Invalid> {
        let q = &self.sending_queue;
        if q.num_consumers == 0 {
            return Err(invalid("sending_queue.num_consumers", "must be positive"));
        }
        if q.num_consumers > 1024 {
            return Err(invalid(
                "sending_queue.num_consumers",
                "must be at most 1024",
            ));
        }
        if q.queue_size == 0 {
            return Err(invalid("sending_queue.queue_size", "must be positive"));
        }
        if let Some(storage) = &q.storage {
            redline_pipeline::ComponentId::parse(storage).map_err(|reason| {
                invalid(
                    "sending_queue.storage",
                    format!("must name a storage extension, e.g. `file_storage`: {reason}"),
                )
            })?;
        }
        if q.queue_size_bytes == 0 {
            return Err(invalid(
                "sending_queue.queue_size_bytes",
                "must be positive",
            ));
        }
        if let Some(b) = &q.batch {
            let sizer = b.sizer.unwrap_or(q.sizer);
            if sizer == Sizer::Requests {
                return Err(invalid(
                    "sending_queue.batch.sizer",
                    "must be `items` or `bytes`",
                ));
            }
            if b.flush_timeout.is_zero() {
                return Err(invalid(
                    "sending_queue.batch.flush_timeout",
                    "must be positive",
                ));
            }
            if b.max_size > 0 && b.max_size < b.min_size {
                return Err(invalid(
                    "sending_queue.batch.max_size",
                    "must be 0 (no limit) or not less than min_size",
                ));
            }
            if sizer == q.sizer && b.min_size > q.queue_size {
                return Err(invalid(
                    "sending_queue.batch.min_size",
                    "must not exceed queue_size, or the queue could never fill a batch",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_otelcol() {
        let t = parse_endpoint("tempo:4317").expect("valid");
        assert_eq!(t.authority, "tempo:4317");
        assert!(!t.https);
        assert!(parse_endpoint("https://tempo:4317").expect("valid").https);
        assert!(!parse_endpoint("http://tempo:4317/").expect("valid").https);
        assert_eq!(
            parse_endpoint("dns:///tempo:4317").expect("valid").host,
            "tempo"
        );
        assert_eq!(parse_endpoint("[::1]:4317").expect("valid").host, "::1");
        for bad in [
            "",
            "tempo",
            "tempo:",
            "tempo:x",
            ":4317",
            "unix:///s",
            "a/b:1",
            "::1:4317",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn tls_is_on_by_default_like_otelcol() {
        let mut c = Config::new("tempo:4317");
        assert!(c.uses_tls());
        c.tls.insecure = true;
        assert!(!c.uses_tls());
        c.endpoint = "https://tempo:4317".into();
        assert!(c.uses_tls(), "https overrides insecure");
        c.endpoint = "tempo:4317".into();
        c.tls.ca_file = Some("/ca.pem".into());
        assert!(c.uses_tls(), "a CA overrides insecure");
    }

    #[test]
    fn checks_name_the_bad_key() {
        let key = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::new("tempo:4317");
            f(&mut c);
            c.check().expect_err("invalid").key_path
        };
        assert_eq!(key(&|c| c.endpoint = "tempo".into()), "endpoint");
        assert_eq!(
            key(&|c| c.retry_on_failure.multiplier = 0.5),
            "retry_on_failure.multiplier"
        );
        assert_eq!(
            key(&|c| c.retry_on_failure.randomization_factor = 2.0),
            "retry_on_failure.randomization_factor"
        );
        assert_eq!(
            key(&|c| c.sending_queue.num_consumers = 0),
            "sending_queue.num_consumers"
        );
        assert_eq!(
            key(&|c| c.sending_queue.queue_size = 0),
            "sending_queue.queue_size"
        );
        assert_eq!(
            key(&|c| c.tls.cert_file = Some("c.pem".into())),
            "tls.key_file"
        );
        assert_eq!(
            key(&|c| c.balancer_name = Some("round_robin".into())),
            "balancer_name"
        );
        assert_eq!(
            key(&|c| {
                c.headers.insert("bad header".into(), Opaque("v".into()));
            }),
            "headers.bad header"
        );
        let err = Config {
            headers: [("X-Scope-OrgID".to_owned(), Opaque("sec\nret".into()))].into(),
            ..Config::new("tempo:4317")
        }
        .check()
        .expect_err("control character");
        assert_eq!(err.key_path, "headers.X-Scope-OrgID");
        assert!(!err.reason.contains("sec"), "the value must not be echoed");
        assert!(Config::new("tempo:4317").check().is_ok());
    }

    #[test]
    fn header_values_are_not_debug_printed() {
        let mut c = Config::new("tempo:4317");
        c.headers
            .insert("authorization".into(), Opaque("Bearer hunter2".into()));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

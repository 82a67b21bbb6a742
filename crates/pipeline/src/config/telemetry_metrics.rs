//! `service.telemetry.metrics`: where Redline serves (pull) and sends (push) its own metrics.
//!
//! Readers follow otelconf v0.3.0, which otelcol v0.161 builds them with: `pull` readers
//! with a Prometheus exporter, `periodic` readers with an `otlp` or `console` exporter.
//! Intervals and timeouts are integers of milliseconds there, as here.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::load::{find_value_mark, Loader};
use super::yaml::join_key;
use super::{de as node_de, Node, Secret, Unsupported};

/// Where Redline serves and sends its own metrics (`otelcol_receiver_accepted_spans`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsTelemetryConfig {
    /// `none`, `basic`, `normal` or `detailed`; `None` when the section is absent.
    pub level: Option<String>,
    /// `host:port` of the Prometheus pull endpoint, from `address` or a `pull` reader.
    pub endpoint: Option<String>,
    /// Whether the pull endpoint's names carry unit and `_total` suffixes. otelcol serves its
    /// own metrics without them (`otelcol_receiver_accepted_spans`) unless the reader turns
    /// off `without_units` or `without_type_suffix`: its Go exporter then adds both.
    pub prometheus_suffixes: bool,
    /// The `periodic` readers, in file order; empty with `level: none`.
    pub push: Vec<PeriodicReaderConfig>,
}

/// A `periodic` reader: every `interval`, the metrics are sent to `exporter`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodicReaderConfig {
    /// Key path of the reader, e.g. `service.telemetry.metrics.readers[1]`, for logs.
    pub path: String,
    /// 60s unless set to a positive number of milliseconds (the OpenTelemetry SDK default).
    pub interval: Duration,
    /// How long one export may take; 30s unless set (the SDK default).
    pub timeout: Duration,
    pub exporter: PushExporterConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushExporterConfig {
    /// Writes each export to stdout.
    Console,
    Otlp(OtlpPushConfig),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpCompression {
    None,
    Gzip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Temporality {
    Cumulative,
    /// Counters and histograms as deltas since the last export, gauges as they are.
    Delta,
    /// The SDK's `lowmemory`: deltas for synchronous counters and histograms. Redline's
    /// counters are all read at export time, so for them it is the same as `Delta`.
    LowMemory,
}

/// An `otlp` push exporter, resolved as otelcol resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpPushConfig {
    pub protocol: OtlpProtocol,
    /// The endpoint with its scheme: one without gets `http://` when `insecure: true`, else
    /// `https://` (otelcol's normalisation).
    pub endpoint: String,
    /// `http/protobuf`: the URL posted to, the endpoint with `/v1/metrics` when it has no
    /// path (the OpenTelemetry Go SDK's rule; a path, even `/`, is used as given).
    /// `grpc`: the endpoint.
    pub url: String,
    /// TLS is used: the scheme is `https`.
    pub tls: bool,
    /// From `headers` (a list of `{name, value}`, or a map) and `headers_list`; `headers`
    /// wins for a name in both.
    pub headers: Vec<(String, Secret)>,
    pub compression: OtlpCompression,
    /// Per request; 10s unless set to a positive number of milliseconds.
    pub timeout: Duration,
    pub temporality: Temporality,
    /// CA file that signs the server's certificate (the system's roots when unset).
    pub certificate: Option<String>,
    pub client_certificate: Option<String>,
    pub client_key: Option<String>,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_READER_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl Loader {
    pub(super) fn metrics_telemetry(
        &mut self,
        key: &Node,
        node: &Node,
        path: &str,
    ) -> Option<MetricsTelemetryConfig> {
        let raw = match node_de::from_node::<MetricsRaw>(node, &self.file, path, key.mark) {
            Ok(raw) => raw,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let level = raw
            .level
            .unwrap_or_else(|| "normal".to_owned())
            .to_ascii_lowercase();
        if !["none", "basic", "normal", "detailed"].contains(&level.as_str()) {
            self.error(
                find_value_mark(node, "level").unwrap_or(key.mark),
                join_key(path, "level"),
                format!("`{level}` is not one of none, basic, normal, detailed"),
            );
            return None;
        }
        let mut endpoints: Vec<String> = raw.address.into_iter().collect();
        let mut push = Vec::new();
        let mut valid = true;
        let mut suffixes = false;
        let readers_path = join_key(path, "readers");
        if matches!(&raw.readers, Some(r) if r.is_empty()) && level != "none" {
            // otelcol's own check.
            self.error(
                find_value_mark(node, "readers").unwrap_or(key.mark),
                readers_path.clone(),
                "needs a reader unless level is none",
            );
            valid = false;
        }
        for (i, reader) in raw.readers.unwrap_or_default().into_iter().enumerate() {
            let reader_path = format!("{readers_path}[{i}]");
            match (reader.pull, reader.periodic) {
                (Some(pull), None) => {
                    let p = pull.exporter.prometheus;
                    if p.without_scope_info == Some(false) {
                        let key =
                            format!("{reader_path}.pull.exporter.prometheus.without_scope_info");
                        self.error(
                            mark_at(node, path, &key),
                            key,
                            "only `true` is supported: Redline's own metrics carry no \
                             instrumentation scope (otelcol's `otel_scope_*` labels name its Go \
                             packages)",
                        );
                        valid = false;
                    }
                    suffixes =
                        !(p.without_units.unwrap_or(true) && p.without_type_suffix.unwrap_or(true));
                    let host = p.host.unwrap_or_else(|| "localhost".to_owned());
                    endpoints.push(format!("{host}:{}", p.port.unwrap_or(8888)));
                }
                (None, Some(periodic)) => match self.periodic(node, path, periodic, &reader_path) {
                    Some(reader) => push.push(reader),
                    None => valid = false,
                },
                (pull, _) => {
                    let what = if pull.is_some() {
                        "must be either `pull` or `periodic`, not both"
                    } else {
                        "needs a `pull` or `periodic` reader"
                    };
                    self.error(mark_at(node, path, &reader_path), reader_path, what);
                    valid = false;
                }
            }
        }
        if endpoints.len() > 1 {
            self.error(
                key.mark,
                path.to_owned(),
                "Redline serves its own metrics on one endpoint: give either `address` or one `pull` reader",
            );
            return None;
        }
        if !valid {
            return None;
        }
        // otelcol's default reader: a Prometheus pull endpoint on localhost:8888, unless
        // readers were given (then they are all there is).
        let endpoint = match (level.as_str(), endpoints.pop()) {
            ("none", _) => None,
            (_, Some(e)) => Some(e),
            (_, None) if push.is_empty() => Some("localhost:8888".to_owned()),
            (_, None) => None,
        };
        if level == "none" {
            push.clear();
        }
        Some(MetricsTelemetryConfig {
            level: Some(level),
            endpoint,
            prometheus_suffixes: suffixes,
            push,
        })
    }

    fn periodic(
        &mut self,
        root: &Node,
        root_path: &str,
        raw: PeriodicRaw,
        reader_path: &str,
    ) -> Option<PeriodicReaderConfig> {
        let path = format!("{reader_path}.periodic");
        let exporter_path = format!("{path}.exporter");
        let exporter = match (raw.exporter.console, raw.exporter.otlp) {
            (Some(console), None) => {
                if !console.0.is_empty() {
                    let at = format!("{exporter_path}.console");
                    self.error(mark_at(root, root_path, &at), at, "takes no settings");
                    return None;
                }
                PushExporterConfig::Console
            }
            (None, Some(otlp)) => {
                let otlp_path = format!("{exporter_path}.otlp");
                match otlp.resolve() {
                    Ok(o) => PushExporterConfig::Otlp(o),
                    Err((key, reason)) => {
                        let at = join_key(&otlp_path, key);
                        self.error(mark_at(root, root_path, &at), at, reason);
                        return None;
                    }
                }
            }
            (console, _) => {
                let what = if console.is_some() {
                    "must name one exporter, `otlp` or `console`"
                } else {
                    "needs an `otlp` or `console` exporter (`console: {}`)"
                };
                let mark = mark_at(root, root_path, &exporter_path);
                self.error(mark, exporter_path, what);
                return None;
            }
        };
        Some(PeriodicReaderConfig {
            path: reader_path.to_owned(),
            interval: positive_ms(raw.interval).unwrap_or(DEFAULT_INTERVAL),
            timeout: positive_ms(raw.timeout).unwrap_or(DEFAULT_READER_TIMEOUT),
            exporter,
        })
    }
}

/// Position of `path` (a key path under `root_path`) in `root`, the node at `root_path`:
/// the deepest of its keys that is present.
fn mark_at(root: &Node, root_path: &str, path: &str) -> super::Mark {
    path.strip_prefix(root_path)
        .and_then(|rest| super::find_mark(root, rest))
        .unwrap_or(root.mark)
}

/// The SDK's rule: zero or negative means the default.
fn positive_ms(ms: Option<i64>) -> Option<Duration> {
    ms.and_then(|ms| u64::try_from(ms).ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

impl OtlpRaw {
    /// Checks and resolves the exporter; the error names the key relative to `otlp`.
    fn resolve(self) -> Result<OtlpPushConfig, (&'static str, String)> {
        let protocol = match self.protocol.as_deref() {
            Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some("http/json") => {
                return Err((
                    "protocol",
                    "`http/json` is not supported for otelcol's own metrics (otelcol v0.161 \
                     refuses it too): use http/protobuf or grpc"
                        .into(),
                ))
            }
            Some(other) => {
                return Err((
                    "protocol",
                    format!("`{other}` is not one of grpc, http/protobuf"),
                ))
            }
            None => return Err(("protocol", "missing: grpc or http/protobuf".into())),
        };
        let insecure = self.insecure.unwrap_or(false);
        // The SDK's defaults without an endpoint (OTEL_EXPORTER_OTLP_* are not read).
        let raw = self.endpoint.unwrap_or_else(|| match protocol {
            OtlpProtocol::Grpc => "localhost:4317".into(),
            OtlpProtocol::HttpProtobuf => "localhost:4318".into(),
        });
        let endpoint = if raw.starts_with("http://") || raw.starts_with("https://") {
            raw
        } else if insecure {
            format!("http://{raw}")
        } else {
            format!("https://{raw}")
        };
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|e| ("endpoint", format!("`{endpoint}` is not a URL: {e}")))?;
        if uri.host().is_none_or(str::is_empty) {
            return Err(("endpoint", format!("`{endpoint}` has no host")));
        }
        let tls = uri.scheme_str() == Some("https");
        let url = match protocol {
            OtlpProtocol::Grpc => endpoint.clone(),
            OtlpProtocol::HttpProtobuf if uri.path() == "/" && !has_explicit_path(&endpoint) => {
                format!("{}/v1/metrics", endpoint.trim_end_matches('/'))
            }
            OtlpProtocol::HttpProtobuf => endpoint.clone(),
        };
        let compression = match self.compression.as_deref() {
            None | Some("none") => OtlpCompression::None,
            Some("gzip") => OtlpCompression::Gzip,
            Some(other) => {
                return Err(("compression", format!("`{other}` is not one of gzip, none")))
            }
        };
        let temporality = match self.temporality_preference.as_deref() {
            None | Some("cumulative") => Temporality::Cumulative,
            Some("delta") => Temporality::Delta,
            Some("lowmemory") => Temporality::LowMemory,
            Some(other) => {
                return Err((
                    "temporality_preference",
                    format!("`{other}` is not one of cumulative, delta, lowmemory"),
                ))
            }
        };
        match self.default_histogram_aggregation.as_deref() {
            None | Some("explicit_bucket_histogram") => {}
            Some("base2_exponential_bucket_histogram") => {
                return Err((
                    "default_histogram_aggregation",
                    "exponential histograms are not supported by Redline: use \
                     explicit_bucket_histogram"
                        .into(),
                ))
            }
            Some(other) => {
                return Err((
                    "default_histogram_aggregation",
                    format!(
                        "`{other}` is not one of explicit_bucket_histogram, \
                         base2_exponential_bucket_histogram"
                    ),
                ))
            }
        }
        let mut headers: Vec<(String, Secret)> = Vec::new();
        if let Some(list) = &self.headers_list {
            for (name, value) in
                parse_headers_list(list.expose()).map_err(|e| ("headers_list", e))?
            {
                set_header(&mut headers, name, value);
            }
        }
        for (name, value) in self.headers.map(|h| h.0).unwrap_or_default() {
            check_header(&name, value.expose()).map_err(|e| ("headers", e))?;
            set_header(&mut headers, name, value);
        }
        Ok(OtlpPushConfig {
            protocol,
            endpoint,
            url,
            tls,
            headers,
            compression,
            timeout: positive_ms(self.timeout).unwrap_or(DEFAULT_EXPORT_TIMEOUT),
            temporality,
            certificate: self.certificate,
            client_certificate: self.client_certificate,
            client_key: self.client_key,
        })
    }
}

/// `http://host:4318/` has the path `/`, `http://host:4318` none; `http::Uri` shows both as
/// `/`.
fn has_explicit_path(endpoint: &str) -> bool {
    let after_scheme = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    after_scheme.contains('/')
}

fn set_header(headers: &mut Vec<(String, Secret)>, name: String, value: Secret) {
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
    headers.push((name, value));
}

/// A header name must be an HTTP token, its value visible ASCII; the value is never echoed.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(format!("the value of `{name}` must be visible ASCII"));
    }
    Ok(())
}

/// `headers_list`: `name=value,name2=value2` with percent-encoded values (the W3C baggage
/// format the SDK parses it with).
fn parse_headers_list(list: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut out = Vec::new();
    for member in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        // Baggage properties (`;...`) have no meaning for a header: dropped, as the SDK does.
        let member = member.split(';').next().unwrap_or(member);
        let Some((name, value)) = member.split_once('=') else {
            return Err("must be `name=value` pairs separated by commas".into());
        };
        let name = name.trim().to_owned();
        let value = crate::percent::decode_utf8(value.trim())
            .ok_or_else(|| format!("the value of `{name}` is not valid percent-encoding"))?;
        check_header(&name, &value)?;
        out.push((name, Secret::new(value)));
    }
    Ok(out)
}

// The `Unsupported` fields exist only to refuse their keys; they are never read.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsRaw {
    level: Option<String>,
    address: Option<String>,
    readers: Option<Vec<ReaderRaw>>,
    views: Option<Unsupported>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReaderRaw {
    pull: Option<PullRaw>,
    periodic: Option<PeriodicRaw>,
    producers: Option<Unsupported>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullRaw {
    exporter: PullExporterRaw,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullExporterRaw {
    prometheus: PrometheusReaderRaw,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusReaderRaw {
    host: Option<String>,
    port: Option<u16>,
    without_units: Option<bool>,
    without_type_suffix: Option<bool>,
    without_scope_info: Option<bool>,
    with_resource_constant_labels: Option<Unsupported>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodicRaw {
    exporter: PushExporterRaw,
    #[serde(default, deserialize_with = "millis")]
    interval: Option<i64>,
    #[serde(default, deserialize_with = "millis")]
    timeout: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushExporterRaw {
    console: Option<ConsoleRaw>,
    otlp: Option<OtlpRaw>,
}

/// `console: {}`: otelconf takes any map and reads nothing from it.
#[derive(Deserialize)]
struct ConsoleRaw(#[serde(default)] BTreeMap<String, de::IgnoredAny>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OtlpRaw {
    protocol: Option<String>,
    endpoint: Option<String>,
    headers: Option<HeadersRaw>,
    headers_list: Option<Secret>,
    compression: Option<String>,
    #[serde(default, deserialize_with = "millis")]
    timeout: Option<i64>,
    insecure: Option<bool>,
    temporality_preference: Option<String>,
    default_histogram_aggregation: Option<String>,
    certificate: Option<String>,
    client_certificate: Option<String>,
    client_key: Option<String>,
}

/// `headers`: otelconf v0.3.0's list of `{name, value}` (a `null` value sets nothing), or
/// v0.2.0's map, which otelcol still reads.
struct HeadersRaw(Vec<(String, Secret)>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameValue {
    name: String,
    value: Option<Secret>,
}

impl<'de> serde::Deserialize<'de> for HeadersRaw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HeadersRaw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {name, value}, or a map of names to values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HeadersRaw, A::Error> {
                let mut out = Vec::new();
                while let Some(NameValue { name, value }) = seq.next_element()? {
                    if let Some(value) = value {
                        out.push((name, value));
                    }
                }
                Ok(HeadersRaw(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeadersRaw, A::Error> {
                let mut out = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Secret>()? {
                    out.push((name, value));
                }
                Ok(HeadersRaw(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<HeadersRaw, E> {
                Ok(HeadersRaw(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer of milliseconds, as otelconf writes intervals and timeouts.
fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'v> Visitor<'v> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer of milliseconds, e.g. 60000")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i64>, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i64>, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("is too large"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

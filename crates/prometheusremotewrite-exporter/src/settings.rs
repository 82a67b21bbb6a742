//! Checking a parsed [`Config`] and resolving it into what the exporter runs with.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use redline_http_client::{ConnectionReuse, Proxy};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::config::Secret;
use redline_pipeline::endpoint::parse_http_endpoint;
use redline_pipeline::extension::ClientAuthenticator;
use redline_pipeline::prom_names;
use redline_pipeline::retry::RetryConfig;
use redline_pipeline::ComponentId;

use crate::config::{Config, QueueConfig, DEFAULT_MAX_BATCH_SIZE_BYTES};
use crate::encode::EncodeOptions;
use redline_prometheus_translate::{ResourceLabels, Settings as TranslateSettings};

pub use redline_pipeline::Invalid;

/// otelcol's default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers the remote-write protocol (or HTTP) sets; otelcol does not let users change them.
const RESERVED_HEADERS: &[&str] = &[
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "user-agent",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
];

/// The exporter's `auth`: the extension it names and, once the exporter is built among the
/// running extensions, that extension's authenticator.
#[derive(Clone)]
pub struct ClientAuth {
    pub id: ComponentId,
    /// `auth.authenticator` or `http.auth.authenticator`, for errors.
    pub key: &'static str,
    pub authenticator: Option<Arc<dyn ClientAuthenticator>>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("id", &self.id)
            .field("resolved", &self.authenticator.is_some())
            .finish()
    }
}

/// Everything the running exporter needs, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub url: Uri,
    pub https: bool,
    pub headers: HeaderMap,
    pub auth: Option<ClientAuth>,
    /// The TLS section and its key path (`tls` or `http.tls`).
    pub tls: Option<(ClientTlsConfig, &'static str)>,
    /// Per request; `None` for no timeout.
    pub timeout: Option<Duration>,
    pub reuse: ConnectionReuse,
    pub proxy: Proxy,
    /// Keys set that have no effect in Redline (with their prefix), for a note at start.
    pub ignored_keys: Vec<String>,
    pub retry: RetryConfig,
    pub queue: QueueConfig,
    /// Requests of one push in flight at once.
    pub parallelism: usize,
    /// `None`: take the sources' flush interval.
    pub push_interval: Option<Duration>,
    /// How OTLP batches are translated (resources, scopes, `target_info`).
    pub translate: TranslateSettings,
    pub encode: EncodeOptions,
}

impl Config {
    /// Checks every value serde cannot and resolves defaults; errors name the key.
    pub fn settings(&self) -> Result<Settings, Invalid> {
        let (client, prefix) = match &self.http {
            Some(h) => {
                let top_level = self.endpoint.is_some()
                    || !self.headers.is_empty()
                    || self.tls.is_some()
                    || self.compression.is_some()
                    || self.proxy_url.is_some();
                if top_level {
                    return Err(Invalid::new(
                        "http",
                        "give the HTTP client settings (endpoint, headers, tls, compression, \
                         proxy_url) either at the top level or under `http`, not both",
                    ));
                }
                if let Some(k) = self.http_client_keys().connection.first_written() {
                    return Err(Invalid::new(
                        k,
                        "give the HTTP client settings either at the top level or under \
                         `http`, not both: this one is at the top level",
                    ));
                }
                let mut client = h.http_client_keys();
                client.timeout = client.timeout.or(self.timeout);
                (client, "http.")
            }
            None => (self.http_client_keys(), ""),
        };
        let key = |k: &str| format!("{prefix}{k}");
        let tls_key = if prefix.is_empty() { "tls" } else { "http.tls" };
        client
            .connection
            .check()
            .map_err(|e| Invalid::new(key(&e.key_path), e.reason))?;

        let endpoint = client
            .endpoint
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                Invalid::new(
                    key("endpoint"),
                    "is required (e.g. http://prometheus:9090/api/v1/write)",
                )
            })?;
        let target = parse_http_endpoint(endpoint).map_err(|r| Invalid::new(key("endpoint"), r))?;
        let proxy = Proxy::from_config(client.proxy_url)
            .and_then(|p| p.check(&target.url, false).map(|()| p))
            .map_err(|e| {
                let k = if e.key == "proxy_url" {
                    key("proxy_url")
                } else {
                    e.key
                };
                Invalid::new(k, e.reason)
            })?;
        let headers = check_headers(client.headers, prefix)?;
        let auth_key = if prefix.is_empty() {
            "auth.authenticator"
        } else {
            "http.auth.authenticator"
        };
        let auth = client
            .auth
            .map(|a| {
                a.id().map(|id| ClientAuth {
                    id,
                    key: auth_key,
                    authenticator: None,
                })
            })
            .transpose()
            .map_err(|e| Invalid::new(auth_key, e))?;
        if let Some(t) = client.tls {
            t.check()
                .map_err(|e| Invalid::new(format!("{tls_key}.{}", e.key), e.reason))?;
        }
        match client.compression {
            None | Some("") | Some("snappy") => {}
            Some(other) => {
                return Err(Invalid::new(
                    key("compression"),
                    format!("`{other}`: compression type must be snappy (the remote-write protocol requires it)"),
                ))
            }
        }
        match self.protobuf_message.as_deref() {
            None | Some("") | Some("prometheus.WriteRequest") => {}
            Some(m @ "io.prometheus.write.v2.Request") => {
                return Err(Invalid::new(
                    "protobuf_message",
                    format!("`{m}` (remote write 2.0) is an otelcol setting Redline does not support yet; use prometheus.WriteRequest"),
                ))
            }
            Some(m) => {
                return Err(Invalid::new(
                    "protobuf_message",
                    format!("unknown message `{m}` (expected prometheus.WriteRequest)"),
                ))
            }
        }

        let namespace = match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => {
                let cleaned = prom_names::clean_up(ns);
                if cleaned.is_empty() {
                    return Err(Invalid::new(
                        "namespace",
                        format!("`{ns}` has no valid Prometheus form (it needs a letter or digit)"),
                    ));
                }
                cleaned
            }
            _ => String::new(),
        };
        let external_labels = self.external()?;
        let add_metric_suffixes = self.add_suffixes()?;

        let max_request_bytes = match self.max_batch_size_bytes {
            None | Some(0) => DEFAULT_MAX_BATCH_SIZE_BYTES,
            Some(n) => n,
        };
        let q = &self.remote_write_queue;
        if q.queue_size < 0 {
            return Err(Invalid::new(
                "remote_write_queue.queue_size",
                "can't be negative",
            ));
        }
        if q.enabled && q.queue_size == 0 {
            return Err(Invalid::new(
                "remote_write_queue.queue_size",
                "a 0 size queue will drop all the data",
            ));
        }
        if q.num_consumers < 0 {
            return Err(Invalid::new(
                "remote_write_queue.num_consumers",
                "can't be negative",
            ));
        }
        if q.enabled && q.queue_size_bytes == 0 {
            return Err(Invalid::new(
                "remote_write_queue.queue_size_bytes",
                "must be positive",
            ));
        }
        let parallelism = match self.max_batch_request_parallelism {
            Some(0) => {
                return Err(Invalid::new(
                    "max_batch_request_parallelism",
                    "can't be set to below 1",
                ))
            }
            Some(n) => n,
            None => q.num_consumers.max(1) as u64,
        };
        self.retry_on_failure
            .check()
            .map_err(|e| Invalid::new(format!("retry_on_failure.{}", e.key), e.reason))?;
        if self.push_interval == Some(Duration::ZERO) {
            return Err(Invalid::new("push_interval", "must be positive"));
        }
        let (resource_labels, _) = ResourceLabels::resolve(
            &self.resource_to_telemetry_conversion,
            &self.resource_constant_labels,
        )?;

        Ok(Settings {
            url: target.url,
            https: target.https,
            headers,
            auth,
            tls: client.tls.map(|t| (t.clone(), tls_key)),
            timeout: match client.timeout {
                None => Some(DEFAULT_TIMEOUT),
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
            },
            reuse: client.connection.reuse(),
            proxy,
            ignored_keys: client.connection.ignored().into_iter().map(key).collect(),
            retry: self.retry_on_failure.clone(),
            queue: q.clone(),
            parallelism: usize::try_from(parallelism).unwrap_or(usize::MAX).min(1024),
            push_interval: self.push_interval,
            translate: TranslateSettings {
                resource_labels,
                scope_labels: !self.disable_scope_info && self.scope_info.is_none(),
                target_info: self.target_info.enabled,
            },
            encode: EncodeOptions {
                namespace,
                add_metric_suffixes,
                external_labels,
                send_metadata: self.send_metadata,
                max_request_bytes: usize::try_from(max_request_bytes).unwrap_or(usize::MAX),
                // Removed from otelcol-contrib's exporter (v0.161 refuses the key); Redline
                // keeps it: `_created` makes a restart's counter reset explicit.
                export_created: self
                    .export_created_metric
                    .as_ref()
                    .is_some_and(|e| e.enabled),
            },
        })
    }

    /// Whether suffixes are added, with `translation_strategy` taking precedence as in otelcol.
    fn add_suffixes(&self) -> Result<bool, Invalid> {
        match self.translation_strategy.as_deref() {
            None | Some("") => Ok(self.add_metric_suffixes),
            Some("UnderscoreEscapingWithSuffixes") => Ok(true),
            Some("UnderscoreEscapingWithoutSuffixes") => Ok(false),
            Some(s @ ("NoUTF8EscapingWithSuffixes" | "NoTranslation")) => Err(Invalid::new(
                "translation_strategy",
                format!("`{s}` requires remote write 2.0 (UTF-8 names), which Redline does not support yet"),
            )),
            Some(s) => Err(Invalid::new(
                "translation_strategy",
                format!(
                    "unknown strategy `{s}` (expected UnderscoreEscapingWithSuffixes, \
                     UnderscoreEscapingWithoutSuffixes, NoUTF8EscapingWithSuffixes or NoTranslation)"
                ),
            )),
        }
    }

    /// External labels with their names translated like attribute keys, checked for clashes.
    fn external(&self) -> Result<Vec<(String, String)>, Invalid> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.external_labels {
            let key = format!("external_labels.{k}");
            let name = prom_names::label_name(k)
                .ok_or_else(|| Invalid::new(&key, "an external label needs a non-empty name"))?;
            let v = v.as_deref().unwrap_or_default();
            if v.is_empty() {
                return Err(Invalid::new(
                    &key,
                    "an external label needs a non-empty value (is the environment variable set?)",
                ));
            }
            if name == "__name__" {
                return Err(Invalid::new(
                    &key,
                    "`__name__` is the metric name, not a label",
                ));
            }
            if out.iter().any(|(n, _)| *n == name) {
                return Err(Invalid::new(
                    &key,
                    format!("appears twice after translation (as `{name}`)"),
                ));
            }
            out.push((name, v.to_owned()));
        }
        Ok(out)
    }
}

fn check_headers(headers: &BTreeMap<String, Secret>, prefix: &str) -> Result<HeaderMap, Invalid> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let key = format!("{prefix}headers.{name}");
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Invalid::new(&key, "is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&parsed.as_str()) {
            return Err(Invalid::new(
                &key,
                "is set by the remote-write protocol and cannot be overridden",
            ));
        }
        // The value is a secret: say what is wrong with it, never what it is.
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
            Invalid::new(
                &key,
                "value must be visible ASCII (no control characters or non-ASCII text)",
            )
        })?;
        v.set_sensitive(true);
        map.insert(parsed, v);
    }
    Ok(map)
}

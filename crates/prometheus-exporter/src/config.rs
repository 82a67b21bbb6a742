//! The `prometheus` exporter's config: otelcol's keys and defaults, except
//! `enable_open_metrics`, which defaults to true here (see [`Config::enable_open_metrics`]).

use std::collections::BTreeMap;
use std::time::Duration;

use redline_http_server::{HttpKeepalive, HttpServerTimeouts};
use redline_pipeline::config::{present, Unsupported};
use redline_pipeline::endpoint::{ListenerDialer, TcpTransport};
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

use redline_prometheus_translate::{ResourceLabels, ResourceLabelsConfig};

use crate::render::{OptionsError, RenderOptions};

pub use redline_pipeline::Invalid;

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `host:port` to serve `/metrics` on; port 0 picks a free port.
    pub endpoint: String,
    /// Prefix of every metric name (`<namespace>_`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels added to every series.
    #[serde(default)]
    pub const_labels: BTreeMap<String, String>,
    /// Serve OpenMetrics (with exemplars) to scrapers that ask for it.
    ///
    /// Deviation: otelcol defaults this to false. Redline defaults it to true so exemplars
    /// (trace links on Grafana panels) work with the reference config unchanged. Prometheus
    /// still falls back to the text format if it does not ask for OpenMetrics.
    #[serde(default = "default_true")]
    pub enable_open_metrics: bool,
    /// Write each point's time (milliseconds) after every sample, as otelcol does; points of
    /// a connector's live state get the scrape's time.
    #[serde(default)]
    pub send_timestamps: bool,
    /// How long an OTLP series is served without an update (default 5m, as otelcol).
    /// Connector series expire in the connector (spanmetrics' `metrics_expiration`).
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub metric_expiration: Option<Duration>,
    /// Resource attributes of OTLP metrics that become labels of their series (otelcol's
    /// deprecated spelling of `resource_constant_labels`; connector series are unaffected).
    #[serde(default)]
    pub resource_to_telemetry_conversion: ResourceLabelsConfig,
    /// Append unit and `_total` suffixes (`_milliseconds`, `_total`), as otelcol does.
    #[serde(default = "default_true")]
    pub add_metric_suffixes: bool,
    /// otelcol's successor of `add_metric_suffixes`; the two underscore-escaping strategies
    /// are supported, the UTF-8 ones are not.
    #[serde(default)]
    pub translation_strategy: Option<String>,

    /// Serve `/metrics` over TLS (confighttp's `tls`, otelcol's configtls server keys);
    /// `client_ca_file` requires scrapers to present a certificate.
    #[serde(default, deserialize_with = "present")]
    pub tls: Option<ServerTlsConfig>,
    /// `authenticator: <extension id>` (e.g. `basicauth/metrics`): every scrape must pass it.
    #[serde(default)]
    pub auth: Option<AuthConfig>,

    // otelcol settings (HTTP server, queue, deprecated keys) not implemented yet.
    #[serde(default)]
    pub cors: Option<Unsupported>,
    #[serde(default)]
    pub include_metadata: Option<Unsupported>,
    #[serde(default)]
    pub response_headers: Option<Unsupported>,
    #[serde(default)]
    pub max_request_body_size: Option<Unsupported>,
    #[serde(default)]
    pub compression_algorithms: Option<Unsupported>,
    /// Time allowed to read a whole scrape request, from its first byte; default 0: no
    /// limit, as in confighttp.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub read_timeout: Option<Duration>,
    /// Time allowed to read a scrape's request head, from its first byte; 0: no limit.
    /// Default 1m, as in confighttp.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub read_header_timeout: Option<Duration>,
    /// Time allowed from the end of a scrape's request head to the end of its response; 0:
    /// no limit. Default 30s, as in confighttp.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub write_timeout: Option<Duration>,
    /// Deprecated in otelcol for `keepalive.idle_timeout`; still read, with a warning.
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub idle_timeout: Option<Duration>,
    #[serde(default)]
    pub sending_queue: Option<Unsupported>,
    /// How long a scraper's connection waits for its next scrape (default 1m), or
    /// `enabled: false`; `null` is no section.
    #[serde(default)]
    pub keepalive: Option<HttpKeepalive>,
    /// Deprecated in otelcol for `keepalive.enabled`; still read, with a warning.
    #[serde(default)]
    pub keep_alives_enabled: Option<bool>,
    #[serde(default)]
    pub middlewares: Option<Unsupported>,
    #[serde(default)]
    pub dialer: Option<ListenerDialer>,
    /// Only `tcp`.
    #[serde(default)]
    pub transport: TcpTransport,
    /// otelcol's successor of `resource_to_telemetry_conversion`: `included` and `excluded`
    /// key patterns.
    #[serde(default)]
    pub resource_constant_labels: ResourceLabelsConfig,
    /// Leave out the `otel_scope_*` labels of OTLP series.
    #[serde(default)]
    pub without_scope_info: bool,
    #[serde(default)]
    pub without_type_suffix: Option<Unsupported>,
    #[serde(default)]
    pub without_units: Option<Unsupported>,
}

/// A server's `auth` section, as every Redline server spells it.
pub use redline_pipeline::extension::ServerAuthConfig as AuthConfig;

impl Config {
    /// Checks the values serde cannot: the endpoint, translatable names, unsupported values.
    pub fn check(&self) -> Result<(), Invalid> {
        split_endpoint(&self.endpoint).map_err(|r| Invalid::new("endpoint", r))?;
        self.add_suffixes()?;
        self.render_options()?;
        self.resource_labels()?;
        if let Some(tls) = &self.tls {
            tls.check()
                .map_err(|e| Invalid::new(format!("tls.{}", e.key), e.reason))?;
        }
        if let Some(auth) = &self.auth {
            auth.id()
                .map_err(|e| Invalid::new("auth.authenticator", e))?;
        }
        self.timeouts()
            .check()
            .map_err(|(key, reason)| Invalid::new(key, reason))?;
        Ok(())
    }

    /// The keys bounding a scraper connection's life.
    pub fn timeouts(&self) -> HttpServerTimeouts {
        redline_http_server::http_server_timeouts!(self)
    }

    /// Which resource attributes become labels, and whether the deprecated section said so.
    pub fn resource_labels(&self) -> Result<(ResourceLabels, bool), Invalid> {
        ResourceLabels::resolve(
            &self.resource_to_telemetry_conversion,
            &self.resource_constant_labels,
        )
    }

    /// Whether suffixes are added, with `translation_strategy` taking precedence as in otelcol.
    pub fn add_suffixes(&self) -> Result<bool, Invalid> {
        match self.translation_strategy.as_deref() {
            None | Some("") => Ok(self.add_metric_suffixes),
            Some("UnderscoreEscapingWithSuffixes") => Ok(true),
            Some("UnderscoreEscapingWithoutSuffixes") => Ok(false),
            Some(s @ ("NoUTF8EscapingWithSuffixes" | "NoTranslation")) => Err(Invalid::new(
                "translation_strategy",
                format!(
                    "`{s}` is an otelcol setting Redline does not support yet \
                     (UnderscoreEscapingWithSuffixes and UnderscoreEscapingWithoutSuffixes are)"
                ),
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

    pub fn render_options(&self) -> Result<RenderOptions, Invalid> {
        let add = self.add_suffixes()?;
        RenderOptions::new(
            self.namespace.as_deref(),
            self.const_labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
            add,
        )
        .map(|o| o.with_send_timestamps(self.send_timestamps))
        .map_err(|e| match &e {
            OptionsError::Namespace(_) => Invalid::new("namespace", e.to_string()),
            OptionsError::LabelName(k) | OptionsError::DuplicateLabel(k, _) => {
                Invalid::new(format!("const_labels.{k}"), e.to_string())
            }
        })
    }

    /// Parses and checks a component's section, naming the bad key on error.
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        let parsed: Config = config.parse()?;
        parsed.check().map_err(|e| config.locate(e))?;
        Ok(parsed)
    }

    /// The address to bind: an empty host (`:9464`) means every interface, as in Go.
    pub fn bind_address(&self) -> Result<String, Invalid> {
        let (host, port) =
            split_endpoint(&self.endpoint).map_err(|r| Invalid::new("endpoint", r))?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        Ok(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6 literals).
fn split_endpoint(endpoint: &str) -> Result<(&str, u16), String> {
    let e = endpoint.trim();
    let bad = |why: &str| format!("`{endpoint}` is not a host:port address: {why}");
    let (host, port) = e.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']').ok_or_else(|| bad("unclosed `[`"))?,
        None if host.contains(':') => return Err(bad("put IPv6 addresses in brackets")),
        None => host,
    };
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad("invalid host"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, String> {
        serde_json::from_str::<Config>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_otelcol_except_open_metrics() {
        let c = parse(r#"{"endpoint": "0.0.0.0:9464"}"#).expect("valid");
        assert!(
            c.enable_open_metrics,
            "Redline deviates: OpenMetrics on by default"
        );
        assert!(c.add_metric_suffixes);
        assert!(!c.send_timestamps);
        assert!(c.namespace.is_none());
        assert!(c.const_labels.is_empty());
        assert!(c.check().is_ok());
        assert_eq!(c.bind_address().as_deref(), Ok("0.0.0.0:9464"));
    }

    #[test]
    fn full_otelcol_style_config() {
        let c = parse(
            r#"{"endpoint": "127.0.0.1:0", "namespace": "redline", "const_labels": {"env": "prod"},
                "enable_open_metrics": false, "metric_expiration": "180m",
                "resource_to_telemetry_conversion": {"enabled": false},
                "add_metric_suffixes": false}"#,
        )
        .expect("valid");
        assert_eq!(c.metric_expiration, Some(Duration::from_secs(180 * 60)));
        assert!(!c.enable_open_metrics);
        assert_eq!(c.add_suffixes(), Ok(false));
        assert!(c.check().is_ok());
    }

    #[test]
    fn unknown_and_unsupported_keys_are_errors() {
        let e = parse(r#"{"endpoint": ":9464", "endpiont": "x"}"#).expect_err("unknown");
        assert!(e.contains("endpiont"), "{e}");
        for key in ["without_units", "sending_queue", "cors"] {
            let e = parse(&format!(r#"{{"endpoint": ":9464", "{key}": {{}}}}"#))
                .expect_err("unsupported");
            assert!(e.contains("does not support yet"), "{key}: {e}");
        }
        assert!(
            parse(r#"{"namespace": "x"}"#).is_err(),
            "endpoint is required"
        );
    }

    #[test]
    fn check_names_the_bad_key() {
        let key = |json: &str| {
            parse(json)
                .expect("parses")
                .check()
                .map_err(|e| e.key_path)
                .err()
        };
        assert_eq!(
            key(r#"{"endpoint": "localhost"}"#).as_deref(),
            Some("endpoint")
        );
        assert_eq!(
            key(r#"{"endpoint": "h:99999"}"#).as_deref(),
            Some("endpoint")
        );
        assert_eq!(
            key(r#"{"endpoint": "::1:80"}"#).as_deref(),
            Some("endpoint")
        );
        assert_eq!(key(r#"{"endpoint": "[::1]:80"}"#), None);
        assert_eq!(
            key(r#"{"endpoint": ":80", "namespace": "..."}"#).as_deref(),
            Some("namespace")
        );
        assert_eq!(
            key(r#"{"endpoint": ":80", "const_labels": {"": "x"}}"#).as_deref(),
            Some("const_labels.")
        );
        assert_eq!(
            key(r#"{"endpoint": ":80", "const_labels": {"a.b": "x", "a_b": "y"}}"#).as_deref(),
            Some("const_labels.a_b")
        );
        assert_eq!(key(r#"{"endpoint": ":80", "send_timestamps": true}"#), None);
        assert_eq!(
            key(r#"{"endpoint": ":80", "resource_to_telemetry_conversion": {"enabled": true}}"#),
            None
        );
        let c = parse(r#"{"endpoint": ":80", "without_scope_info": true}"#).expect("parses");
        assert!(c.without_scope_info);
        assert_eq!(
            key(r#"{"endpoint": ":80", "translation_strategy": "NoTranslation"}"#).as_deref(),
            Some("translation_strategy")
        );
        let c = parse(
            r#"{"endpoint": ":80", "translation_strategy": "UnderscoreEscapingWithoutSuffixes"}"#,
        )
        .expect("parses");
        assert_eq!(c.add_suffixes(), Ok(false));
        assert_eq!(c.bind_address().as_deref(), Ok("0.0.0.0:80"));
    }

    #[test]
    fn tls_and_auth_are_checked() {
        let key = |json: &str| {
            parse(json)
                .expect("parses")
                .check()
                .map_err(|e| e.key_path)
                .err()
        };
        let c = parse(
            r#"{"endpoint": ":9464", "tls": {"cert_file": "c.pem", "key_file": "k.pem",
                "client_ca_file": "ca.pem"}, "auth": {"authenticator": "basicauth/metrics"}}"#,
        )
        .expect("parses");
        assert!(c.check().is_ok());
        assert_eq!(
            c.auth.expect("auth").id().map(|i| i.to_string()).as_deref(),
            Ok("basicauth/metrics")
        );
        assert_eq!(
            key(r#"{"endpoint": ":9464", "tls": {"cert_file": "c.pem"}}"#).as_deref(),
            Some("tls.key_file")
        );
        assert_eq!(
            key(r#"{"endpoint": ":9464", "tls": null}"#).as_deref(),
            Some("tls.cert_file")
        );
        assert_eq!(
            key(r#"{"endpoint": ":9464", "auth": {"authenticator": ""}}"#).as_deref(),
            Some("auth.authenticator")
        );
    }
}

//! The `otlphttp` exporter's section parsed from real YAML through the pipeline's config
//! loader, and built by its factory.

mod http_sink;
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redline_otlp_exporter::config::{Encoding, HttpCompression};
use redline_otlp_exporter::{HttpConfig, OtlpHttpExporterFactory};
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str_with_env;
use redline_pipeline::{BuildContext, ComponentConfig, ConfigError, ExporterFactory, Signal};

fn section_of(type_name: &str, exporter_yaml: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n\
         exporters:\n  {type_name}/loki:\n{exporter_yaml}\n\
         service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [{type_name}/loki]\n"
    );
    let env = |name: &str| (name == "LOKI_TENANT").then(|| "tenant-42".to_owned());
    let config = load_str_with_env("test.yaml", &text, &env).expect("file loads");
    config
        .exporters
        .into_iter()
        .find(|e| e.id().to_string() == format!("{type_name}/loki"))
        .expect("exporter section")
}

fn section(exporter_yaml: &str) -> ComponentConfig {
    section_of("otlphttp", exporter_yaml)
}

fn parse(exporter_yaml: &str) -> Result<HttpConfig, ConfigError> {
    let s = section(exporter_yaml);
    OtlpHttpExporterFactory.validate(&s)?;
    s.parse::<HttpConfig>()
}

fn error(exporter_yaml: &str) -> ConfigError {
    parse(exporter_yaml).expect_err("invalid config")
}

#[test]
fn defaults_are_otelcols() {
    let c = parse("    endpoint: http://loki:3100/otlp").expect("valid");
    assert_eq!(c.encoding, Encoding::Proto);
    assert_eq!(c.compression, HttpCompression::Gzip);
    assert_eq!(c.compression_level(), Some(6));
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert!(c.retry_on_failure.enabled);
    assert_eq!(c.retry_on_failure.initial_interval, Duration::from_secs(5));
    assert_eq!(c.sending_queue.num_consumers, 10);
    assert_eq!(
        c.url(Signal::Logs).map(|u| u.0).as_deref(),
        Some("http://loki:3100/otlp/v1/logs")
    );
    assert!(c.ignored_keys().is_empty());
}

#[test]
fn the_otlp_http_alias_is_the_same_exporter() {
    assert_eq!(OtlpHttpExporterFactory.aliases(), &["otlp_http"]);
    let s = section_of("otlp_http", "    endpoint: http://loki:3100/otlp");
    OtlpHttpExporterFactory.validate(&s).expect("valid");
}

#[test]
fn full_config_parses() {
    let c = parse(
        "    endpoint: https://collector.example:4318
    traces_endpoint: https://tempo.example/otlp/v1/traces
    logs_endpoint: https://loki.example/otlp/v1/logs
    encoding: json
    compression: zstd
    compression_params:
      level: 9
    timeout: 10s
    headers:
      X-Scope-OrgID: ${env:LOKI_TENANT}
    tls:
      ca_file: /etc/ssl/ca.pem
      server_name_override: loki.internal
      insecure_skip_verify: false
    read_buffer_size: 0
    write_buffer_size: 524288
    max_idle_conns: 100
    max_idle_conns_per_host: 10
    max_conns_per_host: 0
    idle_conn_timeout: 90s
    disable_keep_alives: false
    http2_read_idle_timeout: 10s
    http2_ping_timeout: 15s
    force_attempt_http2: true
    cookies:
      enabled: false
    proxy_url: \"\"
    retry_on_failure:
      enabled: true
      initial_interval: 1s
    sending_queue:
      num_consumers: 2
      queue_size: 500",
    )
    .expect("valid");
    assert_eq!(c.encoding, Encoding::Json);
    assert_eq!(c.compression, HttpCompression::Zstd);
    assert_eq!(c.compression_level(), Some(9));
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(
        c.headers.get("X-Scope-OrgID").map(|v| v.expose()),
        Some("tenant-42")
    );
    assert_eq!(
        c.url(Signal::Traces).map(|u| u.0).as_deref(),
        Some("https://tempo.example/otlp/v1/traces")
    );
    assert_eq!(
        c.url(Signal::Metrics).map(|u| u.0).as_deref(),
        Some("https://collector.example:4318/v1/metrics")
    );
    assert_eq!(c.connection_reuse().max_idle, Some(10));
    assert_eq!(
        c.ignored_keys(),
        vec![
            "read_buffer_size",
            "write_buffer_size",
            "max_conns_per_host",
            "http2_read_idle_timeout",
            "http2_ping_timeout",
            "force_attempt_http2"
        ]
    );
}

#[test]
fn the_newer_keepalive_section_parses() {
    let c = parse(
        "    endpoint: http://c:4318
    keepalive:
      enabled: true
      idle_conn_timeout: 60s
      max_idle_conns: 50
      max_idle_conns_per_host: 5",
    )
    .expect("valid");
    let r = c.connection_reuse();
    assert_eq!((r.keep_alive, r.max_idle), (true, Some(5)));
    assert_eq!(r.idle_timeout, Duration::from_secs(60));
    let e = error(
        "    endpoint: http://c:4318\n    keepalive:\n      enabled: false\n    max_idle_conns: 3",
    );
    assert_eq!(e.path, "exporters.otlphttp/loki.max_idle_conns", "{e}");
}

#[test]
fn an_endpoint_is_required_and_must_be_a_url() {
    let e = error("    encoding: proto");
    assert_eq!(e.path, "exporters.otlphttp/loki.endpoint", "{e}");
    let e = error("    endpoint: loki:3100");
    assert_eq!(e.path, "exporters.otlphttp/loki.endpoint", "{e}");
    assert!(e.reason.contains("scheme"), "{e}");
    let e = error("    logs_endpoint: http://user:secret@loki/otlp/v1/logs");
    assert_eq!(e.path, "exporters.otlphttp/loki.logs_endpoint", "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    parse("    logs_endpoint: http://loki:3100/otlp/v1/logs")
        .expect("a signal endpoint alone is enough");
}

#[test]
fn unsupported_compressions_and_encodings_say_so() {
    let e = error("    endpoint: http://c:4318\n    compression: lz4");
    assert_eq!(e.path, "exporters.otlphttp/loki.compression", "{e}");
    assert!(e.reason.contains("not supported by Redline"), "{e}");
    let e = error("    endpoint: http://c:4318\n    compression: brotli");
    assert_eq!(
        e.reason,
        "unknown compression `brotli`; use `gzip`, `zstd`, `zlib`, `deflate`, `snappy`, `x-snappy-framed` or `none`"
    );
    for (name, compression) in [
        ("snappy", HttpCompression::Snappy),
        ("x-snappy-framed", HttpCompression::SnappyFramed),
    ] {
        let c = parse(&format!(
            "    endpoint: http://c:4318\n    compression: {name}"
        ))
        .expect("valid");
        assert_eq!(c.compression, compression);
        assert_eq!(compression.content_encoding(), Some(name));
        let e = error(&format!(
            "    endpoint: http://c:4318\n    compression: {name}\n    compression_params:\n      level: 1"
        ));
        assert_eq!(
            e.path, "exporters.otlphttp/loki.compression_params.level",
            "{e}"
        );
    }
    let e = error("    endpoint: http://c:4318\n    encoding: yaml");
    assert_eq!(e.path, "exporters.otlphttp/loki.encoding", "{e}");
    let e = error("    endpoint: http://c:4318\n    compression_params:\n      level: 11");
    assert_eq!(
        e.path, "exporters.otlphttp/loki.compression_params.level",
        "{e}"
    );
}

#[test]
fn unimplemented_otelcol_keys_are_refused_by_name() {
    for (yaml, key, says) in [
        (
            "    proxy_url: socks5://proxy:1080",
            "proxy_url",
            "not supported",
        ),
        ("    middlewares: []", "middlewares", "not support"),
        (
            "    cookies:\n      enabled: true",
            "cookies.enabled",
            "not support",
        ),
        (
            "    sending_queue:\n      enabled: false",
            "sending_queue.enabled",
            "not support",
        ),
        (
            "    headers:\n      Content-Encoding: br",
            "headers.Content-Encoding",
            "cannot be overridden",
        ),
    ] {
        let e = error(&format!("    endpoint: http://c:4318\n{yaml}"));
        assert_eq!(e.path, format!("exporters.otlphttp/loki.{key}"), "{e}");
        assert!(e.reason.contains(says), "{e}");
    }
    let e = error("    endpoint: http://c:4318\n    timout: 5s");
    assert!(e.to_string().contains("timout"), "{e}");
}

#[tokio::test]
async fn factory_builds_from_yaml_and_forwards() {
    let sink = http_sink::HttpSink::start().await;
    let s = section(&format!(
        "    endpoint: {}/otlp\n    compression: none\n    headers:\n      X-Scope-OrgID: ${{env:LOKI_TENANT}}",
        sink.url()
    ));
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let (consumer, running) = OtlpHttpExporterFactory
        .build(&s, &BuildContext::new(telemetry.clone()), Signal::Logs)
        .await
        .expect("builds");
    consumer
        .consume(http_sink::batch(Signal::Logs, 3, 1))
        .expect("queued");
    let counters = telemetry.exporter("otlphttp/loki", Signal::Logs);
    assert!(http_sink::eventually(|| counters.sent.load(Ordering::SeqCst) == 3).await);
    let got = &sink.accepted()[0];
    assert_eq!(got.path, "/otlp/v1/logs");
    assert_eq!(got.header("x-scope-orgid"), Some("tenant-42"));
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test]
async fn a_signal_without_an_endpoint_fails_its_build_by_name() {
    let s = section("    logs_endpoint: http://loki:3100/otlp/v1/logs");
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let err = OtlpHttpExporterFactory
        .build(&s, &BuildContext::new(telemetry.clone()), Signal::Traces)
        .await
        .err()
        .expect("no traces endpoint");
    assert_eq!(err.component, "otlphttp/loki");
    assert!(err.reason.contains("traces_endpoint"), "{}", err.reason);
    let (_, running) = OtlpHttpExporterFactory
        .build(&s, &BuildContext::new(telemetry), Signal::Logs)
        .await
        .expect("logs build");
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[test]
fn auth_names_an_authenticator_over_http_or_https() {
    for endpoint in [
        "http://loki:3100/otlp",
        "https://otlp-gateway.example.net/otlp",
    ] {
        let c = parse(&format!(
            "    endpoint: {endpoint}\n    auth:\n      authenticator: basicauth/grafana_cloud"
        ))
        .expect("valid");
        assert_eq!(
            c.auth.map(|a| a.authenticator).as_deref(),
            Some("basicauth/grafana_cloud")
        );
    }
    let e = error("    endpoint: http://loki:3100/otlp\n    auth:\n      authenticator: \" \"");
    assert_eq!(e.path, "exporters.otlphttp/loki.auth.authenticator", "{e}");
}

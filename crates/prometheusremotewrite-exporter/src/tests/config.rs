//! Config through the pipeline's real YAML loader: otelcol keys and defaults, and errors that
//! name the key path.

use std::time::Duration;

use redline_pipeline::component::FactoryInfo as _;
use redline_pipeline::ComponentConfig;

use crate::config::{Config, DEFAULT_QUEUE_SIZE_BYTES};
use crate::RemoteWriteExporterFactory;

fn section_with_env(body: &str, env: &dyn Fn(&str) -> Option<String>) -> ComponentConfig {
    let text = format!(
        "exporters:\n  prometheusremotewrite:\n{body}\nservice:\n  pipelines:\n    metrics:\n      receivers: [spanmetrics]\n      exporters: [prometheusremotewrite]\n"
    );
    let loaded = redline_pipeline::config::load_str_with_env("redline.yaml", &text, env)
        .unwrap_or_else(|e| panic!("loads: {e}"));
    loaded.exporters.into_iter().next().expect("one exporter")
}

fn section(body: &str) -> ComponentConfig {
    section_with_env(body, &|_| None)
}

fn settings(body: &str) -> crate::Settings {
    let c: Config = section(body)
        .parse()
        .unwrap_or_else(|e| panic!("parses: {e}"));
    c.settings().unwrap_or_else(|e| panic!("valid: {e}"))
}

fn err(body: &str) -> String {
    RemoteWriteExporterFactory
        .validate(&section(body))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| panic!("should be refused:\n{body}"))
}

#[test]
fn defaults_follow_otelcol() {
    let s = settings("    endpoint: http://127.0.0.1:9090/api/v1/write");
    assert_eq!(s.url.to_string(), "http://127.0.0.1:9090/api/v1/write");
    assert!(!s.https);
    assert_eq!(s.timeout, Some(Duration::from_secs(5)));
    assert!(s.retry.enabled);
    assert_eq!(s.retry.initial_interval, Duration::from_millis(50));
    assert_eq!(s.retry.max_interval, Duration::from_millis(200));
    assert_eq!(s.retry.max_elapsed_time, Duration::from_secs(60));
    assert_eq!(s.retry.multiplier, 1.5);
    assert_eq!(s.retry.randomization_factor, 0.5);
    assert!(s.queue.enabled);
    assert_eq!(s.queue.queue_size, 10_000);
    assert_eq!(s.queue.num_consumers, 5);
    assert_eq!(s.queue.queue_size_bytes, DEFAULT_QUEUE_SIZE_BYTES);
    assert_eq!(s.parallelism, 5);
    assert_eq!(s.push_interval, None);
    assert_eq!(s.encode.max_request_bytes, 3_000_000);
    assert!(s.encode.add_metric_suffixes);
    assert!(!s.encode.send_metadata);
    assert!(s.encode.namespace.is_empty());
    assert!(s.encode.external_labels.is_empty());
    assert!(s.headers.is_empty());
}

#[test]
fn a_full_otelcol_section_parses() {
    let s = settings(
        r#"    endpoint: https://mimir.example:443/api/v1/push
    timeout: 10s
    headers:
      X-Scope-OrgID: tenant-1
    tls:
      insecure: false
      ca_file: /nonexistent/ca.pem
      server_name_override: mimir.internal
    compression: snappy
    namespace: "redline.traces"
    external_labels:
      cluster: eu-1
      service.instance: pod-7
    resource_to_telemetry_conversion:
      enabled: false
    remote_write_queue:
      enabled: true
      queue_size: 100
      num_consumers: 2
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0
    max_batch_size_bytes: 500000
    add_metric_suffixes: true
    send_metadata: true
    target_info:
      enabled: true
    protobuf_message: prometheus.WriteRequest
    push_interval: 15s"#,
    );
    assert!(s.https);
    assert_eq!(s.timeout, Some(Duration::from_secs(10)));
    assert_eq!(
        s.headers.get("x-scope-orgid").map(|v| v.to_str().ok()),
        Some(Some("tenant-1"))
    );
    assert_eq!(s.encode.namespace, "redline_traces");
    assert_eq!(
        s.encode.external_labels,
        vec![
            ("cluster".to_owned(), "eu-1".to_owned()),
            ("service_instance".to_owned(), "pod-7".to_owned())
        ]
    );
    assert_eq!(s.queue.queue_size, 100);
    assert_eq!(s.parallelism, 2);
    assert_eq!(s.retry.max_elapsed_time, Duration::ZERO);
    assert_eq!(s.encode.max_request_bytes, 500_000);
    assert!(s.encode.send_metadata);
    assert!(!s.encode.export_created);
    assert_eq!(
        s.translate,
        redline_prometheus_translate::Settings {
            resource_labels: redline_prometheus_translate::ResourceLabels::Off,
            scope_labels: true,
            target_info: true,
        }
    );
    assert_eq!(s.push_interval, Some(Duration::from_secs(15)));
    assert!(s.tls.is_some());
}

#[test]
fn translation_keys_map_to_the_translator_settings() {
    let s = settings(
        "    endpoint: http://prom:9090/api/v1/write\n    resource_to_telemetry_conversion:\n      enabled: true\n    target_info: {}\n    disable_scope_info: true",
    );
    assert_eq!(
        s.translate,
        redline_prometheus_translate::Settings {
            resource_labels: redline_prometheus_translate::ResourceLabels::All,
            scope_labels: false,
            // A section without `enabled` keeps otelcol's default.
            target_info: true,
        }
    );
    let off = settings(
        "    endpoint: http://prom:9090/api/v1/write\n    target_info:\n      enabled: false\n    scope_info:\n      enabled: false",
    );
    assert!(!off.translate.target_info && !off.translate.scope_labels);
}

#[test]
fn the_nested_http_form_works_too() {
    let s = settings(
        "    http:\n      endpoint: http://prom:9090/api/v1/write\n      timeout: 2s\n      headers:\n        Authorization: Bearer x\n    max_batch_request_parallelism: 3",
    );
    assert_eq!(s.url.host(), Some("prom"));
    assert_eq!(s.timeout, Some(Duration::from_secs(2)));
    assert!(s.headers.contains_key("authorization"));
    assert_eq!(s.parallelism, 3);
    let e = err("    endpoint: http://a:1/w\n    http:\n      endpoint: http://b:1/w");
    assert!(e.contains("exporters.prometheusremotewrite.http"), "{e}");
}

#[test]
fn connection_keys_set_reuse_in_either_spelling_and_place() {
    use redline_http_client::{ConnectionReuse, DEFAULT_IDLE_TIMEOUT};

    let ep = "    endpoint: http://prom:9090/api/v1/write\n";
    assert_eq!(settings(ep).reuse, ConnectionReuse::default());
    let legacy = settings(&format!(
        "{ep}    max_idle_conns: 8\n    max_idle_conns_per_host: 4\n    idle_conn_timeout: 30s"
    ));
    assert_eq!(
        legacy.reuse,
        ConnectionReuse {
            keep_alive: true,
            idle_timeout: Duration::from_secs(30),
            max_idle: Some(4),
        }
    );
    let nested = settings(
        "    http:\n      endpoint: http://prom:9090/api/v1/write\n      keepalive:\n        enabled: false",
    );
    assert_eq!(
        nested.reuse,
        ConnectionReuse {
            keep_alive: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle: None,
        }
    );
    let ignored = settings(&format!(
        "{ep}    read_buffer_size: 4096\n    http2_ping_timeout: 5s"
    ));
    assert_eq!(
        ignored.ignored_keys,
        ["read_buffer_size", "http2_ping_timeout"]
    );
}

#[test]
fn external_labels_take_env_vars_for_the_scale_out_pattern() {
    let env = |name: &str| (name == "HOSTNAME").then(|| "redline-2".to_owned());
    let section = section_with_env(
        "    endpoint: http://prom:9090/api/v1/write\n    external_labels:\n      instance: ${env:HOSTNAME}",
        &env,
    );
    let c: Config = section.parse().expect("parses");
    let s = c.settings().expect("valid");
    assert_eq!(
        s.encode.external_labels,
        vec![("instance".to_owned(), "redline-2".to_owned())]
    );
    // Unset, it expands to nothing: refused rather than sending every replica as one.
    let e = RemoteWriteExporterFactory
        .validate(&section_with_env(
            "    endpoint: http://prom:9090/api/v1/write\n    external_labels:\n      instance: ${env:HOSTNAME}",
            &|_| None,
        ))
        .expect_err("empty value")
        .to_string();
    assert!(
        e.contains("external_labels.instance") && e.contains("non-empty value"),
        "{e}"
    );
}

#[test]
fn errors_name_the_key_path() {
    let ep = "    endpoint: http://prom:9090/api/v1/write\n";
    let nested = "    http:\n      endpoint: http://prom:9090/api/v1/write\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "    namespace: x".into(),
            "exporters.prometheusremotewrite.endpoint",
            "required",
        ),
        (
            "    endpoint: prom:9090".into(),
            "exporters.prometheusremotewrite.endpoint",
            "scheme",
        ),
        (
            "    endpoint: ftp://prom/w".into(),
            "exporters.prometheusremotewrite.endpoint",
            "ftp",
        ),
        (format!("{ep}    endpiont: x"), "endpiont", "unknown field"),
        (
            format!("{ep}    compression: gzip"),
            "exporters.prometheusremotewrite.compression",
            "snappy",
        ),
        (
            format!("{ep}    wal:\n      directory: /tmp/wal"),
            "exporters.prometheusremotewrite.wal",
            "does not support yet",
        ),
        (
            format!("{ep}    resource_to_telemetry_conversion:\n      enabled: true\n      included: [\"k8s.*\"]"),
            "exporters.prometheusremotewrite.resource_to_telemetry_conversion",
            "cannot configure both",
        ),
        (
            format!("{ep}    resource_constant_labels:\n      enabled: true"),
            "exporters.prometheusremotewrite.resource_constant_labels",
            "use included and excluded",
        ),
        (
            format!("{ep}    headers:\n      Content-Type: text/plain"),
            "exporters.prometheusremotewrite.headers.Content-Type",
            "cannot be overridden",
        ),
        (
            format!("{ep}    translation_strategy: NoTranslation"),
            "exporters.prometheusremotewrite.translation_strategy",
            "remote write 2.0",
        ),
        (
            format!("{ep}    remote_write_queue:\n      queue_size: 0"),
            "exporters.prometheusremotewrite.remote_write_queue.queue_size",
            "drop all",
        ),
        (
            format!("{ep}    push_interval: 0s"),
            "exporters.prometheusremotewrite.push_interval",
            "positive",
        ),
        (
            format!("{ep}    protobuf_message: io.prometheus.write.v2.Request"),
            "exporters.prometheusremotewrite.protobuf_message",
            "2.0",
        ),
        (
            format!("{ep}    external_labels:\n      __name__: x"),
            "exporters.prometheusremotewrite.external_labels.__name__",
            "metric name",
        ),
        (
            format!("{ep}    external_labels:\n      a.b: x\n      a_b: y"),
            "exporters.prometheusremotewrite.external_labels.a_b",
            "twice",
        ),
        (
            format!("{ep}    max_batch_request_parallelism: 0"),
            "exporters.prometheusremotewrite.max_batch_request_parallelism",
            "below 1",
        ),
        (
            format!("{ep}    proxy_url: socks5://proxy:1080"),
            "exporters.prometheusremotewrite.proxy_url",
            "not supported yet",
        ),
        (
            format!("{ep}    retry_on_failure:\n      multiplier: 0.5"),
            "exporters.prometheusremotewrite.retry_on_failure.multiplier",
            ">= 1",
        ),
        (
            format!("{ep}    retry_on_failure:\n      max_elapsed_time: 10ms"),
            "exporters.prometheusremotewrite.retry_on_failure.max_elapsed_time",
            "initial_interval",
        ),
        (
            format!("{nested}      proxy_url: https://proxy:3128"),
            "exporters.prometheusremotewrite.http.proxy_url",
            "not supported yet",
        ),
        (
            format!("{nested}      tls:\n        min_version: \"1.0\""),
            "exporters.prometheusremotewrite.http.tls.min_version",
            "does not support",
        ),
        (
            format!("{nested}      compression: gzip"),
            "exporters.prometheusremotewrite.http.compression",
            "snappy",
        ),
        (
            format!("{nested}      max_idle_conns: -1"),
            "exporters.prometheusremotewrite.http.max_idle_conns",
            "negative",
        ),
        (
            format!("{ep}    idle_conn_timeout: 30s\n    keepalive:\n      enabled: true"),
            "exporters.prometheusremotewrite.idle_conn_timeout",
            "cannot be combined with `keepalive`",
        ),
        (
            format!("{nested}    disable_keep_alives: true"),
            "exporters.prometheusremotewrite.disable_keep_alives",
            "this one is at the top level",
        ),
        (
            format!("{ep}    cookies:\n      enabled: true"),
            "exporters.prometheusremotewrite.cookies.enabled",
            "does not support yet",
        ),
    ];
    for (body, key, reason) in cases {
        let e = err(&body);
        assert!(
            e.contains(key) && e.contains(reason),
            "for\n{body}\nwant `{key}` and `{reason}` in: {e}"
        );
        assert!(
            e.contains("redline.yaml:"),
            "errors carry the file and line: {e}"
        );
    }
}

#[test]
fn tls_files_are_read_at_start_and_named_on_error() {
    let c: Config = section(
        "    endpoint: https://mimir:443/api/v1/push\n    tls:\n      ca_file: /nonexistent/ca.pem",
    )
    .parse()
    .expect("parses");
    let settings = c.settings().expect("valid until the file is read");
    let e = crate::start("prometheusremotewrite", settings, Vec::new())
        .err()
        .expect("missing CA file");
    assert_eq!(e.key_path, "tls.ca_file");
    assert!(e.reason.contains("/nonexistent/ca.pem"), "{e}");
}

//! The exporter's section parsed from real YAML through the pipeline's config loader.

mod common;
mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redline_otlp_exporter::config::{Compression, MessageEncoding, Sizer};
use redline_otlp_exporter::{Config, OtlpExporterFactory};
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str_with_env;
use redline_pipeline::{BuildContext, ComponentConfig, ConfigError, ExporterFactory, Signal};

fn section(exporter_yaml: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         exporters:\n  otlp/tempo:\n{exporter_yaml}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp/tempo]\n"
    );
    let env = |name: &str| (name == "TEMPO_TENANT").then(|| "tenant-42".to_owned());
    let config = load_str_with_env("test.yaml", &text, &env).expect("file loads");
    config
        .exporters
        .into_iter()
        .find(|e| e.id().to_string() == "otlp/tempo")
        .expect("exporter section")
}

fn parse(exporter_yaml: &str) -> Result<Config, ConfigError> {
    let s = section(exporter_yaml);
    OtlpExporterFactory.validate(&s)?;
    s.parse::<Config>()
}

fn error(exporter_yaml: &str) -> ConfigError {
    parse(exporter_yaml).expect_err("invalid config")
}

#[test]
fn reference_config_parses_with_otelcol_defaults() {
    let c =
        parse("    endpoint: systemd-tempo:4317\n    tls:\n      insecure: true").expect("valid");
    assert_eq!(c.endpoint, "systemd-tempo:4317");
    assert!(!c.uses_tls());
    assert_eq!(c.compression, Compression::Gzip);
    assert_eq!(c.timeout, Duration::from_secs(5));
    let r = &c.retry_on_failure;
    assert!(r.enabled);
    assert_eq!(r.initial_interval, Duration::from_secs(5));
    assert_eq!(r.randomization_factor, 0.5);
    assert_eq!(r.multiplier, 1.5);
    assert_eq!(r.max_interval, Duration::from_secs(30));
    assert_eq!(r.max_elapsed_time, Duration::from_secs(300));
    let q = &c.sending_queue;
    assert_eq!(q.num_consumers, 10);
    assert_eq!(q.queue_size, 1000);
    assert_eq!(q.sizer, Sizer::Requests);
    assert!(q.batch.is_none());
}

#[test]
fn round_robin_unless_pick_first_or_empty_as_in_otelcol() {
    // configgrpc defaults to round_robin; an empty name sets no policy, leaving grpc-go's
    // own default, pick_first.
    for (line, round_robin, wait) in [
        ("", true, false),
        ("    balancer_name: round_robin\n", true, false),
        ("    balancer_name: pick_first\n", false, false),
        ("    balancer_name: \"\"\n", false, false),
        ("    wait_for_ready: true\n", true, true),
    ] {
        let c = parse(&format!("    endpoint: tempo:4317\n{line}")).expect("valid");
        assert_eq!(
            (c.round_robin(), c.wait_for_ready),
            (round_robin, wait),
            "{line:?}"
        );
    }
    let e = error("    endpoint: tempo:4317\n    balancer_name: Round_Robin");
    assert_eq!(e.path, "exporters.otlp/tempo.balancer_name", "{e}");
    assert!(
        e.reason.starts_with("invalid balancer_name: Round_Robin"),
        "otelcol's words: {e}"
    );
}

#[test]
fn full_config_parses() {
    let c = parse(
        "    endpoint: https://tempo.example:4317
    compression: none
    timeout: 2s
    headers:
      X-Scope-OrgID: ${env:TEMPO_TENANT}
    keepalive:
      time: 30s
      timeout: 5s
      permit_without_stream: true
    balancer_name: pick_first
    wait_for_ready: false
    read_buffer_size: 524288
    write_buffer_size: 524288
    tls:
      insecure_skip_verify: false
      server_name_override: tempo.internal
      min_version: \"1.2\"
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0
      multiplier: 2
    sending_queue:
      enabled: true
      num_consumers: 4
      sizer: items
      queue_size: 100000
      block_on_overflow: false
      batch:
        flush_timeout: 50ms
        min_size: 1000
        max_size: 5000",
    )
    .expect("valid");
    assert!(c.uses_tls(), "https:// turns TLS on");
    assert_eq!(c.compression, Compression::None);
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(
        c.headers.get("X-Scope-OrgID").map(|v| v.expose()),
        Some("tenant-42")
    );
    assert_eq!(c.retry_on_failure.max_elapsed_time, Duration::ZERO);
    assert_eq!(c.retry_on_failure.multiplier, 2.0);
    assert_eq!(c.sending_queue.sizer, Sizer::Items);
    let b = c.sending_queue.batch.expect("batch");
    assert_eq!((b.min_size, b.max_size), (1000, 5000));
    assert_eq!(b.flush_timeout, Duration::from_millis(50));
}

#[test]
fn headers_also_parse_as_a_name_value_list() {
    let c = parse(
        "    endpoint: tempo:4317
    headers:
      - name: X-Scope-OrgID
        value: t1",
    )
    .expect("valid");
    assert_eq!(
        c.headers.get("X-Scope-OrgID").map(|v| v.expose()),
        Some("t1")
    );
}

#[test]
fn tls_is_on_by_default() {
    assert!(parse("    endpoint: tempo:4317").expect("valid").uses_tls());
}

#[test]
fn endpoint_is_required() {
    let e = error("    compression: gzip");
    assert!(e.to_string().contains("endpoint"), "{e}");
}

#[test]
fn unknown_key_is_named() {
    let e = error("    endpoint: tempo:4317\n    retry_on_failure:\n      enabeld: true");
    assert!(e.path.contains("retry_on_failure"), "{e}");
    assert!(e.to_string().contains("enabeld"), "{e}");
}

#[test]
fn bad_compression_names_the_path_and_allowed_values() {
    // configgrpc has no x-snappy-framed compressor: it is HTTP only.
    let e = error("    endpoint: tempo:4317\n    compression: x-snappy-framed");
    assert_eq!(e.path, "exporters.otlp/tempo.compression", "{e}");
    assert_eq!(
        e.reason,
        "compression `x-snappy-framed` is not available over gRPC (otelcol's gRPC exporter refuses it at start); use `gzip`, `zstd`, `snappy` or `none`"
    );
    let e = error("    endpoint: tempo:4317\n    compression: brotli");
    assert_eq!(e.path, "exporters.otlp/tempo.compression", "{e}");
    assert_eq!(
        e.reason,
        "unknown compression `brotli`; use `gzip`, `zstd`, `snappy` or `none`"
    );
}

#[test]
fn snappy_is_the_framed_format_and_takes_no_level() {
    let c = parse("    endpoint: tempo:4317\n    compression: snappy").expect("valid");
    assert_eq!(c.compression, Compression::Snappy);
    assert_eq!(c.message_encoding(), Some(MessageEncoding::Snappy));
    parse("    endpoint: tempo:4317\n    compression: snappy\n    compression_params:\n      level: 0")
        .expect("0 is no level");
    let e = error("    endpoint: tempo:4317\n    compression: snappy\n    compression_params:\n      level: 3");
    assert_eq!(
        e.path, "exporters.otlp/tempo.compression_params.level",
        "{e}"
    );
}

#[test]
fn gzip_level_defaults_to_otelcols_and_is_configurable() {
    let level = |yaml: &str| match parse(&format!("    endpoint: tempo:4317\n{yaml}"))
        .expect("valid")
        .message_encoding()
    {
        Some(MessageEncoding::Gzip(level)) => Some(level),
        Some(other) => panic!("{yaml}: {other:?}"),
        None => None,
    };
    // otelcol's gRPC gzip is Go's gzip.DefaultCompression, zlib's level 6.
    assert_eq!(level(""), Some(6));
    assert_eq!(level("    compression: gzip"), Some(6));
    assert_eq!(level("    compression_params:\n      level: 1"), Some(1));
    assert_eq!(
        level("    compression: gzip\n    compression_params:\n      level: 9"),
        Some(9)
    );
    // 0 (unset) and -1 (Go's DefaultCompression) both mean the default, as in confighttp.
    assert_eq!(level("    compression_params:\n      level: 0"), Some(6));
    assert_eq!(level("    compression_params:\n      level: -1"), Some(6));
    assert_eq!(level("    compression_params: {}"), Some(6));
    assert_eq!(level("    compression: none"), None);
    assert_eq!(
        level("    compression: none\n    compression_params:\n      level: 0"),
        None
    );
}

#[test]
fn zstd_takes_any_level_as_otelcol_does() {
    let encoding = |yaml: &str| {
        parse(&format!(
            "    endpoint: tempo:4317\n    compression: zstd\n{yaml}"
        ))
        .expect("valid")
        .message_encoding()
    };
    // 0 is zstd's own default level (3), as klauspost's encoder in otelcol.
    assert_eq!(encoding(""), Some(MessageEncoding::Zstd(0)));
    assert_eq!(
        encoding("    compression_params:\n      level: 19"),
        Some(MessageEncoding::Zstd(19))
    );
    assert_eq!(
        encoding("    compression_params:\n      level: 99"),
        Some(MessageEncoding::Zstd(22)),
        "the nearest level zstd has"
    );
}

#[test]
fn invalid_gzip_levels_name_compression_params_level() {
    for (yaml, says) in [
        (
            "    compression_params:\n      level: 10",
            "not a gzip level",
        ),
        (
            "    compression_params:\n      level: -3",
            "not a gzip level",
        ),
        ("    compression_params:\n      level: -2", "Huffman"),
        (
            "    compression: none\n    compression_params:\n      level: 5",
            "`compression` is `none`",
        ),
    ] {
        let e = error(&format!("    endpoint: tempo:4317\n{yaml}"));
        assert_eq!(
            e.path, "exporters.otlp/tempo.compression_params.level",
            "{e}"
        );
        assert!(e.reason.contains(says), "{e}");
    }
    let e = error("    endpoint: tempo:4317\n    compression_params:\n      level: fast");
    assert!(e.path.contains("compression_params"), "{e}");
    let e = error("    endpoint: tempo:4317\n    compression_params:\n      levle: 1");
    assert!(e.path.contains("compression_params"), "{e}");
    assert!(e.to_string().contains("levle"), "{e}");
}

#[test]
fn semantic_errors_name_the_key() {
    let e = error("    endpoint: tempo:4317\n    retry_on_failure:\n      multiplier: 0.5");
    assert_eq!(
        e.path, "exporters.otlp/tempo.retry_on_failure.multiplier",
        "{e}"
    );
    let e = error("    endpoint: tempo\n");
    assert_eq!(e.path, "exporters.otlp/tempo.endpoint", "{e}");
    let e = error("    endpoint: tempo:4317\n    sending_queue:\n      num_consumers: 0");
    assert_eq!(
        e.path, "exporters.otlp/tempo.sending_queue.num_consumers",
        "{e}"
    );
}

#[test]
fn sending_queue_storage_names_an_extension() {
    let c =
        parse("    endpoint: tempo:4317\n    sending_queue:\n      storage: file_storage/queue")
            .expect("valid");
    assert_eq!(
        c.sending_queue.storage.as_deref(),
        Some("file_storage/queue")
    );
    let e = error("    endpoint: tempo:4317\n    sending_queue:\n      storage: file_storage/");
    assert_eq!(e.path, "exporters.otlp/tempo.sending_queue.storage", "{e}");
}

#[test]
fn unimplemented_otelcol_keys_are_refused_by_name() {
    for (yaml, key) in [
        (
            "    sending_queue:\n      block_on_overflow: true",
            "sending_queue.block_on_overflow",
        ),
        (
            "    sending_queue:\n      enabled: false",
            "sending_queue.enabled",
        ),
    ] {
        let e = error(&format!("    endpoint: tempo:4317\n{yaml}"));
        assert_eq!(e.path, format!("exporters.otlp/tempo.{key}"), "{e}");
        assert!(e.reason.contains("not support"), "{e}");
    }
}

#[test]
fn auth_names_an_authenticator_and_needs_tls() {
    let c =
        parse("    endpoint: tempo:4317\n    auth:\n      authenticator: bearertokenauth/tempo")
            .expect("TLS by default");
    assert_eq!(
        c.auth.map(|a| a.authenticator).as_deref(),
        Some("bearertokenauth/tempo")
    );
    let e = error(
        "    endpoint: tempo:4317\n    tls:\n      insecure: true\n    auth:\n      authenticator: bearertokenauth",
    );
    assert_eq!(e.path, "exporters.otlp/tempo.auth", "{e}");
    assert!(e.reason.contains("over TLS only"), "{e}");
    let e = error("    endpoint: tempo:4317\n    auth:\n      authenticator: \"\"");
    assert_eq!(e.path, "exporters.otlp/tempo.auth.authenticator", "{e}");
    let e = error("    endpoint: tempo:4317\n    auth:\n      authenticatr: x");
    assert_eq!(e.path, "exporters.otlp/tempo.auth.authenticatr", "{e}");
}

#[tokio::test]
async fn factory_builds_from_yaml_and_forwards() {
    let sink = common::Sink::start().await;
    let s = section(&format!(
        "    endpoint: http://{}\n    tls:\n      insecure: true\n    headers:\n      X-Scope-OrgID: ${{env:TEMPO_TENANT}}",
        sink.addr
    ));
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let (consumer, running) = OtlpExporterFactory
        .build(&s, &BuildContext::new(telemetry.clone()), Signal::Traces)
        .await
        .expect("builds");
    consumer
        .consume(common::batch(&common::request("a", 3, 1)))
        .expect("queued");
    let counters = telemetry.exporter("otlp/tempo", Signal::Traces);
    assert!(common::eventually(|| counters.sent.load(Ordering::SeqCst) == 3).await);
    assert_eq!(
        sink.accepted()[0]
            .headers
            .get("x-scope-orgid")
            .map(|v| v.as_bytes()),
        Some(&b"tenant-42"[..])
    );
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test]
async fn factory_build_fails_on_an_invalid_section() {
    let s = section("    endpoint: tempo:4317\n    compression: lz4");
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let err = OtlpExporterFactory
        .build(&s, &BuildContext::new(telemetry), Signal::Traces)
        .await
        .err()
        .expect("invalid");
    assert_eq!(err.component, "otlp/tempo");
    assert!(err.reason.contains("compression"), "{}", err.reason);
}

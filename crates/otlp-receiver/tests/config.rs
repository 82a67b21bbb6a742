//! The `otlp` receiver's section parsed from YAML the way the pipeline loads it.

use std::time::Duration;

use redline_otlp_receiver::{Config, OtlpReceiverFactory};
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str;
use redline_pipeline::ComponentConfig;

fn section(receiver_yaml: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\n{receiver_yaml}\nexporters:\n  debug:\nservice:\n  pipelines:\n    \
         traces:\n      receivers: [otlp]\n      exporters: [debug]\n"
    );
    let cfg = load_str("test.yaml", &text).expect("loads");
    cfg.receivers
        .into_iter()
        .find(|r| r.id().type_name() == "otlp")
        .expect("otlp section")
}

fn parse(receiver_yaml: &str) -> Result<Config, String> {
    let s = section(receiver_yaml);
    Config::from_component(&s).map_err(|e| e.to_string())
}

#[test]
fn empty_protocol_keys_enable_them_with_otelcol_defaults() {
    let c = parse("    protocols:\n      grpc:\n      http:").expect("valid");
    let g = c.protocols.grpc.expect("grpc enabled");
    assert_eq!(g.endpoint, "localhost:4317");
    assert_eq!(g.max_recv_msg_size(), 4 << 20);
    let h = c.protocols.http.expect("http enabled");
    assert_eq!(h.endpoint, "localhost:4318");
    assert_eq!(h.traces_path(), "/v1/traces");
    assert_eq!(h.max_request_body_size(), 20 << 20);
}

#[test]
fn reference_config_section_parses() {
    let c = parse("    protocols:\n      grpc:\n        endpoint: 0.0.0.0:4317").expect("valid");
    assert_eq!(c.protocols.grpc.expect("grpc").endpoint, "0.0.0.0:4317");
    assert!(
        c.protocols.http.is_none(),
        "http stays off unless its key is present"
    );
}

#[test]
fn implemented_keys_parse() {
    let c = parse(
        "    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        transport: tcp
        max_recv_msg_size_mib: 16
        max_concurrent_streams: 100
        read_buffer_size: 524288
        keepalive:
          server_parameters:
            time: 30s
            timeout: 5s
          enforcement_policy:
            min_time: 10s
            permit_without_stream: true
      http:
        endpoint: 127.0.0.1:0
        traces_url_path: custom/traces
        max_request_body_size: 1048576
        compression_algorithms: [\"\", gzip]
        response_headers:
          x-a: b
        read_header_timeout: 10s",
    )
    .expect("valid");
    let g = c.protocols.grpc.expect("grpc");
    assert_eq!(g.max_recv_msg_size(), 16 << 20);
    assert_eq!(g.max_concurrent_streams, 100);
    let keepalive = g.keepalive.expect("keepalive");
    let policy = keepalive.enforcement_policy.expect("enforcement policy");
    assert_eq!(policy.min_time, Some(Duration::from_secs(10)));
    assert!(policy.permit_without_stream);
    let sp = keepalive.server_parameters.expect("server parameters");
    assert_eq!(sp.time, Some(Duration::from_secs(30)));
    assert_eq!(sp.timeout, Some(Duration::from_secs(5)));
    let h = c.protocols.http.expect("http");
    assert_eq!(h.traces_path(), "/custom/traces");
    assert_eq!(h.max_request_body_size(), 1 << 20);
    assert_eq!(h.encodings().len(), 2);
    assert_eq!(
        h.timeouts().read_header_timeout(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn no_protocol_is_an_error() {
    let err = parse("    protocols:").expect_err("no protocol");
    assert!(err.contains("at least one protocol"), "{err}");
    let err = parse("").expect_err("empty section");
    assert!(err.contains("at least one protocol"), "{err}");
}

#[test]
fn unknown_keys_name_their_path() {
    let err =
        parse("    protocols:\n      grpc:\n        endpiont: 0.0.0.0:4317").expect_err("typo");
    assert!(err.contains("receivers.otlp.protocols.grpc"), "{err}");
    assert!(err.contains("endpiont"), "{err}");
    let err = parse("    protocols:\n      thrift:").expect_err("unknown protocol");
    assert!(err.contains("thrift"), "{err}");
}

#[test]
fn three_signal_keys_are_read() {
    let c = parse(
        "    protocols:\n      grpc:\n        include_metadata: true\n      http:\n        include_metadata: true\n        metrics_url_path: m\n        logs_url_path: /otlp/logs\n        cors:\n          allowed_origins: [\"https://*.example.com\"]\n          allowed_headers: [X-Custom]\n          max_age: 7200",
    )
    .expect("valid");
    let h = c.protocols.http.expect("http");
    assert_eq!(h.path(redline_pipeline::Signal::Metrics), "/m");
    assert_eq!(h.path(redline_pipeline::Signal::Logs), "/otlp/logs");
    assert_eq!(h.path(redline_pipeline::Signal::Traces), "/v1/traces");
    let cors = h.cors.expect("cors");
    assert_eq!(cors.allowed_origins, ["https://*.example.com"]);
    assert_eq!(cors.allowed_headers, ["X-Custom"]);
    assert_eq!(cors.max_age, 7200);
    let err = parse("    protocols:\n      http:\n        cors:\n          allow_origins: [x]")
        .expect_err("typo");
    assert!(err.contains("allow_origins"), "{err}");
}

#[test]
fn unsupported_keys_say_so() {
    for (yaml, key) in [
        (
            "    protocols:\n      grpc:\n        tls:\n          cert_file: c\n          key_file: k\n          tpm:\n            enabled: true",
            "tpm",
        ),
        (
            "    protocols:\n      http:\n        auth:\n          authenticator: x\n          request_params: [token]",
            "request_params",
        ),
    ] {
        let err = parse(yaml).expect_err(key);
        assert!(err.contains(key), "{err}");
        assert!(err.contains("not support"), "{err}");
    }
    let err = parse("    protocols:\n      http:\n        compression_algorithms: [lz4]")
        .expect_err("lz4");
    assert!(
        err.contains("compression_algorithms") && err.contains("not support"),
        "{err}"
    );
    let c = parse(
        "    protocols:\n      http:\n        compression_algorithms: [snappy, x-snappy-framed]",
    )
    .expect("otelcol's snappy names");
    assert_eq!(
        c.protocols.http.expect("http").encodings(),
        [
            redline_otlp_receiver::ContentEncoding::Snappy,
            redline_otlp_receiver::ContentEncoding::SnappyFramed
        ]
    );
    let err = parse("    protocols:\n      http:\n        compression_algorithms: [brotli]")
        .expect_err("brotli");
    assert!(
        err.contains("protocols.http.compression_algorithms")
            && err.contains(
                "unknown compression `brotli` (supported: \"\", gzip, zstd, zlib, deflate, snappy, x-snappy-framed)"
            ),
        "{err}"
    );
    let err = parse("    protocols:\n      grpc:\n        transport: unix").expect_err("unix");
    assert!(err.contains("transport"), "{err}");
}

#[test]
fn bad_values_name_their_path() {
    let err = parse("    protocols:\n      grpc:\n        endpoint: nope").expect_err("no port");
    assert!(err.contains("protocols.grpc.endpoint"), "{err}");
    let err =
        parse("    protocols:\n      http:\n        endpoint: \"host:http\"").expect_err("port");
    assert!(err.contains("protocols.http.endpoint"), "{err}");
    let err = parse("    protocols:\n      grpc:\n        max_recv_msg_size_mib: lots")
        .expect_err("not a number");
    assert!(err.contains("max_recv_msg_size_mib"), "{err}");
    let err = parse("    protocols:\n      grpc:\n        max_header_list_size_kib: 20000")
        .expect_err("over grpc-go's 16 MiB");
    assert!(
        err.contains("protocols.grpc.max_header_list_size_kib") && err.contains("16384 KiB"),
        "{err}"
    );
}

#[test]
fn factory_validate_uses_the_same_rules() {
    let f = OtlpReceiverFactory;
    assert_eq!(f.type_name(), "otlp");
    assert!(f.validate(&section("    protocols:\n      grpc:")).is_ok());
    assert!(f
        .validate(&section("    protocols:\n      grpc:\n        bogus: 1"))
        .is_err());
}

#[test]
fn tls_and_auth_parse_with_otelcol_keys() {
    let c = parse(
        "    protocols:
      grpc:
        tls:
          cert_file: /certs/server.pem
          key_file: /certs/server.key
          client_ca_file: /certs/ca.pem
          min_version: \"1.3\"
          reload_interval: 1h
        auth:
          authenticator: bearertokenauth/in
      http:
        tls:
          cert_pem: inline-cert
          key_pem: inline-key
        auth:
          authenticator: basicauth",
    )
    .expect("valid");
    let g = c.protocols.grpc.expect("grpc");
    let tls = g.tls.expect("tls");
    assert_eq!(tls.client_ca_file.as_deref(), Some("/certs/ca.pem"));
    assert_eq!(tls.min_version.as_deref(), Some("1.3"));
    assert_eq!(tls.reload_interval, Some(Duration::from_secs(3600)));
    assert_eq!(
        g.auth.expect("auth").id().expect("id").to_string(),
        "bearertokenauth/in"
    );
    let h = c.protocols.http.expect("http");
    assert_eq!(
        h.tls.expect("tls").key_pem.expect("pem").expose(),
        "inline-key"
    );
}

#[test]
fn bad_tls_and_auth_name_their_key() {
    for (yaml, key) in [
        (
            "    protocols:\n      grpc:\n        tls:",
            "protocols.grpc.tls.cert_file",
        ),
        (
            "    protocols:\n      grpc:\n        tls:\n          cert_file: c",
            "protocols.grpc.tls.key_file",
        ),
        (
            "    protocols:\n      http:\n        tls:\n          cert_file: c\n          key_file: k\n          min_version: \"1.0\"",
            "protocols.http.tls.min_version",
        ),
        (
            "    protocols:\n      http:\n        tls:\n          cert_file: c\n          key_file: k\n          cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]",
            "protocols.http.tls.cipher_suites",
        ),
        (
            "    protocols:\n      grpc:\n        auth:\n          authenticator: \"bad id!\"",
            "protocols.grpc.auth.authenticator",
        ),
        (
            "    protocols:\n      grpc:\n        auth: {}",
            "protocols.grpc.auth",
        ),
        (
            "    protocols:\n      http:\n        include_tls_metadata: true",
            "protocols.http.include_tls_metadata",
        ),
    ] {
        let err = parse(yaml).expect_err(key);
        assert!(err.contains(key), "{key}: {err}");
    }
}

#[test]
fn inline_key_pem_is_never_echoed() {
    let err = parse(
        "    protocols:\n      grpc:\n        tls:\n          cert_file: c\n          key_pem:\n            nested: PRIVATE-KEY-MATERIAL",
    )
    .expect_err("a map is not a key");
    assert!(err.contains("protocols.grpc.tls.key_pem"), "{err}");
    assert!(!err.contains("PRIVATE-KEY-MATERIAL"), "{err}");
}

#[test]
fn connection_lifetime_keys_resolve_as_otelcol_reads_them() {
    let c = parse(
        "    protocols:
      grpc:
        keepalive:
          server_parameters:
            max_connection_idle: 11s
            max_connection_age: 30s
            max_connection_age_grace: 5s
      http:
        read_header_timeout: 0s
        keepalive:
          idle_timeout: 2m",
    )
    .expect("valid");
    let sp = c
        .protocols
        .grpc
        .and_then(|g| g.keepalive)
        .and_then(|k| k.server_parameters)
        .expect("server parameters");
    assert_eq!(sp.max_connection_idle, Some(Duration::from_secs(11)));
    assert_eq!(sp.max_connection_age, Some(Duration::from_secs(30)));
    assert_eq!(sp.max_connection_age_grace, Some(Duration::from_secs(5)));
    let h = c.protocols.http.expect("http");
    assert_eq!(
        h.timeouts().read_header_timeout(),
        None,
        "0 is no limit, as in Go"
    );
    assert_eq!(h.timeouts().idle_timeout(), Some(Duration::from_secs(120)));
    assert!(h.timeouts().keep_alives());
    assert!(h
        .timeouts()
        .deprecation_warnings("protocols.http.")
        .is_empty());

    // confighttp's defaults; a null section is no section.
    let h = parse("    protocols:\n      http:\n        keepalive:")
        .expect("valid")
        .protocols
        .http
        .expect("http");
    assert_eq!(
        h.timeouts().read_header_timeout(),
        Some(Duration::from_secs(60))
    );
    assert_eq!(h.timeouts().idle_timeout(), Some(Duration::from_secs(60)));
    assert!(h.timeouts().keep_alives());

    let h = parse("    protocols:\n      http:\n        keepalive:\n          enabled: false")
        .expect("valid")
        .protocols
        .http
        .expect("http");
    assert!(!h.timeouts().keep_alives());
}

#[test]
fn deprecated_keepalive_keys_still_work_with_a_warning() {
    let yaml = "    protocols:\n      http:\n        idle_timeout: 90s\n        keep_alives_enabled: false";
    let h = parse(yaml).expect("valid").protocols.http.expect("http");
    assert_eq!(h.timeouts().idle_timeout(), Some(Duration::from_secs(90)));
    assert!(!h.timeouts().keep_alives());
    let warnings = OtlpReceiverFactory.warnings(&section(yaml));
    assert_eq!(
        warnings,
        [
            "protocols.http.idle_timeout is deprecated; use protocols.http.keepalive.idle_timeout instead",
            "protocols.http.keep_alives_enabled is deprecated; set protocols.http.keepalive.enabled to false instead",
        ]
    );
    // Values that change nothing are neither deprecated use nor a conflict, as in otelcol.
    let quiet = "    protocols:\n      http:\n        idle_timeout: 0s\n        keep_alives_enabled: true\n        keepalive:\n          idle_timeout: 5s";
    assert!(OtlpReceiverFactory.warnings(&section(quiet)).is_empty());
    assert!(parse(quiet).is_ok());
    let err = parse(
        "    protocols:\n      http:\n        idle_timeout: 90s\n        keepalive:\n          idle_timeout: 5s",
    )
    .expect_err("both representations");
    assert!(
        err.contains("protocols.http.idle_timeout") && err.contains("`keepalive` section"),
        "{err}"
    );
}

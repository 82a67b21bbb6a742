//! `service.telemetry`: readers, logs, resource and traces, as otelcol v0.161 reads them.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

const PIPELINES: &str = "
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
  telemetry:
";

fn load(telemetry: &str) -> Result<TelemetryConfig, ConfigErrors> {
    let text = format!("{PIPELINES}{telemetry}");
    load_str_with_env("test.yaml", &text, &|_| None).map(|c| c.service.telemetry)
}

fn load_ok(telemetry: &str) -> TelemetryConfig {
    load(telemetry).unwrap_or_else(|e| panic!("{e}\n--- in:\n{telemetry}"))
}

/// The single error of a file, as shown to the user.
fn load_err(telemetry: &str) -> String {
    match load(telemetry) {
        Ok(_) => panic!("accepted:\n{telemetry}"),
        Err(e) => {
            assert_eq!(e.0.len(), 1, "{e}");
            e.0[0].to_string()
        }
    }
}

fn otlp(reader: &PeriodicReaderConfig) -> &OtlpPushConfig {
    match &reader.exporter {
        PushExporterConfig::Otlp(o) => o,
        PushExporterConfig::Console => panic!("console"),
    }
}

fn headers(o: &OtlpPushConfig) -> Vec<(&str, &str)> {
    o.headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.expose()))
        .collect()
}

#[test]
fn periodic_readers_sit_next_to_a_pull_reader() {
    let t = load_ok(
        "    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus: {host: 0.0.0.0, port: 18888}
        - periodic:
            interval: 5000
            timeout: 2000
            exporter:
              otlp:
                protocol: http/protobuf
                endpoint: http://collector:4318
                headers:
                  - {name: x-tenant, value: acme}
                  - {name: x-unset, value: null}
                compression: gzip
                timeout: 1500
                temporality_preference: delta
                default_histogram_aggregation: explicit_bucket_histogram
        - periodic:
            exporter:
              otlp:
                protocol: grpc
                endpoint: collector:4317
                insecure: true
                certificate: /ca.pem
                client_certificate: /c.pem
                client_key: /k.pem
        - periodic: {exporter: {console: {}}}
",
    );
    let m = &t.metrics;
    assert_eq!(m.level.as_deref(), Some("detailed"));
    assert_eq!(m.endpoint.as_deref(), Some("0.0.0.0:18888"));
    assert_eq!(m.push.len(), 3);

    let http = &m.push[0];
    assert_eq!(http.path, "service.telemetry.metrics.readers[1]");
    assert_eq!(
        (http.interval, http.timeout),
        (Duration::from_millis(5000), Duration::from_millis(2000))
    );
    let o = otlp(http);
    assert_eq!(o.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(o.endpoint, "http://collector:4318");
    assert_eq!(o.url, "http://collector:4318/v1/metrics");
    assert!(!o.tls);
    assert_eq!(headers(o), [("x-tenant", "acme")]);
    assert_eq!(o.compression, OtlpCompression::Gzip);
    assert_eq!(o.timeout, Duration::from_millis(1500));
    assert_eq!(o.temporality, Temporality::Delta);

    let grpc = &m.push[1];
    // The SDK's defaults.
    assert_eq!(
        (grpc.interval, grpc.timeout),
        (Duration::from_secs(60), Duration::from_secs(30))
    );
    let o = otlp(grpc);
    assert_eq!(o.protocol, OtlpProtocol::Grpc);
    assert_eq!(
        (o.endpoint.as_str(), o.tls),
        ("http://collector:4317", false)
    );
    assert_eq!(o.timeout, Duration::from_secs(10));
    assert_eq!(o.compression, OtlpCompression::None);
    assert_eq!(o.temporality, Temporality::Cumulative);
    assert_eq!(
        (
            o.certificate.as_deref(),
            o.client_certificate.as_deref(),
            o.client_key.as_deref()
        ),
        (Some("/ca.pem"), Some("/c.pem"), Some("/k.pem"))
    );
    assert_eq!(m.push[2].exporter, PushExporterConfig::Console);
}

#[test]
fn otlp_endpoints_resolve_as_otelcol_resolves_them() {
    let resolve = |otlp: &str| {
        let t = load_ok(&format!(
            "    metrics:\n      readers:\n        - periodic: {{exporter: {{otlp: {{{otlp}}}}}}}\n"
        ));
        let o = otlp_owned(&t.metrics.push[0]);
        (o.endpoint, o.url, o.tls)
    };
    let cases = [
        // No scheme: https unless insecure.
        (
            "protocol: http/protobuf, endpoint: c:4318",
            ("https://c:4318", "https://c:4318/v1/metrics", true),
        ),
        (
            "protocol: http/protobuf, endpoint: c:4318, insecure: true",
            ("http://c:4318", "http://c:4318/v1/metrics", false),
        ),
        // A path, even `/`, is the path posted to.
        (
            "protocol: http/protobuf, endpoint: 'http://c:4318/'",
            ("http://c:4318/", "http://c:4318/", false),
        ),
        (
            "protocol: http/protobuf, endpoint: 'https://c/otlp/v1/metrics'",
            (
                "https://c/otlp/v1/metrics",
                "https://c/otlp/v1/metrics",
                true,
            ),
        ),
        // The scheme wins over insecure.
        (
            "protocol: grpc, endpoint: 'https://c:4317', insecure: true",
            ("https://c:4317", "https://c:4317", true),
        ),
        (
            "protocol: grpc",
            ("https://localhost:4317", "https://localhost:4317", true),
        ),
    ];
    for (otlp, (endpoint, url, tls)) in cases {
        assert_eq!(
            resolve(otlp),
            (endpoint.to_owned(), url.to_owned(), tls),
            "{otlp}"
        );
    }
}

fn otlp_owned(reader: &PeriodicReaderConfig) -> OtlpPushConfig {
    otlp(reader).clone()
}

#[test]
fn headers_take_a_list_a_map_and_a_headers_list() {
    let t = load_ok(
        "    metrics:
      readers:
        - periodic:
            exporter:
              otlp:
                protocol: grpc
                endpoint: c:4317
                headers_list: 'a=1,b=two%20words, c = 3'
                headers:
                  b: from-headers
                  api-key: 12345
",
    );
    assert_eq!(
        headers(otlp(&t.metrics.push[0])),
        [
            ("a", "1"),
            ("c", "3"),
            ("b", "from-headers"),
            ("api-key", "12345"),
        ]
    );
}

#[test]
fn bad_reader_settings_name_their_key() {
    let reader = |body: &str| format!("    metrics:\n      readers:\n        - periodic:\n{body}");
    let cases = [
        (
            "            exporter: {otlp: {protocol: http/json, endpoint: c}}\n",
            "test.yaml:11:41: service.telemetry.metrics.readers[0].periodic.exporter.otlp.protocol: `http/json` is not supported",
        ),
        (
            "            exporter: {otlp: {protocol: grpc, compression: zstd}}\n",
            "test.yaml:11:60: service.telemetry.metrics.readers[0].periodic.exporter.otlp.compression: `zstd` is not one of gzip, none",
        ),
        (
            "            exporter: {otlp: {protocol: grpc, temporality_preference: sometimes}}\n",
            "readers[0].periodic.exporter.otlp.temporality_preference: `sometimes` is not one of cumulative, delta, lowmemory",
        ),
        (
            "            exporter: {otlp: {endpoint: c}}\n",
            "readers[0].periodic.exporter.otlp.protocol: missing",
        ),
        (
            "            exporter: {otlp: {protocol: grpc, default_histogram_aggregation: base2_exponential_bucket_histogram}}\n",
            "exponential histograms are not supported by Redline",
        ),
        (
            "            interval: 10s\n            exporter: {console: {}}\n",
            "test.yaml:11:23: service.telemetry.metrics.readers[0].periodic.interval: invalid type: string \"10s\", expected an integer of milliseconds",
        ),
        (
            "            exporter: {console: {}, otlp: {protocol: grpc}}\n",
            "readers[0].periodic.exporter: must name one exporter",
        ),
        (
            "            exporter: {}\n",
            "readers[0].periodic.exporter: needs an `otlp` or `console` exporter",
        ),
        (
            "            exporter: {zipkin: {}}\n",
            "readers[0].periodic.exporter.zipkin: unknown field `zipkin`, expected `console` or `otlp`",
        ),
        (
            "            exporter: {otlp: {protocol: grpc, headers: [{name: 'bad name', value: x}]}}\n",
            "otlp.headers: `bad name` is not a valid header name",
        ),
    ];
    for (body, want) in cases {
        let e = load_err(&reader(body));
        assert!(e.contains(want), "{e}\n--- wanted: {want}");
    }
    let e = load_err(
        "    metrics:\n      readers:\n        - pull: {exporter: {prometheus: {port: 1}}}\n          periodic: {exporter: {console: {}}}\n",
    );
    assert!(
        e.contains("readers[0]: must be either `pull` or `periodic`"),
        "{e}"
    );
    let e = load_err("    metrics:\n      readers: []\n");
    assert!(e.contains("needs a reader unless level is none"), "{e}");
}

#[test]
fn level_none_turns_every_reader_off() {
    let t = load_ok(
        "    metrics:
      level: none
      readers:
        - pull: {exporter: {prometheus: {port: 1}}}
        - periodic: {exporter: {console: {}}}
",
    );
    assert_eq!(t.metrics.endpoint, None);
    assert!(t.metrics.push.is_empty());
    // Readers given: no default pull endpoint beside them.
    let t =
        load_ok("    metrics:\n      readers:\n        - periodic: {exporter: {console: {}}}\n");
    assert_eq!((t.metrics.endpoint, t.metrics.push.len()), (None, 1));
}

#[test]
fn every_otelcol_logs_key_is_accepted() {
    let t = load_ok(
        "    logs:
      level: fatal
      encoding: json
      development: true
      disable_caller: true
      disable_stacktrace: false
      disable_zap_resource: true
      sampling: {enabled: true, tick: 5s, initial: 2}
      output_paths: [stderr, stdout, /var/log/redline.log, 'file:///tmp/r.log']
      error_output_paths: [stderr, /var/log/err.log]
      initial_fields: {region: eu, shard: 3, canary: true, ratio: 0.5, quoted: '7'}
      processors: []
",
    );
    let logs = &t.logs;
    assert_eq!(logs.level.as_deref(), Some("error"));
    assert_eq!(logs.encoding.as_deref(), Some("json"));
    assert_eq!(
        logs.output_paths,
        Some(vec![
            LogOutput::Stderr,
            LogOutput::Stdout,
            LogOutput::File(PathBuf::from("/var/log/redline.log")),
            LogOutput::File(PathBuf::from("/tmp/r.log")),
        ])
    );
    assert_eq!(
        logs.sampling,
        Some(LogsSampling {
            tick: Duration::from_secs(5),
            initial: 2,
            thereafter: 100
        })
    );
    assert_eq!(
        logs.initial_fields,
        [
            ("region".to_owned(), AttributeValue::Str("eu".into())),
            ("shard".to_owned(), AttributeValue::Int(3)),
            ("canary".to_owned(), AttributeValue::Bool(true)),
            ("ratio".to_owned(), AttributeValue::Double(0.5)),
            ("quoted".to_owned(), AttributeValue::Str("7".into())),
        ]
    );
    // One notice per setting without effect: fatal, error_output_paths, and the four zap
    // switches.
    let notices = logs.notices.join("\n");
    for key in [
        "logs.level: `fatal` reads as `error`",
        "logs.error_output_paths",
        "logs.development",
        "logs.disable_caller",
        "logs.disable_stacktrace",
        "logs.disable_zap_resource",
    ] {
        assert!(notices.contains(key), "{key} in {notices}");
    }
    assert_eq!(logs.notices.len(), 6, "{notices}");
    // Sampling off, and the defaults.
    let sampling = |s: &str| {
        load_ok(&format!("    logs:\n      sampling: {s}\n"))
            .logs
            .sampling
    };
    assert_eq!(sampling("{enabled: false, tick: 1s}"), None);
    assert_eq!(
        sampling("{}"),
        Some(LogsSampling {
            tick: Duration::from_secs(10),
            initial: 10,
            thereafter: 100
        })
    );
}

#[test]
fn logs_settings_redline_cannot_honour_are_refused_by_name() {
    let e = load_err("    logs:\n      processors:\n        - batch: {exporter: {otlp: {}}}\n");
    assert!(
        e.starts_with(
            "test.yaml:9:7: service.telemetry.logs.processors: is not supported by Redline"
        ),
        "{e}"
    );
    let e = load_err("    logs:\n      encoding: xml\n");
    assert!(e.contains("logs.encoding: `xml` is not one of"), "{e}");
    let e = load_err("    logs:\n      output_paths: ['http://x/logs']\n");
    assert!(e.contains("logs.output_paths: `http://x/logs`"), "{e}");
    let e = load_err("    logs:\n      initial_fields: {a: {b: c}}\n");
    assert!(e.contains("logs.initial_fields.a: must be a string"), "{e}");
    let e = load_err("    logs:\n      sampling: {tick: 5}\n");
    assert!(e.contains("logs.sampling: tick:"), "{e}");
    let e = load_err("    logs:\n      colour: true\n");
    assert!(e.contains("logs.colour: unknown field"), "{e}");
}

#[test]
fn resource_takes_the_legacy_map_or_the_schema() {
    let t = load_ok(
        "    resource:\n      service.name: gateway\n      service.instance.id: null\n      k8s.pod.name: '${env:POD}'\n",
    );
    assert_eq!(
        t.resource.attributes,
        [
            (
                "service.name".to_owned(),
                Some(AttributeValue::Str("gateway".into()))
            ),
            ("service.instance.id".to_owned(), None),
            (
                "k8s.pod.name".to_owned(),
                Some(AttributeValue::Str(String::new()))
            ),
        ]
    );
    let t = load_ok(
        "    resource:
      schema_url: https://opentelemetry.io/schemas/1.40.0
      attributes:
        - {name: service.name, value: gateway}
        - {name: replicas, value: 3}
        - {name: weight, value: 2, type: double}
        - {name: build, value: 42, type: string}
",
    );
    assert_eq!(
        t.resource.schema_url.as_deref(),
        Some("https://opentelemetry.io/schemas/1.40.0")
    );
    assert_eq!(
        t.resource.attributes,
        [
            (
                "service.name".to_owned(),
                Some(AttributeValue::Str("gateway".into()))
            ),
            ("replicas".to_owned(), Some(AttributeValue::Int(3))),
            ("weight".to_owned(), Some(AttributeValue::Double(2.0))),
            ("build".to_owned(), Some(AttributeValue::Str("42".into()))),
        ]
    );
    for (text, want) in [
        (
            "    resource: {a: 1}\n",
            "service.telemetry.resource.a: must be a string or null (quote it)",
        ),
        (
            "    resource:\n      a: x\n      attributes: [{name: b, value: y}]\n",
            "service.telemetry.resource: `attributes` cannot be used together with inline attributes",
        ),
        (
            "    resource: {attributes_list: 'a=b'}\n",
            "resource.attributes_list: is not supported (as in otelcol)",
        ),
        (
            "    resource: {detection/development: {detectors: [{host: {}}]}}\n",
            "resource.detection/development: is not supported by Redline",
        ),
        (
            "    resource: {attributes: [{name: a, value: x, type: int}]}\n",
            "resource.attributes[0].value: must be an integer",
        ),
    ] {
        let e = load_err(text);
        assert!(e.contains(want), "{e}\n--- wanted: {want}");
    }
}

#[test]
fn traces_without_exporting_are_accepted_with_a_notice() {
    let t = load_ok("    traces:\n      level: basic\n      propagators: [tracecontext, b3]\n");
    assert_eq!(t.notices.len(), 1, "{:?}", t.notices);
    assert!(t.notices[0].starts_with("service.telemetry.traces.propagators: accepted"));
    let e =
        load_err("    traces:\n      processors:\n        - batch: {exporter: {console: {}}}\n");
    assert!(
        e.contains("service.telemetry.traces.processors: is not supported by Redline"),
        "{e}"
    );
}

#[test]
fn the_pull_endpoint_names_metrics_as_otelcols_go_exporter_does() {
    let suffixes = |prometheus: &str| {
        load_ok(&format!(
            "    metrics:\n      readers:\n        - pull:\n            exporter:\n              \
             prometheus: {{port: 18888{prometheus}}}\n"
        ))
        .metrics
        .prometheus_suffixes
    };
    // otelcol turns both off unless told otherwise; its exporter adds units and `_total`
    // unless both stay off.
    assert!(!suffixes(""));
    assert!(!suffixes(
        ", without_units: true, without_type_suffix: true"
    ));
    assert!(suffixes(", without_type_suffix: false"));
    assert!(suffixes(", without_units: false"));
    assert!(suffixes(
        ", without_units: false, without_type_suffix: true"
    ));
    assert!(!suffixes(", without_scope_info: true"));
    assert!(
        !load_ok("    metrics:\n      address: 127.0.0.1:18888\n")
            .metrics
            .prometheus_suffixes
    );

    let err = load_err(
        "    metrics:\n      readers:\n        - pull:\n            exporter:\n              \
         prometheus: {port: 18888, without_scope_info: false}\n",
    );
    assert!(
        err.contains("readers[0].pull.exporter.prometheus.without_scope_info")
            && err.contains("only `true` is supported"),
        "{err}"
    );
}

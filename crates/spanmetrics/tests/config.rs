//! The connector's section parsed from YAML through the pipeline's config loader.

use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str;
use redline_pipeline::CheckAll;
use redline_pipeline::{ComponentConfig, ConfigError};
use redline_spanmetrics::{Config, SpanMetricsFactory};

fn section(body: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
         connectors:\n  spanmetrics:\n{body}\n\
         exporters:\n  prometheus:\n    endpoint: 0.0.0.0:9464\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [spanmetrics]\n\
         \x20   metrics:\n      receivers: [spanmetrics]\n      exporters: [prometheus]\n"
    );
    let cfg = load_str("test.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    cfg.connectors
        .into_iter()
        .find(|c| c.id().type_name() == "spanmetrics")
        .expect("spanmetrics section")
}

fn err(body: &str) -> ConfigError {
    SpanMetricsFactory
        .validate(&section(body))
        .expect_err("must be refused")
}

#[test]
fn reference_config_parses() {
    let c =
        section("    namespace: traces.spanmetrics\n    dimensions:\n      - name: cdn.cache.hit");
    SpanMetricsFactory.validate(&c).expect("valid");
    let parsed: Config = c.parse().expect("parses");
    assert_eq!(parsed.namespace, "traces.spanmetrics");
    assert_eq!(parsed.dimensions.len(), 1);
    assert_eq!(parsed.dimensions[0].name, "cdn.cache.hit");
    assert!(parsed.exemplars.enabled);
}

#[test]
fn full_config_parses() {
    let c = section(
        "    histogram:\n      unit: s\n      explicit:\n        buckets: [100us, 1ms, 250ms, 1s]\n\
         \x20   dimensions:\n      - name: region\n        default: eu\n\
         \x20   exclude_dimensions: [span.kind]\n\
         \x20   aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE\n\
         \x20   metrics_flush_interval: 15s\n    metrics_expiration: 5m\n\
         \x20   aggregation_cardinality_limit: 1000\n\
         \x20   exemplars:\n      enabled: true\n      max_per_data_point: 1\n\
         \x20   resource_metrics_key_attributes: [service.name]\n\
         \x20   dimensions_cache_size: 1000\n    events:\n      enabled: false",
    );
    SpanMetricsFactory.validate(&c).expect("valid");
    let parsed: Config = c.parse().expect("parses");
    let s = parsed.settings().expect("valid");
    assert_eq!(s.histogram, Some(vec![0.0001, 0.001, 0.25, 1.0]));
    assert_eq!(s.cardinality_limit, 1000);
    assert_eq!(s.expiration, Some(std::time::Duration::from_secs(300)));
    assert_eq!(s.dimensions[0].default.as_deref(), Some("eu"));
}

#[test]
fn redline_defaults_bound_series_and_zero_restores_otelcol() {
    let parsed: Config = section("    namespace: x").parse().expect("parses");
    let s = parsed.settings().expect("valid");
    assert_eq!(s.cardinality_limit, 100_000);
    assert_eq!(s.expiration, Some(std::time::Duration::from_secs(15 * 60)));

    let c = section("    aggregation_cardinality_limit: 0\n    metrics_expiration: 0");
    SpanMetricsFactory.validate(&c).expect("valid");
    let s = c
        .parse::<Config>()
        .expect("parses")
        .settings()
        .expect("valid");
    assert_eq!(s.cardinality_limit, 0, "0 is otelcol's unlimited");
    assert_eq!(s.expiration, None, "0 is otelcol's never");
}

#[test]
fn errors_name_the_key_path() {
    let cases = [
        (
            "    histogram:\n      unit: us",
            "connectors.spanmetrics.histogram.unit",
        ),
        (
            "    histogram:\n      explicit:\n        buckets: [5ms, 2ms]",
            "connectors.spanmetrics.histogram.explicit.buckets",
        ),
        (
            "    aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA",
            "connectors.spanmetrics.aggregation_temporality",
        ),
        (
            "    dimensions:\n      - name: a\n      - name: a",
            "connectors.spanmetrics.dimensions[1].name",
        ),
        (
            "    events:\n      enabled: true",
            "connectors.spanmetrics.events.dimensions",
        ),
        (
            "    events:\n      enabled: true\n      dimensions:\n        - name: x\n        - name: x",
            "connectors.spanmetrics.events.dimensions[1].name",
        ),
        (
            "    aggregation_cardinality_limit: -5",
            "connectors.spanmetrics.aggregation_cardinality_limit",
        ),
        (
            "    calls_dimensions:\n      - name: span.name",
            "connectors.spanmetrics.calls_dimensions[0].name",
        ),
        (
            "    dimensions:\n      - name: x\n    histogram:\n      dimensions:\n        - name: x",
            "connectors.spanmetrics.histogram.dimensions[0].name",
        ),
    ];
    for (body, path) in cases {
        let e = err(body);
        assert_eq!(e.path, path, "{body}: {e}");
    }
}

#[test]
fn unknown_and_unsupported_keys_are_refused() {
    for (body, key, needle) in [
        ("    no_such_key: 1", "no_such_key", ""),
        (
            "    histogram:\n      exponential:\n        max_size: 1",
            "histogram.exponential.max_size",
            "out of range",
        ),
        (
            "    histogram:\n      exponential:\n      explicit:\n        buckets: [1ms]",
            "histogram",
            "either `explicit` or `exponential`",
        ),
        (
            "    dimensions:\n      - glob: \"span.*\"",
            "dimensions[0].glob",
            "conflicting with glob",
        ),
        (
            "    metrics_flush_interval: soon",
            "metrics_flush_interval",
            "duration",
        ),
    ] {
        let e = err(body);
        let text = e.to_string();
        assert!(text.contains(key), "{body}: {text}");
        assert!(text.contains(needle), "{body}: {text}");
    }
}

#[test]
fn exponential_histogram_is_configured_as_otelcol_spells_it() {
    for (body, max_size) in [
        ("    histogram:\n      exponential:", 160),
        (
            "    histogram:\n      exponential:\n        max_size: 0",
            160,
        ),
        (
            "    histogram:\n      exponential:\n        max_size: 40",
            40,
        ),
    ] {
        let c = section(body);
        SpanMetricsFactory.validate(&c).expect("valid");
        let parsed: Config = c.parse().expect("parses");
        let s = parsed.settings().expect("valid");
        assert_eq!(s.exponential_max_size, Some(max_size), "{body}");
        assert_eq!(s.histogram, None);
        assert!(s.has_duration());
    }
}

#[test]
fn storage_names_a_storage_extension() {
    let c = section("    storage: file_storage/metrics\n");
    SpanMetricsFactory.validate(&c).expect("valid");
    assert_eq!(
        SpanMetricsFactory.extension_refs(&c),
        vec![(
            "storage".to_owned(),
            redline_pipeline::ComponentId::new("file_storage", Some("metrics"))
        )]
    );
    assert!(SpanMetricsFactory
        .extension_refs(&section("    namespace: x\n"))
        .is_empty());
    let e = err("    storage: \"\"\n").to_string();
    assert!(e.contains("storage"), "{e}");
}

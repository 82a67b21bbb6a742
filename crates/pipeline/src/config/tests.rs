use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::*;
use crate::component::Signal;

/// The reference file of /work/shared/reference/otelcol-tempo.yaml, copied so the test does
/// not depend on a path outside the repository.
const REFERENCE: &str = "\
# The pipeline a user already runs with the OpenTelemetry Collector in front of Tempo.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317

connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    dimensions:
      - name: cdn.cache.hit

exporters:
  otlp/tempo:
    endpoint: systemd-tempo:4317
    tls:
      insecure: true
  prometheus:
    endpoint: 0.0.0.0:9464

service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
";

const PIPELINES: &str = "
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
";

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigErrors> {
    load_str_with_env("test.yaml", text, &no_env)
}

fn load_ok(text: &str) -> Config {
    match load(text) {
        Ok(c) => c,
        Err(e) => panic!("config should load:\n{e}"),
    }
}

fn load_err(text: &str) -> Vec<ConfigError> {
    match load(text) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(e) => e.0,
    }
}

fn ids(list: &[(ComponentId, Mark)]) -> Vec<String> {
    list.iter().map(|(id, _)| id.to_string()).collect()
}

fn component<'c>(list: &'c [ComponentConfig], id: &str) -> &'c ComponentConfig {
    list.iter()
        .find(|c| c.id().to_string() == id)
        .unwrap_or_else(|| panic!("no component {id}"))
}

/// A Go duration string, as a list element so errors name the element.
#[derive(Debug, PartialEq)]
struct GoDuration(Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::duration::deserialize(d).map(GoDuration)
    }
}

/// Shaped like the spanmetrics connector's config.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct SpanMetrics {
    namespace: String,
    dimensions: Vec<Dimension>,
    histogram: Histogram,
    aggregation_temporality: Temporality,
    exemplars: Option<Exemplars>,
    aggregation_cardinality_limit: u64,
    events: Option<Unsupported>,
}

impl Default for SpanMetrics {
    fn default() -> Self {
        Self {
            namespace: "traces.span.metrics".into(),
            dimensions: Vec::new(),
            histogram: Histogram::default(),
            aggregation_temporality: Temporality::Cumulative,
            exemplars: None,
            aggregation_cardinality_limit: 0,
            events: None,
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Dimension {
    name: String,
    default: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
struct Histogram {
    unit: Unit,
    disable: bool,
    explicit: Option<Explicit>,
    exponential: Option<Unsupported>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Explicit {
    buckets: Vec<GoDuration>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
enum Unit {
    #[default]
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

#[derive(Debug, Deserialize, PartialEq)]
enum Temporality {
    #[serde(rename = "AGGREGATION_TEMPORALITY_CUMULATIVE")]
    Cumulative,
    #[serde(rename = "AGGREGATION_TEMPORALITY_DELTA")]
    Delta,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Exemplars {
    enabled: bool,
    max_per_data_point: Option<u32>,
}

fn spanmetrics_of(body: &str) -> Result<SpanMetrics, ConfigError> {
    let text = format!("connectors:\n  spanmetrics:\n{body}{PIPELINES}");
    let config = load_ok(&text);
    component(&config.connectors, "spanmetrics").parse::<SpanMetrics>()
}

#[test]
fn reference_file_loads() {
    let config = load_ok(REFERENCE);
    assert_eq!(&*config.file, "test.yaml");
    let rec: Vec<_> = config
        .receivers
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let exp: Vec<_> = config
        .exporters
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let con: Vec<_> = config
        .connectors
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    assert_eq!(rec, ["otlp"]);
    assert_eq!(exp, ["otlp/tempo", "prometheus"]);
    assert_eq!(con, ["spanmetrics"]);
    assert!(config.processors.is_empty() && config.extensions.is_empty());
    assert_eq!(config.exporters[0].id().name(), Some("tempo"));
    assert_eq!(config.exporters[0].mark().line, 15);
    assert_eq!(config.exporters[0].path(), "exporters.otlp/tempo");

    let p = &config.service.pipelines;
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].id.as_str(), p[0].signal), ("traces", Signal::Traces));
    assert_eq!(ids(&p[0].receivers), ["otlp"]);
    assert_eq!(ids(&p[0].exporters), ["spanmetrics", "otlp/tempo"]);
    assert!(p[0].processors.is_empty());
    assert_eq!(p[0].mark.line, 24);
    assert_eq!(
        (p[1].id.as_str(), p[1].signal),
        ("metrics", Signal::Metrics)
    );
    assert_eq!(ids(&p[1].receivers), ["spanmetrics"]);
    assert_eq!(ids(&p[1].exporters), ["prometheus"]);
    assert_eq!(
        p[1].exporters[0].1,
        Mark {
            line: 29,
            column: 19
        }
    );
    assert!(config.unset_env_vars.is_empty());

    let sm = component(&config.connectors, "spanmetrics")
        .parse::<SpanMetrics>()
        .expect("spanmetrics parses");
    assert_eq!(sm.namespace, "traces.spanmetrics");
    assert_eq!(
        sm.dimensions,
        [Dimension {
            name: "cdn.cache.hit".into(),
            default: None
        }]
    );
    assert_eq!(sm.histogram, Histogram::default());
}

#[test]
fn repository_configs_load() {
    for (name, text) in [
        (
            "default.yaml",
            include_str!("../../../../configs/default.yaml"),
        ),
        (
            "default-forward.yaml",
            include_str!("../../../../configs/default-forward.yaml"),
        ),
        (
            "otelcol-tempo.yaml",
            include_str!("../../../../configs/otelcol-tempo.yaml"),
        ),
    ] {
        if let Err(e) = load_str_with_env(name, text, &no_env) {
            panic!("{name} should load:\n{e}");
        }
    }
}

#[test]
fn env_vars_expand_in_values_only() {
    let text = "
receivers:
  otlp:
    endpoint: ${env:HOST}:${PORT}
    other: ${env:MISSING:-fallback}
    unset: x${env:NOPE}y
    unset_again: ${NOPE}
    literal: $${env:HOST}
    quoted: \"${env:HOST}\"
    list: ['${env:HOST}', '$$']
    ${env:HOST}: key
service:
  pipelines:
    traces:
      receivers: [otlp]
";
    let env = |name: &str| match name {
        "HOST" => Some("tempo".to_string()),
        "PORT" => Some("4317".to_string()),
        _ => None,
    };
    let config = load_str_with_env("env.yaml", text, &env).expect("loads");
    assert_eq!(config.unset_env_vars, ["NOPE"]);
    let values: BTreeMap<String, serde_json_like::Value> =
        config.receivers[0].parse().expect("parses");
    use serde_json_like::Value::{List, Str};
    assert_eq!(values["endpoint"], Str("tempo:4317".into()));
    assert_eq!(values["other"], Str("fallback".into()));
    assert_eq!(values["unset"], Str("xy".into()));
    assert_eq!(values["unset_again"], serde_json_like::Value::Null);
    assert_eq!(values["literal"], Str("${env:HOST}".into()));
    assert_eq!(values["quoted"], Str("tempo".into()));
    assert_eq!(
        values["list"],
        List(vec![Str("tempo".into()), Str("$".into())])
    );
    // Keys are taken literally, as otelcol does.
    assert_eq!(values["${env:HOST}"], Str("key".into()));
}

/// A small self-describing value, to see what `deserialize_any` produces.
mod serde_json_like {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(untagged)]
    pub enum Value {
        Null,
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        List(Vec<Value>),
        Map(std::collections::BTreeMap<String, Value>),
    }
}

#[test]
fn deserialize_any_types_plain_scalars() {
    use serde_json_like::Value::{self, *};
    let text = "
receivers:
  r:
    a: true
    b: 42
    c: -7
    d: 1.5
    e: hello
    f: \"42\"
    g: ~
    h: {x: [1, 'two']}
    i: 0x10
    j: FALSE
service: {pipelines: {traces: {receivers: [r]}}}
";
    let config = load_ok(text);
    let v: BTreeMap<String, Value> = config.receivers[0].parse().expect("parses");
    assert_eq!(v["a"], Bool(true));
    assert_eq!(v["b"], Int(42));
    assert_eq!(v["c"], Int(-7));
    assert_eq!(v["d"], Float(1.5));
    assert_eq!(v["e"], Str("hello".into()));
    assert_eq!(v["f"], Str("42".into()));
    assert_eq!(v["g"], Null);
    assert_eq!(
        v["h"],
        Map(BTreeMap::from([(
            "x".to_string(),
            List(vec![Int(1), Str("two".into())])
        )]))
    );
    assert_eq!(v["i"], Int(16));
    assert_eq!(v["j"], Bool(false));
    // IgnoredAny walks anything.
    let _: serde::de::IgnoredAny = config.receivers[0].parse().expect("ignored");
}

#[test]
fn scalars_are_typed_by_the_target() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        s: String,
        n: u64,
        q: u64,
        f: f64,
        b: bool,
        small: Option<u8>,
    }
    let text = "
receivers:
  r:
    s: true
    n: 8
    q: \"8\"
    f: 3
    b: True
    small: 255
service: {pipelines: {traces: {receivers: [r]}}}
";
    let t: T = load_ok(text).receivers[0].parse().expect("parses");
    assert_eq!(t.s, "true");
    assert_eq!((t.n, t.q, t.f, t.b, t.small), (8, 8, 3.0, true, Some(255)));

    let bad = text.replace("n: 8", "n: abc");
    let e = load_ok(&bad).receivers[0]
        .parse::<T>()
        .expect_err("abc is no u64");
    assert_eq!(e.path, "receivers.r.n");
    assert_eq!(e.mark, Some(Mark { line: 5, column: 8 }));
    assert!(e.reason.contains("invalid type"), "{e}");
    assert!(
        e.reason.contains("`abc`") || e.reason.contains("\"abc\""),
        "{e}"
    );
    assert!(e.reason.contains("u64"), "{e}");

    let bad = text.replace("small: 255", "small: 256");
    let e = load_ok(&bad).receivers[0]
        .parse::<T>()
        .expect_err("256 is no u8");
    assert_eq!(e.path, "receivers.r.small");
    assert!(e.reason.contains("u8"), "{e}");

    let bad = text.replace("b: True", "b: yes");
    let e = load_ok(&bad).receivers[0]
        .parse::<T>()
        .expect_err("yes is no bool");
    assert_eq!(e.path, "receivers.r.b");
}

#[test]
fn a_string_where_a_list_is_wanted_is_split_at_its_commas() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        keys: Vec<String>,
        none: Vec<String>,
        with_null: Vec<String>,
        one: Option<String>,
    }
    let text = "
receivers:
  r:
    keys: \"zone, host\"
    none: \"\"
    with_null: [a, null, ~]
    one: null
service: {pipelines: {traces: {receivers: [r]}}}
";
    let t: T = load_ok(text).receivers[0].parse().expect("parses");
    // As confmap's `StringToSliceHookFunc(\",\")`: spaces are kept.
    assert_eq!(t.keys, ["zone", " host"]);
    assert!(t.none.is_empty());
    // A list element from nil is the element type's zero value in mapstructure.
    assert_eq!(t.with_null, ["a", "", ""]);
    assert_eq!(t.one, None, "null outside a list is still no value");
    for not_a_string in ["5", "true", "1.5"] {
        let bad = text.replace("\"\"", not_a_string);
        let e = load_ok(&bad).receivers[0]
            .parse::<T>()
            .expect_err("a number or bool is no list");
        assert_eq!(e.path, "receivers.r.none", "{not_a_string}");
    }
}

#[test]
fn typo_names_file_line_and_path() {
    let text = "\
connectors:
  spanmetrics:
    namespace: x
    dimensons:
      - name: a
service:
  pipelines:
    traces:
      receivers: [otlp]
";
    let config = load_str_with_env("/etc/redline/config.yaml", text, &no_env).expect("loads");
    let e = config.connectors[0]
        .parse::<SpanMetrics>()
        .expect_err("typo refused");
    let shown = e.to_string();
    assert!(
        shown.starts_with("/etc/redline/config.yaml:4:5: connectors.spanmetrics.dimensons: "),
        "{shown}"
    );
    assert!(shown.contains("unknown field `dimensons`"), "{shown}");
    assert!(
        shown.contains("`dimensions`"),
        "expected keys listed: {shown}"
    );
}

#[test]
fn wrong_types_name_the_path() {
    let e = spanmetrics_of("    namespace: [a]\n").expect_err("list into string");
    assert_eq!(e.path, "connectors.spanmetrics.namespace");
    assert_eq!(e.mark.map(|m| m.line), Some(3));
    assert!(e.reason.contains("expected a string"), "{e}");

    let e = spanmetrics_of("    histogram:\n      explicit:\n        buckets: [2ms, abc]\n")
        .expect_err("bad duration");
    assert_eq!(
        e.path,
        "connectors.spanmetrics.histogram.explicit.buckets[1]"
    );
    assert_eq!(
        e.mark,
        Some(Mark {
            line: 5,
            column: 24
        })
    );
    assert!(e.reason.contains("abc"), "{e}");

    let e = spanmetrics_of("    dimensions:\n      - name: a\n      - default: x\n")
        .expect_err("missing name");
    assert_eq!(e.path, "connectors.spanmetrics.dimensions[1]");
    assert!(e.reason.contains("missing field `name`"), "{e}");
    assert_eq!(e.mark.map(|m| m.line), Some(5));

    let e = spanmetrics_of("    dimensions:\n      - name: a\n        nme: b\n")
        .expect_err("typo in list item");
    assert_eq!(e.path, "connectors.spanmetrics.dimensions[0].nme");
    assert_eq!(e.mark, Some(Mark { line: 5, column: 9 }));

    let e = spanmetrics_of("    histogram:\n      unit: us\n").expect_err("bad unit");
    assert_eq!(e.path, "connectors.spanmetrics.histogram.unit");
    assert!(e.reason.contains("unknown variant `us`"), "{e}");

    let e = spanmetrics_of("    aggregation_cardinality_limit: 1.5\n").expect_err("float");
    assert_eq!(
        e.path,
        "connectors.spanmetrics.aggregation_cardinality_limit"
    );
    assert!(e.reason.contains("floating point `1.5`"), "{e}");
}

#[test]
fn good_spanmetrics_parse() {
    let sm = spanmetrics_of(
        "    namespace: ns
    dimensions:
      - name: http.method
        default: GET
    histogram:
      unit: s
      explicit:
        buckets: [100us, 1ms, 1s]
    aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA
    exemplars:
      enabled: true
    aggregation_cardinality_limit: \"1000\"
",
    )
    .expect("parses");
    assert_eq!(sm.namespace, "ns");
    assert_eq!(sm.dimensions[0].default.as_deref(), Some("GET"));
    assert_eq!(sm.histogram.unit, Unit::Seconds);
    assert_eq!(
        sm.histogram.explicit,
        Some(Explicit {
            buckets: vec![
                GoDuration(Duration::from_micros(100)),
                GoDuration(Duration::from_millis(1)),
                GoDuration(Duration::from_secs(1)),
            ]
        })
    );
    assert_eq!(sm.aggregation_temporality, Temporality::Delta);
    assert_eq!(
        sm.exemplars,
        Some(Exemplars {
            enabled: true,
            max_per_data_point: None
        })
    );
    assert_eq!(sm.aggregation_cardinality_limit, 1000);
}

#[test]
fn null_section_gives_defaults() {
    assert_eq!(spanmetrics_of("").expect("empty"), SpanMetrics::default());
    assert_eq!(
        spanmetrics_of("    histogram:\n    exemplars:\n").expect("null subsections"),
        SpanMetrics::default()
    );
}

#[test]
fn unsupported_fields_are_refused_by_path() {
    let e = spanmetrics_of("    histogram:\n      exponential:\n        max_size: 160\n")
        .expect_err("exponential unsupported");
    assert_eq!(e.path, "connectors.spanmetrics.histogram.exponential");
    assert_eq!(e.mark.map(|m| m.line), Some(4));
    assert!(
        e.to_string().ends_with(
            "connectors.spanmetrics.histogram.exponential: \
             is an otelcol setting Redline does not support yet"
        ),
        "{e}"
    );
    // With no body the feature is still switched on in otelcol: refused too.
    let e = spanmetrics_of("    histogram:\n      exponential:\n").expect_err("null body");
    assert_eq!(e.path, "connectors.spanmetrics.histogram.exponential");
    assert!(e.reason.contains("does not support yet"), "{e}");
    let e = spanmetrics_of("    events: {enabled: true}\n").expect_err("events");
    assert_eq!(e.path, "connectors.spanmetrics.events");
    assert_eq!(e.mark, Some(Mark { line: 3, column: 5 }));
}

#[test]
fn enums_take_unit_and_map_forms() {
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Compression {
        None,
        Gzip { level: u32 },
        Zstd(u32),
    }
    #[derive(Debug, Deserialize)]
    struct T {
        a: Compression,
        b: Compression,
        c: Compression,
    }
    let text = "
receivers:
  r:
    a: none
    b: {gzip: {level: 6}}
    c:
      zstd: 3
service: {pipelines: {traces: {receivers: [r]}}}
";
    let t: T = load_ok(text).receivers[0].parse().expect("parses");
    assert_eq!(
        (t.a, t.b, t.c),
        (
            Compression::None,
            Compression::Gzip { level: 6 },
            Compression::Zstd(3)
        )
    );
    let bad = text.replace("level: 6", "level: x");
    let e = load_ok(&bad).receivers[0]
        .parse::<T>()
        .expect_err("bad level");
    assert_eq!(e.path, "receivers.r.b.gzip.level");
}

#[test]
fn invalid_points_at_the_key() {
    let config = load_ok(REFERENCE);
    let otlp = component(&config.receivers, "otlp");
    let e = otlp.invalid("protocols.grpc.endpoint", "port in use");
    assert_eq!(e.path, "receivers.otlp.protocols.grpc.endpoint");
    assert_eq!(e.mark.map(|m| m.line), Some(6));
    assert_eq!(
        e.to_string(),
        "test.yaml:6:19: receivers.otlp.protocols.grpc.endpoint: port in use"
    );
    // Missing key: the nearest enclosing key that exists.
    let e = otlp.invalid("protocols.http.endpoint", "x");
    assert_eq!(e.mark.map(|m| m.line), Some(4));
    // The component itself.
    let e = otlp.invalid("", "x");
    assert_eq!(
        (e.path.as_str(), e.mark.map(|m| m.line)),
        ("receivers.otlp", Some(3))
    );
    let sm = component(&config.connectors, "spanmetrics");
    let e = sm.invalid("dimensions[0].name", "bad name");
    assert_eq!(e.path, "connectors.spanmetrics.dimensions[0].name");
    assert_eq!(
        e.mark,
        Some(Mark {
            line: 12,
            column: 15
        })
    );
}

#[test]
fn anchors_are_copied() {
    let text = "
exporters:
  otlp/a: &common
    endpoint: tempo:4317
    tls: {insecure: true}
  otlp/b: *common
  otlp/c:
    tls: *tls
    endpoint: x
x-anchors: &tls {insecure: false}
service: {pipelines: {traces: {receivers: [r]}}}
";
    // `x-anchors` is an unknown top-level key, but the alias before its anchor is the first
    // problem: YAML requires anchors to come first.
    assert!(load(text).is_err());
    let text = "
exporters:
  otlp/a: &common
    endpoint: tempo:4317
    tls: &tls {insecure: true}
  otlp/b: *common
  otlp/c:
    tls: *tls
service: {pipelines: {traces: {receivers: [r]}}}
";
    let config = load_ok(text);
    assert_eq!(config.exporters.len(), 3);
    let a = config.exporters[0].node();
    let b = config.exporters[1].node();
    assert_eq!(a.value, b.value);
    let tls: BTreeMap<String, BTreeMap<String, bool>> =
        config.exporters[2].parse().expect("parses");
    assert!(tls["tls"]["insecure"]);
}

#[test]
fn merge_keys_fill_in_missing_settings() {
    let text = "
exporters:
  otlp/a: &base
    endpoint: tempo:4317
    timeout: 5s
  otlp/b:
    <<: *base
    endpoint: other:4317
service: {pipelines: {traces: {receivers: [r]}}}
";
    let config = load_ok(text);
    let b: BTreeMap<String, String> = config.exporters[1].parse().expect("parses");
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(b["endpoint"], "other:4317");
    assert_eq!(b["timeout"], "5s");
    let errors = load_err("a:\n  <<: 3\n");
    assert!(
        errors[0].reason.contains("`<<` merges a map"),
        "{}",
        errors[0]
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let text = "
receivers:
  otlp:
    endpoint: a
    endpoint: b
service: {pipelines: {traces: {receivers: [otlp]}}}
service: {}
";
    let errors = load_err(text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].path, "receivers.otlp.endpoint");
    assert_eq!(errors[0].mark.map(|m| m.line), Some(5));
    assert!(
        errors[0].reason.contains("first at line 4"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1].path, "service");
    assert!(errors[1].reason.contains("line 6"), "{}", errors[1]);

    // The same id spelt with different spacing.
    let errors = load_err(
        "receivers:\n  otlp/a: {}\n  otlp/ a: {}\nservice: {pipelines: {traces: {receivers: [otlp]}}}\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].reason.contains("duplicate receiver id"),
        "{}",
        errors[0]
    );
}

#[test]
fn top_level_and_service_errors_are_all_listed() {
    let text = "
receiver:
  otlp:
exporters:
  bad id!:
service:
  extensions: [health_check]
  pipeline: {}
  telemetry:
    logs: {level: verbose, encoding: json}
    metrics: {level: chatty}
    resource: {service.name: 12}
  pipelines:
    traces:
      receivers: [otlp]
      processor: [batch]
    spans:
      receivers: [otlp]
    metrics/2:
      exporters: ['/x']
";
    let errors = load_err(text);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        ("test.yaml:2:1: receiver: unknown top-level key", 2),
        ("test.yaml:5:3: exporters.bad id!:", 5),
        ("test.yaml:8:3: service.pipeline: unknown key", 8),
        ("service.telemetry.logs.level: `verbose` is not one of", 10),
        (
            "test.yaml:11:22: service.telemetry.metrics.level: `chatty` is not one of",
            11,
        ),
        (
            "test.yaml:12:30: service.telemetry.resource.service.name: must be a string or null",
            12,
        ),
        ("service.pipelines.traces.processor: unknown key", 16),
        ("service.pipelines.spans: unknown signal `spans`", 17),
        ("service.pipelines.metrics/2.exporters[0]:", 20),
    ];
    for (needle, line) in expect {
        let found = errors
            .iter()
            .find(|e| e.to_string().contains(needle))
            .unwrap_or_else(|| panic!("no error containing {needle:?} in {shown:#?}"));
        assert_eq!(found.mark.map(|m| m.line), Some(line), "{found}");
    }
    assert_eq!(errors.len(), expect.len(), "{shown:#?}");
}

#[test]
fn telemetry_metrics_endpoint_from_address_readers_or_default() {
    let endpoint = |telemetry: &str| {
        load_ok(&format!("{PIPELINES}  telemetry:\n{telemetry}"))
            .service
            .telemetry
            .metrics
            .endpoint
    };
    assert_eq!(
        endpoint("    metrics:\n      address: 127.0.0.1:18888\n"),
        Some("127.0.0.1:18888".to_owned())
    );
    assert_eq!(
        endpoint(
            "    metrics:\n      readers:\n        - pull:\n            exporter:\n              prometheus:\n                host: 0.0.0.0\n                port: 9999\n"
        ),
        Some("0.0.0.0:9999".to_owned())
    );
    assert_eq!(
        endpoint("    metrics:\n      level: basic\n"),
        Some("localhost:8888".to_owned())
    );
    assert_eq!(endpoint("    metrics:\n      level: none\n"), None);
    assert_eq!(endpoint("    logs:\n      level: info\n"), None);
}

#[test]
fn telemetry_logs_are_read() {
    let config = load_ok(&format!(
        "{PIPELINES}  telemetry:\n    logs:\n      level: DEBUG\n      encoding: logfmt\n  extensions: [pprof]\n"
    ));
    assert_eq!(
        config.service.telemetry.logs.level.as_deref(),
        Some("debug")
    );
    assert_eq!(
        config.service.telemetry.logs.encoding.as_deref(),
        Some("logfmt")
    );
    assert_eq!(ids(&config.service.extensions), ["pprof"]);
}

#[test]
fn missing_or_empty_pipelines_are_refused() {
    for (text, needle) in [
        ("", "service: missing"),
        ("receivers: {otlp: {}}\n", "service: missing"),
        ("service:\n", "service.pipelines: missing"),
        (
            "service:\n  pipelines:\n",
            "service.pipelines: no pipelines",
        ),
        (
            "service:\n  pipelines: {}\n",
            "service.pipelines: no pipelines",
        ),
        (
            "service:\n  pipelines: [traces]\n",
            "service.pipelines: must be",
        ),
        ("- a\n- b\n", "must be a map of sections"),
    ] {
        let errors = load_err(text);
        assert!(
            errors.iter().any(|e| e.to_string().contains(needle)),
            "{text:?}: {errors:?}"
        );
    }
}

#[test]
fn env_errors_name_the_line() {
    let errors = load_err("receivers:\n  otlp:\n    endpoint: ${env:HOST\n");
    assert_eq!(errors.len(), 1);
    let shown = errors[0].to_string();
    assert!(shown.starts_with("test.yaml:3:15: "), "{shown}");
    assert!(shown.contains("unclosed `${`"), "{shown}");
    let errors = load_err("receivers:\n  otlp:\n    endpoint: ${https://x/y}\n");
    assert!(
        errors[0]
            .reason
            .contains("config provider `https` is not supported"),
        "{}",
        errors[0]
    );
}

#[test]
fn yaml_problems_are_located() {
    let errors = load_err("receivers:\n  otlp: [a\nservice: {}\n");
    assert_eq!(errors.len(), 1);
    let shown = errors[0].to_string();
    assert!(shown.starts_with("test.yaml:"), "{shown}");
    assert!(shown.contains("invalid YAML"), "{shown}");

    let errors = load_err(&format!("{PIPELINES}---\n{PIPELINES}"));
    assert!(
        errors[0].reason.contains("several YAML documents"),
        "{}",
        errors[0]
    );

    let errors = load_err(&format!("receivers:\n  otlp: !custom {{}}\n{PIPELINES}"));
    assert!(errors[0].reason.contains("tag `!custom`"), "{}", errors[0]);
    assert_eq!(errors[0].mark.map(|m| m.line), Some(2));

    // Core-schema tags are fine; `!!str` makes a string.
    let config = load_ok(&format!("receivers:\n  r: {{a: !!str 8}}\n{PIPELINES}"));
    assert_eq!(
        config.receivers[0].node(),
        &Node {
            mark: Mark { line: 2, column: 6 },
            value: NodeValue::Map(vec![(
                Node {
                    mark: Mark { line: 2, column: 7 },
                    value: NodeValue::Scalar {
                        text: "a".into(),
                        quoted: false
                    }
                },
                Node {
                    mark: Mark {
                        line: 2,
                        column: 10
                    },
                    value: NodeValue::Scalar {
                        text: "8".into(),
                        quoted: true
                    }
                }
            )])
        }
    );

    let errors = load_err(&format!("receivers:\n  [a]: {{}}\n{PIPELINES}"));
    assert!(
        errors[0].reason.contains("map key must be"),
        "{}",
        errors[0]
    );
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    let deep = format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let errors = load_err(&deep);
    assert!(
        errors[0].reason.contains("recursion limit"),
        "{}",
        errors[0]
    );
    let mut deep = String::new();
    for i in 0..300 {
        deep.push_str(&" ".repeat(i));
        deep.push_str("k:\n");
    }
    let errors = load_err(&deep);
    assert!(errors[0].reason.contains("nesting deeper"), "{}", errors[0]);

    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9u8 {
        let prev = char::from(b'a' + i);
        let this = char::from(b'b' + i);
        laughs.push_str(&format!("{this}: &{this} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    assert!(load_err(&laughs)[0].reason.contains("expands to more than"));

    // Each alias nests the previous anchor one level deeper.
    let mut chain = String::from("a0: &a0 [x]\n");
    for i in 1..200 {
        chain.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
    }
    let errors = load_err(&chain);
    assert!(errors[0].reason.contains("nesting deeper"), "{}", errors[0]);

    for text in [
        "\u{0}",
        "\t- a",
        ": :",
        "a: 'unterminated",
        "? ? ?",
        "a: *nope",
        "%YAML 9.9\n---\na: 1",
    ] {
        // Only needs not to panic.
        let _ = load(text);
    }
}

#[test]
fn errors_display_one_per_line() {
    let errors = ConfigErrors(vec![
        ConfigError::new(
            Some("f".into()),
            Some(Mark { line: 1, column: 2 }),
            "a".into(),
            "x".into(),
        ),
        ConfigError::new(None, None, String::new(), "y".into()),
    ]);
    assert_eq!(errors.to_string(), "f:1:2: a: x\ny");
}

//! The config loader on arbitrary text: YAML parsing, `${…}` references (the environment is
//! fixed below; `${file:…}` reads this machine's files, with stdin empty), the top-level
//! model, every real factory's validation (as `redline validate` runs it), and each section
//! parsed into the real component config types whatever its type; and the same text as
//! command-line sources merged (`--config` twice, `--set`). Nothing may panic; every refusal
//! must carry a non-empty message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_pipeline::config::{
    load_sources_lenient_with_env, load_str_with_env, ComponentConfig, ListMerge, Source,
};
use redline_pipeline::service;
use redline_pipeline::{CheckAll, Factories};

fn factories() -> Factories {
    // The same set the binary registers (crates/redline/src/main.rs).
    let mut f = Factories::default();
    f.receiver(redline_otlp_receiver::OtlpReceiverFactory)
        .processor(redline_processors::BatchProcessorFactory)
        .connector(redline_spanmetrics::SpanMetricsFactory)
        .connector(redline_servicegraph::ServiceGraphFactory)
        .exporter(redline_otlp_exporter::OtlpExporterFactory)
        .exporter(redline_prometheus_exporter::PrometheusExporterFactory);
    f
}

/// Fixed, so a run does not depend on the fuzzing machine's environment.
fn env(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("127.0.0.1".to_owned()),
        "PORT" => Some("4317".to_owned()),
        "NESTED" => Some("${env:HOST}:${PORT}".to_owned()),
        "MAP" => Some("{endpoint: \"${env:HOST}:${PORT}\", tls: {insecure: true}}".to_owned()),
        "SELF" => Some("x${env:SELF}".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse_as_everything(c: &ComponentConfig) {
    if let Ok(sm) = c.parse::<redline_spanmetrics::Config>() {
        if sm.settings().is_ok() {
            // Building the aggregation state from a valid config must not panic either.
            let _ = redline_spanmetrics::SpanMetrics::new(&sm);
        }
    }
    if let Ok(sg) = c.parse::<redline_servicegraph::Config>() {
        let _ = redline_servicegraph::ServiceGraph::new(&sg);
    }
    let _ = redline_otlp_receiver::Config::from_component(c);
    let _ = redline_prometheus_exporter::Config::from_component(c);
    let _ = c.parse::<redline_otlp_exporter::Config>();
}

/// The text as command-line sources: split at its first `%%` into two configs merged in
/// order, and its first line also as a `--set`.
fn sources(text: &str) -> Vec<Source> {
    let mut sources = match text.split_once("%%") {
        Some((first, second)) => vec![
            Source::Yaml(first.to_owned()),
            Source::Yaml(second.to_owned()),
        ],
        None => vec![Source::Yaml(text.to_owned())],
    };
    if let Ok(set) = Source::set(text.lines().next().unwrap_or_default()) {
        sources.push(set);
    }
    sources
}

/// Both ways lists merge across sources, chosen by the input.
fn lists(data: &[u8]) -> ListMerge {
    if data.len().is_multiple_of(2) {
        ListMerge::Replace
    } else {
        ListMerge::AppendComponentLists
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load_sources_lenient_with_env(&sources(text), lists(data), &env) {
        Ok((merged, errors)) => {
            let checked = service::validate_after_load_errors(&merged, &factories(), errors);
            if let Err(errors) = checked {
                assert!(!errors.0.is_empty(), "merged sources refused with no error");
            }
        }
        Err(errors) => assert!(!errors.0.is_empty(), "sources refused with no error"),
    }
    let config = match load_str_with_env("fuzz.yaml", text, &env) {
        Ok(c) => c,
        Err(errors) => {
            assert!(!errors.0.is_empty(), "refused with no error");
            assert!(!errors.to_string().is_empty());
            return;
        }
    };
    if let Err(errors) = service::validate(&config, &factories()) {
        assert!(!errors.0.is_empty(), "validate refused with no error");
        for e in &errors.0 {
            assert!(!e.to_string().is_empty(), "an error without a message");
        }
    }
    for c in config
        .receivers
        .iter()
        .chain(&config.processors)
        .chain(&config.exporters)
        .chain(&config.connectors)
        .chain(&config.extensions)
    {
        parse_as_everything(c);
    }
});

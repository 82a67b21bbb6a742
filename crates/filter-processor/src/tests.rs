//! The processor as the pipeline runs it: config forms, what travels on, and the drop counter
//! recorded only for batches that were committed.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::Event, Span};
use prost::Message;
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, Signal};
use redline_processor_testkit::{
    build, build_before, component, counters, send, traces_request, Refusing,
};

use super::FilterProcessorFactory;

fn span(name: &str, events: &[&str]) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        events: events
            .iter()
            .map(|e| Event {
                name: (*e).into(),
                ..Event::default()
            })
            .collect(),
        ..Span::default()
    }
}

fn validate(body: &str) -> Result<(), String> {
    FilterProcessorFactory
        .validate(&component(body))
        .map_err(|e| e.to_string())
}

/// The value of the one counter series a telemetry registry serves under `name`.
pub(crate) fn counter(telemetry: &Telemetry, name: &str) -> Option<u64> {
    counters(telemetry)
        .into_iter()
        .find(|(family, _, _)| family == name)
        .map(|(_, _, value)| value)
}

#[test]
fn legacy_sections_are_checked_as_otelcol_checks_them_and_mixed_styles_refused() {
    for (body, needle) in [
        (
            "    spans:\n      include:\n        match_type: strict\n",
            "at least one of",
        ),
        (
            "    spans:\n      exclude:\n        match_type: strict\n        span_names: [a]\n    traces:\n      span:\n        - name == \"b\"\n",
            "at the same time",
        ),
        (
            "    metrics:\n      include:\n        match_type: regexp\n        metric_names: [\"(\"]\n",
            "regular expression",
        ),
        (
            "    metrics:\n      exclude:\n        match_type: expr\n        expressions: [\"MetricName == 'a'\"]\n",
            "metrics.exclude.expressions",
        ),
        (
            "    logs:\n      include:\n        severity_number:\n          min: verbose\n",
            "logs.include.severity_number.min",
        ),
        (
            "    logs:\n      include:\n        bodies: [a]\n        match_type: fuzzy\n",
            "unrecognized match_type",
        ),
    ] {
        let err = validate(&format!("  filter:\n{body}")).expect_err(body);
        assert!(err.contains(needle), "{body}: {err}");
    }
    // otelcol ignores `spans` when `trace_conditions` are set; so does Redline, with a warning.
    validate(
        "  filter:\n    spans:\n      exclude:\n        match_type: strict\n        span_names: [a]\n    trace_conditions:\n      - conditions:\n          - span.name == \"b\"\n",
    )
    .expect("accepted as otelcol accepts it");
    let err = validate(
        "  filter:\n    traces:\n      span:\n        - name == \"a\"\n    trace_conditions:\n      - context: span\n        conditions:\n          - name == \"b\"\n",
    )
    .expect_err("both styles");
    assert!(err.contains("at the same time"), "{err}");
    let err = validate("  filter:\n    traces:\n      span:\n        - nme == \"a\"\n")
        .expect_err("bad path");
    assert!(
        err.contains("traces.span[0]") && err.contains("nme"),
        "{err}"
    );
    validate(
        "  filter:\n    trace_conditions:\n      - conditions:\n          - span.name == \"b\"\n",
    )
    .expect("context inferred from the prefix");
}

#[test]
fn spans_and_events_matching_are_dropped_the_rest_travels_on() {
    let (p, sink, telemetry) = build(
        &FilterProcessorFactory,
        &component(
            "  filter:\n    traces:\n      span:\n        - name == \"GET /health\"\n      spanevent:\n        - name == \"debug\"\n",
        ),
        Signal::Traces,
    )
    .expect("builds");
    let spared = traces_request(vec![span("GET /users", &["retry"])]).encode_to_vec();
    send(&p, Signal::Traces, spared.clone(), 1);
    let mixed = traces_request(vec![
        span("GET /health", &[]),
        span("GET /users", &["debug", "retry"]),
        span("GET /health", &[]),
    ]);
    send(&p, Signal::Traces, mixed.encode_to_vec(), 3);
    send(
        &p,
        Signal::Traces,
        traces_request(vec![span("GET /health", &[])]).encode_to_vec(),
        1,
    );
    let got = sink.take();
    assert_eq!(got.len(), 2, "the all-health-check request ends here");
    assert_eq!(got[0].raw.as_ref(), spared.as_slice());
    let out = ExportTraceServiceRequest::decode(got[1].raw.as_ref()).expect("decodes");
    let spans = &out.resource_spans[0].scope_spans[0].spans;
    assert_eq!(got[1].items, 1);
    assert_eq!(spans.len(), 1);
    let events: Vec<&str> = spans[0].events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["retry"]);
    assert_eq!(
        counter(&telemetry, "otelcol_processor_filter_spans_filtered"),
        Some(3)
    );
}

#[test]
fn a_request_refused_downstream_is_not_counted_as_filtered() {
    let config = component("  filter:\n    traces:\n      span:\n        - name == \"x\"\n");
    let (p, telemetry) = build_before(
        &FilterProcessorFactory,
        &config,
        Signal::Traces,
        Arc::new(Refusing),
    )
    .expect("builds");
    let raw = traces_request(vec![span("x", &[]), span("y", &[])]).encode_to_vec();
    assert!(p.consume(Batch::traces(raw.into(), 2)).is_err());
    // Served at 0 from the start, and still 0.
    assert_eq!(
        counter(&telemetry, "otelcol_processor_filter_spans_filtered"),
        Some(0)
    );
}

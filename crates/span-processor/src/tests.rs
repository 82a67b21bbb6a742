//! The processor end to end: config section -> factory -> encoded requests in and out.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::ArrayValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;
use redline_processor_testkit::{component, kv, send, span, string as s, traces_request, Sink};

use super::*;

fn build(body: &str) -> (Arc<dyn Consumer>, Sink) {
    let config = component(body);
    let (consumer, sink, _) =
        redline_processor_testkit::build(&SpanProcessorFactory, &config, Signal::Traces)
            .expect("builds");
    (consumer, sink)
}

/// The spans `consumer` forwards for `spans` sent in one request, and whether it forwarded
/// the request's own bytes.
fn run(consumer: &Arc<dyn Consumer>, sink: &Sink, spans: Vec<Span>) -> (Vec<Span>, bool) {
    let raw = traces_request(spans.clone()).encode_to_vec();
    send(consumer, Signal::Traces, raw.clone(), spans.len());
    let out = sink.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].items, spans.len());
    let got = ExportTraceServiceRequest::decode(&out[0].raw[..]).expect("decodes");
    let spans = got.resource_spans[0].scope_spans[0].spans.clone();
    (spans, out[0].raw[..] == raw[..])
}

fn errors(body: &str) -> Vec<String> {
    SpanProcessorFactory
        .validate_all(&component(body))
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn name_from_attributes_of_every_type_with_a_separator() {
    let (p, sink) = build(
        "  span:\n    name:\n      from_attributes: [s, i, d, b, a]\n      separator: \"::\"\n",
    );
    let attrs = vec![
        kv("s", s("bob")),
        kv("i", Value::IntValue(123)),
        kv("d", Value::DoubleValue(234.129312)),
        kv("b", Value::BoolValue(true)),
        kv("a", Value::ArrayValue(ArrayValue::default())),
    ];
    let (got, _) = run(&p, &sink, vec![span("old", attrs.clone())]);
    assert_eq!(
        got[0].name,
        "bob::123::234.129312::true::<unknown-attribute-type>"
    );
    assert_eq!(got[0].attributes, attrs);
}

#[test]
fn name_from_attributes_needs_every_key_and_prints_doubles_without_exponent() {
    let (p, sink) = build("  span:\n    name:\n      from_attributes: [d, missing]\n");
    let (got, unchanged) = run(
        &p,
        &sink,
        vec![span("keep", vec![kv("d", Value::DoubleValue(1e21))])],
    );
    assert_eq!(got[0].name, "keep");
    assert!(
        unchanged,
        "no span changed: the request's own bytes travel on"
    );

    let (p, sink) = build("  span:\n    name:\n      from_attributes: [d, e]\n");
    let attrs = vec![
        kv("d", Value::DoubleValue(1e21)),
        kv("e", Value::DoubleValue(1e-7)),
    ];
    let (got, _) = run(&p, &sink, vec![span("x", attrs)]);
    // Go's FormatFloat(x, 'f', -1, 64), no separator set.
    assert_eq!(got[0].name, "10000000000000000000000.0000001");
}

#[test]
fn to_attributes_replaces_named_groups_and_overwrites_attributes() {
    let (p, sink) = build(
        "  span:\n    name:\n      to_attributes:\n        rules:\n        - ^\\/api\\/(?P<version>.*)\\/document\\/(?P<documentId>.*)\\/update$\n",
    );
    let (got, _) = run(
        &p,
        &sink,
        vec![span(
            "/api/v1/document/321083210/update",
            vec![kv("documentId", Value::IntValue(7)), kv("other", s("x"))],
        )],
    );
    assert_eq!(got[0].name, "/api/{version}/document/{documentId}/update");
    assert_eq!(
        got[0].attributes,
        vec![
            kv("documentId", s("321083210")),
            kv("other", s("x")),
            kv("version", s("v1"))
        ]
    );
}

#[test]
fn rules_run_in_turn_on_the_previous_result_unless_break_after_match() {
    let rules = "        rules:\n        - ^\\/api\\/.*\\/document\\/(?P<documentId>.*)\\/update$\n        - ^\\/api\\/(?P<version>.*)\\/document\\/.*\\/update$\n";
    let (p, sink) = build(&format!(
        "  span:\n    name:\n      to_attributes:\n{rules}"
    ));
    let (got, _) = run(&p, &sink, vec![span("/api/v1/document/321/update", vec![])]);
    assert_eq!(got[0].name, "/api/{version}/document/{documentId}/update");

    let (p, sink) = build(&format!(
        "  span:\n    name:\n      to_attributes:\n        break_after_match: true\n{rules}"
    ));
    let (got, _) = run(&p, &sink, vec![span("/api/v1/document/321/update", vec![])]);
    assert_eq!(got[0].name, "/api/v1/document/{documentId}/update");
    assert_eq!(got[0].attributes, vec![kv("documentId", s("321"))]);
}

#[test]
fn keep_original_name_adds_attributes_only() {
    let (p, sink) = build(
        "  span:\n    name:\n      to_attributes:\n        keep_original_name: true\n        rules: ['^(?P<verb>[A-Z]+) (?P<path>.*)$']\n",
    );
    let (got, _) = run(&p, &sink, vec![span("GET /cart", vec![])]);
    assert_eq!(got[0].name, "GET /cart");
    assert_eq!(
        got[0].attributes,
        vec![kv("verb", s("GET")), kv("path", s("/cart"))]
    );
}

#[test]
fn unnamed_groups_become_empty_keys_as_in_otelcol() {
    let (p, sink) = build(
        "  span:\n    name:\n      to_attributes:\n        rules: ['^/(v\\d)/(?P<id>\\d+)$']\n",
    );
    let (got, _) = run(&p, &sink, vec![span("/v1/42", vec![])]);
    assert_eq!(got[0].name, "/{}/{id}");
    assert_eq!(got[0].attributes, vec![kv("", s("v1")), kv("id", s("42"))]);
}

#[test]
fn groups_that_did_not_take_part_or_nest_keep_their_text() {
    // otelcol panics on both shapes; here the name keeps what no group replaced.
    let (p, sink) = build(
        "  span:\n    name:\n      to_attributes:\n        rules: ['^(?P<a>x)?(?P<outer>y(?P<inner>z))$']\n",
    );
    let (got, _) = run(&p, &sink, vec![span("yz", vec![])]);
    assert_eq!(got[0].name, "{outer}");
    assert_eq!(
        got[0].attributes,
        vec![kv("outer", s("yz")), kv("inner", s("z"))]
    );
}

#[test]
fn an_empty_name_is_left_alone() {
    let (p, sink) =
        build("  span:\n    name:\n      to_attributes:\n        rules: ['(?P<all>.*)']\n");
    let (got, unchanged) = run(&p, &sink, vec![span("", vec![])]);
    assert_eq!(
        (got[0].name.as_str(), got[0].attributes.len(), unchanged),
        ("", 0, true)
    );
}

#[test]
fn status_is_set_with_a_description_only_for_errors() {
    let (p, sink) = build("  span:\n    status:\n      code: Error\n      description: failed\n");
    let (got, _) = run(&p, &sink, vec![span("a", vec![])]);
    assert_eq!(
        got[0].status,
        Some(Status {
            code: 2,
            message: "failed".into()
        })
    );

    let (p, sink) = build("  span:\n    status:\n      code: Ok\n");
    let mut failed = span("b", vec![]);
    failed.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    let (got, _) = run(&p, &sink, vec![failed]);
    assert_eq!(
        got[0].status,
        Some(Status {
            code: 1,
            message: String::new()
        })
    );

    // Already what it would be set to: the request travels on as sent.
    let (p, sink) = build("  span:\n    status:\n      code: Unset\n");
    let (_, unchanged) = run(&p, &sink, vec![span("c", vec![])]);
    assert!(unchanged);
}

#[test]
fn include_and_exclude_select_the_spans() {
    let (p, sink) = build(
        "  span:\n    include:\n      match_type: regexp\n      services: ['^banks$']\n      span_names: ['/']\n    exclude:\n      match_type: strict\n      span_names: [donot/change]\n    name:\n      to_attributes:\n        rules: ['(?P<operation_website>.*?)$']\n",
    );
    let service = |name: &str| Resource {
        attributes: vec![kv("service.name", s(name))],
        ..Resource::default()
    };
    let mut request = traces_request(vec![
        span("www.test.com/code", vec![]),
        span("donot/change", vec![]),
        span("noslashes", vec![]),
    ]);
    request.resource_spans[0].resource = Some(service("banks"));
    let mut other = request.resource_spans[0].clone();
    other.resource = Some(service("bankss"));
    request.resource_spans.push(other);
    send(&p, Signal::Traces, request.encode_to_vec(), 6);
    let got = ExportTraceServiceRequest::decode(&sink.take()[0].raw[..]).expect("decodes");
    let names: Vec<Vec<&str>> = got
        .resource_spans
        .iter()
        .map(|rs| {
            rs.scope_spans[0]
                .spans
                .iter()
                .map(|s| s.name.as_str())
                .collect()
        })
        .collect();
    assert_eq!(
        names,
        [
            vec!["{operation_website}", "donot/change", "noslashes"],
            vec!["www.test.com/code", "donot/change", "noslashes"],
        ]
    );
}

#[test]
fn every_problem_of_a_section_is_reported_with_its_key() {
    let got = errors(
        "  span:\n    name:\n      to_attributes:\n        rules: ['(', ok, '(?P<x>']\n    status:\n      code: ok\n    include:\n      services: [a]\n",
    );
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[0].contains("processors.span.status.code") && got[0].contains("\"ok\""),
        "{got:?}"
    );
    assert!(
        got[1].contains("processors.span.name.to_attributes.rules[0]"),
        "{got:?}"
    );
    assert!(
        got[2].contains("processors.span.name.to_attributes.rules[2]"),
        "{got:?}"
    );
    assert!(
        got[3].contains("processors.span.include") && got[3].contains("match_type"),
        "{got:?}"
    );

    let got = errors("  span:\n    status:\n      code: Ok\n      description: fine\n");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("processors.span.status.description"),
        "{got:?}"
    );

    let got = errors("  span:\n    name:\n      separator: '-'\n");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].contains("processors.span.name") && got[0].contains("from_attributes"),
        "{got:?}"
    );

    let got = errors("  span:\n    name:\n      from_atributes: [a]\n");
    assert!(got[0].contains("from_atributes"), "{got:?}");
}

#[test]
fn only_traces_pipelines_take_it() {
    assert_eq!(SpanProcessorFactory.signals(), &[Signal::Traces]);
}

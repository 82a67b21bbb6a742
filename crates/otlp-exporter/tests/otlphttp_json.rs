//! `encoding: json` against what otelcol-contrib v0.161's `otlp_http` exporter sends.
//!
//! The fixtures were captured from otelcol (OTLP/JSON posted to its otlp receiver, exported by
//! two `otlp_http` exporters with `compression: none`, one per encoding, to a recording
//! server): `<name>.pb` is the protobuf body it sent, `<name>.otelcol.json` the JSON body for
//! the same data. Redline converts the first and must produce the second, up to key order
//! and the spelling of numbers.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_exporter::to_json;
use redline_pipeline::Signal;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/otlphttp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Numbers as f64 (`3` and `3.0` are one number) and, where otelcol leaves an empty
/// `arrayValue`/`kvlistValue` as `{}`, the `values: []` Redline writes removed.
fn normalized(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Number(n) => {
                let f = n.as_f64().expect("finite");
                *v = serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
            }
            Value::Object(map) => {
                if map
                    .get("values")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                {
                    map.remove("values");
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

fn converted(signal: Signal, name: &str) -> Value {
    let json = to_json(signal, &fixture(&format!("{name}.pb"))).expect("converts");
    serde_json::from_slice(&json).expect("valid JSON")
}

fn otelcol(name: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("{name}.otelcol.json"))).expect("valid JSON")
}

fn assert_like_otelcol(signal: Signal, name: &str) {
    let ours = normalized(converted(signal, name));
    let theirs = normalized(otelcol(name));
    assert_eq!(
        ours,
        theirs,
        "{name}:\nredline: {}\notelcol: {}",
        serde_json::to_string(&ours).unwrap_or_default(),
        serde_json::to_string(&theirs).unwrap_or_default()
    );
}

#[test]
fn traces_match_otelcol() {
    assert_like_otelcol(Signal::Traces, "traces");
}

#[test]
fn metrics_of_every_type_match_otelcol() {
    assert_like_otelcol(Signal::Metrics, "metrics");
}

#[test]
fn logs_match_otelcol() {
    assert_like_otelcol(Signal::Logs, "logs");
    assert_like_otelcol(Signal::Logs, "logs_edge");
}

#[test]
fn non_finite_doubles_are_the_json_mapping_strings() {
    assert_like_otelcol(Signal::Metrics, "metrics_nonfinite");
    assert_like_otelcol(Signal::Logs, "logs_nonfinite");
    let m = converted(Signal::Metrics, "metrics_nonfinite");
    let points = &m["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"];
    assert_eq!(points[0]["asDouble"], "NaN");
    assert_eq!(points[1]["asDouble"], "Infinity");
    assert_eq!(points[2]["asDouble"], 0.0, "a zero value is still written");
}

#[test]
fn ids_are_hex_and_64_bit_integers_strings() {
    let t = converted(Signal::Traces, "traces");
    let span = &t["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(span["spanId"], "eee19b7ec3c1b174");
    assert_eq!(span["parentSpanId"], "eee19b7ec3c1b173");
    assert_eq!(span["startTimeUnixNano"], "1544712660000000000");
    assert_eq!(span["kind"], 2, "enums are numbers");
    assert_eq!(
        span["links"][0]["traceId"],
        "5b8efff798038103d269b633813fc60d"
    );
    let l = converted(Signal::Logs, "logs");
    let record = &l["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(record["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(record["attributes"][1]["value"]["intValue"], "3");
}

#[test]
fn json_decodes_back_to_the_same_request() {
    let back = |signal: Signal, name: &str| to_json(signal, &fixture(&format!("{name}.pb")));
    let t: ExportTraceServiceRequest =
        serde_json::from_slice(&back(Signal::Traces, "traces").expect("json")).expect("reads");
    assert_eq!(
        t,
        ExportTraceServiceRequest::decode(fixture("traces.pb").as_slice()).expect("proto")
    );
    let m: ExportMetricsServiceRequest =
        serde_json::from_slice(&back(Signal::Metrics, "metrics").expect("json")).expect("reads");
    assert_eq!(
        m,
        ExportMetricsServiceRequest::decode(fixture("metrics.pb").as_slice()).expect("proto")
    );
    for name in ["logs", "logs_edge"] {
        let l: ExportLogsServiceRequest =
            serde_json::from_slice(&back(Signal::Logs, name).expect("json")).expect("reads");
        assert_eq!(
            l,
            ExportLogsServiceRequest::decode(fixture(&format!("{name}.pb")).as_slice())
                .expect("proto"),
            "{name}"
        );
    }
}

#[test]
fn bad_protobuf_is_an_error_not_a_panic() {
    let err = to_json(Signal::Traces, b"\x0a\xff\xff\xff").expect_err("truncated");
    assert!(err.contains("cannot decode the traces request"), "{err}");
}

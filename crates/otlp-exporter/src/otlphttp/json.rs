//! `encoding: json`: the received protobuf request as OTLP/JSON, as otelcol writes it.
//!
//! The request is decoded with opentelemetry-proto's prost types and serialized with their
//! serde support, which already follows the OTLP/JSON rules (camelCase names, hex trace and
//! span ids, 64-bit integers as strings, enums as numbers, base64 bytes). Two passes over the
//! result make it what otelcol emits:
//! - doubles that are NaN or infinite become the strings `"NaN"`, `"Infinity"` and
//!   `"-Infinity"` (the protobuf JSON mapping; serde_json would write `null` and lose them);
//! - fields holding their default value are left out, as otelcol (and the protobuf JSON
//!   mapping) does, except where presence means something: the members of a oneof (an
//!   `intValue` of 0 is still an int), the optional histogram `sum`/`min`/`max`, and messages
//!   (an empty `scope` or `status` is written `{}`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, Exemplar, NumberDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_pipeline::Signal;
use serde_json::Value;

/// Converts one encoded export request of `signal` to OTLP/JSON. Public (hidden) for tests.
pub fn to_json(signal: Signal, raw: &[u8]) -> Result<Vec<u8>, String> {
    let decode_error = |e: prost::DecodeError| format!("cannot decode the {signal} request: {e}");
    let to_value = |e: serde_json::Error| format!("cannot convert the {signal} request: {e}");
    let mut doc = match signal {
        Signal::Traces => {
            let req = ExportTraceServiceRequest::decode(raw).map_err(decode_error)?;
            let mut doc = serde_json::to_value(&req).map_err(to_value)?;
            traces_non_finite(&req, &mut doc);
            doc
        }
        Signal::Metrics => {
            let req = ExportMetricsServiceRequest::decode(raw).map_err(decode_error)?;
            let mut doc = serde_json::to_value(&req).map_err(to_value)?;
            metrics_non_finite(&req, &mut doc);
            doc
        }
        Signal::Logs => {
            let req = ExportLogsServiceRequest::decode(raw).map_err(decode_error)?;
            let mut doc = serde_json::to_value(&req).map_err(to_value)?;
            logs_non_finite(&req, &mut doc);
            doc
        }
    };
    strip_defaults(&mut doc);
    serde_json::to_vec(&doc).map_err(to_value)
}

/// Keys whose value is written even when it is the default: oneof members (their presence is
/// the value's type), optional fields, and the lists of `arrayValue`/`kvlistValue` (some
/// decoders, opentelemetry-proto's among them, require them).
const ALWAYS_WRITTEN: &[&str] = &[
    "stringValue",
    "boolValue",
    "intValue",
    "doubleValue",
    "bytesValue",
    "arrayValue",
    "kvlistValue",
    "asDouble",
    "asInt",
    "sum",
    "min",
    "max",
    "value",
    "values",
];

/// Leaves out nulls (unset optional fields) and fields at their default value. serde_json
/// nests no deeper than the prost decode allowed, which bounds this recursion.
fn strip_defaults(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|key, value| {
                !value.is_null() && (ALWAYS_WRITTEN.contains(&key.as_str()) || !is_default(value))
            });
            map.values_mut().for_each(strip_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

/// A scalar or list at its protobuf default. Messages (objects) are kept: their presence is
/// information.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        // 64-bit integers are strings in OTLP/JSON.
        Value::String(s) => s.is_empty() || s == "0",
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

/// The protobuf JSON mapping's spelling of a double serde_json cannot write.
fn non_finite(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x.is_infinite() {
        Some(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        None
    }
}

fn fix_double(x: f64, slot: Option<&mut Value>) {
    if let (Some(s), Some(slot)) = (non_finite(x), slot) {
        *slot = Value::String(s.to_owned());
    }
}

/// The items of `list` next to their JSON form under `key` of `doc` (serde writes them in the
/// same order).
fn pairs<'a, T>(
    list: &'a [T],
    doc: Option<&'a mut Value>,
    key: &str,
) -> impl Iterator<Item = (&'a T, &'a mut Value)> {
    let items = doc
        .and_then(|d| d.get_mut(key))
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut())
        .into_iter()
        .flatten();
    list.iter().zip(items)
}

fn any_non_finite(v: &AnyValue, doc: &mut Value) {
    match &v.value {
        Some(any_value::Value::DoubleValue(d)) => fix_double(*d, doc.get_mut("doubleValue")),
        Some(any_value::Value::ArrayValue(a)) => {
            for (item, j) in pairs(&a.values, doc.get_mut("arrayValue"), "values") {
                any_non_finite(item, j);
            }
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            attributes_non_finite(&kv.values, doc.get_mut("kvlistValue"), "values");
        }
        _ => {}
    }
}

fn attributes_non_finite(attrs: &[KeyValue], doc: Option<&mut Value>, key: &str) {
    for (kv, j) in pairs(attrs, doc, key) {
        if let (Some(v), Some(jv)) = (&kv.value, j.get_mut("value")) {
            any_non_finite(v, jv);
        }
    }
}

/// The attributes of a resource, in the JSON object holding it.
fn resource_non_finite(resource: Option<&Resource>, doc: &mut Value) {
    if let Some(r) = resource {
        attributes_non_finite(&r.attributes, doc.get_mut("resource"), "attributes");
    }
}

fn scope_non_finite(scope: Option<&InstrumentationScope>, doc: &mut Value) {
    if let Some(s) = scope {
        attributes_non_finite(&s.attributes, doc.get_mut("scope"), "attributes");
    }
}

fn traces_non_finite(req: &ExportTraceServiceRequest, doc: &mut Value) {
    for (rs, jrs) in pairs(&req.resource_spans, Some(doc), "resourceSpans") {
        resource_non_finite(rs.resource.as_ref(), jrs);
        for (ss, jss) in pairs(&rs.scope_spans, Some(jrs), "scopeSpans") {
            scope_non_finite(ss.scope.as_ref(), jss);
            for (span, js) in pairs(&ss.spans, Some(jss), "spans") {
                attributes_non_finite(&span.attributes, Some(&mut *js), "attributes");
                for (e, je) in pairs(&span.events, Some(&mut *js), "events") {
                    attributes_non_finite(&e.attributes, Some(je), "attributes");
                }
                for (l, jl) in pairs(&span.links, Some(js), "links") {
                    attributes_non_finite(&l.attributes, Some(jl), "attributes");
                }
            }
        }
    }
}

fn logs_non_finite(req: &ExportLogsServiceRequest, doc: &mut Value) {
    for (rl, jrl) in pairs(&req.resource_logs, Some(doc), "resourceLogs") {
        resource_non_finite(rl.resource.as_ref(), jrl);
        for (sl, jsl) in pairs(&rl.scope_logs, Some(jrl), "scopeLogs") {
            scope_non_finite(sl.scope.as_ref(), jsl);
            for (record, jr) in pairs(&sl.log_records, Some(jsl), "logRecords") {
                if let (Some(body), Some(jb)) = (&record.body, jr.get_mut("body")) {
                    any_non_finite(body, jb);
                }
                attributes_non_finite(&record.attributes, Some(jr), "attributes");
            }
        }
    }
}

fn exemplars_non_finite(exemplars: &[Exemplar], doc: &mut Value) {
    for (e, je) in pairs(exemplars, Some(doc), "exemplars") {
        attributes_non_finite(&e.filtered_attributes, Some(&mut *je), "filteredAttributes");
        if let Some(exemplar::Value::AsDouble(d)) = e.value {
            fix_double(d, je.get_mut("asDouble"));
        }
    }
}

/// The optional `sum`, `min` and `max` of a histogram point.
fn optional_doubles_non_finite(values: [(&str, Option<f64>); 3], doc: &mut Value) {
    for (key, value) in values {
        if let Some(x) = value {
            fix_double(x, doc.get_mut(key));
        }
    }
}

fn metrics_non_finite(req: &ExportMetricsServiceRequest, doc: &mut Value) {
    for (rm, jrm) in pairs(&req.resource_metrics, Some(doc), "resourceMetrics") {
        resource_non_finite(rm.resource.as_ref(), jrm);
        for (sm, jsm) in pairs(&rm.scope_metrics, Some(jrm), "scopeMetrics") {
            scope_non_finite(sm.scope.as_ref(), jsm);
            for (m, jm) in pairs(&sm.metrics, Some(jsm), "metrics") {
                attributes_non_finite(&m.metadata, Some(&mut *jm), "metadata");
                metric_data_non_finite(m.data.as_ref(), jm);
            }
        }
    }
}

fn number_points_non_finite(points: &[NumberDataPoint], doc: Option<&mut Value>) {
    for (p, jp) in pairs(points, doc, "dataPoints") {
        attributes_non_finite(&p.attributes, Some(&mut *jp), "attributes");
        if let Some(number_data_point::Value::AsDouble(d)) = p.value {
            fix_double(d, jp.get_mut("asDouble"));
        }
        exemplars_non_finite(&p.exemplars, jp);
    }
}

fn metric_data_non_finite(data: Option<&metric::Data>, jm: &mut Value) {
    let number_points = number_points_non_finite;
    match data {
        Some(metric::Data::Gauge(g)) => number_points(&g.data_points, jm.get_mut("gauge")),
        Some(metric::Data::Sum(s)) => number_points(&s.data_points, jm.get_mut("sum")),
        Some(metric::Data::Histogram(h)) => {
            for (p, jp) in pairs(&h.data_points, jm.get_mut("histogram"), "dataPoints") {
                attributes_non_finite(&p.attributes, Some(&mut *jp), "attributes");
                optional_doubles_non_finite([("sum", p.sum), ("min", p.min), ("max", p.max)], jp);
                if let Some(bounds) = jp.get_mut("explicitBounds").and_then(Value::as_array_mut) {
                    for (b, jb) in p.explicit_bounds.iter().zip(bounds.iter_mut()) {
                        fix_double(*b, Some(jb));
                    }
                }
                exemplars_non_finite(&p.exemplars, jp);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            let doc = jm.get_mut("exponentialHistogram");
            for (p, jp) in pairs(&h.data_points, doc, "dataPoints") {
                attributes_non_finite(&p.attributes, Some(&mut *jp), "attributes");
                optional_doubles_non_finite([("sum", p.sum), ("min", p.min), ("max", p.max)], jp);
                fix_double(p.zero_threshold, jp.get_mut("zeroThreshold"));
                exemplars_non_finite(&p.exemplars, jp);
            }
        }
        Some(metric::Data::Summary(s)) => {
            // Quantile values already take the strings (opentelemetry-proto's own serializer).
            for (p, jp) in pairs(&s.data_points, jm.get_mut("summary"), "dataPoints") {
                attributes_non_finite(&p.attributes, Some(&mut *jp), "attributes");
                fix_double(p.sum, jp.get_mut("sum"));
            }
        }
        None => {}
    }
}

//! `verbosity: normal`: about one line per span, data point or log record, as otelcol
//! v0.161's debug exporter writes them (`exporter/debugexporter/internal/normal`).

use std::fmt::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, number_data_point,
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};

use super::exp_histogram::{bucket_lower, bucket_upper};
use redline_pdata_text::as_string;
use redline_pdata_text::{go_f, go_v, id};

/// `key=value` for each attribute, in order.
fn attributes(attrs: &[KeyValue]) -> Vec<String> {
    attrs
        .iter()
        .map(|kv| format!("{}={}", kv.key, as_string(kv.value.as_ref())))
        .collect()
}

/// ` key=value key=value`, or nothing.
fn attributes_suffix(attrs: &[KeyValue]) -> String {
    let a = attributes(attrs);
    if a.is_empty() {
        String::new()
    } else {
        format!(" {}", a.join(" "))
    }
}

fn resource_details(schema_url: &str) -> String {
    if schema_url.is_empty() {
        String::new()
    } else {
        format!(" [{schema_url}]")
    }
}

/// ` name@version [schema]`, each part only when set.
fn scope_details(scope: Option<&InstrumentationScope>, schema_url: &str) -> String {
    let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
    let mut s = String::new();
    s.push_str(name);
    if !version.is_empty() {
        s.push('@');
        s.push_str(version);
    }
    if !schema_url.is_empty() {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "[{schema_url}]");
    }
    if s.is_empty() {
        s
    } else {
        format!(" {s}")
    }
}

fn scope_attributes(scope: Option<&InstrumentationScope>) -> String {
    attributes_suffix(scope.map_or(&[][..], |s| &s.attributes))
}

pub fn traces(req: &ExportTraceServiceRequest) -> String {
    let mut out = String::new();
    for (i, rs) in req.resource_spans.iter().enumerate() {
        let attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let _ = writeln!(
            out,
            "ResourceTraces #{i}{}{}",
            resource_details(&rs.schema_url),
            attributes_suffix(attrs)
        );
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            let scope = ss.scope.as_ref();
            let _ = writeln!(
                out,
                "ScopeTraces #{j}{}{}",
                scope_details(scope, &ss.schema_url),
                scope_attributes(scope)
            );
            for span in &ss.spans {
                let _ = writeln!(
                    out,
                    "{} {} {}{}",
                    span.name,
                    id(&span.trace_id),
                    id(&span.span_id),
                    attributes_suffix(&span.attributes)
                );
            }
        }
    }
    out
}

pub fn metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::new();
    for (i, rm) in req.resource_metrics.iter().enumerate() {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let _ = writeln!(
            out,
            "ResourceMetrics #{i}{}{}",
            resource_details(&rm.schema_url),
            attributes_suffix(attrs)
        );
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            let scope = sm.scope.as_ref();
            let _ = writeln!(
                out,
                "ScopeMetrics #{j}{}{}",
                scope_details(scope, &sm.schema_url),
                scope_attributes(scope)
            );
            for m in &sm.metrics {
                let name = &m.name;
                match &m.data {
                    Some(metric::Data::Gauge(g)) => number_points(&mut out, name, &g.data_points),
                    Some(metric::Data::Sum(s)) => number_points(&mut out, name, &s.data_points),
                    Some(metric::Data::Histogram(h)) => {
                        for p in &h.data_points {
                            histogram_point(&mut out, name, p);
                        }
                    }
                    Some(metric::Data::ExponentialHistogram(h)) => {
                        for p in &h.data_points {
                            exponential_point(&mut out, name, p);
                        }
                    }
                    Some(metric::Data::Summary(s)) => {
                        for p in &s.data_points {
                            summary_point(&mut out, name, p);
                        }
                    }
                    None => {}
                }
            }
        }
    }
    out
}

/// `name{k=v,k=v} value`.
fn point_line(out: &mut String, name: &str, attrs: &[KeyValue], value: &str) {
    let _ = writeln!(out, "{name}{{{}}} {value}", attributes(attrs).join(","));
}

fn number_points(out: &mut String, name: &str, points: &[NumberDataPoint]) {
    for p in points {
        let value = match p.value {
            Some(number_data_point::Value::AsInt(i)) => i.to_string(),
            Some(number_data_point::Value::AsDouble(d)) => go_v(d),
            None => String::new(),
        };
        point_line(out, name, &p.attributes, &value);
    }
}

/// `count=N[ sum=S][ min=M][ max=M]`.
fn count_sum_min_max(count: u64, sum: Option<f64>, min: Option<f64>, max: Option<f64>) -> String {
    let mut v = format!("count={count}");
    for (label, x) in [("sum", sum), ("min", min), ("max", max)] {
        if let Some(x) = x {
            let _ = write!(v, " {label}={}", go_v(x));
        }
    }
    v
}

fn histogram_point(out: &mut String, name: &str, p: &HistogramDataPoint) {
    let mut value = count_sum_min_max(p.count, p.sum, p.min, p.max);
    for (i, count) in p.bucket_counts.iter().enumerate() {
        match p.explicit_bounds.get(i) {
            Some(bound) => {
                let _ = write!(value, " le{}={count}", go_v(*bound));
            }
            None => {
                let _ = write!(value, " {count}");
            }
        }
    }
    point_line(out, name, &p.attributes, &value);
}

fn exponential_point(out: &mut String, name: &str, p: &ExponentialHistogramDataPoint) {
    let mut value = count_sum_min_max(p.count, p.sum, p.min, p.max);
    let empty = Buckets::default();
    // Negative buckets from the most negative up: `leX` with X the bucket's upper bound,
    // -base^index.
    let negative = p.negative.as_ref().unwrap_or(&empty);
    for (pos, count) in negative.bucket_counts.iter().enumerate().rev() {
        let lower = bucket_lower(p.scale, negative.offset, pos);
        let _ = write!(value, " le{}={count}", go_v(-lower));
    }
    if p.zero_count != 0 {
        let _ = write!(value, " zero={}", p.zero_count);
    }
    let positive = p.positive.as_ref().unwrap_or(&empty);
    for (pos, count) in positive.bucket_counts.iter().enumerate() {
        let upper = bucket_upper(p.scale, positive.offset, pos);
        let _ = write!(value, " le{}={count}", go_v(upper));
    }
    point_line(out, name, &p.attributes, &value);
}

fn summary_point(out: &mut String, name: &str, p: &SummaryDataPoint) {
    let mut value = format!("count={} sum={}", p.count, go_f(p.sum));
    for q in &p.quantile_values {
        let _ = write!(value, " q{}={}", go_v(q.quantile), go_v(q.value));
    }
    point_line(out, name, &p.attributes, &value);
}

pub fn logs(req: &ExportLogsServiceRequest) -> String {
    let mut out = String::new();
    for (i, rl) in req.resource_logs.iter().enumerate() {
        let attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        let _ = writeln!(
            out,
            "ResourceLog #{i}{}{}",
            resource_details(&rl.schema_url),
            attributes_suffix(attrs)
        );
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            let scope = sl.scope.as_ref();
            let _ = writeln!(
                out,
                "ScopeLog #{j}{}{}",
                scope_details(scope, &sl.schema_url),
                scope_attributes(scope)
            );
            for record in &sl.log_records {
                // Always a space after the body, attributes or not, as otelcol prints it.
                let _ = writeln!(
                    out,
                    "{} {}",
                    as_string(record.body.as_ref()),
                    attributes(&record.attributes).join(" ")
                );
            }
        }
    }
    out
}

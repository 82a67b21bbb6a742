//! `verbosity: detailed`: every field of every item, as otelcol v0.161's debug exporter writes
//! it (`exporter/debugexporter/internal/otlptext`).

use std::fmt::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, exponential_histogram_data_point::Buckets, metric, number_data_point, Exemplar,
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span;

use super::exp_histogram::{bucket_lower, bucket_upper};
use super::names;
use redline_pdata_text::typed;
use redline_pdata_text::{go_f, id, timestamp};

/// The text being built, line by line.
#[derive(Default)]
struct Buf {
    out: String,
}

impl Buf {
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    /// `    Name           : value` (the name padded to 15, as Go's `%-15s`).
    fn attr(&mut self, name: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "    {name:<15}: {value}");
    }

    /// `header:` then `     -> key: Type(value)` per attribute; nothing when there are none.
    /// A header that is itself an arrow item (`     -> Attributes:`) indents its items
    /// under it, as otelcol does.
    fn attributes(&mut self, header: &str, attrs: &[KeyValue]) {
        if attrs.is_empty() {
            return;
        }
        self.line(format!("{header}:"));
        let prefix = match header.split_once("->") {
            Some((indent, _)) => format!("{indent}     ->"),
            None => "     ->".to_owned(),
        };
        for kv in attrs {
            let _ = writeln!(
                self.out,
                "{prefix} {}: {}",
                kv.key,
                typed(kv.value.as_ref())
            );
        }
    }

    fn resource(&mut self, resource: Option<&Resource>) {
        let Some(r) = resource else {
            return;
        };
        self.attributes("Resource attributes", &r.attributes);
        if r.entity_refs.is_empty() {
            return;
        }
        self.line("Resource entity refs:");
        for (i, e) in r.entity_refs.iter().enumerate() {
            self.line(format!("     -> Entity ref #{i}:"));
            self.line(format!("          -> Type: {}", e.r#type));
            if !e.schema_url.is_empty() {
                self.line(format!("          -> Schema URL: {}", e.schema_url));
            }
            for (label, keys) in [
                ("ID keys", &e.id_keys),
                ("Description keys", &e.description_keys),
            ] {
                if !keys.is_empty() {
                    self.line(format!("          -> {label}:"));
                    for k in keys {
                        self.line(format!("               -> {k}"));
                    }
                }
            }
        }
    }

    fn scope(&mut self, scope: Option<&InstrumentationScope>) {
        let (name, version) = scope.map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
        self.line(format!("InstrumentationScope {name} {version}"));
        self.attributes(
            "InstrumentationScope attributes",
            scope.map_or(&[][..], |s| &s.attributes),
        );
    }
}

pub fn traces(req: &ExportTraceServiceRequest) -> String {
    let mut b = Buf::default();
    for (i, rs) in req.resource_spans.iter().enumerate() {
        b.line(format!("ResourceSpans #{i}"));
        b.line(format!("Resource SchemaURL: {}", rs.schema_url));
        b.resource(rs.resource.as_ref());
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            b.line(format!("ScopeSpans #{j}"));
            b.line(format!("ScopeSpans SchemaURL: {}", ss.schema_url));
            b.scope(ss.scope.as_ref());
            for (k, s) in ss.spans.iter().enumerate() {
                b.line(format!("Span #{k}"));
                b.attr("Trace ID", id(&s.trace_id));
                b.attr("Parent ID", id(&s.parent_span_id));
                b.attr("ID", id(&s.span_id));
                b.attr("Name", &s.name);
                b.attr("Kind", names::span_kind(s.kind));
                if !s.trace_state.is_empty() {
                    b.attr("TraceState", &s.trace_state);
                }
                b.attr("Start time", timestamp(s.start_time_unix_nano));
                b.attr("End time", timestamp(s.end_time_unix_nano));
                let (code, message) = s
                    .status
                    .as_ref()
                    .map_or((0, ""), |st| (st.code, st.message.as_str()));
                b.attr("Status code", names::status_code(code));
                b.attr("Status message", message);
                b.attr("DroppedAttributesCount", s.dropped_attributes_count);
                b.attr("DroppedEventsCount", s.dropped_events_count);
                b.attr("DroppedLinksCount", s.dropped_links_count);
                b.attributes("Attributes", &s.attributes);
                events(&mut b, &s.events);
                links(&mut b, &s.links);
            }
        }
    }
    b.out
}

fn events(b: &mut Buf, events: &[span::Event]) {
    if events.is_empty() {
        return;
    }
    b.line("Events:");
    for (i, e) in events.iter().enumerate() {
        b.line(format!("SpanEvent #{i}"));
        b.line(format!("     -> Name: {}", e.name));
        b.line(format!(
            "     -> Timestamp: {}",
            timestamp(e.time_unix_nano)
        ));
        b.line(format!(
            "     -> DroppedAttributesCount: {}",
            e.dropped_attributes_count
        ));
        b.attributes("     -> Attributes:", &e.attributes);
    }
}

fn links(b: &mut Buf, links: &[span::Link]) {
    if links.is_empty() {
        return;
    }
    b.line("Links:");
    for (i, l) in links.iter().enumerate() {
        b.line(format!("SpanLink #{i}"));
        b.line(format!("     -> Trace ID: {}", id(&l.trace_id)));
        b.line(format!("     -> ID: {}", id(&l.span_id)));
        b.line(format!("     -> TraceState: {}", l.trace_state));
        b.line(format!(
            "     -> DroppedAttributesCount: {}",
            l.dropped_attributes_count
        ));
        b.attributes("     -> Attributes:", &l.attributes);
    }
}

pub fn metrics(req: &ExportMetricsServiceRequest) -> String {
    let mut b = Buf::default();
    for (i, rm) in req.resource_metrics.iter().enumerate() {
        b.line(format!("ResourceMetrics #{i}"));
        b.line(format!("Resource SchemaURL: {}", rm.schema_url));
        b.resource(rm.resource.as_ref());
        for (j, sm) in rm.scope_metrics.iter().enumerate() {
            b.line(format!("ScopeMetrics #{j}"));
            b.line(format!("ScopeMetrics SchemaURL: {}", sm.schema_url));
            b.scope(sm.scope.as_ref());
            for (k, m) in sm.metrics.iter().enumerate() {
                b.line(format!("Metric #{k}"));
                descriptor(&mut b, m);
                data_points(&mut b, m);
            }
        }
    }
    b.out
}

fn descriptor(b: &mut Buf, m: &Metric) {
    b.line("Descriptor:");
    b.line(format!("     -> Name: {}", m.name));
    b.line(format!("     -> Description: {}", m.description));
    b.line(format!("     -> Unit: {}", m.unit));
    b.line(format!(
        "     -> DataType: {}",
        names::data_type(m.data.as_ref())
    ));
    b.attributes("     -> Metadata", &m.metadata);
}

fn data_points(b: &mut Buf, m: &Metric) {
    match &m.data {
        None => {}
        Some(metric::Data::Gauge(g)) => number_points(b, &g.data_points),
        Some(metric::Data::Sum(s)) => {
            b.line(format!("     -> IsMonotonic: {}", s.is_monotonic));
            b.line(format!(
                "     -> AggregationTemporality: {}",
                names::temporality(s.aggregation_temporality)
            ));
            number_points(b, &s.data_points);
        }
        Some(metric::Data::Histogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                names::temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                histogram_point(b, i, p);
            }
        }
        Some(metric::Data::ExponentialHistogram(h)) => {
            b.line(format!(
                "     -> AggregationTemporality: {}",
                names::temporality(h.aggregation_temporality)
            ));
            for (i, p) in h.data_points.iter().enumerate() {
                exponential_point(b, i, p);
            }
        }
        Some(metric::Data::Summary(s)) => {
            for (i, p) in s.data_points.iter().enumerate() {
                summary_point(b, i, p);
            }
        }
    }
}

/// The lines every kind of point starts with.
fn point_header(b: &mut Buf, title: String, attrs: &[KeyValue], start: u64, time: u64) {
    b.line(title);
    b.attributes("Data point attributes", attrs);
    b.line(format!("StartTimestamp: {}", timestamp(start)));
    b.line(format!("Timestamp: {}", timestamp(time)));
}

fn number_points(b: &mut Buf, points: &[NumberDataPoint]) {
    for (i, p) in points.iter().enumerate() {
        point_header(
            b,
            format!("NumberDataPoints #{i}"),
            &p.attributes,
            p.start_time_unix_nano,
            p.time_unix_nano,
        );
        match p.value {
            Some(number_data_point::Value::AsInt(v)) => b.line(format!("Value: {v}")),
            Some(number_data_point::Value::AsDouble(v)) => b.line(format!("Value: {}", go_f(v))),
            None => {}
        }
        exemplars(b, &p.exemplars);
    }
}

/// `Count`, then `Sum`, `Min` and `Max` when set.
fn count_sum_min_max(
    b: &mut Buf,
    count: u64,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
) {
    b.line(format!("Count: {count}"));
    for (label, x) in [("Sum", sum), ("Min", min), ("Max", max)] {
        if let Some(x) = x {
            b.line(format!("{label}: {}", go_f(x)));
        }
    }
}

fn histogram_point(b: &mut Buf, i: usize, p: &HistogramDataPoint) {
    point_header(
        b,
        format!("HistogramDataPoints #{i}"),
        &p.attributes,
        p.start_time_unix_nano,
        p.time_unix_nano,
    );
    count_sum_min_max(b, p.count, p.sum, p.min, p.max);
    for (j, bound) in p.explicit_bounds.iter().enumerate() {
        b.line(format!("ExplicitBounds #{j}: {}", go_f(*bound)));
    }
    for (j, count) in p.bucket_counts.iter().enumerate() {
        b.line(format!("Buckets #{j}, Count: {count}"));
    }
    exemplars(b, &p.exemplars);
}

fn exponential_point(b: &mut Buf, i: usize, p: &ExponentialHistogramDataPoint) {
    point_header(
        b,
        format!("ExponentialHistogramDataPoints #{i}"),
        &p.attributes,
        p.start_time_unix_nano,
        p.time_unix_nano,
    );
    count_sum_min_max(b, p.count, p.sum, p.min, p.max);
    let empty = Buckets::default();
    let negative = p.negative.as_ref().unwrap_or(&empty);
    for (pos, count) in negative.bucket_counts.iter().enumerate().rev() {
        let lower = bucket_lower(p.scale, negative.offset, pos);
        let upper = bucket_upper(p.scale, negative.offset, pos);
        b.line(format!(
            "Bucket [{}, {}), Count: {count}",
            go_f(-upper),
            go_f(-lower)
        ));
    }
    if p.zero_count != 0 {
        b.line(format!("Bucket [0, 0], Count: {}", p.zero_count));
    }
    let positive = p.positive.as_ref().unwrap_or(&empty);
    for (pos, count) in positive.bucket_counts.iter().enumerate() {
        let lower = bucket_lower(p.scale, positive.offset, pos);
        let upper = bucket_upper(p.scale, positive.offset, pos);
        b.line(format!(
            "Bucket ({}, {}], Count: {count}",
            go_f(lower),
            go_f(upper)
        ));
    }
    exemplars(b, &p.exemplars);
}

fn summary_point(b: &mut Buf, i: usize, p: &SummaryDataPoint) {
    point_header(
        b,
        format!("SummaryDataPoints #{i}"),
        &p.attributes,
        p.start_time_unix_nano,
        p.time_unix_nano,
    );
    b.line(format!("Count: {}", p.count));
    b.line(format!("Sum: {}", go_f(p.sum)));
    for (j, q) in p.quantile_values.iter().enumerate() {
        b.line(format!(
            "QuantileValue #{j}: Quantile {}, Value {}",
            go_f(q.quantile),
            go_f(q.value)
        ));
    }
}

fn exemplars(b: &mut Buf, exemplars: &[Exemplar]) {
    if exemplars.is_empty() {
        return;
    }
    b.line("Exemplars:");
    for (i, e) in exemplars.iter().enumerate() {
        b.line(format!("Exemplar #{i}"));
        b.line(format!("     -> Trace ID: {}", id(&e.trace_id)));
        b.line(format!("     -> Span ID: {}", id(&e.span_id)));
        b.line(format!(
            "     -> Timestamp: {}",
            timestamp(e.time_unix_nano)
        ));
        match e.value {
            Some(exemplar::Value::AsInt(v)) => b.line(format!("     -> Value: {v}")),
            Some(exemplar::Value::AsDouble(v)) => b.line(format!("     -> Value: {}", go_f(v))),
            None => {}
        }
        b.attributes("     -> FilteredAttributes", &e.filtered_attributes);
    }
}

pub fn logs(req: &ExportLogsServiceRequest) -> String {
    let mut b = Buf::default();
    for (i, rl) in req.resource_logs.iter().enumerate() {
        b.line(format!("ResourceLog #{i}"));
        b.line(format!("Resource SchemaURL: {}", rl.schema_url));
        b.resource(rl.resource.as_ref());
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            b.line(format!("ScopeLogs #{j}"));
            b.line(format!("ScopeLogs SchemaURL: {}", sl.schema_url));
            b.scope(sl.scope.as_ref());
            for (k, r) in sl.log_records.iter().enumerate() {
                b.line(format!("LogRecord #{k}"));
                b.line(format!(
                    "ObservedTimestamp: {}",
                    timestamp(r.observed_time_unix_nano)
                ));
                b.line(format!("Timestamp: {}", timestamp(r.time_unix_nano)));
                b.line(format!("SeverityText: {}", r.severity_text));
                b.line(format!(
                    "SeverityNumber: {}({})",
                    names::severity(r.severity_number),
                    r.severity_number
                ));
                if !r.event_name.is_empty() {
                    b.line(format!("EventName: {}", r.event_name));
                }
                b.line(format!("Body: {}", typed(r.body.as_ref())));
                b.attributes("Attributes", &r.attributes);
                b.line(format!("Trace ID: {}", id(&r.trace_id)));
                b.line(format!("Span ID: {}", id(&r.span_id)));
                b.line(format!("Flags: {}", r.flags));
            }
        }
    }
    b.out
}

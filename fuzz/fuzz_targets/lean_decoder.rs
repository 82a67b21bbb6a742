//! The lean wire walker against prost on arbitrary bytes.
//!
//! Differential: `walk` accepts exactly what prost's `ExportTraceServiceRequest::decode`
//! accepts, and on accepted input every resource, scope, span, event, link and attribute the
//! walker reports equals what prost decoded (protobuf merge rules included). Also: the
//! single-pass walk agrees with validate-then-walk, and `Value.AsString()` rendering never
//! panics. Accepted requests then go through what the pipeline does with them: spanmetrics
//! aggregation (with dimensions and a tiny cardinality limit, so the overflow path runs) and
//! the Prometheus renderer in both formats; every counted span must be in `calls`, in
//! `errors` when its status is ERROR, and in the histogram, each time with its sampling
//! adjusted count. The attributes a walk notes for a visitor's keys are the ones a scan
//! finds. The servicegraph connector pairs the same request (both walks, and its
//! expiry) and renders without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use redline_otlp_wire::{
    validate, walk, walk_single_pass, walk_validated, AnyValueView, AttributeIter, ResourceView,
    ScopeView, SpanKeys, SpanView, TraceVisitor,
};
use redline_pipeline::{
    Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource,
};
use redline_prometheus_exporter::{render, Format, RenderOptions};
use redline_spanmetrics::config::Dimension;
use redline_spanmetrics::SpanMetrics;
use std::sync::Arc;

/// An owned attribute value; doubles by bit pattern so NaN compares equal.
#[derive(Debug, PartialEq)]
enum Owned {
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(u64),
    Bytes(Vec<u8>),
    Array(Vec<Owned>),
    Map(Vec<(String, Owned)>),
}

fn from_view(v: &AnyValueView<'_>) -> Owned {
    match v {
        AnyValueView::Empty => Owned::Empty,
        AnyValueView::String(s) => Owned::Str((*s).to_owned()),
        AnyValueView::Bool(b) => Owned::Bool(*b),
        AnyValueView::Int(i) => Owned::Int(*i),
        AnyValueView::Double(f) => Owned::Double(f.to_bits()),
        AnyValueView::Bytes(b) => Owned::Bytes(b.to_vec()),
        AnyValueView::Array(a) => Owned::Array(a.iter().map(|e| from_view(&e)).collect()),
        AnyValueView::KvList(m) => Owned::Map(
            m.iter()
                .map(|kv| (kv.key.to_owned(), from_view(&kv.value)))
                .collect(),
        ),
    }
}

fn from_prost(v: Option<&AnyValue>) -> Owned {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        // OTLP: receivers outside profiling treat the string-table index as absent.
        None | Some(V::StringValueStrindex(_)) => Owned::Empty,
        Some(V::StringValue(s)) => Owned::Str(s.clone()),
        Some(V::BoolValue(b)) => Owned::Bool(*b),
        Some(V::IntValue(i)) => Owned::Int(*i),
        Some(V::DoubleValue(f)) => Owned::Double(f.to_bits()),
        Some(V::BytesValue(b)) => Owned::Bytes(b.clone()),
        Some(V::ArrayValue(a)) => {
            Owned::Array(a.values.iter().map(|e| from_prost(Some(e))).collect())
        }
        Some(V::KvlistValue(m)) => Owned::Map(attrs_prost(&m.values)),
    }
}

fn attrs_view(it: AttributeIter<'_>) -> Vec<(String, Owned)> {
    it.map(|kv| {
        // Rendering must not panic on any accepted value (the label path uses it).
        let _ = kv.value.to_as_string();
        (kv.key.to_owned(), from_view(&kv.value))
    })
    .collect()
}

fn attrs_prost(kvs: &[KeyValue]) -> Vec<(String, Owned)> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), from_prost(kv.value.as_ref())))
        .collect()
}

type Attrs = Vec<(String, Owned)>;
/// time, name, attributes, dropped attributes.
type EventRec = (u64, String, Attrs, u32);
/// trace id, span id, trace state, attributes, dropped attributes, flags.
type LinkRec = (Vec<u8>, Vec<u8>, String, Attrs, u32, u32);

/// Everything one span carries that the walker exposes.
#[derive(Debug, PartialEq)]
struct SpanRec {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    trace_state: String,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    attrs: Vec<(String, Owned)>,
    dropped_attrs: u32,
    events: Vec<EventRec>,
    dropped_events: u32,
    links: Vec<LinkRec>,
    dropped_links: u32,
    status: (i32, String),
    flags: u32,
}

#[derive(Debug, PartialEq)]
enum Item {
    Resource {
        attrs: Vec<(String, Owned)>,
        service_name: Option<String>,
        dropped: u32,
        schema_url: String,
    },
    Scope {
        name: String,
        version: String,
        attrs: Vec<(String, Owned)>,
        dropped: u32,
        schema_url: String,
    },
    Span(Box<SpanRec>),
}

#[derive(Default)]
struct Recorder(Vec<Item>);

impl<'a> TraceVisitor<'a> for Recorder {
    fn resource(&mut self, r: &ResourceView<'a>) {
        self.0.push(Item::Resource {
            attrs: attrs_view(r.attributes()),
            service_name: r.service_name().map(str::to_owned),
            dropped: r.dropped_attributes_count(),
            schema_url: r.schema_url().to_owned(),
        });
    }

    fn scope(&mut self, s: &ScopeView<'a>) {
        self.0.push(Item::Scope {
            name: s.name().to_owned(),
            version: s.version().to_owned(),
            attrs: attrs_view(s.attributes()),
            dropped: s.dropped_attributes_count(),
            schema_url: s.schema_url().to_owned(),
        });
    }

    fn span(&mut self, s: &SpanView<'a>) {
        self.0.push(Item::Span(Box::new(SpanRec {
            trace_id: s.trace_id().to_vec(),
            span_id: s.span_id().to_vec(),
            parent_span_id: s.parent_span_id().to_vec(),
            trace_state: s.trace_state().to_owned(),
            name: s.name().to_owned(),
            kind: s.kind(),
            start: s.start_time_unix_nano(),
            end: s.end_time_unix_nano(),
            attrs: attrs_view(s.attributes()),
            dropped_attrs: s.dropped_attributes_count(),
            events: s
                .events()
                .map(|e| {
                    (
                        e.time_unix_nano(),
                        e.name().to_owned(),
                        attrs_view(e.attributes()),
                        e.dropped_attributes_count(),
                    )
                })
                .collect(),
            dropped_events: s.dropped_events_count(),
            links: s
                .links()
                .map(|l| {
                    (
                        l.trace_id().to_vec(),
                        l.span_id().to_vec(),
                        l.trace_state().to_owned(),
                        attrs_view(l.attributes()),
                        l.dropped_attributes_count(),
                        l.flags(),
                    )
                })
                .collect(),
            dropped_links: s.dropped_links_count(),
            status: (s.status_code(), s.status_message().to_owned()),
            flags: s.flags(),
        })));
    }
}

/// Checks on every span that what the walk noted for `keys` is the first attribute of each
/// key, as a scan finds it.
struct NotedAgrees<'k>(&'k SpanKeys);

impl<'a> TraceVisitor<'a> for NotedAgrees<'a> {
    fn span_keys(&self) -> &'a SpanKeys {
        self.0
    }

    fn span(&mut self, s: &SpanView<'a>) {
        for key in self.0.iter() {
            let scanned = s.attributes().lazy().find(|a| a.key_bytes() == key);
            let noted = s.lazy_attribute(key);
            assert_eq!(
                noted.map(|a| (a.key_bytes(), from_view(&a.value()))),
                scanned.map(|a| (a.key_bytes(), from_view(&a.value()))),
                "noted attribute differs from the scan's"
            );
        }
    }
}

/// What the walker should report for a request prost decoded.
fn expected(req: &ExportTraceServiceRequest) -> Vec<Item> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let res = rs.resource.as_ref();
        let attrs = res.map(|r| attrs_prost(&r.attributes)).unwrap_or_default();
        let service_name = res
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(
                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => s.clone(),
                    _ => String::new(),
                },
            );
        out.push(Item::Resource {
            attrs,
            service_name,
            dropped: res.map_or(0, |r| r.dropped_attributes_count),
            schema_url: rs.schema_url.clone(),
        });
        for ss in &rs.scope_spans {
            let sc = ss.scope.as_ref();
            out.push(Item::Scope {
                name: sc.map(|s| s.name.clone()).unwrap_or_default(),
                version: sc.map(|s| s.version.clone()).unwrap_or_default(),
                attrs: sc.map(|s| attrs_prost(&s.attributes)).unwrap_or_default(),
                dropped: sc.map_or(0, |s| s.dropped_attributes_count),
                schema_url: ss.schema_url.clone(),
            });
            for s in &ss.spans {
                out.push(Item::Span(Box::new(SpanRec {
                    trace_id: s.trace_id.clone(),
                    span_id: s.span_id.clone(),
                    parent_span_id: s.parent_span_id.clone(),
                    trace_state: s.trace_state.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    start: s.start_time_unix_nano,
                    end: s.end_time_unix_nano,
                    attrs: attrs_prost(&s.attributes),
                    dropped_attrs: s.dropped_attributes_count,
                    events: s
                        .events
                        .iter()
                        .map(|e| {
                            (
                                e.time_unix_nano,
                                e.name.clone(),
                                attrs_prost(&e.attributes),
                                e.dropped_attributes_count,
                            )
                        })
                        .collect(),
                    dropped_events: s.dropped_events_count,
                    links: s
                        .links
                        .iter()
                        .map(|l| {
                            (
                                l.trace_id.clone(),
                                l.span_id.clone(),
                                l.trace_state.clone(),
                                attrs_prost(&l.attributes),
                                l.dropped_attributes_count,
                                l.flags,
                            )
                        })
                        .collect(),
                    dropped_links: s.dropped_links_count,
                    status: s
                        .status
                        .as_ref()
                        .map(|st| (st.code, st.message.clone()))
                        .unwrap_or_default(),
                    flags: s.flags,
                })));
            }
        }
    }
    out
}

/// Dimensions (one with a default, one a glob), calls, duration and events each with
/// dimensions of their own (so calls and duration are kept by two stores) and a tiny cardinality limit, so label
/// building, defaults and the overflow series all run.
fn spanmetrics() -> SpanMetrics {
    let dim = |name: &str, default: Option<&str>| Dimension {
        name: name.to_owned(),
        default: default.map(str::to_owned),
        glob: None,
    };
    let config = redline_spanmetrics::Config {
        namespace: "fuzz".to_owned(),
        aggregation_cardinality_limit: 3,
        dimensions: vec![
            dim("a", None),
            dim("b", Some("none")),
            dim("http.method", None),
            Dimension {
                glob: Some("g.*".to_owned()),
                ..Dimension::default()
            },
        ],
        events: redline_spanmetrics::config::EventsConfig {
            enabled: true,
            dimensions: vec![dim("e", None), dim("f", Some("none"))],
        },
        calls_dimensions: vec![dim("c", None)],
        histogram: redline_spanmetrics::config::HistogramConfig {
            dimensions: vec![dim("d", Some("none"))],
            ..Default::default()
        },
        ..Default::default()
    };
    SpanMetrics::new(&config).expect("the fuzz config is valid")
}

/// A tiny store (so the full-store path runs), a dimension, and the multiplier key.
fn servicegraph() -> Arc<redline_servicegraph::ServiceGraph> {
    let config = redline_servicegraph::Config {
        dimensions: vec!["a".to_owned()],
        store: redline_servicegraph::config::StoreConfig {
            max_items: 4,
            ..Default::default()
        },
        virtual_node_extra_label: true,
        span_multiplier_key: Some("m".to_owned()),
        ..Default::default()
    };
    Arc::new(redline_servicegraph::ServiceGraph::new(&config).expect("the fuzz config is valid"))
}

/// Sums each family: calls, errors, and the histogram counts.
#[derive(Default)]
struct Totals {
    family: &'static str,
    calls: u64,
    errors: u64,
    events: u64,
    histogram: u64,
}

impl MetricsSink for Totals {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.family = match (desc.name, desc.kind) {
            ("fuzz.calls", MetricKind::Counter) => "calls",
            ("fuzz.errors", MetricKind::Counter) => "errors",
            ("fuzz.events", MetricKind::Counter) => "events",
            ("fuzz.duration", MetricKind::Histogram | MetricKind::ExponentialHistogram) => {
                "duration"
            }
            _ => "other",
        };
    }
    fn counter(&mut self, _: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
        match self.family {
            "calls" => self.calls += value,
            "errors" => self.errors += value,
            "events" => self.events += value,
            _ => {}
        }
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}
    fn histogram(&mut self, _: &[(&str, &str)], point: &HistogramPoint<'_>) {
        if self.family == "duration" {
            self.histogram += point.count;
            let buckets: u64 = point.bucket_counts.iter().sum();
            assert_eq!(
                buckets, point.count,
                "bucket counts do not add up to the count"
            );
        }
    }
    // The fuzz config has explicit buckets and no other kinds; kept exact anyway.
    fn number(&mut self, _: &[(&str, &str)], _: &redline_pipeline::NumberPoint<'_>) {}
    fn summary(&mut self, _: &[(&str, &str)], _: &redline_pipeline::SummaryPoint<'_>) {}
    fn exponential_histogram(
        &mut self,
        _: &[(&str, &str)],
        point: &redline_pipeline::ExponentialHistogramPoint<'_>,
    ) {
        if self.family == "duration" {
            self.histogram += point.count;
            let buckets: u64 = point.zero_count + point.positive_counts.iter().sum::<u64>();
            assert_eq!(
                buckets, point.count,
                "bucket counts do not add up to the count"
            );
        }
    }
}

/// Aggregates an accepted request and renders it: must not panic, and every span of a
/// resource with a `service.name` is counted exactly once in calls and in the histogram, and
/// in errors when its status is ERROR (Go's connector skips the other resources); each of its
/// events once in events.
fn aggregate_and_render(data: &[u8], req: &ExportTraceServiceRequest) {
    let (mut want_calls, mut want_errors, mut want_events, mut spans) = (0u64, 0u64, 0u64, 0u64);
    for rs in &req.resource_spans {
        let has_service = rs
            .resource
            .as_ref()
            .is_some_and(|r| r.attributes.iter().any(|kv| kv.key == "service.name"));
        if !has_service {
            continue;
        }
        for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            // The coin for fractional counts: the span id's first 8 bytes, 0 when shorter.
            let random = s
                .span_id
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            let weight =
                redline_sampling_tracestate::integer_adjusted_count(&s.trace_state, random)
                    .unwrap_or(1);
            spans += 1;
            want_calls = want_calls.wrapping_add(weight);
            want_events = want_events.wrapping_add(weight.wrapping_mul(s.events.len() as u64));
            if s.status.as_ref().is_some_and(|st| st.code == 2) {
                want_errors = want_errors.wrapping_add(weight);
            }
        }
    }
    let sm = Arc::new(spanmetrics());
    let counted = sm.aggregate(data).expect("an accepted request aggregates");
    assert_eq!(counted as u64, spans, "spans counted");
    let mut totals = Totals::default();
    sm.collect(&mut totals);
    assert_eq!(totals.calls, want_calls, "calls total");
    assert_eq!(totals.errors, want_errors, "errors total");
    assert_eq!(
        totals.events, want_events,
        "events total: one per event of a counted span"
    );
    assert_eq!(totals.histogram, want_calls, "histogram count total");
    let graph = servicegraph();
    let paired = graph.consume(data).expect("an accepted request pairs");
    assert_eq!(
        graph.consume_validated(data).expect("and again, validated"),
        paired,
        "both walks pair the same spans"
    );
    graph.advance_clock(std::time::Duration::from_secs(3));
    graph.expire();
    let sources: Vec<Arc<dyn MetricsSource>> = vec![sm, graph];
    let opts = RenderOptions::new(None, [("k", "v\"\n")], true).expect("valid options");
    for format in [Format::Text, Format::OpenMetrics] {
        let mut out = Vec::new();
        render(&sources, format, &opts, &mut out);
        assert!(
            std::str::from_utf8(&out).is_ok(),
            "rendered output is not UTF-8"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let prost = ExportTraceServiceRequest::decode(data);
    let mut rec = Recorder::default();
    let walked = walk(data, &mut rec);
    match (&prost, &walked) {
        (Ok(_), Ok(_)) | (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("walker refused what prost accepts: {e}"),
        (Err(e), Ok(_)) => panic!("walker accepted what prost refuses: {e}"),
    }
    // The receiver validates once and then walks in one pass: same verdict, same error.
    let single = walk_single_pass(data, &mut Recorder::default());
    assert_eq!(single, walked, "walk_single_pass disagrees with walk");
    // The first keys of the request's first span, and keys the fuzzer writes often.
    let keys = SpanKeys::new(
        prost
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .flat_map(|s| &s.attributes)
            .map(|kv| kv.key.as_bytes())
            .take(5)
            .chain([&b"a"[..], b"http.method", b"k"]),
    );
    if walked.is_ok() {
        walk_single_pass(data, &mut NotedAgrees(&keys)).expect("valid");
        walk_validated(data, &mut NotedAgrees(&keys)).expect("valid");
    }
    assert_eq!(validate(data), walked, "validate disagrees with walk");

    if let (Ok(req), Ok(stats)) = (prost, walked) {
        let want = expected(&req);
        let spans = req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum::<usize>();
        assert_eq!(stats.spans, spans, "span count");
        assert_eq!(stats.resource_spans, req.resource_spans.len());
        assert_eq!(rec.0, want, "walker output differs from prost's decode");
        aggregate_and_render(data, &req);
    }
});

//! Shared test helpers: OTLP request builders (prost types) and a recording MetricsSink.
#![allow(dead_code)]

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_pipeline::{Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink};
use redline_servicegraph::ServiceGraph;

pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;
pub const PRODUCER: i32 = 4;
pub const CONSUMER: i32 = 5;
pub const INTERNAL: i32 = 1;
pub const ERROR: i32 = 2;

pub type Labels = BTreeMap<String, String>;

pub fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

pub fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// A hex id as bytes ("" = empty).
pub fn hex(id: &str) -> Vec<u8> {
    (0..id.len() / 2)
        .map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// A span as the otelcol testdata YAML writes them: ids in hex, times in ns.
#[derive(Clone)]
pub struct S {
    pub trace: &'static str,
    pub id: &'static str,
    pub parent: &'static str,
    pub kind: i32,
    pub start: u64,
    pub end: u64,
    pub attrs: Vec<KeyValue>,
    pub status: i32,
    pub trace_state: &'static str,
}

impl S {
    pub fn new(trace: &'static str, id: &'static str, parent: &'static str, kind: i32) -> Self {
        Self {
            trace,
            id,
            parent,
            kind,
            start: 1_800_000_000_000_000_000,
            end: 1_800_000_000_000_001_000,
            attrs: Vec::new(),
            status: 0,
            trace_state: "",
        }
    }

    pub fn attr(mut self, k: &str, v: Value) -> Self {
        self.attrs.push(kv(k, v));
        self
    }

    pub fn dur_ns(mut self, ns: u64) -> Self {
        self.end = self.start + ns;
        self
    }

    pub fn status(mut self, code: i32) -> Self {
        self.status = code;
        self
    }

    pub fn trace_state(mut self, ts: &'static str) -> Self {
        self.trace_state = ts;
        self
    }

    pub fn build(&self) -> Span {
        Span {
            trace_id: hex(self.trace),
            span_id: hex(self.id),
            parent_span_id: hex(self.parent),
            trace_state: self.trace_state.into(),
            name: "span".into(),
            kind: self.kind,
            start_time_unix_nano: self.start,
            end_time_unix_nano: self.end,
            attributes: self.attrs.clone(),
            status: Some(Status {
                code: self.status,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

pub fn resource(attrs: Vec<KeyValue>, spans: &[S]) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans: spans.iter().map(S::build).collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn service(name: &str, spans: &[S]) -> ResourceSpans {
    resource(vec![kv("service.name", s(name))], spans)
}

pub fn encode(rs: Vec<ResourceSpans>) -> Vec<u8> {
    ExportTraceServiceRequest { resource_spans: rs }.encode_to_vec()
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, Debug)]
pub enum Point {
    Counter(u64),
    Gauge(f64),
    Histogram(Hist),
}

#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub unit: String,
    pub kind: MetricKind,
    pub points: Vec<(Vec<(String, String)>, Point)>,
}

impl Family {
    fn get(&self, l: &Labels) -> Option<&Point> {
        let found: Vec<_> = self
            .points
            .iter()
            .filter(|(pl, _)| pl.iter().cloned().collect::<Labels>() == *l)
            .collect();
        assert!(
            found.len() <= 1,
            "duplicate label set {l:?} in {}",
            self.name
        );
        found.first().map(|(_, p)| p)
    }

    pub fn counter(&self, l: &Labels) -> u64 {
        match self.get(l) {
            Some(Point::Counter(v)) => *v,
            other => panic!(
                "no counter {l:?} in {}: {other:?} ({:?})",
                self.name, self.points
            ),
        }
    }

    pub fn gauge(&self, l: &Labels) -> f64 {
        match self.get(l) {
            Some(Point::Gauge(v)) => *v,
            other => panic!("no gauge {l:?} in {}: {other:?}", self.name),
        }
    }

    pub fn hist(&self, l: &Labels) -> &Hist {
        match self.get(l) {
            Some(Point::Histogram(h)) => h,
            other => panic!(
                "no histogram {l:?} in {}: {other:?} ({:?})",
                self.name, self.points
            ),
        }
    }

    pub fn label_sets(&self) -> Vec<Labels> {
        let mut v: Vec<Labels> = self
            .points
            .iter()
            .map(|(pl, _)| pl.iter().cloned().collect())
            .collect();
        v.sort();
        v
    }
}

#[derive(Default, Debug)]
pub struct Sink {
    pub families: Vec<Family>,
}

impl Sink {
    pub fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    pub fn has(&self, name: &str) -> bool {
        self.families.iter().any(|f| f.name == name)
    }

    fn push(&mut self, labels: &[(&str, &str)], p: Point) {
        let f = self.families.last_mut().expect("family before points");
        f.points.push((
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            p,
        ));
    }
}

impl MetricsSink for Sink {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.families.push(Family {
            name: desc.name.into(),
            unit: desc.unit.into(),
            kind: desc.kind,
            points: Vec::new(),
        });
    }

    fn counter(&mut self, labels: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
        self.push(labels, Point::Counter(value));
    }

    fn gauge(&mut self, labels: &[(&str, &str)], value: f64) {
        self.push(labels, Point::Gauge(value));
    }

    fn histogram(&mut self, labels: &[(&str, &str)], p: &HistogramPoint<'_>) {
        assert_eq!(p.bucket_counts.len(), p.bounds.len() + 1);
        self.push(
            labels,
            Point::Histogram(Hist {
                bounds: p.bounds.to_vec(),
                counts: p.bucket_counts.to_vec(),
                sum: p.sum,
                count: p.count,
                exemplars: p.exemplars.to_vec(),
            }),
        );
    }

    fn number(&mut self, _: &[(&str, &str)], _: &redline_pipeline::NumberPoint<'_>) {
        panic!("no float points");
    }

    fn summary(&mut self, _: &[(&str, &str)], _: &redline_pipeline::SummaryPoint<'_>) {
        panic!("no summaries");
    }

    fn exponential_histogram(
        &mut self,
        _: &[(&str, &str)],
        _: &redline_pipeline::ExponentialHistogramPoint<'_>,
    ) {
        panic!("no exponential histograms");
    }
}

pub fn collect(g: &ServiceGraph) -> Sink {
    let mut sink = Sink::default();
    redline_pipeline::MetricsSource::collect(g, &mut sink);
    sink
}

/// A bucket-count vector with `n` in bucket `i` of `len` buckets.
pub fn one_bucket(len: usize, i: usize, n: u64) -> Vec<u64> {
    let mut v = vec![0; len];
    v[i] = n;
    v
}

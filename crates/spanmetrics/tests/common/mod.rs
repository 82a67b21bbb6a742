//! Shared test helpers: OTLP request builders (prost types) and a recording MetricsSink.
#![allow(dead_code)]

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_pipeline::{Exemplar, FamilyDesc, HistogramPoint, MetricKind, MetricsSink};
use redline_spanmetrics::config::Dimension;
use redline_spanmetrics::Config;

pub type Labels = BTreeMap<String, String>;

pub const MS: u64 = 1_000_000;
pub const SERVER: i32 = 2;
pub const UNSET: i32 = 0;
pub const ERROR: i32 = 2;

/// A dimension, with its default when given.
pub fn dim(name: &str, default: Option<&str>) -> Dimension {
    match default {
        Some(d) => Dimension::with_default(name, d),
        None => Dimension::named(name),
    }
}

/// The reference setup's connector section: its namespace and one dimension.
pub fn reference_config() -> Config {
    Config {
        namespace: "traces.spanmetrics".into(),
        dimensions: vec![Dimension {
            name: "cdn.cache.hit".into(),
            default: None,
            glob: None,
        }],
        ..Config::default()
    }
}

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

pub fn resource(attrs: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: attrs,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn service(name: &str, spans: Vec<Span>) -> ResourceSpans {
    resource(vec![kv("service.name", s(name))], spans)
}

/// A span of `dur_ns` nanoseconds with the given name, kind and status code.
pub fn span(name: &str, kind: i32, status: i32, dur_ns: u64, attrs: Vec<KeyValue>) -> Span {
    let start = 1_700_000_000_000_000_000u64;
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur_ns,
        attributes: attrs,
        status: Some(Status {
            code: status,
            ..Default::default()
        }),
        ..Default::default()
    }
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

#[derive(Clone, Debug)]
pub struct Hist {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
    pub start: u64,
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, Debug)]
pub enum Point {
    Counter {
        value: u64,
        start: u64,
        exemplar: Option<Exemplar>,
    },
    Histogram(Hist),
    Exponential {
        scale: i32,
        offset: i32,
        counts: Vec<u64>,
        zero_count: u64,
        count: u64,
        sum: f64,
    },
}

#[derive(Clone, Debug)]
pub struct Family {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub kind: MetricKind,
    /// Points with their labels in emitted order.
    pub points: Vec<(Vec<(String, String)>, Point)>,
}

impl Family {
    pub fn get(&self, l: &Labels) -> Option<&Point> {
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
            Some(Point::Counter { value, .. }) => *value,
            other => panic!("no counter {l:?} in {}: {other:?}", self.name),
        }
    }

    pub fn hist(&self, l: &Labels) -> &Hist {
        match self.get(l) {
            Some(Point::Histogram(h)) => h,
            other => panic!("no histogram {l:?} in {}: {other:?}", self.name),
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
            .unwrap_or_else(|| panic!("no family {name}; have {:?}", self.names()))
    }

    pub fn names(&self) -> Vec<String> {
        self.families.iter().map(|f| f.name.clone()).collect()
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
            description: desc.description.into(),
            unit: desc.unit.into(),
            kind: desc.kind,
            points: Vec::new(),
        });
    }

    fn counter(
        &mut self,
        labels: &[(&str, &str)],
        value: u64,
        start: u64,
        exemplar: Option<&Exemplar>,
    ) {
        self.push(
            labels,
            Point::Counter {
                value,
                start,
                exemplar: exemplar.copied(),
            },
        );
    }

    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {
        panic!("spanmetrics emits no gauges");
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
                start: p.start_time_unix_nano,
                exemplars: p.exemplars.to_vec(),
            }),
        );
    }

    fn number(&mut self, _: &[(&str, &str)], _: &redline_pipeline::NumberPoint<'_>) {
        panic!("spanmetrics emits no float points");
    }

    fn summary(&mut self, _: &[(&str, &str)], _: &redline_pipeline::SummaryPoint<'_>) {
        panic!("spanmetrics emits no summaries");
    }

    fn exponential_histogram(
        &mut self,
        labels: &[(&str, &str)],
        p: &redline_pipeline::ExponentialHistogramPoint<'_>,
    ) {
        assert!(p.negative_counts.is_empty(), "durations are never negative");
        self.push(
            labels,
            Point::Exponential {
                scale: p.scale,
                offset: p.positive_offset,
                counts: p.positive_counts.to_vec(),
                zero_count: p.zero_count,
                count: p.count,
                sum: p.sum.unwrap_or(f64::NAN),
            },
        );
    }
}

pub fn collect(m: &redline_spanmetrics::SpanMetrics) -> Sink {
    let mut sink = Sink::default();
    redline_pipeline::MetricsSource::collect(m, &mut sink);
    sink
}

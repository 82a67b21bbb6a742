use std::sync::atomic::Ordering;
use std::sync::Mutex;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::metrics::{
    Exemplar, ExponentialHistogramPoint, FamilyDesc, HistogramPoint, MetricsSink, MetricsSource,
    NumberPoint, SummaryPoint,
};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::Reservation;

use super::*;

struct Sink(Arc<Mutex<Vec<Batch>>>);

impl Consumer for Sink {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let got = self.0.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            got.lock().expect("test lock").push(b)
        })))
    }
}

/// Counter points as `name{labels} value` lines.
#[derive(Default)]
struct Lines(Vec<String>, String);

impl MetricsSink for Lines {
    fn family(&mut self, desc: &FamilyDesc<'_>) {
        self.1 = desc.name.to_owned();
    }
    fn counter(&mut self, labels: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
        if self.1.starts_with("otelcol_processor_probabilistic") {
            self.0.push(format!("{}{labels:?} {value}", self.1));
        }
    }
    fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}
    fn histogram(&mut self, _: &[(&str, &str)], _: &HistogramPoint<'_>) {}
    fn number(&mut self, _: &[(&str, &str)], _: &NumberPoint<'_>) {}
    fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {}
    fn exponential_histogram(&mut self, _: &[(&str, &str)], _: &ExponentialHistogramPoint<'_>) {}
}

fn component(body: &str) -> ComponentConfig {
    let text = format!(
        "processors:\n  probabilistic_sampler:\n{body}service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [probabilistic_sampler]\n      exporters: [debug]\n"
    );
    let cfg = redline_pipeline::config::load_str("test.yaml", &text).expect("loads");
    cfg.processors.into_iter().next().expect("one processor")
}

fn spans(trace_ids: &[[u8; 16]]) -> Bytes {
    let spans = trace_ids
        .iter()
        .map(|id| Span {
            trace_id: id.to_vec(),
            span_id: vec![1; 8],
            name: "op".into(),
            ..Default::default()
        })
        .collect();
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(req.encode_to_vec())
}

#[test]
fn a_built_processor_samples_and_counts_on_commit() {
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    let got = Arc::new(Mutex::new(Vec::new()));
    let config = component("    sampling_percentage: 50\n    mode: proportional\n");
    let (consumer, _running) = futures::executor::block_on(ProbabilisticSamplerFactory.build(
        &config,
        &ctx,
        Signal::Traces,
        Arc::new(Sink(got.clone())),
    ))
    .expect("builds");

    // W3C randomness 0x80… passes 50%, 0x7f… does not.
    let mut keep = [0xaa; 16];
    keep[9..].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0]);
    let mut drop = [0xaa; 16];
    drop[9..].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    consumer
        .consume(Batch::traces(spans(&[keep, drop, keep]), 3))
        .expect("taken");
    consumer
        .consume(Batch::traces(spans(&[drop]), 1))
        .expect("taken");

    let got = got.lock().expect("test lock");
    assert_eq!(got.len(), 1, "the all-dropped batch ends in the processor");
    assert_eq!(got[0].items, 2);
    let forwarded = ExportTraceServiceRequest::decode(got[0].raw.as_ref()).expect("valid");
    let states: Vec<&str> = forwarded.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.trace_state.as_str())
        .collect();
    assert_eq!(states, ["ot=th:8", "ot=th:8"]);

    let counters = telemetry.processor("probabilistic_sampler", Signal::Traces);
    assert_eq!(counters.incoming.load(Ordering::Relaxed), 4);
    assert_eq!(counters.outgoing.load(Ordering::Relaxed), 2);
    let mut lines = Lines::default();
    telemetry.collect(&mut lines);
    assert_eq!(
        lines.0,
        [
            r#"otelcol_processor_probabilistic_sampler_count_traces_sampled[("policy", "trace_id_w3c"), ("sampled", "false")] 2"#,
            r#"otelcol_processor_probabilistic_sampler_count_traces_sampled[("policy", "trace_id_w3c"), ("sampled", "true")] 2"#,
        ]
    );
}

#[test]
fn a_batch_nothing_changes_in_travels_as_received() {
    let settings = ProbabilisticSamplerConfig {
        sampling_percentage: Some(100.0),
        mode: Some("equalizing".into()),
        ..Default::default()
    }
    .resolve()
    .expect("valid");
    let family = Telemetry::new().counter_family(stats::TRACES_SAMPLED);
    let sampler = ProbabilisticSampler::new(
        "probabilistic_sampler".into(),
        Signal::Traces,
        settings,
        Arc::new(Stats::new(&family, "")),
    );
    // Already carrying th:0, which 100% equalizing writes again.
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    trace_state: "ot=th:0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (edited, tally) = sampler.sample(&Batch::traces(Bytes::from(req.encode_to_vec()), 1));
    assert!(matches!(edited, Edited::Unchanged));
    assert_eq!(tally.count(Policy::TraceIdW3c, true), 1);
    // Bytes that do not decode are treated as unreadable: dropped when failing closed.
    let (edited, _) = sampler.sample(&Batch::traces(Bytes::from_static(b"\xff\xff"), 1));
    assert!(matches!(edited, Edited::Dropped));
}

#[test]
fn offered_for_traces_and_logs() {
    assert_eq!(
        ProbabilisticSamplerFactory.signals(),
        [Signal::Traces, Signal::Logs]
    );
    assert_eq!(
        ProbabilisticSamplerFactory.type_name(),
        "probabilistic_sampler"
    );
}

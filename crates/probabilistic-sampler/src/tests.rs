use std::sync::atomic::Ordering;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use redline_pipeline::telemetry::Telemetry;
use redline_processor_testkit::{build, component, counters, send, traces_request, CounterSeries};

use super::*;

fn spans(trace_ids: &[[u8; 16]]) -> Vec<u8> {
    let spans = trace_ids
        .iter()
        .map(|id| Span {
            trace_id: id.to_vec(),
            span_id: vec![1; 8],
            name: "op".into(),
            ..Default::default()
        })
        .collect();
    traces_request(spans).encode_to_vec()
}

#[test]
fn a_built_processor_samples_and_counts_on_commit() {
    let config = component(
        "  probabilistic_sampler:\n    sampling_percentage: 50\n    mode: proportional\n",
    );
    let (consumer, sink, telemetry) =
        build(&ProbabilisticSamplerFactory, &config, Signal::Traces).expect("builds");

    // W3C randomness 0x80… passes 50%, 0x7f… does not.
    let mut keep = [0xaa; 16];
    keep[9..].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0]);
    let mut drop = [0xaa; 16];
    drop[9..].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    send(&consumer, Signal::Traces, spans(&[keep, drop, keep]), 3);
    send(&consumer, Signal::Traces, spans(&[drop]), 1);

    let got = sink.take();
    assert_eq!(got.len(), 1, "the all-dropped batch ends in the processor");
    assert_eq!(got[0].items, 2);
    let forwarded = ExportTraceServiceRequest::decode(got[0].raw.as_ref()).expect("valid");
    let states: Vec<&str> = forwarded.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| s.trace_state.as_str())
        .collect();
    assert_eq!(states, ["ot=th:8", "ot=th:8"]);

    let items = telemetry.processor("probabilistic_sampler", Signal::Traces);
    assert_eq!(items.incoming.load(Ordering::Relaxed), 4);
    assert_eq!(items.outgoing.load(Ordering::Relaxed), 2);
    let sampled: Vec<CounterSeries> = counters(&telemetry)
        .into_iter()
        .filter(|(name, _, _)| name.starts_with("otelcol_processor_probabilistic"))
        .collect();
    let series = |sampled: &str, value| {
        (
            "otelcol_processor_probabilistic_sampler_count_traces_sampled".to_owned(),
            vec![
                ("policy".to_owned(), "trace_id_w3c".to_owned()),
                ("sampled".to_owned(), sampled.to_owned()),
            ],
            value,
        )
    };
    assert_eq!(sampled, [series("false", 2), series("true", 2)]);
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
    let req = traces_request(vec![Span {
        trace_id: vec![7; 16],
        trace_state: "ot=th:0".into(),
        ..Default::default()
    }]);
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

//! The probabilistic sampler on arbitrary requests and tracestates.
//!
//! The first byte picks the signal and the sampler settings, the rest is the request. Only
//! inputs prost decodes are sampled (the receiver lets nothing else through); what must hold:
//! no panic, a re-encoded request that decodes with the item count the processor reports,
//! never more items than came in, and every kept span's tracestate readable again. Any UTF-8
//! input is also read as a tracestate: a clean parse writes back what parses the same.

#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_pipeline::edit::Edited;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, Signal};
use redline_probabilistic_sampler::stats::{self, Stats};
use redline_probabilistic_sampler::{ProbabilisticSampler, ProbabilisticSamplerConfig};
use redline_sampling_tracestate::W3cTraceState;

fn sampler(selector: u8, signal: Signal) -> ProbabilisticSampler {
    let modes = ["hash_seed", "proportional", "equalizing"];
    let percentages = [0.0, 10.0, 33.3, 100.0];
    let config = ProbabilisticSamplerConfig {
        sampling_percentage: Some(percentages[usize::from(selector >> 2 & 3)]),
        mode: Some(modes[usize::from(selector >> 4) % 3].into()),
        fail_closed: Some(selector & 0x80 != 0),
        hash_seed: Some(u32::from(selector)),
        attribute_source: Some(
            if selector & 0x40 != 0 {
                "record"
            } else {
                "traceID"
            }
            .into(),
        ),
        from_attribute: Some("a".into()),
        sampling_priority: Some("p".into()),
        ..Default::default()
    };
    let settings = config.resolve().expect("the fuzzer's settings are valid");
    let family = Telemetry::new().counter_family(stats::desc(signal));
    let stats = Arc::new(Stats::new(&family, "a"));
    ProbabilisticSampler::new("probabilistic_sampler".into(), signal, settings, stats)
}

fn items(signal: Signal, raw: &[u8]) -> Option<usize> {
    match signal {
        Signal::Logs => ExportLogsServiceRequest::decode(raw).ok().map(|r| {
            r.resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum()
        }),
        _ => ExportTraceServiceRequest::decode(raw).ok().map(|r| {
            for span in r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
            {
                // A tracestate the sampler wrote reads back (prost keeps what arrived too).
                let _ = W3cTraceState::parse_partial(&span.trace_state);
            }
            r.resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum()
        }),
    }
}

fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let (state, None) = W3cTraceState::parse_partial(text) {
            assert_eq!(
                W3cTraceState::parse(&state.serialize()),
                Ok(state),
                "{text:?}"
            );
        }
    }
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let signal = if selector & 1 == 0 {
        Signal::Traces
    } else {
        Signal::Logs
    };
    let Some(incoming) = items(signal, raw) else {
        return;
    };
    let (edited, _) = sampler(selector, signal).sample(&Batch::new(
        signal,
        Bytes::copy_from_slice(raw),
        incoming,
    ));
    if let Edited::Replaced(batch) = edited {
        assert_eq!(
            items(signal, &batch.raw),
            Some(batch.items),
            "reported item count"
        );
        assert!(
            batch.items <= incoming,
            "{} items out of {incoming}",
            batch.items
        );
    }
}

fuzz_target!(|data: &[u8]| check(data));

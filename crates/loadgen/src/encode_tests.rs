use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::*;
use crate::model::{Generator, ModelConfig};

fn templates(n: u64) -> (Vec<ExportTraceServiceRequest>, Vec<Template>) {
    let g = Generator::new(ModelConfig::default(), 77).expect("model");
    let reqs: Vec<_> = (0..n)
        .map(|i| g.request(i, 1_700_000_000_000_000_000))
        .collect();
    let ts = reqs
        .iter()
        .map(|r| Template::encode(r).expect("encodes"))
        .collect();
    (reqs, ts)
}

/// What instantiating should produce, computed on the decoded structs instead of bytes.
fn expected(req: &ExportTraceServiceRequest, seq: u64, shift: u64) -> ExportTraceServiceRequest {
    let mut r = req.clone();
    for rs in &mut r.resource_spans {
        for ss in &mut rs.scope_spans {
            for s in &mut ss.spans {
                s.trace_id[8..].copy_from_slice(&seq.to_be_bytes());
                let fix = |id: &mut Vec<u8>| {
                    if id.len() == 8 {
                        let mut v = [0u8; 8];
                        v.copy_from_slice(id);
                        *id = ids::span_id_from_low(ids::span_id_low(v), seq).to_vec();
                    }
                };
                fix(&mut s.span_id);
                fix(&mut s.parent_span_id);
                s.start_time_unix_nano += shift;
                s.end_time_unix_nano += shift;
            }
        }
    }
    r
}

#[test]
fn template_is_the_encoded_request() {
    let (reqs, ts) = templates(4);
    for (r, t) in reqs.iter().zip(&ts) {
        assert_eq!(&t.bytes()[..], &r.encode_to_vec()[..]);
        assert_eq!(t.items(), 100);
        assert_eq!(t.instantiate(0, 0), *t.bytes());
    }
}

#[test]
fn patched_copies_decode_to_exactly_the_expected_request() {
    let (reqs, ts) = templates(4);
    for (r, t) in reqs.iter().zip(&ts) {
        for (seq, shift) in [(1u64, 0u64), (12_345, 5_000_000_000), ((1 << 40) - 1, 1)] {
            let got = ExportTraceServiceRequest::decode(t.instantiate(seq, shift))
                .expect("prost decodes");
            assert_eq!(got, expected(r, seq, shift));
            let stats = redline_otlp_wire::validate(&t.instantiate(seq, shift)).expect("walks");
            assert_eq!(stats.spans_with_invalid_ids, 0);
        }
    }
}

#[test]
fn ids_stay_unique_across_replays() {
    let (_, ts) = templates(8);
    let mut seen = HashSet::new();
    let mut traces = HashSet::new();
    for seq in 0..400u64 {
        let t = &ts[(seq % 8) as usize];
        let req = ExportTraceServiceRequest::decode(t.instantiate(seq, 0)).expect("decodes");
        for rs in &req.resource_spans {
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                assert!(
                    seen.insert((s.trace_id.clone(), s.span_id.clone())),
                    "duplicate at seq {seq}"
                );
                assert!(s.span_id.iter().any(|b| *b != 0) && s.trace_id.iter().any(|b| *b != 0));
                traces.insert(s.trace_id.clone());
            }
        }
    }
    assert_eq!(seen.len(), 400 * 100);
    // Span ids alone are unique too, and traces are never shared between sends.
    let span_ids: HashSet<_> = seen.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(span_ids.len(), seen.len());
    assert!(traces.len() >= 400 * 5);
}

#[test]
fn offsets_are_found_in_requests_of_every_size() {
    let g = Generator::new(
        ModelConfig {
            spans_per_request: 1,
            attributes: 0,
            ..Default::default()
        },
        1,
    )
    .expect("model");
    let t = Template::encode(&g.request(0, 0)).expect("encodes");
    assert_eq!(t.items(), 1);
    assert!(ExportTraceServiceRequest::decode(t.instantiate(3, 7)).is_ok());
    let empty = Template::encode(&ExportTraceServiceRequest::default()).expect("empty encodes");
    assert!(empty.is_empty());
    assert_eq!(empty.items(), 0);
}

#[test]
fn ids_outside_the_layout_are_refused() {
    let g = Generator::new(ModelConfig::default(), 1).expect("model");
    let mut r = g.request(0, 0);
    r.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![1; 15];
    assert!(matches!(
        Template::encode(&r),
        Err(EncodeError::Layout { .. })
    ));
}

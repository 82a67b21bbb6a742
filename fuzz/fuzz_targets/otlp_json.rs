//! The OTLP/HTTP JSON path of the receiver on arbitrary bytes: `json_to_protobuf` must never
//! panic (or overflow the stack), and whatever it produces must be a request the lean walker
//! and prost agree on, since the receiver hands it to the walker next.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_receiver::json_to_protobuf;
use redline_otlp_wire::{validate, WireErrorKind};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = json_to_protobuf(data) else {
        return;
    };
    let walked = validate(&raw);
    let decoded = ExportTraceServiceRequest::decode(&raw[..]);
    match (&walked, &decoded) {
        (Ok(stats), Ok(req)) => {
            let spans: usize = req
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum();
            assert_eq!(stats.spans, spans, "span count after JSON conversion");
            // The conversion is canonical: encoding what prost read back gives the same bytes.
            assert_eq!(req.encode_to_vec(), &raw[..], "re-encoding is not stable");
        }
        // serde_json nests 128 levels, prost and the walker 100: JSON can build a request
        // too deep to decode again, which the receiver then refuses as malformed.
        (Err(e), Err(_)) => assert_eq!(e.kind(), &WireErrorKind::TooDeep, "{e}"),
        (Ok(_), Err(e)) => panic!("walker accepts converted JSON that prost refuses: {e}"),
        (Err(e), Ok(_)) => panic!("walker refuses converted JSON that prost accepts: {e}"),
    }
});

//! The `zipkin` receiver's decoding and translation on arbitrary bytes: the first byte picks
//! JSON or protobuf and `parse_string_tags`, the rest is the body. It must never panic, and a
//! request it produces must be one the lean walker and prost both take with the span count
//! the translation reported, since the pipeline trusts that count.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_wire::validate;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (protobuf, typed) = (mode & 1 == 1, mode & 2 == 2);
    let Ok((raw, spans)) = redline_zipkin_receiver::translate(body, protobuf, typed) else {
        return;
    };
    let stats = match validate(&raw) {
        Ok(stats) => stats,
        Err(e) => panic!("the walker refuses a translated request: {e}"),
    };
    assert_eq!(stats.spans, spans, "span count");
    let decoded = match ExportTraceServiceRequest::decode(&raw[..]) {
        Ok(decoded) => decoded,
        Err(e) => panic!("prost refuses a translated request: {e}"),
    };
    let decoded_spans: usize = decoded
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    assert_eq!(decoded_spans, spans, "span count after decoding");
});

//! The check every translating receiver's target makes: a request it produced must be one
//! the lean walker and prost both take, with the span count the translation reported, since
//! the pipeline trusts that count.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use redline_otlp_wire::validate;

pub fn check(raw: &[u8], spans: usize) {
    let stats = match validate(raw) {
        Ok(stats) => stats,
        Err(e) => panic!("the walker refuses a translated request: {e}"),
    };
    assert_eq!(stats.spans, spans, "span count");
    let decoded = match ExportTraceServiceRequest::decode(raw) {
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
}

//! OTLP/HTTP with OTLP/JSON bodies: the specification's example converts to the protobuf a
//! protobuf client would have sent, and answers come back in JSON.

mod common;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;

use common::http_client::{post, PB};
use common::requests::SPEC_JSON;
use common::Receiver;

#[tokio::test]
async fn http_json_export_follows_otlp_json_encoding() {
    let h = Receiver::both().await;
    let a = post(&h.traces_url(), Some("application/json"), None, SPEC_JSON).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    assert_eq!(a.body.as_ref(), b"{}");

    let got = h.batches();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].items, 1);
    let req = ExportTraceServiceRequest::decode(got[0].raw.clone()).expect("protobuf");
    let rs = &req.resource_spans[0];
    let s = &rs.scope_spans[0].spans[0];
    assert_eq!(
        s.trace_id,
        [
            0x5B, 0x8E, 0xFF, 0xF7, 0x98, 0x03, 0x81, 0x03, 0xD2, 0x69, 0xB6, 0x33, 0x81, 0x3F,
            0xC6, 0x0C
        ]
    );
    assert_eq!(s.span_id, [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74]);
    assert_eq!(
        s.parent_span_id,
        [0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x73]
    );
    assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(s.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(s.kind, 2);
    assert_eq!(s.status.as_ref().map(|st| st.code), Some(2));
    assert_eq!(s.attributes.len(), 3);
    assert_eq!(
        s.attributes[1].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(42))
    );
    assert_eq!(
        s.attributes[2].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(7))
    );
    assert_eq!(
        rs.scope_spans[0].scope.as_ref().map(|sc| sc.name.as_str()),
        Some("my.library")
    );

    // The same request sent as protobuf yields the same bytes: JSON is converted exactly once.
    let a = post(&h.traces_url(), Some(PB), None, req.encode_to_vec()).await;
    assert_eq!(a.status, 200);
    let got = h.batches();
    assert_eq!(got[1].raw, got[0].raw);
    h.shutdown().await;
}

#[tokio::test]
async fn http_json_partial_success() {
    let h = Receiver::both().await;
    let body = SPEC_JSON.replace("5B8EFFF798038103D269B633813FC60C", "");
    let a = post(&h.traces_url(), Some("application/json"), None, body).await;
    assert_eq!(a.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v["partialSuccess"]["rejectedSpans"], 1);
    assert!(v["partialSuccess"]["errorMessage"].is_string());
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

//! A pipeline that refuses: gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After, in
//! both OTLP/HTTP encodings, counted as refused.

mod common;

use std::time::Duration;

use prost::Message;
use tonic::Code;

use common::http_client::{post, PB};
use common::requests::{request, span, SPEC_JSON};
use common::{loopback_config, rpc, Receiver, Recorder};

#[tokio::test]
async fn grpc_refusal_is_unavailable_with_retry_info() {
    let recorder = Recorder::refusing(Duration::from_millis(2500));
    let h = Receiver::start(loopback_config(), recorder).await;
    let err = h
        .grpc_client()
        .await
        .export(request(vec![span(1), span(2)]))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unavailable);
    let status = rpc::Status::decode(err.details()).expect("details are a google.rpc.Status");
    assert_eq!(status.code, 14);
    assert_eq!(status.details.len(), 1);
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    let retry = rpc::RetryInfo::decode(status.details[0].value.as_slice()).expect("RetryInfo");
    let delay = retry.retry_delay.expect("delay set");
    assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));
    assert_eq!(h.refused("grpc"), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn http_refusal_is_503_with_retry_after() {
    let recorder = Recorder::refusing(Duration::from_millis(2500));
    let h = Receiver::start(loopback_config(), recorder).await;
    let url = h.traces_url();
    let a = post(&url, Some(PB), None, request(vec![span(1)]).encode_to_vec()).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "3");
    let status = rpc::Status::decode(a.body).expect("protobuf status");
    assert_eq!(status.code, 14);
    let retry = rpc::RetryInfo::decode(status.details[0].value.as_slice()).expect("RetryInfo");
    assert_eq!(retry.retry_delay.map(|d| d.seconds), Some(2));

    let a = post(&url, Some("application/json"), None, SPEC_JSON).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.headers["retry-after"], "3");
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v["code"], 14);
    assert_eq!(v["details"][0]["retryDelay"], "2.5s");
    assert_eq!(h.refused("http"), 2);
    h.shutdown().await;
}

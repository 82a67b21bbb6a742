//! Span taps: a consumer that reads traces requests (the spanmetrics connector) does it
//! during the receiver's validating walk. What a tap saw counts only for a request that was
//! valid and accepted, and the batch then carries a receipt its consumer claims once.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;

use common::http_client::{post, PB};
use common::requests::{gzip, request, request_of, span};
use common::{loopback_config, CountingTap, Receiver, Recorder};
use redline_pipeline::TapId;

fn tapped(refuse: Option<Duration>) -> (Recorder, TapId, Arc<CountingTap>) {
    let id = TapId::unique();
    let tap = Arc::new(CountingTap::default());
    let recorder = Recorder {
        refuse,
        tap: Some((id, tap.clone())),
        ..Recorder::default()
    };
    (recorder, id, tap)
}

#[tokio::test]
async fn an_accepted_request_counts_once_through_the_tap_and_the_batch_is_claimable_once() {
    let (recorder, id, tap) = tapped(None);
    let h = Receiver::start(loopback_config(), recorder).await;
    h.grpc_client()
        .await
        .export(request_of(7))
        .await
        .expect("accepted");
    let body = request_of(5).encode_to_vec();
    let a = post(&h.traces_url(), Some(PB), None, body.clone()).await;
    assert_eq!(a.status, 200);
    let a = post(&h.traces_url(), Some(PB), Some("gzip"), gzip(&body)).await;
    assert_eq!(a.status, 200);

    assert_eq!(tap.committed_spans.load(Ordering::SeqCst), 7 + 5 + 5);
    assert_eq!(tap.committed_walks.load(Ordering::SeqCst), 3);
    let batches = h.batches();
    assert_eq!(batches.len(), 3);
    for b in &batches {
        assert!(
            b.claim_tap(id),
            "the tap's consumer skips what the tap counted"
        );
        assert!(
            !b.claim_tap(id),
            "a second delivery of the same bytes counts again"
        );
        assert!(!b.claim_tap(TapId::unique()), "no other tap walked it");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_refused_request_counts_nothing() {
    let (recorder, _, tap) = tapped(Some(Duration::from_secs(1)));
    let h = Receiver::start(loopback_config(), recorder).await;
    h.grpc_client()
        .await
        .export(request_of(4))
        .await
        .expect_err("refused");
    let a = post(
        &h.traces_url(),
        Some(PB),
        None,
        request_of(3).encode_to_vec(),
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!(h.refused("grpc") + h.refused("http"), 7);
    assert_eq!(tap.committed_spans.load(Ordering::SeqCst), 0);
    assert_eq!(tap.committed_walks.load(Ordering::SeqCst), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn a_malformed_request_counts_nothing_though_the_tap_saw_its_first_spans() {
    let (recorder, _, tap) = tapped(None);
    let h = Receiver::start(loopback_config(), recorder).await;
    // Three valid spans, then a field whose length runs past the end.
    let mut body = request_of(3).encode_to_vec();
    body.extend_from_slice(&[0x0a, 0x7f, 0x01]);
    let a = post(&h.traces_url(), Some(PB), None, body).await;
    assert_eq!(a.status, 400);
    assert_eq!(tap.committed_spans.load(Ordering::SeqCst), 0);
    assert!(h.batches().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn spans_with_invalid_ids_leave_the_reencoded_batch_to_its_consumer() {
    let (recorder, id, tap) = tapped(None);
    let h = Receiver::start(loopback_config(), recorder).await;
    let mut bad = span(9);
    bad.trace_id = vec![0; 16];
    let body = request(vec![span(1), bad, span(2)]).encode_to_vec();
    let a = post(&h.traces_url(), Some(PB), None, body).await;
    assert_eq!(a.status, 200, "a partial success");
    // The tap saw all three spans, the rejected one included: its walk is dropped, and the
    // consumer reads the re-encoded batch (two spans) itself.
    assert_eq!(tap.committed_walks.load(Ordering::SeqCst), 0);
    let batches = h.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].items, 2);
    assert!(!batches[0].claim_tap(id));
    h.shutdown().await;
}

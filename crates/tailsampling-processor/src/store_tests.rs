use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::*;

fn limits(wait_ticks: u64, num_traces: usize) -> Limits {
    Limits {
        wait_ticks,
        root_wait_ticks: None,
        num_traces,
        max_trace_bytes: 0,
    }
}

fn group(id: u8, spans: i64, has_root: bool) -> TraceGroup {
    TraceGroup {
        id: [id; 16],
        spans: ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default(); spans as usize],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }
        .encode_to_vec()
        .into(),
        span_count: spans,
        size_bytes: 10 * spans as u64,
        has_root,
    }
}

#[test]
fn a_trace_is_due_decision_wait_ticks_after_the_next_tick() {
    let mut store = Store::new(limits(2, 10), 0, 0);
    assert_eq!(
        store.add(group(1, 1, false)).0,
        Added::Held { new_trace: true }
    );
    store.next_tick();
    assert_eq!(
        store.add(group(1, 2, false)).0,
        Added::Held { new_trace: false }
    );
    assert_eq!(
        store.add(group(2, 1, false)).0,
        Added::Held { new_trace: true }
    );
    assert_eq!(store.next_tick(), (vec![], 0));
    assert_eq!(
        store.next_tick(),
        (vec![[1; 16]], 0),
        "first seen before tick 1: due at 3"
    );
    assert_eq!(store.next_tick(), (vec![[2; 16]], 0));
    let held = store.get_mut(&[1; 16]).expect("held");
    assert_eq!((held.data.span_count, held.data.batches.len()), (3, 2));
}

#[test]
fn a_root_span_brings_the_decision_forward_never_back() {
    let mut store = Store::new(
        Limits {
            root_wait_ticks: Some(0),
            ..limits(5, 10)
        },
        0,
        0,
    );
    store.add(group(1, 1, false));
    store.add(group(1, 1, true));
    assert_eq!(store.next_tick(), (vec![[1; 16]], 0));
    assert_eq!(
        store.take_all(),
        (vec![], 0),
        "its later entry no longer counts"
    );
}

#[test]
fn a_decided_trace_keeps_deciding_its_late_spans_until_evicted() {
    let mut store = Store::new(limits(1, 2), 0, 0);
    store.add(group(1, 1, false));
    store.add(group(2, 1, false));
    store.next_tick();
    let (due, _) = store.next_tick();
    assert_eq!(due.len(), 2);
    store.decided([1; 16], Decision::Sampled);
    store.decided([2; 16], Decision::NotSampled);
    assert!(matches!(
        store.add(group(1, 1, false)),
        (Added::Forward { from_cache: false }, Some(_))
    ));
    assert_eq!(
        store.add(group(2, 1, false)).0,
        Added::Discard { from_cache: false }
    );
    // A third trace takes the oldest one's room: trace 1 is forgotten.
    store.add(group(3, 1, false));
    assert_eq!(store.len(), 2);
    assert!(!store.is_sampled(&[1; 16]));
    assert_eq!(
        store.add(group(1, 1, false)).0,
        Added::Held { new_trace: true }
    );
}

#[test]
fn an_evicted_trace_is_counted_when_it_falls_due() {
    let mut store = Store::new(limits(1, 1), 0, 0);
    store.add(group(1, 1, false));
    store.add(group(2, 1, false));
    store.next_tick();
    assert_eq!(store.next_tick(), (vec![[2; 16]], 1));
}

#[test]
fn with_caches_a_decided_trace_leaves_and_the_cache_answers() {
    let mut store = Store::new(limits(1, 10), 1, 1);
    store.add(group(1, 1, false));
    store.add(group(2, 1, false));
    store.decided([1; 16], Decision::Sampled);
    store.decided([2; 16], Decision::Dropped);
    assert_eq!(store.len(), 0);
    assert!(store.is_sampled(&[1; 16]));
    assert!(matches!(
        store.add(group(1, 2, false)),
        (Added::Forward { from_cache: true }, Some(_))
    ));
    assert_eq!(
        store.add(group(2, 1, false)).0,
        Added::Discard { from_cache: true }
    );
    // Capacity one: a second sampled trace pushes the first out of the cache.
    store.decided([3; 16], Decision::Sampled);
    assert!(!store.is_sampled(&[1; 16]));
}

#[test]
fn a_trace_past_the_size_limit_is_not_sampled() {
    let mut store = Store::new(
        Limits {
            max_trace_bytes: 25,
            ..limits(1, 10)
        },
        0,
        0,
    );
    assert_eq!(
        store.add(group(1, 2, false)).0,
        Added::Held { new_trace: true }
    );
    assert_eq!(store.add(group(1, 1, false)).0, Added::TooLarge);
    assert_eq!(
        store.add(group(1, 1, false)).0,
        Added::Discard { from_cache: false }
    );
    store.next_tick();
    assert_eq!(store.next_tick(), (vec![], 0), "decided already");
}

#[test]
fn the_lru_forgets_the_least_recently_used() {
    let mut lru = Lru::new(2);
    lru.put([1; 16]);
    lru.put([2; 16]);
    assert!(lru.get(&[1; 16]));
    lru.put([3; 16]);
    assert!(lru.contains(&[1; 16]) && lru.contains(&[3; 16]));
    assert!(!lru.contains(&[2; 16]));
    assert!(!Lru::new(0).put([1; 16]));
}

//! The pairing store: bounded by `store.max_items`, expiry after `store.ttl`, own telemetry.

mod common;

use std::time::Duration;

use common::*;
use redline_servicegraph::config::StoreConfig;
use redline_servicegraph::{Config, ServiceGraph, REQUEST_TOTAL};

fn trace(i: u32) -> &'static str {
    Box::leak(format!("{:032x}", 0xc000_0000_u64 + u64::from(i)).into_boxed_str())
}

fn small_store(max_items: i64) -> ServiceGraph {
    ServiceGraph::new(&Config {
        store: StoreConfig {
            max_items,
            ttl: Duration::from_secs(2),
        },
        ..Config::default()
    })
    .expect("valid")
}

/// `n` client spans of distinct traces that will never see their server span.
fn half_open(first: u32, n: u32) -> Vec<u8> {
    let spans: Vec<S> = (first..first + n)
        .map(|i| S::new(trace(i), "d000000000000001", "", CLIENT))
        .collect();
    encode(vec![service("foo", &spans)])
}

#[test]
fn max_items_bounds_the_store_and_counts_every_dropped_span() {
    let g = small_store(10);
    for batch in 0..20 {
        g.consume(&half_open(batch * 50, 50)).expect("valid");
        assert!(g.store_len() <= 10, "batch {batch}: {}", g.store_len());
    }
    assert_eq!(g.store_len(), 10);
    assert_eq!(g.total_edges(), 10);
    assert_eq!(g.dropped_spans(), 990);
    // The first ten spans were admitted: a server span of trace 0 still pairs with its
    // client, and the completed edge leaves the store.
    let held = trace(0);
    g.consume(&encode(vec![service(
        "bar",
        &[S::new(held, "e000000000000001", "d000000000000001", SERVER)],
    )]))
    .expect("valid");
    assert_eq!(
        g.store_len(),
        9,
        "the first trace's edge was admitted and completed"
    );
    assert_eq!(
        collect(&g).family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("server", "bar"),
            ("connection_type", ""),
            ("failed", "false"),
        ])),
        1
    );
}

#[test]
fn a_full_store_makes_room_from_expired_edges() {
    let g = small_store(10);
    g.consume(&half_open(0, 10)).expect("valid");
    assert_eq!(g.store_len(), 10);
    g.consume(&half_open(10, 1)).expect("valid");
    assert_eq!(g.dropped_spans(), 1);
    g.advance_clock(Duration::from_secs(3));
    // No expiry loop ran: the new span itself sweeps expired edges (at least its own
    // shard's, which hash seeds decide) to make room.
    g.consume(&half_open(11, 1)).expect("valid");
    assert_eq!(g.dropped_spans(), 1);
    assert_eq!(g.total_edges(), 11);
    let swept = g.expired_edges();
    assert!((1..=10).contains(&swept), "{swept}");
    assert_eq!(g.store_len() as u64, 10 - swept + 1);
    // The loop expires the rest; the new edge is not due yet.
    assert_eq!(g.expire() as u64, 10 - swept);
    assert_eq!(g.expired_edges(), 10);
    assert_eq!(g.store_len(), 1);
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("server", "unknown"),
            ("connection_type", "virtual_node"),
            ("failed", "false"),
        ])),
        10
    );
}

#[test]
fn edges_expire_after_ttl_not_before() {
    let g = small_store(1000);
    g.consume(&half_open(0, 3)).expect("valid");
    g.advance_clock(Duration::from_millis(1500));
    assert_eq!(g.expire(), 0);
    assert_eq!(g.store_len(), 3);
    assert!(collect(&g).family(REQUEST_TOTAL).points.is_empty());
    g.advance_clock(Duration::from_millis(1000));
    assert_eq!(g.expire(), 3);
    assert_eq!(g.store_len(), 0);
    assert_eq!(g.expired_edges(), 3);
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("server", "unknown"),
            ("connection_type", "virtual_node"),
            ("failed", "false"),
        ])),
        3
    );
}

#[test]
fn without_peer_attributes_expired_edges_are_only_counted() {
    let g = ServiceGraph::new(&Config {
        virtual_node_peer_attributes: Some(vec![]),
        ..Config::default()
    })
    .expect("valid");
    g.consume(&half_open(0, 2)).expect("valid");
    // A root server span too: no `user` node without virtual nodes.
    g.consume(&encode(vec![service(
        "bar",
        &[S::new(trace(7), "e000000000000001", "", SERVER)],
    )]))
    .expect("valid");
    g.advance_clock(Duration::from_secs(3));
    assert_eq!(g.expire(), 3);
    assert_eq!(g.expired_edges(), 3);
    assert!(collect(&g).family(REQUEST_TOTAL).points.is_empty());
}

#[test]
fn a_server_span_with_a_parent_that_never_comes_is_not_a_user_edge() {
    let g = small_store(1000);
    g.consume(&encode(vec![service(
        "bar",
        &[S::new(
            trace(1),
            "e000000000000001",
            "d000000000000001",
            SERVER,
        )],
    )]))
    .expect("valid");
    g.advance_clock(Duration::from_secs(3));
    assert_eq!(g.expire(), 1);
    assert!(collect(&g).family(REQUEST_TOTAL).points.is_empty());
}

#[test]
fn idle_series_are_cleaned_after_fifteen_minutes() {
    let g = small_store(1000);
    g.consume(&encode(vec![
        service("foo", &[S::new(trace(1), "d000000000000001", "", CLIENT)]),
        service(
            "bar",
            &[S::new(
                trace(1),
                "e000000000000001",
                "d000000000000001",
                SERVER,
            )],
        ),
    ]))
    .expect("valid");
    g.advance_clock(Duration::from_secs(14 * 60));
    assert_eq!(g.clean_series(), 0);
    assert_eq!(g.series_count(), 1);
    g.advance_clock(Duration::from_secs(60));
    assert_eq!(g.clean_series(), 1);
    assert_eq!(g.series_count(), 0);
    assert!(collect(&g).family(REQUEST_TOTAL).points.is_empty());
}

#[test]
fn an_expired_edge_in_any_shard_makes_room() {
    // With one item, the expired edge mostly sits in another shard than the new one.
    let g = small_store(1);
    for i in 0..20 {
        g.consume(&half_open(i, 1)).expect("valid");
        assert_eq!(g.store_len(), 1);
        g.advance_clock(Duration::from_secs(3));
    }
    assert_eq!(g.dropped_spans(), 0);
    assert_eq!(g.expired_edges(), 19);
    assert_eq!(g.total_edges(), 20);
}

#[test]
fn halves_of_each_edge_from_two_threads_pair_exactly() {
    let g = small_store(10_000);
    let trace_ids: Vec<&'static str> = (0..2000).map(trace).collect();
    let clients: Vec<Vec<u8>> = trace_ids
        .chunks(100)
        .map(|ts| {
            let spans: Vec<S> = ts
                .iter()
                .map(|t| S::new(t, "d000000000000001", "", CLIENT))
                .collect();
            encode(vec![service("foo", &spans)])
        })
        .collect();
    let servers: Vec<Vec<u8>> = trace_ids
        .chunks(100)
        .rev()
        .map(|ts| {
            let spans: Vec<S> = ts
                .iter()
                .map(|t| S::new(t, "e000000000000001", "d000000000000001", SERVER))
                .collect();
            encode(vec![service("bar", &spans)])
        })
        .collect();
    std::thread::scope(|scope| {
        for reqs in [&clients, &servers] {
            let g = &g;
            scope.spawn(move || {
                for r in reqs {
                    g.consume(r).expect("valid");
                }
            });
        }
    });
    assert_eq!(g.store_len(), 0);
    assert_eq!(g.total_edges(), 2000);
    assert_eq!(g.dropped_spans(), 0);
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("server", "bar"),
            ("connection_type", ""),
            ("failed", "false"),
        ])),
        2000
    );
}

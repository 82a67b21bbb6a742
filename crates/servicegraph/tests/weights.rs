//! Sampling weights: a request counts as its adjusted count (`ot=th:`), or as
//! `span_multiplier_key`'s value, in every family.

mod common;

use std::time::Duration;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use redline_servicegraph::{
    Config, ServiceGraph, REQUEST_CLIENT, REQUEST_FAILED_TOTAL, REQUEST_SERVER, REQUEST_TOTAL,
};

const T0: &str = "a0000000000000000000000000000000";
const S0: &str = "a000000000000000";
const S1: &str = "a000000000000001";

fn foo_bar(failed: bool) -> Labels {
    labels(&[
        ("client", "foo"),
        ("server", "bar"),
        ("connection_type", ""),
        ("failed", if failed { "true" } else { "false" }),
    ])
}

fn pair(g: &ServiceGraph, client: S, server: S) {
    g.consume(&encode(vec![
        service("foo", &[client]),
        service("bar", &[server]),
    ]))
    .expect("valid");
}

#[test]
fn threshold_e_counts_eight_everywhere() {
    let g = ServiceGraph::new(&Config::default()).expect("valid");
    pair(
        &g,
        S::new(T0, S0, "", CLIENT)
            .trace_state("ot=th:e")
            .dur_ns(5_000_000),
        S::new(T0, S1, S0, SERVER)
            .trace_state("ot=th:e")
            .dur_ns(3_000_000)
            .status(ERROR),
    );
    let m = collect(&g);
    let l = foo_bar(true);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 8);
    assert_eq!(m.family(REQUEST_FAILED_TOTAL).counter(&l), 8);
    let srv = m.family(REQUEST_SERVER).hist(&l);
    assert_eq!(srv.counts, one_bucket(17, 1, 8));
    assert_eq!(srv.count, 8);
    assert!((srv.sum - 0.024).abs() < 1e-12, "{}", srv.sum);
    let cli = m.family(REQUEST_CLIENT).hist(&l);
    assert_eq!(cli.counts, one_bucket(17, 2, 8));
    assert_eq!(cli.count, 8);
    assert!((cli.sum - 0.040).abs() < 1e-12, "{}", cli.sum);
}

#[test]
fn threshold_zero_and_no_tracestate_count_one() {
    let g = ServiceGraph::new(&Config::default()).expect("valid");
    pair(
        &g,
        S::new(T0, S0, "", CLIENT).trace_state("ot=th:0"),
        S::new(T0, S1, S0, SERVER).trace_state("ot=th:0"),
    );
    pair(
        &g,
        S::new("b0000000000000000000000000000000", S0, "", CLIENT),
        S::new("b0000000000000000000000000000000", S1, S0, SERVER),
    );
    let m = collect(&g);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&foo_bar(false)), 2);
    assert_eq!(m.family(REQUEST_SERVER).hist(&foo_bar(false)).count, 2);
}

#[test]
fn the_server_spans_weight_wins() {
    let g = ServiceGraph::new(&Config::default()).expect("valid");
    // Server sampled at 1/8, client unsampled information: 8.
    pair(
        &g,
        S::new(T0, S0, "", CLIENT),
        S::new(T0, S1, S0, SERVER).trace_state("ot=th:e"),
    );
    // Client 1/8, server without information: the server span is there, so 1.
    pair(
        &g,
        S::new("b0000000000000000000000000000000", S0, "", CLIENT).trace_state("ot=th:e"),
        S::new("b0000000000000000000000000000000", S1, S0, SERVER),
    );
    let m = collect(&g);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&foo_bar(false)), 9);
}

#[test]
fn client_only_edges_weigh_as_the_client_span() {
    let g = ServiceGraph::new(&Config::default()).expect("valid");
    let db = S::new(T0, S0, "", CLIENT)
        .trace_state("ot=th:e")
        .attr("db.name", s("orders"));
    let lonely = S::new("b0000000000000000000000000000000", S0, "", CLIENT)
        .trace_state("ot=th:c")
        .attr("peer.service", s("billing"));
    g.consume(&encode(vec![service("foo", &[db, lonely])]))
        .expect("valid");
    g.advance_clock(Duration::from_secs(3));
    assert_eq!(g.expire(), 1);
    let m = collect(&g);
    let total = m.family(REQUEST_TOTAL);
    assert_eq!(
        total.counter(&labels(&[
            ("client", "foo"),
            ("server", "orders"),
            ("connection_type", "database"),
            ("failed", "false")
        ])),
        8
    );
    assert_eq!(
        total.counter(&labels(&[
            ("client", "foo"),
            ("server", "billing"),
            ("connection_type", "virtual_node"),
            ("failed", "false")
        ])),
        4
    );
}

#[test]
fn span_multiplier_key_from_span_then_resource_beats_the_tracestate() {
    let g = ServiceGraph::new(&Config {
        span_multiplier_key: Some("X-SampleRatio".into()),
        ..Config::default()
    })
    .expect("valid");
    // Span attribute 3 (an int) on the server span, tracestate 1/8 ignored.
    pair(
        &g,
        S::new(T0, S0, "", CLIENT).trace_state("ot=th:e"),
        S::new(T0, S1, S0, SERVER)
            .trace_state("ot=th:e")
            .attr("X-SampleRatio", Value::IntValue(3)),
    );
    // Resource attribute 5.0 on the client's resource, none on the server: 5.
    let client = resource(
        vec![
            kv("service.name", s("foo")),
            kv("X-SampleRatio", Value::DoubleValue(5.0)),
        ],
        &[S::new("b0000000000000000000000000000000", S0, "", CLIENT)],
    );
    let server = service(
        "bar",
        &[S::new("b0000000000000000000000000000000", S1, S0, SERVER)],
    );
    g.consume(&encode(vec![client, server])).expect("valid");
    let m = collect(&g);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&foo_bar(false)), 8);
    assert_eq!(m.family(REQUEST_CLIENT).hist(&foo_bar(false)).count, 8);
}

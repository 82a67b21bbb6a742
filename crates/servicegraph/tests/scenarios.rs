//! otelcol's testdata scenarios (`connector/servicegraphconnector/testdata`), the trace YAML
//! translated into spans, the expected values from the expected-metrics YAML.

mod common;

use std::time::Duration;

use common::*;
use redline_servicegraph::{
    Config, ServiceGraph, REQUEST_CLIENT, REQUEST_FAILED_TOTAL, REQUEST_SERVER, REQUEST_TOTAL,
};

const T0: &str = "a0000000000000000000000000000000";
const T1: &str = "a0000000000000000000000000000001";
const S0: &str = "a000000000000000";
const S1: &str = "a000000000000001";

fn buckets_01_1_10() -> Option<Vec<Duration>> {
    Some(vec![
        Duration::from_millis(100),
        Duration::from_secs(1),
        Duration::from_secs(10),
    ])
}

fn graph(config: Config) -> ServiceGraph {
    ServiceGraph::new(&config).expect("valid config")
}

/// Past `store.ttl` (2 s by default), then the store expiration loop's work.
fn expire_all(g: &ServiceGraph) -> usize {
    g.advance_clock(Duration::from_secs(3));
    g.expire()
}

#[test]
fn messaging_system_trace_pairs_client_and_server() {
    let g = graph(Config::default());
    let req = encode(vec![
        service("foo-server", &[S::new(T0, S0, "", CLIENT)]),
        service("bar-requester", &[S::new(T0, S1, S0, SERVER)]),
    ]);
    assert_eq!(g.consume(&req).expect("valid"), 2);
    assert_eq!(g.store_len(), 0);
    let m = collect(&g);
    let l = labels(&[
        ("client", "foo-server"),
        ("server", "bar-requester"),
        ("connection_type", ""),
        ("failed", "false"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).label_sets(), vec![l.clone()]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 1);
    assert!(m.family(REQUEST_FAILED_TOTAL).points.is_empty());
    for name in [REQUEST_SERVER, REQUEST_CLIENT] {
        let h = m.family(name).hist(&l);
        assert_eq!(m.family(name).unit, "s");
        assert_eq!(
            h.bounds,
            vec![
                0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0,
                10.0, 15.0
            ]
        );
        assert_eq!(h.counts, one_bucket(17, 0, 1));
        assert_eq!(h.count, 1);
        assert_eq!(h.sum, 0.000001);
        assert_eq!(h.exemplars.len(), 1, "{name}");
        assert_eq!(h.exemplars[0].trace_id.to_vec(), hex(T0));
    }
    let server_ex = m.family(REQUEST_SERVER).hist(&l).exemplars[0];
    assert_eq!(server_ex.span_id.to_vec(), hex(S1));
    assert_eq!(g.total_edges(), 1);
    assert_eq!(g.expired_edges(), 0);
}

#[test]
fn extra_dimensions_queue_db_prefix_client_and_server() {
    let g = graph(Config {
        dimensions: vec!["messaging.system".into(), "db.system".into()],
        latency_histogram_buckets: buckets_01_1_10(),
        ..Config::default()
    });
    let req = encode(vec![
        service(
            "foo-server",
            &[S::new(T0, S0, "", CLIENT).attr("messaging.system", s("kafka"))],
        ),
        service(
            "bar-requester",
            &[S::new(T0, S1, S0, SERVER).attr("db.system", s("postgresql"))],
        ),
    ]);
    g.consume(&req).expect("valid");
    let m = collect(&g);
    let l = labels(&[
        ("client", "foo-server"),
        ("client_messaging.system", "kafka"),
        ("connection_type", ""),
        ("failed", "false"),
        ("server", "bar-requester"),
        ("server_db.system", "postgresql"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 1);
    for name in [REQUEST_SERVER, REQUEST_CLIENT] {
        let h = m.family(name).hist(&l);
        assert_eq!(h.bounds, vec![0.1, 1.0, 10.0]);
        assert_eq!(h.counts, vec![1, 0, 0, 0]);
        assert_eq!(h.sum, 1e-6);
    }
    // Labels come sorted by key, as client_golang writes them.
    let (first, _) = &m.family(REQUEST_TOTAL).points[0];
    let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "client",
            "client_messaging.system",
            "connection_type",
            "failed",
            "server",
            "server_db.system"
        ]
    );
}

#[test]
fn virtual_node_label_trace_makes_user_and_unknown_nodes() {
    let g = graph(Config {
        dimensions: vec!["peer.service".into()],
        latency_histogram_buckets: buckets_01_1_10(),
        ..Config::default()
    });
    let req = encode(vec![
        service("foo-server", &[S::new(T0, S0, "", CLIENT)]),
        service(
            "bar-requester",
            &[S::new(T1, S1, "", SERVER).attr("peer.service", s("external-platform"))],
        ),
    ]);
    g.consume(&req).expect("valid");
    assert!(collect(&g).family(REQUEST_TOTAL).points.is_empty());
    assert_eq!(g.store_len(), 2);
    assert_eq!(expire_all(&g), 2);
    let m = collect(&g);
    let to_unknown = labels(&[
        ("client", "foo-server"),
        ("connection_type", "virtual_node"),
        ("failed", "false"),
        ("server", "unknown"),
    ]);
    let from_user = labels(&[
        ("client", "user"),
        ("connection_type", "virtual_node"),
        ("failed", "false"),
        ("server", "bar-requester"),
        ("server_peer.service", "external-platform"),
    ]);
    let total = m.family(REQUEST_TOTAL);
    assert_eq!(
        total.label_sets(),
        vec![to_unknown.clone(), from_user.clone()]
    );
    assert_eq!(total.counter(&to_unknown), 1);
    assert_eq!(total.counter(&from_user), 1);
    // Bucket counts as in the YAML. Sums by otelcol's code: the missing side's latency is 0
    // (the YAML lists these two same-named points with the sums the other way round, which
    // its comparison cannot tell apart).
    let (srv, cli) = (m.family(REQUEST_SERVER), m.family(REQUEST_CLIENT));
    assert_eq!(srv.hist(&to_unknown).counts, vec![1, 0, 0, 0]);
    assert_eq!(srv.hist(&to_unknown).sum, 0.0);
    assert_eq!(cli.hist(&to_unknown).sum, 1e-6);
    assert_eq!(srv.hist(&from_user).counts, vec![1, 0, 0, 0]);
    assert_eq!(srv.hist(&from_user).sum, 1e-6);
    assert_eq!(cli.hist(&from_user).sum, 0.0);
    assert_eq!(g.expired_edges(), 2);
    assert_eq!(g.total_edges(), 2);
    assert_eq!(g.store_len(), 0);
}

#[test]
fn virtual_node_extra_label_client_and_server() {
    let g = graph(Config {
        dimensions: vec!["peer.service".into()],
        latency_histogram_buckets: buckets_01_1_10(),
        virtual_node_extra_label: true,
        ..Config::default()
    });
    let req = encode(vec![
        service(
            "bar-requester",
            &[S::new(T1, S1, "", SERVER).attr("peer.service", s("external-platform"))],
        ),
        // An uninstrumented database: the client span names it by db.system (db.name would
        // make it a database edge), peer.service being absent.
        service(
            "foo",
            &[S::new(T0, S0, "", CLIENT).attr("db.system", s("postgresql"))],
        ),
    ]);
    g.consume(&req).expect("valid");
    expire_all(&g);
    let m = collect(&g);
    let total = m.family(REQUEST_TOTAL);
    assert_eq!(
        total.counter(&labels(&[
            ("client", "user"),
            ("connection_type", "virtual_node"),
            ("failed", "false"),
            ("server", "bar-requester"),
            ("server_peer.service", "external-platform"),
            ("virtual_node", "client"),
        ])),
        1
    );
    assert_eq!(
        total.counter(&labels(&[
            ("client", "foo"),
            ("connection_type", "virtual_node"),
            ("failed", "false"),
            ("server", "postgresql"),
            ("virtual_node", "server"),
        ])),
        1
    );
    assert_eq!(total.points.len(), 2);
}

#[test]
fn peer_attribute_priority_follows_the_list() {
    let g = graph(Config::default());
    let span = S::new(T0, S0, "", CLIENT)
        .attr("db.system", s("postgresql"))
        .attr("peer.service", s("billing"));
    g.consume(&encode(vec![service("foo", &[span])]))
        .expect("valid");
    expire_all(&g);
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("connection_type", "virtual_node"),
            ("failed", "false"),
            ("server", "billing"),
        ])),
        1
    );
}

#[test]
fn failed_label_splits_series_and_counts_failures() {
    // otelcol's "failed label not work" case: foo calls bar three times, one fails.
    let g = graph(Config::default());
    let traces = [
        ("b0000000000000000000000000000001", 0),
        ("b0000000000000000000000000000002", 0),
        ("b0000000000000000000000000000003", ERROR),
    ];
    let mut spans_foo = Vec::new();
    let mut spans_bar = Vec::new();
    for (t, status) in traces {
        spans_foo.push(S::new(t, "c000000000000001", "", CLIENT).dur_ns(1_000_000_000));
        spans_bar.push(
            S::new(t, "c000000000000002", "c000000000000001", SERVER)
                .dur_ns(1_000_000_000)
                .status(status),
        );
    }
    g.consume(&encode(vec![
        service("foo", &spans_foo),
        service("bar", &spans_bar),
    ]))
    .expect("valid");
    let m = collect(&g);
    let ok = labels(&[
        ("client", "foo"),
        ("server", "bar"),
        ("connection_type", ""),
        ("failed", "false"),
    ]);
    let bad = labels(&[
        ("client", "foo"),
        ("server", "bar"),
        ("connection_type", ""),
        ("failed", "true"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&ok), 2);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&bad), 1);
    assert_eq!(
        m.family(REQUEST_FAILED_TOTAL).label_sets(),
        vec![bad.clone()]
    );
    assert_eq!(m.family(REQUEST_FAILED_TOTAL).counter(&bad), 1);
    for name in [REQUEST_SERVER, REQUEST_CLIENT] {
        let f = m.family(name);
        assert_eq!(f.hist(&ok).counts, one_bucket(17, 10, 2));
        assert_eq!(f.hist(&ok).sum, 2.0);
        assert_eq!(f.hist(&bad).counts, one_bucket(17, 10, 1));
        assert_eq!(f.hist(&bad).sum, 1.0);
    }
}

#[test]
fn happy_case_with_dimensions_from_connector_test() {
    let g = graph(Config {
        dimensions: vec!["some-attribute".into(), "non-existing-attribute".into()],
        store: redline_servicegraph::config::StoreConfig {
            max_items: 10,
            ..Default::default()
        },
        ..Config::default()
    });
    let req = encode(vec![service(
        "some-service",
        &[
            S::new(T0, S0, "", CLIENT)
                .dur_ns(1_000_000_000)
                .attr("some-attribute", s("val")),
            S::new(T0, S1, S0, SERVER).dur_ns(1_000_000_000),
        ],
    )]);
    g.consume(&req).expect("valid");
    let m = collect(&g);
    let l = labels(&[
        ("client", "some-service"),
        ("server", "some-service"),
        ("connection_type", ""),
        ("failed", "false"),
        ("client_some-attribute", "val"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 1);
    assert_eq!(
        m.family(REQUEST_SERVER).hist(&l).counts,
        one_bucket(17, 10, 1)
    );
    assert_eq!(m.family(REQUEST_SERVER).hist(&l).sum, 1.0);
    assert_eq!(
        m.family(REQUEST_CLIENT).hist(&l).counts,
        one_bucket(17, 10, 1)
    );
}

#[test]
fn database_client_span_completes_at_once() {
    let g = graph(Config::default());
    let span = S::new(T0, S0, "", CLIENT)
        .dur_ns(3_000_000)
        .attr("db.name", s("orders"));
    g.consume(&encode(vec![service("app", &[span])]))
        .expect("valid");
    assert_eq!(g.store_len(), 0, "no server span is awaited");
    assert_eq!(g.total_edges(), 1);
    let m = collect(&g);
    let l = labels(&[
        ("client", "app"),
        ("server", "orders"),
        ("connection_type", "database"),
        ("failed", "false"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 1);
    // Both latencies are the client span's: 3 ms falls in the (2, 4] ms bucket.
    assert_eq!(
        m.family(REQUEST_SERVER).hist(&l).counts,
        one_bucket(17, 1, 1)
    );
    assert_eq!(
        m.family(REQUEST_CLIENT).hist(&l).counts,
        one_bucket(17, 1, 1)
    );
    assert_eq!(m.family(REQUEST_SERVER).hist(&l).sum, 0.003);
}

#[test]
fn database_name_from_the_resource_and_configured_attributes() {
    let g = graph(Config {
        database_name_attributes: vec!["db.namespace".into(), "db.name".into()],
        ..Config::default()
    });
    let res = resource(
        vec![
            kv("service.name", s("app")),
            kv("db.name", s("from-resource")),
        ],
        &[S::new(T0, S0, "", CLIENT).attr("db.namespace", s("from-span"))],
    );
    g.consume(&encode(vec![res])).expect("valid");
    // Key priority first: db.namespace (on the span) beats db.name (on the resource).
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "app"),
            ("server", "from-span"),
            ("connection_type", "database"),
            ("failed", "false"),
        ])),
        1
    );
}

#[test]
fn producer_and_consumer_are_a_messaging_system_edge() {
    let g = graph(Config::default());
    let req = encode(vec![
        service("orders", &[S::new(T0, S0, "", PRODUCER)]),
        service("mailer", &[S::new(T0, S1, S0, CONSUMER).status(ERROR)]),
        // Internal spans and resources without service.name take no part.
        service("orders", &[S::new(T1, S1, "", INTERNAL)]),
        resource(vec![], &[S::new(T1, S0, "", CLIENT)]),
    ]);
    assert_eq!(g.consume(&req).expect("valid"), 2);
    let m = collect(&g);
    let l = labels(&[
        ("client", "orders"),
        ("server", "mailer"),
        ("connection_type", "messaging_system"),
        ("failed", "true"),
    ]);
    assert_eq!(m.family(REQUEST_TOTAL).counter(&l), 1);
    assert_eq!(m.family(REQUEST_FAILED_TOTAL).counter(&l), 1);
    assert_eq!(g.store_len(), 0);
}

#[test]
fn spans_of_one_edge_pair_across_requests() {
    let g = graph(Config::default());
    g.consume(&encode(vec![service("bar", &[S::new(T0, S1, S0, SERVER)])]))
        .expect("valid");
    assert_eq!(g.store_len(), 1);
    g.consume(&encode(vec![service("foo", &[S::new(T0, S0, "", CLIENT)])]))
        .expect("valid");
    assert_eq!(g.store_len(), 0);
    assert_eq!(g.total_edges(), 1);
    let m = collect(&g);
    assert_eq!(
        m.family(REQUEST_TOTAL).counter(&labels(&[
            ("client", "foo"),
            ("server", "bar"),
            ("connection_type", ""),
            ("failed", "false")
        ])),
        1
    );
}

#[test]
fn malformed_request_changes_nothing() {
    let g = graph(Config::default());
    let mut req = encode(vec![service("foo", &[S::new(T0, S0, "", CLIENT)])]);
    req.truncate(req.len() - 3);
    assert!(g.consume(&req).is_err());
    assert_eq!(g.store_len(), 0);
    assert_eq!(g.total_edges(), 0);
}

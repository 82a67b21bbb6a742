use std::collections::HashSet;

use prost::Message;

use super::*;

fn gen(cfg: ModelConfig) -> Generator {
    Generator::new(cfg, 0x5eed).expect("valid model")
}

fn spans(req: &ExportTraceServiceRequest) -> impl Iterator<Item = &Span> {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = gen(ModelConfig::default());
    let b = gen(ModelConfig::default());
    let c = gen(ModelConfig {
        seed: 2,
        ..Default::default()
    });
    for i in 0..8 {
        let ra = a.request(i, 1_700_000_000_000_000_000).encode_to_vec();
        assert_eq!(ra, b.request(i, 1_700_000_000_000_000_000).encode_to_vec());
        assert_ne!(ra, c.request(i, 1_700_000_000_000_000_000).encode_to_vec());
    }
    assert_ne!(a.request(0, 0), a.request(1, 0));
}

#[test]
fn validation() {
    let bad = |f: fn(&mut ModelConfig)| {
        let mut c = ModelConfig::default();
        f(&mut c);
        c.validate().expect_err("invalid")
    };
    assert_eq!(bad(|c| c.services = 0), ModelError::Zero("services"));
    assert!(matches!(
        bad(|c| c.error_ratio = 1.5),
        ModelError::Ratio { .. }
    ));
    assert!(matches!(
        bad(|c| c.latency_p99_ms = 1.0),
        ModelError::Latency { .. }
    ));
    assert!(matches!(
        bad(|c| c.latency_median_ms = 0.0),
        ModelError::Latency { .. }
    ));
    assert_eq!(
        bad(|c| c.spans_per_request = 1 << 24),
        ModelError::TooManySpans
    );
}

#[test]
fn requests_have_the_configured_shape() {
    let cfg = ModelConfig {
        spans_per_request: 250,
        resources_per_request: 3,
        ..Default::default()
    };
    let g = gen(cfg.clone());
    let services: HashSet<String> = g.service_names().into_iter().collect();
    assert_eq!(services.len(), 10);
    for i in 0..20 {
        let req = g.request(i, 1_000);
        assert_eq!(spans(&req).count(), 250);
        assert!(req.resource_spans.len() <= 3);
        for rs in &req.resource_spans {
            let attrs = &rs.resource.as_ref().expect("resource").attributes;
            let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
            for k in [
                "service.name",
                "host.name",
                "k8s.pod.name",
                "service.instance.id",
            ] {
                assert!(keys.contains(&k), "{k} missing");
            }
        }
        // Ids: valid, unique in the request, parents inside the same trace.
        let mut ids = HashSet::new();
        let mut trace_of = std::collections::HashMap::new();
        for s in spans(&req) {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            assert!(s.span_id.iter().any(|b| *b != 0));
            assert!(ids.insert(s.span_id.clone()), "duplicate span id");
            trace_of.insert(s.span_id.clone(), s.trace_id.clone());
            assert!(s.start_time_unix_nano >= 1_000);
            assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
        }
        for s in spans(&req) {
            if !s.parent_span_id.is_empty() {
                assert_eq!(trace_of.get(&s.parent_span_id), Some(&s.trace_id));
            }
        }
    }
}

#[test]
fn durations_follow_the_distribution_and_quantum() {
    let g = gen(ModelConfig {
        boundary_ratio: 0.0,
        ..Default::default()
    });
    let mut rng = Rng::new(9, 9);
    let mut d: Vec<u64> = (0..100_000).map(|_| g.duration_ns(&mut rng)).collect();
    assert!(d.iter().all(|x| x % DURATION_QUANTUM_NS == 0));
    d.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let median = ms(d[50_000]);
    let p99 = ms(d[99_000]);
    assert!((median - 20.0).abs() < 1.0, "median {median}");
    assert!((p99 - 1000.0).abs() < 100.0, "p99 {p99}");
}

#[test]
fn boundary_durations_hit_bucket_bounds_exactly() {
    let g = gen(ModelConfig {
        boundary_ratio: 1.0,
        ..Default::default()
    });
    let mut rng = Rng::new(4, 4);
    let bounds: HashSet<u64> = DEFAULT_BUCKETS_MS
        .iter()
        .map(|b| (*b * 1e6) as u64)
        .collect();
    let (mut on, mut above) = (0, 0);
    for _ in 0..10_000 {
        let d = g.duration_ns(&mut rng);
        if bounds.contains(&d) {
            on += 1;
        } else {
            assert!(bounds.contains(&(d - DURATION_QUANTUM_NS)), "{d}");
            above += 1;
        }
    }
    assert!(on > 6_000 && above > 2_500, "{on} on, {above} above");
}

#[test]
fn attributes_cache_hit_and_size() {
    let g = gen(ModelConfig::default());
    let (mut n, mut attrs, mut hit, mut miss, mut missing, mut bytes, mut errors) =
        (0, 0, 0, 0, 0, 0, 0);
    for i in 0..50 {
        let req = g.request(i, 1_700_000_000_000_000_000);
        bytes += req.encoded_len();
        for s in spans(&req) {
            n += 1;
            attrs += s.attributes.len();
            errors += usize::from(s.status.as_ref().is_some_and(|st| st.code == 2));
            match s.attributes.iter().find(|kv| kv.key == CACHE_HIT_KEY) {
                None => missing += 1,
                Some(kv) => match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::BoolValue(true)) => hit += 1,
                    Some(any_value::Value::BoolValue(false)) => miss += 1,
                    other => panic!("cdn.cache.hit is {other:?}"),
                },
            }
        }
    }
    let f = |x: usize| x as f64 / n as f64;
    assert!((f(missing) - 0.34).abs() < 0.03, "missing {}", f(missing));
    assert!((hit as f64 / (hit + miss) as f64 - 0.8).abs() < 0.03);
    assert!((f(errors) - 0.05).abs() < 0.015, "errors {}", f(errors));
    let per_span_attrs = f(attrs);
    assert!(
        (9.0..=10.0).contains(&per_span_attrs),
        "{per_span_attrs} attributes per span"
    );
    let per_span = bytes as f64 / n as f64;
    assert!(
        (350.0..=480.0).contains(&per_span),
        "{per_span} bytes per span"
    );
}

#[test]
fn high_cardinality_knob() {
    let g = gen(ModelConfig {
        high_cardinality: 50,
        ..Default::default()
    });
    let mut users = HashSet::new();
    for i in 0..20 {
        for s in spans(&g.request(i, 0)) {
            let kv = s
                .attributes
                .iter()
                .find(|kv| kv.key == HIGH_CARD_KEY)
                .expect("user.id");
            let Some(any_value::Value::StringValue(v)) =
                kv.value.as_ref().and_then(|v| v.value.clone())
            else {
                panic!("not a string");
            };
            users.insert(v);
        }
    }
    assert_eq!(users.len(), 50);
    let off = gen(ModelConfig::default());
    assert!(
        spans(&off.request(0, 0)).all(|s| s.attributes.iter().all(|kv| kv.key != HIGH_CARD_KEY))
    );
}

#[test]
fn ten_services_cover_every_operation_and_prefix_applies() {
    let g = gen(ModelConfig {
        service_prefix: "lg-".into(),
        services: 25,
        ..Default::default()
    });
    let names = g.service_names();
    assert!(names.iter().all(|n| n.starts_with("lg-")));
    assert!(names.contains(&"lg-frontend-1".to_owned()));
    let ops: HashSet<&str> = g
        .services
        .iter()
        .take(10)
        .flat_map(|s| s.ops.iter().map(|o| o.0.as_str()))
        .collect();
    assert_eq!(ops.len(), OPERATIONS.len());
}

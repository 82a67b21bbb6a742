//! The processor end to end: config section -> compiled policies -> requests through its
//! intake, ticks run by hand, what reaches the next consumer and what it counts.

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{Batch, Refused, Reservation};
use redline_processor_testkit::{component, counters, kv, string, Sink};

use super::*;

/// Refuses the first `refusals` batches, then records like a [`Sink`].
#[derive(Default)]
struct Flaky {
    refusals: AtomicUsize,
    sink: Sink,
}

impl Consumer for Flaky {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let left = self.refusals.load(Ordering::SeqCst);
        if left > 0 {
            self.refusals.store(left - 1, Ordering::SeqCst);
            return Err(Refused {
                component: "next".into(),
                reason: "full".into(),
                retry_after: std::time::Duration::from_secs(1),
                permanent: false,
            });
        }
        self.sink.reserve(batch)
    }
}

struct Harness {
    sampler: Arc<Sampler>,
    intake: Arc<dyn Consumer>,
    next: Arc<Flaky>,
    telemetry: Telemetry,
}

fn harness(body: &str) -> Harness {
    let config = component(body);
    let (cfg, policies) = compile(&config).expect("compiles");
    let next = Arc::new(Flaky::default());
    let telemetry = Telemetry::new();
    let id = config.id();
    let sampler = Sampler::new(
        Settings {
            id: id.to_string(),
            policy_prefix: id.name().map(|n| format!("{n}.")).unwrap_or_default(),
            sample_on_first_match: cfg.sample_on_first_match,
            drop_pending_on_shutdown: cfg.drop_pending_traces_on_shutdown,
        },
        Limits {
            wait_ticks: cfg.decision_wait.as_secs().max(1),
            root_wait_ticks: None,
            num_traces: usize::try_from(cfg.num_traces).expect("fits"),
            max_trace_bytes: 0,
        },
        &cfg.decision_cache,
        policies,
        next.clone(),
        &telemetry,
    );
    Harness {
        intake: Arc::new(Intake(sampler.clone())),
        sampler,
        next,
        telemetry,
    }
}

fn span(trace: u8, id: u8, name: &str, error: bool) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        name: name.into(),
        status: error.then(|| Status {
            code: 2,
            ..Status::default()
        }),
        ..Span::default()
    }
}

fn resource(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", string(service))],
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..ScopeSpans::default()
        }],
        schema_url: String::new(),
    }
}

fn batch(resources: Vec<ResourceSpans>) -> Batch {
    let spans = resources
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let request = ExportTraceServiceRequest {
        resource_spans: resources,
    };
    Batch::traces(request.encode_to_vec().into(), spans)
}

/// (service, span name) of every span forwarded so far, sorted.
fn forwarded(h: &Harness) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in h.next.sink.take() {
        let request = ExportTraceServiceRequest::decode(&b.raw[..]).expect("decodes");
        for rs in request.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                out.push((service.clone(), s.name));
            }
        }
    }
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn counter(h: &Harness, name: &str, labels: &[(&str, &str)]) -> u64 {
    counters(&h.telemetry)
        .into_iter()
        .filter(|(family, l, _)| {
            family == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

const ERRORS: &str = "  tail_sampling/edge:
    decision_wait: 2s
    policies:
      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
      - name: no-health
        type: drop
        drop: {drop_sub_policy: [{name: health, type: string_attribute, string_attribute: {key: service.name, values: [health]}}]}";

#[test]
fn traces_are_decided_whole_after_decision_wait() {
    let h = harness(ERRORS);
    // Trace 1 has an error in its second part, from another service; trace 2 none; trace 3
    // has an error but comes from `health`, which the drop policy drops first.
    h.intake
        .consume(batch(vec![resource(
            "cart",
            vec![span(1, 1, "checkout", false), span(2, 2, "browse", false)],
        )]))
        .expect("held");
    h.sampler.tick();
    h.intake
        .consume(batch(vec![
            resource("payments", vec![span(1, 3, "charge", true)]),
            resource("health", vec![span(3, 4, "probe", true)]),
        ]))
        .expect("held");
    h.sampler.tick();
    assert_eq!(forwarded(&h), vec![], "nothing is due before tick 3");
    h.sampler.tick();
    assert_eq!(
        forwarded(&h),
        pairs(&[("cart", "checkout"), ("payments", "charge")]),
        "trace 1 whole, from both requests"
    );
    h.sampler.tick();
    assert_eq!(forwarded(&h), vec![], "trace 3 was dropped");

    let policy = |p: &str, decision: Decision| {
        let [sampled, kind] = decision.labels();
        counter(
            &h,
            TAIL_SAMPLING_COUNT_TRACES_SAMPLED,
            &[("policy", p), sampled, kind],
        )
    };
    assert_eq!(policy("edge.errors", Decision::Sampled), 1);
    assert_eq!(policy("edge.errors", Decision::NotSampled), 1);
    assert_eq!(policy("edge.no-health", Decision::NotSampled), 2);
    assert_eq!(policy("edge.no-health", Decision::Dropped), 1);
    let global = |d: Decision| counter(&h, TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED, &d.labels());
    assert_eq!(
        (
            global(Decision::Sampled),
            global(Decision::NotSampled),
            global(Decision::Dropped)
        ),
        (1, 1, 1)
    );
    assert_eq!(counter(&h, TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED, &[]), 3);
    // Drop policies run first, and not at all after a drop.
    assert_eq!(
        counter(
            &h,
            TAIL_SAMPLING_POLICY_EXECUTION_COUNT,
            &[("policy", "edge.errors")]
        ),
        2
    );
}

#[test]
fn late_spans_follow_the_decision() {
    let h = harness(ERRORS);
    h.intake
        .consume(batch(vec![resource(
            "cart",
            vec![span(1, 1, "failed", true), span(2, 2, "fine", false)],
        )]))
        .expect("held");
    for _ in 0..3 {
        h.sampler.tick();
    }
    assert_eq!(forwarded(&h), pairs(&[("cart", "failed")]));
    h.intake
        .consume(batch(vec![resource(
            "cart",
            vec![span(1, 3, "late", false), span(2, 4, "late too", false)],
        )]))
        .expect("taken");
    assert_eq!(
        forwarded(&h),
        pairs(&[("cart", "late")]),
        "at once, not at a tick"
    );
    // A late span the pipeline refuses fails its request, and nothing of it stays.
    h.next.refusals.store(1, Ordering::SeqCst);
    assert!(h
        .intake
        .consume(batch(vec![resource(
            "cart",
            vec![span(1, 5, "refused", false)]
        )]))
        .is_err());
    assert_eq!(h.sampler.state.lock().store.len(), 2);
}

#[test]
fn sampled_traces_refused_downstream_are_offered_again() {
    let h = harness(ERRORS);
    h.intake
        .consume(batch(vec![resource(
            "cart",
            vec![span(1, 1, "failed", true)],
        )]))
        .expect("held");
    h.next.refusals.store(2, Ordering::SeqCst);
    for _ in 0..3 {
        h.sampler.tick();
    }
    assert_eq!(forwarded(&h), vec![], "refused when decided at tick 3");
    h.sampler.flush();
    assert_eq!(forwarded(&h), vec![], "and at the first retry");
    h.sampler.flush();
    assert_eq!(forwarded(&h), pairs(&[("cart", "failed")]));
}

#[test]
fn a_busy_tick_forwards_requests_of_about_a_mebibyte() {
    let h = harness(
        "  tail_sampling:
    decision_wait: 1s
    policies: [{name: all, type: always_sample}]",
    );
    // 300 traces of one 10 KiB span each: about 3 MiB sampled at one tick.
    let big = "x".repeat(10 * 1024);
    for t in 0..300u16 {
        let mut s = span(0, 1, "big", false);
        s.trace_id = [t.to_be_bytes().as_slice(), &[1; 14]].concat();
        s.attributes = vec![kv("payload", string(&big))];
        h.intake
            .consume(batch(vec![resource("cart", vec![s])]))
            .expect("held");
    }
    h.sampler.tick();
    h.sampler.tick();
    let batches = h.next.sink.take();
    let sizes: Vec<usize> = batches.iter().map(Batch::byte_len).collect();
    assert_eq!(batches.iter().map(|b| b.items).sum::<usize>(), 300);
    // 256 traces decided at a time: 1 + 1 + 0.5 MiB, then the last 44 traces.
    assert_eq!(sizes.len(), 4, "{sizes:?}");
    assert!(
        sizes.iter().all(|s| *s < (1 << 20) + 11 * 1024),
        "{sizes:?}"
    );
}

#[test]
fn a_full_backlog_refuses_clients_until_the_pipeline_takes_it() {
    let h = harness(
        "  tail_sampling:
    decision_wait: 1s
    policies: [{name: all, type: always_sample}]",
    );
    // 70 traces of one 1 MiB span: more than the backlog holds before refusing.
    let big = "x".repeat(1 << 20);
    for t in 0..70u8 {
        let mut s = span(t, 1, "big", false);
        s.attributes = vec![kv("payload", string(&big))];
        h.intake
            .consume(batch(vec![resource("cart", vec![s])]))
            .expect("held");
    }
    h.next.refusals.store(usize::MAX, Ordering::SeqCst);
    h.sampler.tick();
    h.sampler.tick();
    let small = || batch(vec![resource("cart", vec![span(200, 1, "small", false)])]);
    let refused = h.intake.consume(small()).expect_err("backlog full");
    assert!(
        refused
            .reason
            .contains("waiting for the pipeline downstream"),
        "{refused:?}"
    );
    h.next.refusals.store(0, Ordering::SeqCst);
    h.sampler.flush();
    assert_eq!(
        h.next.sink.take().iter().map(|b| b.items).sum::<usize>(),
        70,
        "nothing lost"
    );
    h.intake.consume(small()).expect("room again");
}

#[test]
fn shutting_down_decides_what_waits_unless_told_to_drop_it() {
    for (drop_pending, expected) in [("false", pairs(&[("cart", "failed")])), ("true", vec![])] {
        let h = harness(&format!(
            "  tail_sampling:
    decision_wait: 30s
    drop_pending_traces_on_shutdown: {drop_pending}
    policies: [{{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}]"
        ));
        h.intake
            .consume(batch(vec![resource(
                "cart",
                vec![span(1, 1, "failed", true), span(2, 2, "fine", false)],
            )]))
            .expect("held");
        h.sampler.tick();
        h.sampler.decide_all();
        assert_eq!(
            forwarded(&h),
            expected,
            "drop_pending_traces_on_shutdown: {drop_pending}"
        );
    }
}

#[test]
fn ottl_conditions_sample_on_spans_and_span_events() {
    let h = harness(
        "  tail_sampling:
    decision_wait: 1s
    policies:
      - name: ottl
        type: ottl_condition
        ottl_condition:
          span: ['attributes[\"tier\"] == \"gold\"']
          spanevent: ['name == \"exception\"']",
    );
    let mut gold = span(1, 1, "gold", false);
    gold.attributes = vec![kv("tier", string("gold"))];
    let mut exception = span(2, 2, "threw", false);
    exception.events = vec![opentelemetry_proto::tonic::trace::v1::span::Event {
        name: "exception".into(),
        ..Default::default()
    }];
    h.intake
        .consume(batch(vec![resource(
            "cart",
            vec![gold, exception, span(3, 3, "plain", false)],
        )]))
        .expect("held");
    h.sampler.tick();
    h.sampler.tick();
    assert_eq!(forwarded(&h), pairs(&[("cart", "gold"), ("cart", "threw")]));
}

#[test]
fn validate_names_every_bad_policy() {
    let config = component(
        "  tail_sampling:
    sampling_strategy: bogus
    policies:
      - {name: a, type: status_code, status_code: {status_codes: [BAD]}}
      - {name: a, type: latency}
      - {type: nope}",
    );
    let errors: Vec<String> = TailSamplingFactory
        .validate_all(&config)
        .iter()
        .map(ToString::to_string)
        .collect();
    let wanted = [
        "processors.tail_sampling.sampling_strategy: invalid sampling_strategy \"bogus\"",
        "policies[0].status_code.status_codes[0]: unknown status code \"BAD\"",
        "policies[1].name: duplicate policy name \"a\"",
        "policies[2].name: policy name cannot be empty",
        "policies[2].type: unknown sampling policy type nope",
    ];
    assert_eq!(errors.len(), wanted.len(), "{errors:#?}");
    for w in wanted {
        assert!(
            errors.iter().any(|e| e.contains(w)),
            "{w} not in {errors:#?}"
        );
    }
}

use redline_pipeline::telemetry::{
    TAIL_SAMPLING_COUNT_TRACES_SAMPLED, TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED,
    TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED, TAIL_SAMPLING_POLICY_EXECUTION_COUNT,
};

//! End-to-end tests: statements compiled from text, applied to prost requests, and the dry
//! run checked against the real run.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::*;
use crate::value::{kv, Value};

fn s(v: &str) -> Value<'_> {
    Value::str(v)
}

fn span_named(name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind: 2,
        attributes: attrs,
        status: Some(Status {
            code: 0,
            message: String::new(),
        }),
        events: vec![span::Event {
            name: "ev".into(),
            time_unix_nano: 5,
            attributes: vec![kv("e", &s("1"))],
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(crate) fn sample() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", &s("checkout")), kv("host", &s("h1"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.0".into(),
                    ..Default::default()
                }),
                spans: vec![
                    span_named(
                        "GET /users/123",
                        vec![
                            kv("http.url", &s("http://x/users/123?token=abc")),
                            kv("http.status_code", &Value::Int(200)),
                            kv("user", &s("alice")),
                        ],
                    ),
                    span_named("db", vec![kv("db.system", &s("postgres"))]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn group(context: Option<ContextKind>, statements: &[&str]) -> StatementGroup {
    let texts: Vec<String> = statements.iter().map(|t| t.to_string()).collect();
    StatementGroup::compile(context, Signal::Traces, &texts, &[], ErrorMode::Propagate)
        .unwrap_or_else(|e| panic!("compiles: {e:?}"))
}

fn span_attr<'r>(
    req: &'r ExportTraceServiceRequest,
    span: usize,
    key: &str,
) -> Option<&'r AnyValue> {
    req.resource_spans[0].scope_spans[0].spans[span]
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn str_of(v: Option<&AnyValue>) -> Option<&str> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Applies the group; checks the dry-run invariant on the way, and that the dry run on the
/// span names validation recorded agrees with the one that walks the request.
fn apply(g: &StatementGroup, req: &ExportTraceServiceRequest) -> (bool, ExportTraceServiceRequest) {
    let raw = bytes::Bytes::from(req.encode_to_vec());
    let may = g.may_change_traces(&raw).expect("dry run");
    let (_, names) = redline_otlp_wire::validate_with_span_names(&raw).expect("valid");
    for _ in 0..2 {
        // Twice: the second run may answer from the memo the first one filled.
        assert_eq!(g.may_change_named_traces(&names).expect("dry run"), may);
    }
    let mut out = req.clone();
    let _ = g.apply_traces(&mut out);
    if !may {
        assert_eq!(
            &out, req,
            "dry run said no change but apply changed the request"
        );
    }
    (may, out)
}

#[test]
fn set_and_where_on_spans() {
    let g = group(
        Some(ContextKind::Span),
        &[r#"set(attributes["env"], "prod") where name == "db""#],
    );
    let (may, out) = apply(&g, &sample());
    assert!(may);
    assert_eq!(str_of(span_attr(&out, 1, "env")), Some("prod"));
    assert_eq!(span_attr(&out, 0, "env"), None);
    // Applying again changes nothing, and the dry run knows it.
    let (may, again) = apply(&g, &out);
    assert!(!may);
    assert_eq!(again, out);
}

#[test]
fn replace_pattern_with_go_expansion() {
    let g = group(
        Some(ContextKind::Span),
        &[r#"replace_pattern(attributes["http.url"], "token=([a-z]+)", "token=$1x")"#],
    );
    let (_, out) = apply(&g, &sample());
    // `$1x` names the group "1x", which does not exist: Go expands it to nothing.
    assert_eq!(
        str_of(span_attr(&out, 0, "http.url")),
        Some("http://x/users/123?token=")
    );
    let g = group(
        Some(ContextKind::Span),
        &[r#"replace_pattern(attributes["http.url"], "token=([a-z]+)", "token=${1}x")"#],
    );
    let (_, out) = apply(&g, &sample());
    assert_eq!(
        str_of(span_attr(&out, 0, "http.url")),
        Some("http://x/users/123?token=abcx")
    );
}

#[test]
fn replace_pattern_with_function_and_format() {
    let g = group(
        Some(ContextKind::Span),
        &[r#"replace_pattern(attributes["user"], "^(.*)$", "$1", SHA256, "h:%s")"#],
    );
    let (_, out) = apply(&g, &sample());
    assert_eq!(
        str_of(span_attr(&out, 0, "user")),
        Some("h:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90")
    );
}

#[test]
fn inferred_context_and_resource_paths() {
    let g = group(
        None,
        &[r#"set(span.attributes["svc"], resource.attributes["service.name"])"#],
    );
    assert_eq!(g.context(), ContextKind::Span);
    let (_, out) = apply(&g, &sample());
    assert_eq!(str_of(span_attr(&out, 0, "svc")), Some("checkout"));
    assert_eq!(str_of(span_attr(&out, 1, "svc")), Some("checkout"));

    let g = group(None, &[r#"set(resource.attributes["a"], "b")"#]);
    assert_eq!(g.context(), ContextKind::Resource);
    let g = group(None, &[r#"set(spanevent.attributes["a"], span.name)"#]);
    assert_eq!(g.context(), ContextKind::SpanEvent);
}

#[test]
fn compile_errors_are_all_reported() {
    let texts = vec![
        r#"set(attributes["a"], Nope(1))"#.to_string(),
        r#"set(nosuch, 1)"#.to_string(),
        r#"delete_key(attributes)"#.to_string(),
        r#"set(attributes["x"], 1)"#.to_string(),
    ];
    let errors = StatementGroup::compile(
        Some(ContextKind::Span),
        Signal::Traces,
        &texts,
        &[],
        ErrorMode::Propagate,
    )
    .expect_err("errors");
    assert_eq!(errors.len(), 3);
    assert!(
        errors[0].message.contains("undefined function \"Nope\""),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].column, 22);
    assert!(
        errors[1].message.contains("segment \"nosuch\""),
        "{}",
        errors[1]
    );
    assert!(
        errors[1].message.contains("trace_id"),
        "lists the paths: {}",
        errors[1]
    );
    assert!(
        errors[2]
            .message
            .contains("incorrect number of arguments. Expected: 2 Received: 1"),
        "{}",
        errors[2]
    );
    assert_eq!(
        errors[1].to_string(),
        format!(
            "statement \"set(nosuch, 1)\": column 5: {}",
            errors[1].message
        )
    );
}

#[test]
fn inferred_paths_need_a_prefix() {
    let texts = vec![r#"set(span.name, "x") where attributes["a"] == nil"#.to_string()];
    let errors = StatementGroup::compile(None, Signal::Traces, &texts, &[], ErrorMode::Propagate)
        .expect_err("errors");
    assert!(
        errors[0]
            .message
            .starts_with("missing context name for path"),
        "{}",
        errors[0]
    );
}

#[test]
fn error_modes() {
    // `Int` fails on a non-numeric string at run time.
    let texts = vec![
        r#"set(attributes["n"], Int(attributes["user"])) where name != "db""#.to_string(),
        r#"set(attributes["after"], true)"#.to_string(),
    ];
    let compile = |mode| {
        StatementGroup::compile(Some(ContextKind::Span), Signal::Traces, &texts, &[], mode)
            .expect("compiles")
    };
    let mut req = sample();
    let err = compile(ErrorMode::Propagate)
        .apply_traces(&mut req)
        .expect_err("fails");
    assert!(err
        .to_string()
        .starts_with("failed to execute statement: set(attributes[\"n\"]"));
    for mode in [ErrorMode::Ignore, ErrorMode::Silent] {
        let mut req = sample();
        assert!(compile(mode).apply_traces(&mut req).is_ok());
        assert!(span_attr(&req, 0, "after").is_some());
        assert!(span_attr(&req, 0, "n").is_none());
        // The dry run sends errors the real run would report to it.
        let may = compile(mode)
            .may_change_traces(&sample().encode_to_vec())
            .expect("dry");
        assert!(may);
    }
}

#[test]
fn group_conditions_select_items() {
    let g = StatementGroup::compile(
        Some(ContextKind::Span),
        Signal::Traces,
        &[r#"set(attributes["picked"], true)"#.to_string()],
        &[r#"attributes["db.system"] == "postgres""#.to_string()],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let (_, out) = apply(&g, &sample());
    assert!(span_attr(&out, 0, "picked").is_none());
    assert!(span_attr(&out, 1, "picked").is_some());
}

#[test]
fn map_editors() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"delete_key(attributes, "user")"#,
            &["http.url", "http.status_code"],
        ),
        (r#"delete_matching_keys(attributes, "^http")"#, &["user"]),
        (r#"keep_keys(attributes, ["user", "nope"])"#, &["user"]),
        (
            r#"keep_matching_keys(attributes, "^http\\.")"#,
            &["http.url", "http.status_code"],
        ),
        (r#"limit(attributes, 1, ["user"])"#, &["user"]),
        (
            r#"limit(attributes, 2, [])"#,
            &["http.url", "http.status_code"],
        ),
    ];
    for (statement, want) in cases {
        let g = group(Some(ContextKind::Span), &[statement]);
        let (may, out) = apply(&g, &sample());
        assert!(may, "{statement}");
        let keys: Vec<&str> = out.resource_spans[0].scope_spans[0].spans[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        // pdata's Remove moves the last entry into the hole.
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        let mut want_sorted = want.to_vec();
        want_sorted.sort_unstable();
        assert_eq!(keys_sorted, want_sorted, "{statement}");
    }
}

#[test]
fn truncate_replace_all_and_merge() {
    let g = group(
        Some(ContextKind::Span),
        &[
            r#"truncate_all(attributes, 4)"#,
            r#"replace_all_patterns(attributes, "key", "^http\\.", "h.")"#,
            r#"merge_maps(attributes, {"user": "bob", "new": 1}, "insert")"#,
            r#"replace_all_matches(attributes, "ali*", "***")"#,
        ],
    );
    let (_, out) = apply(&g, &sample());
    assert_eq!(str_of(span_attr(&out, 0, "h.url")), Some("http"));
    assert_eq!(str_of(span_attr(&out, 0, "user")), Some("***"));
    assert!(matches!(
        span_attr(&out, 0, "new").and_then(|v| v.value.as_ref()),
        Some(any_value::Value::IntValue(1))
    ));
}

#[test]
fn converters_in_set() {
    let cases: &[(&str, Value<'static>)] = &[
        (
            r#"Concat([name, "x", 1], "-")"#,
            Value::string("db-x-1".into()),
        ),
        (r#"Split("a,b", ",")[1]"#, Value::string("b".into())),
        (r#"Substring("hello", 1, 3)"#, Value::string("ell".into())),
        (
            r#"ConvertCase("helloWorld", "snake")"#,
            Value::string("hello_world".into()),
        ),
        (r#"Int("42") + 1"#, Value::Int(43)),
        (r#"Len(attributes)"#, Value::Int(1)),
        (r#"String(kind)"#, Value::string("2".into())),
        (
            r#"SHA256("test")"#,
            Value::string(
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            ),
        ),
        (r#"Hex("ab")"#, Value::string("6162".into())),
        (r#"IsMatch(name, "^d")"#, Value::Bool(true)),
        (r#"kind.string"#, Value::string("Server".into())),
        (
            r#"trace_id.string"#,
            Value::string("01010101010101010101010101010101".into()),
        ),
        (r#"10 / 4 * 2.0"#, Value::Double(4.0)),
    ];
    for (expr, want) in cases {
        let statement = format!(r#"set(attributes["out"], {expr}) where name == "db""#);
        let g = group(Some(ContextKind::Span), &[&statement]);
        let (_, out) = apply(&g, &sample());
        let got = Value::from_any(span_attr(&out, 1, "out"));
        assert!(
            crate::compare::values_equal(&got, want),
            "{expr}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn span_fields_round_trip() {
    let g = group(
        Some(ContextKind::Span),
        &[
            r#"set(status.code, STATUS_CODE_ERROR) where kind == SPAN_KIND_SERVER"#,
            r#"set(kind.string, "Client") where name == "db""#,
            r#"set(trace_state["k"], "v")"#,
            r#"set(span_id.string, "0000000000000001")"#,
        ],
    );
    let (_, out) = apply(&g, &sample());
    let spans = &out.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans[0].status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(spans[1].kind, 3);
    assert_eq!(spans[0].trace_state, "k=v");
    assert_eq!(spans[0].span_id, vec![0, 0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn span_events_and_filters() {
    let g = group(
        Some(ContextKind::SpanEvent),
        &[r#"set(attributes["span"], span.name) where name == "ev""#],
    );
    let (_, out) = apply(&g, &sample());
    let ev = &out.resource_spans[0].scope_spans[0].spans[1].events[0];
    assert_eq!(
        str_of(
            ev.attributes
                .iter()
                .find(|k| k.key == "span")
                .and_then(|k| k.value.as_ref())
        ),
        Some("db")
    );

    let spans = ConditionSet::compile(
        ContextKind::Span,
        &[r#"name == "db""#.to_string()],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let filters = TraceFilters {
        span: Some(&spans),
        ..TraceFilters::default()
    };
    let raw = sample().encode_to_vec();
    assert!(traces_may_drop(filters, &raw).expect("dry"));
    let mut req = sample();
    let outcome = filter_traces(filters, &mut req).expect("filters");
    assert_eq!(
        outcome,
        FilterOutcome {
            changed: true,
            remaining_items: 1
        }
    );

    let none = ConditionSet::compile(
        ContextKind::Span,
        &[r#"name == "nope""#.to_string()],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let filters = TraceFilters {
        span: Some(&none),
        ..TraceFilters::default()
    };
    assert!(!traces_may_drop(filters, &raw).expect("dry"));
    let mut req = sample();
    let outcome = filter_traces(filters, &mut req).expect("filters");
    assert_eq!(
        outcome,
        FilterOutcome {
            changed: false,
            remaining_items: 2
        }
    );

    // Every span dropped: the scope and the resource go too.
    let all = ConditionSet::compile(
        ContextKind::Span,
        &["true".to_string()],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let mut req = sample();
    let outcome = filter_traces(
        TraceFilters {
            span: Some(&all),
            ..TraceFilters::default()
        },
        &mut req,
    )
    .expect("filters");
    assert_eq!(outcome.remaining_items, 0);
    assert!(req.resource_spans.is_empty());
}

#[test]
fn logs_apply_and_filter() {
    let mut req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue("user=alice".into())),
                        }),
                        severity_number: 9,
                        ..Default::default()
                    },
                    LogRecord {
                        severity_number: 17,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let g = StatementGroup::compile(
        None,
        Signal::Logs,
        &[r#"replace_pattern(log.body, "alice", "***") where log.severity_number >= SEVERITY_NUMBER_INFO"#.to_string()],
        &[],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    assert_eq!(g.context(), ContextKind::Log);
    assert!(g.apply_logs(&mut req).expect("applies"));
    let body = req.resource_logs[0].scope_logs[0].log_records[0]
        .body
        .as_ref();
    assert_eq!(str_of(body), Some("user=***"));
    let errors = ConditionSet::compile(
        ContextKind::Log,
        &[r#"severity_number < SEVERITY_NUMBER_ERROR"#.to_string()],
        ErrorMode::Propagate,
    )
    .expect("compiles");
    let filters = LogFilters {
        log: Some(&errors),
        ..LogFilters::default()
    };
    let outcome = filter_logs(filters, &mut req).expect("filters");
    assert_eq!(
        outcome,
        FilterOutcome {
            changed: true,
            remaining_items: 1
        }
    );
}

/// Statements covering many functions, for the dry-run invariant (also the fuzz target's
/// list).
pub(crate) const INVARIANT_STATEMENTS: &[&str] = &[
    r#"set(attributes["env"], "prod")"#,
    r#"set(attributes["user"], "alice")"#,
    r#"set(name, name)"#,
    r#"set(name, "db") where name == "db""#,
    r#"delete_key(attributes, "user")"#,
    r#"delete_key(attributes, "absent")"#,
    r#"delete_matching_keys(attributes, "^zz")"#,
    r#"keep_keys(attributes, ["user", "http.url", "http.status_code", "db.system"])"#,
    r#"keep_matching_keys(attributes, ".*")"#,
    r#"limit(attributes, 10, [])"#,
    r#"truncate_all(attributes, 100)"#,
    r#"truncate_all(attributes, 3)"#,
    r#"replace_pattern(attributes["http.url"], "token=[a-z]+", "token=***")"#,
    r#"replace_pattern(name, "[0-9]+", "{id}")"#,
    r#"replace_pattern(name, "zzz", "y")"#,
    r#"replace_all_patterns(attributes, "value", "alice", "alice")"#,
    r#"replace_all_patterns(attributes, "key", "^user$", "person")"#,
    r#"replace_match(name, "GET *", "GET")"#,
    r#"replace_all_matches(attributes, "nomatch*", "x")"#,
    r#"merge_maps(attributes, {"user": "alice"}, "upsert")"#,
    r#"merge_maps(attributes, {"z": 1}, "update")"#,
    r#"set(attributes["n"], Int(attributes["http.status_code"]) * 2)"#,
    r#"set(status.code, STATUS_CODE_UNSET) where status.code == STATUS_CODE_UNSET"#,
    r#"set(resource.attributes["host"], "h1")"#,
    r#"set(attributes["c"], Concat([resource.attributes["service.name"], name], "/")) where IsMatch(name, "^db")"#,
];

/// More statements for the invariant, where the dry run may say "may change" without a change
/// (an error on a missing map, say), so `dry_run_never_misses_a_change` cannot use them.
const FIELD_STATEMENTS: &[&str] = &[
    // Every span field the dry run reads from the undecoded span.
    r#"set(attributes["t"], trace_id.string) where span_id.string != "0202020202020202""#,
    r#"set(attributes["p"], parent_span_id.string) where flags == 1"#,
    r#"set(status.message, "failed") where status.code == STATUS_CODE_ERROR"#,
    r#"set(status.message, "") where kind == SPAN_KIND_CLIENT"#,
    r#"set(name, "x") where trace_state == "a=b""#,
    r#"set(attributes["d"], dropped_attributes_count) where end_time_unix_nano > start_time_unix_nano"#,
    r#"set(kind, SPAN_KIND_SERVER) where dropped_events_count == 0 and dropped_links_count == 0"#,
    r#"set(start_time_unix_nano, 7) where Len(events) > 1"#,
    // Maps held in an attribute (read as wire kvlists).
    r#"delete_key(attributes["kv"], "user")"#,
    r#"set(attributes["kv"]["env"], "prod")"#,
    r#"set(attributes["copy"], attributes["kv"])"#,
    r#"merge_maps(attributes, attributes["kv"], "insert")"#,
];

/// Statements of the span event context, for the same invariant.
const EVENT_STATEMENTS: &[&str] = &[
    r#"set(attributes["e"], "1")"#,
    r#"set(attributes["e"], "2") where span.name == "db""#,
    r#"delete_key(attributes, "e")"#,
    r#"set(name, "ev") where time_unix_nano == 5"#,
    r#"set(attributes["s"], span.attributes["user"]) where resource.attributes["host"] != nil"#,
];

#[test]
fn dry_run_never_misses_a_change() {
    for statement in INVARIANT_STATEMENTS {
        let g = group(Some(ContextKind::Span), &[statement]);
        let (may, out) = apply(&g, &sample());
        assert_eq!(may, out != sample(), "{statement}: dry run {may}");
    }
}

/// The dry run remembers verdicts per span name only while names alone decide them: a span
/// that repeats a name is still caught when a field other than the name makes it change.
#[test]
fn dry_run_remembers_names_only_when_names_decide() {
    let request = |spans: Vec<Span>| {
        let mut req = sample();
        req.resource_spans[0].scope_spans[0].spans = spans;
        req
    };
    let plain = || span_named("GET /a", vec![]);
    let rename = group(
        Some(ContextKind::Span),
        &[r#"replace_pattern(name, "\\?.*", "")"#],
    );
    let untouched = request(vec![plain(), plain(), span_named("db", vec![])]);
    assert!(!apply(&rename, &untouched).0);
    let last_differs = request(vec![plain(), plain(), span_named("GET /a?x=1", vec![])]);
    assert!(apply(&rename, &last_differs).0);

    let by_attribute = group(
        Some(ContextKind::Span),
        &[r#"set(name, "marked") where name == "GET /a" and attributes["mark"] == true"#],
    );
    let marked = kv("mark", &Value::Bool(true));
    let second_marked = request(vec![plain(), span_named("GET /a", vec![marked])]);
    let (may, out) = apply(&by_attribute, &second_marked);
    assert!(may && out != second_marked);
    // Short-circuited on the name for the first span only: the rest read the attribute.
    let first_other = request(vec![span_named("db", vec![]), plain(), plain()]);
    assert!(!apply(&by_attribute, &first_other).0);
}

mod invariant {
    use super::*;
    use proptest::prelude::*;

    fn attr_value() -> impl Strategy<Value = Value<'static>> {
        let scalar = prop_oneof![
            "[a-z=?/0-9]{0,12}".prop_map(Value::string),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
        ];
        let map = proptest::collection::vec(
            (prop_oneof![Just("user"), Just("env")], scalar.clone()),
            0..3,
        )
        .prop_map(|kvs| {
            Value::Map(crate::value::MapRef::Owned(
                kvs.iter().map(|(k, v)| kv(k, v)).collect(),
            ))
        });
        prop_oneof![4 => scalar, 1 => map]
    }

    fn attrs() -> impl Strategy<Value = Vec<KeyValue>> {
        let key = prop_oneof![
            Just("user"),
            Just("http.url"),
            Just("http.status_code"),
            Just("env"),
            Just("n"),
            Just("zz"),
            Just("kv"),
        ];
        proptest::collection::vec((key, attr_value()), 0..5)
            .prop_map(|kvs| kvs.into_iter().map(|(k, v)| kv(k, &v)).collect())
    }

    fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
        let span = (
            "(GET /[0-9]{1,3}|db|[a-z]{1,4})",
            attrs(),
            (0i32..6, 0i32..3, 0u32..3),
            (prop_oneof![Just(""), Just("a=b")], 0u64..3, 0u32..2),
        )
            .prop_map(
                |(name, attributes, (kind, code, flags), (state, end, dropped))| {
                    let mut s = span_named(&name, attributes);
                    s.kind = kind;
                    s.flags = flags;
                    s.trace_state = state.into();
                    s.start_time_unix_nano = 1;
                    s.end_time_unix_nano = end;
                    s.dropped_events_count = dropped;
                    s.status = Some(Status {
                        code,
                        message: if code == 2 {
                            "failed".into()
                        } else {
                            String::new()
                        },
                    });
                    s
                },
            );
        (attrs(), proptest::collection::vec(span, 0..6)).prop_map(|(resource_attrs, spans)| {
            let mut req = sample();
            let rs = &mut req.resource_spans[0];
            rs.resource = Some(Resource {
                attributes: resource_attrs,
                ..Default::default()
            });
            rs.scope_spans[0].spans = spans;
            req
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn dry_run_false_means_apply_changes_nothing(req in request(), pick in 0usize..INVARIANT_STATEMENTS.len() + FIELD_STATEMENTS.len()) {
            let statement = INVARIANT_STATEMENTS.iter().chain(FIELD_STATEMENTS).nth(pick).expect("in range");
            let g = group(Some(ContextKind::Span), &[statement]);
            // `apply` asserts the invariant itself.
            let (may, out) = apply(&g, &req);
            prop_assert!(may || out == req);
        }

        #[test]
        fn event_dry_run_false_means_apply_changes_nothing(req in request(), pick in 0usize..EVENT_STATEMENTS.len()) {
            let g = group(Some(ContextKind::SpanEvent), &[EVENT_STATEMENTS[pick]]);
            let (may, out) = apply(&g, &req);
            prop_assert!(may || out == req);
        }
    }
}

#[test]
fn is_root_span_in_the_span_context_only() {
    let g = group(
        Some(ContextKind::Span),
        &[r#"set(attributes["root"], true) where IsRootSpan()"#],
    );
    let mut req = sample();
    // The second span has a parent; the first none, an all-zero id counting as none.
    req.resource_spans[0].scope_spans[0].spans[0].parent_span_id = vec![0; 8];
    req.resource_spans[0].scope_spans[0].spans[1].parent_span_id = vec![3; 8];
    let (may, out) = apply(&g, &req);
    assert!(may);
    let root = |i| {
        span_attr(&out, i, "root")
            .and_then(|v| v.value.clone())
            .map(|v| matches!(v, any_value::Value::BoolValue(true)))
    };
    assert_eq!((root(0), root(1)), (Some(true), None));
    for context in [ContextKind::SpanEvent, ContextKind::Resource] {
        let texts = vec!["IsRootSpan()".to_string()];
        let err = ConditionSet::compile(context, &texts, ErrorMode::Propagate)
            .expect_err("span context only");
        assert!(
            format!("{err:?}").contains("available in the span context only"),
            "{err:?}"
        );
    }
}

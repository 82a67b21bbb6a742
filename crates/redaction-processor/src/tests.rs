#![allow(clippy::expect_used)]

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use redline_pipeline::config::Secret;
use redline_pipeline::Signal;
use redline_processor_testkit::{
    build, component, kv, logs_request, send, span, string, traces_request,
};

use super::*;
use crate::mask::{Hash, Masker};

fn compiled(body: &str) -> Rules {
    config::compile(&component(&format!("  redaction:\n{body}"))).expect("compiles")
}

fn text(attributes: &[KeyValue]) -> Vec<String> {
    attributes
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().and_then(|v| v.value.clone());
            match v {
                Some(Value::StringValue(s)) => format!("{}={s}", kv.key),
                Some(Value::IntValue(i)) => format!("{}={i}", kv.key),
                other => format!("{}={other:?}", kv.key),
            }
        })
        .collect()
}

#[test]
fn masks_every_match_as_go_replaces() {
    let masker = Masker::new(Hash::None);
    assert_eq!(masker.whole("4111 1111"), "****");
    assert_eq!(masker.whole(""), "****");
    // `.` stops at a newline: a value is masked line by line.
    assert_eq!(masker.whole("a\nb"), "****\n****");
    // An empty match right after a match is skipped, as in Go.
    let re = redline_go_regex::compile("a*").expect("compiles");
    assert_eq!(masker.replace(&re, "baaac"), "****b****c****");
}

#[test]
fn hashes_the_matched_text() {
    let re = redline_go_regex::compile("[0-9]+").expect("compiles");
    let hashed = |hash: Hash| Masker::new(hash).replace(&re, "card 4111 end");
    assert_eq!(
        hashed(Hash::Sha3),
        hashed(Hash::Sha3),
        "the same input hashes the same"
    );
    let key32 = Secret::new("k".repeat(32));
    let key64 = Secret::new("k".repeat(64));
    let cases = [
        (
            Hash::parse("HMAC-SHA256", &key32).expect("key long enough"),
            "ea3235590fd31aaeccaf7b0cadfb2130cb3f10c5a7608142917711b0f116a728",
        ),
        (
            Hash::parse("hmac-sha512", &key64).expect("key long enough"),
            "9bf28647d4fe3099b6e86694841837869084de4d90a7f72e08d04d74278fbe72f450a64813cd5c6894dca3589c38c322608942fd8dcbbc40eca39ffb813246f3",
        ),
    ];
    for (hash, digest) in cases {
        assert_eq!(hashed(hash), format!("card {digest} end"));
    }
    let abc = |hash: Hash| Masker::new(hash).whole("abc");
    assert_eq!(abc(Hash::Sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(abc(Hash::Md5), "900150983cd24fb0d6963f7d28e17f72");
    assert_eq!(
        abc(Hash::Sha3),
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    );
    assert!(Hash::parse("hmac-sha256", &Secret::new("short")).is_err());
    assert!(Hash::parse("hmac-sha512", &key32).is_err());
    assert!(Hash::parse("crc32", &key32).is_err());
}

#[test]
fn attributes_are_ignored_redacted_allowed_or_masked_with_a_summary() {
    let rules = compiled(
        "    allowed_keys: [card, note, count, visa, token, ok]
    ignored_keys: [trace]
    blocked_key_patterns: ['^tok']
    blocked_values: ['4[0-9]{3}']
    allowed_values: ['^ok$']
    summary: debug",
    );
    let mut attributes = vec![
        kv("card", string("4111 and 4222")),
        kv("secret", string("x")),
        kv("trace", string("4111")),
        kv("note", string("fine")),
        kv("token", string("abc")),
        kv("ok", string("ok")),
        // Not a string: `Str()` is "" and nothing matches it.
        kv("count", Value::IntValue(4111)),
        kv("password", string("y")),
    ];
    assert!(rules.attributes(&mut attributes));
    assert_eq!(
        text(&attributes),
        [
            "card=**** and ****",
            // pdata's Remove: `password`, the last, took `secret`'s place, then `count`
            // took `password`'s.
            "count=4111",
            "trace=4111",
            "note=fine",
            "token=****",
            "ok=ok",
            "redaction.redacted.keys=password,secret",
            "redaction.redacted.count=2",
            "redaction.masked.keys=card,token",
            "redaction.masked.count=2",
            "redaction.allowed.keys=ok",
            "redaction.allowed.count=1",
            "redaction.ignored.count=1",
        ]
    );

    // A second pass keeps its own summary, adds to the counts and merges the keys; the
    // `allowed` pair is not on otelcol's list of its own keys, so it goes.
    let again = compiled("    allowed_keys: [card]\n    summary: debug");
    assert!(again.attributes(&mut attributes));
    let summary: Vec<String> = text(&attributes)
        .into_iter()
        .filter(|a| a.starts_with("redaction.redacted"))
        .collect();
    assert_eq!(
        summary,
        [
            "redaction.redacted.keys=count,note,ok,password,redaction.allowed.count,\
             redaction.allowed.keys,secret,token,trace",
            "redaction.redacted.count=9",
        ]
    );
}

#[test]
fn the_default_redacts_every_attribute_and_a_request_left_alone_is_not_re_encoded() {
    let config = component("  redaction:");
    let (consumer, sink, _) = build(&RedactionFactory, &config, Signal::Traces).expect("builds");
    let request = traces_request(vec![span("a", vec![kv("user.email", string("x@y"))])]);
    send(&consumer, Signal::Traces, request.encode_to_vec(), 1);
    let got = ExportTraceServiceRequest::decode(sink.take()[0].raw.as_ref()).expect("decodes");
    assert!(got.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .is_empty());

    let config = component("  redaction:\n    allow_all_keys: true");
    let (consumer, sink, _) = build(&RedactionFactory, &config, Signal::Traces).expect("builds");
    let raw = request.encode_to_vec();
    send(&consumer, Signal::Traces, raw.clone(), 1);
    assert_eq!(sink.take()[0].raw.as_ref(), &raw[..], "the client's bytes");
}

fn map(entries: Vec<KeyValue>) -> Value {
    Value::KvlistValue(KeyValueList { values: entries })
}

#[test]
fn log_bodies_are_walked_with_key_paths() {
    let config = component(
        "  redaction:
    allowed_keys: [user, name, card, cards, msg]
    blocked_values: ['4[0-9]{3}']
    allowed_values: ['^public$']
    summary: debug",
    );
    let (consumer, sink, _) = build(&RedactionFactory, &config, Signal::Logs).expect("builds");
    let record = |body: Value| LogRecord {
        body: Some(AnyValue { value: Some(body) }),
        ..LogRecord::default()
    };
    let nested = map(vec![
        kv(
            "user",
            map(vec![
                kv("name", string("public")),
                kv("ssn", string("1")),
                kv("card", string("4111")),
            ]),
        ),
        kv(
            "cards",
            Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue {
                    value: Some(string("4222")),
                }],
            }),
        ),
        kv("msg", string("fine")),
    ]);
    let request = logs_request(vec![
        record(nested),
        record(string("paid with 4111")),
        // An allowed scalar body: otelcol returns before writing any summary.
        record(string("public")),
    ]);
    send(&consumer, Signal::Logs, request.encode_to_vec(), 3);
    let got = ExportLogsServiceRequest::decode(sink.take()[0].raw.as_ref()).expect("decodes");
    let logs = &got.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(
        text(&logs[0].attributes),
        [
            "redaction.body.redacted.keys=user.ssn",
            "redaction.body.redacted.count=1",
            "redaction.body.masked.keys=cards.[0],user.card",
            "redaction.body.masked.count=2",
            "redaction.body.allowed.keys=user.name",
            "redaction.body.allowed.count=1",
        ]
    );
    let Some(Value::KvlistValue(body)) = logs[0].body.clone().and_then(|b| b.value) else {
        panic!("a map body");
    };
    let Some(Value::KvlistValue(user)) = body.values[0].value.clone().and_then(|v| v.value) else {
        panic!("a map under user");
    };
    assert_eq!(text(&user.values), ["name=public", "card=****"]);
    assert_eq!(
        logs[1].body,
        Some(AnyValue {
            value: Some(string("paid with ****"))
        })
    );
    assert_eq!(
        text(&logs[1].attributes),
        [
            "redaction.body.masked.keys=body",
            "redaction.body.masked.count=1"
        ]
    );
    assert!(logs[2].attributes.is_empty());
}

#[test]
fn validate_names_every_problem_at_its_key() {
    let config = component(
        "  redaction:
    blocked_values: ['ok', '(unclosed']
    allowed_values: ['[']
    hash_function: hmac-sha256
    hmac_key: short
    db_sanitizer:
      sql: {enabled: true}
      redis: {enabled: false}
    url_sanitizer: {enabled: true, sanitize_span_name: false}",
    );
    let problems: Vec<String> = RedactionFactory
        .validate_all(&config)
        .iter()
        .map(ToString::to_string)
        .collect();
    let keys = [
        "processors.redaction.blocked_values[1]",
        "processors.redaction.allowed_values[0]",
        "processors.redaction.hmac_key",
        "processors.redaction.db_sanitizer.sql.enabled",
        "processors.redaction.url_sanitizer.enabled",
    ];
    assert_eq!(problems.len(), keys.len(), "{problems:#?}");
    for key in keys {
        assert!(
            problems.iter().any(|p| p.contains(key)),
            "{key} not named in {problems:#?}"
        );
    }
    assert!(
        !problems.iter().any(|p| p.contains("short")),
        "the key is never shown: {problems:#?}"
    );
    let typo = component("  redaction:\n    allowed_key: [a]");
    assert!(RedactionFactory.validate(&typo).is_err());
}

#[test]
fn the_dry_run_on_traces_agrees_with_the_full_run() {
    let request = ExportTraceServiceRequest {
        resource_spans: vec![opentelemetry_proto::tonic::trace::v1::ResourceSpans {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", string("shop"))],
                ..Default::default()
            }),
            scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                spans: vec![{
                    let mut s = span(
                        "GET",
                        vec![
                            kv("url.path", string("/p/12")),
                            kv("n", Value::IntValue(4111)),
                        ],
                    );
                    s.events = vec![opentelemetry_proto::tonic::trace::v1::span::Event {
                        attributes: vec![kv("card", string("4111111111111111"))],
                        ..Default::default()
                    }];
                    s
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let raw = request.encode_to_vec();
    // (settings, whether redaction changes the request)
    let cases = [
        ("    allow_all_keys: true", false),
        (
            "    allow_all_keys: true\n    blocked_values: ['^x$']",
            false,
        ),
        // Only in the event.
        (
            "    allow_all_keys: true\n    blocked_values: ['4[0-9]{15}']",
            true,
        ),
        // Not a string: "" to the pattern, unless all types are redacted.
        (
            "    allow_all_keys: true\n    blocked_values: ['^4111$']",
            false,
        ),
        (
            "    allow_all_keys: true\n    redact_all_types: true\n    blocked_values: ['^4111$']",
            true,
        ),
        (
            "    allow_all_keys: true\n    blocked_key_patterns: ['^url']",
            true,
        ),
        ("    allowed_keys: [service.name, url.path, n, card]", false),
        ("    allowed_keys: [service.name, url.path, n]", true),
        ("    allow_all_keys: true\n    ignored_keys: [n]", false),
        (
            "    allow_all_keys: true\n    ignored_keys: [n]\n    summary: info",
            true,
        ),
        (
            "    allow_all_keys: true\n    allowed_values: ['^shop$']",
            false,
        ),
        (
            "    allow_all_keys: true\n    allowed_values: ['^shop$']\n    summary: debug",
            true,
        ),
    ];
    for (settings, changes) in cases {
        let config = component(&format!("  redaction:\n{settings}"));
        let rules = config::compile(&config).expect("compiles");
        assert_eq!(
            rules.traces_may_change(&raw).expect("walks"),
            changes,
            "dry run, {settings}"
        );
        let redaction = Redaction {
            id: "redaction".into(),
            signal: Signal::Traces,
            rules,
        };
        let mut decoded = request.clone();
        assert_eq!(
            redaction.traces(&mut decoded),
            changes,
            "full run, {settings}"
        );
    }
}

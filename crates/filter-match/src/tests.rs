//! Matching cases after otelcol's filterspan / filterlog tests.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;

fn kv(k: &str, v: Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn props(match_type: &str) -> MatchProperties {
    MatchProperties {
        match_type: match_type.into(),
        ..MatchProperties::default()
    }
}

fn attr(key: &str, value: Option<ConfigValue>) -> AttributeMatch {
    AttributeMatch {
        key: key.into(),
        value,
    }
}

fn include_spans(p: MatchProperties) -> Filter {
    Filter::new(Some(&p), None, Kind::Spans).expect("valid")
}

fn resource(service: &str) -> Resource {
    Resource {
        attributes: vec![kv("service.name", Value::StringValue(service.into()))],
        ..Resource::default()
    }
}

#[test]
fn services_and_span_names_strict_and_regexp() {
    let span = Span {
        name: "spanName".into(),
        kind: 2,
        ..Span::default()
    };
    let svc = resource("svcA");
    let f = include_spans(MatchProperties {
        services: vec!["svcA".into(), "svcB".into()],
        ..props("strict")
    });
    assert!(f.span(Some(&svc), None, &span));
    assert!(!f.span(Some(&resource("svcC")), None, &span));
    assert!(
        !f.span(None, None, &span),
        "no service.name is <nil-service-name>"
    );
    let f = include_spans(MatchProperties {
        span_names: vec!["span.*".into()],
        span_kinds: vec!["SPAN_KIND_SERVER".into()],
        ..props("regexp")
    });
    assert!(f.span(Some(&svc), None, &span));
    let client = Span {
        kind: 3,
        ..span.clone()
    };
    assert!(!f.span(Some(&svc), None, &client));
    let strict_kind = MatchProperties {
        span_kinds: vec!["server".into()],
        ..props("strict")
    };
    assert!(matches!(
        Filter::new(Some(&strict_kind), None, Kind::Spans),
        Err(MatchError::SpanKind)
    ));
}

#[test]
fn attributes_resources_and_libraries() {
    let span = Span {
        attributes: vec![
            kv("keyString", Value::StringValue("arithmetic".into())),
            kv("keyInt", Value::IntValue(123)),
            kv("keyDouble", Value::DoubleValue(3245.6)),
        ],
        ..Span::default()
    };
    let strict = include_spans(MatchProperties {
        attributes: vec![
            attr("keyString", Some(ConfigValue::Str("arithmetic".into()))),
            attr("keyInt", Some(ConfigValue::Int(123))),
            attr("keyDouble", None),
        ],
        ..props("strict")
    });
    assert!(strict.span(None, None, &span));
    let wrong_type = include_spans(MatchProperties {
        attributes: vec![attr("keyInt", Some(ConfigValue::Str("123".into())))],
        ..props("strict")
    });
    assert!(!wrong_type.span(None, None, &span));
    let regexp = include_spans(MatchProperties {
        attributes: vec![
            attr("keyDouble", Some(ConfigValue::Str(r"^3245\.6$".into()))),
            attr("keyInt", Some(ConfigValue::Str("^12".into()))),
        ],
        ..props("regexp")
    });
    assert!(regexp.span(None, None, &span));
    let not_str = MatchProperties {
        attributes: vec![attr("keyInt", Some(ConfigValue::Int(1)))],
        ..props("regexp")
    };
    assert!(matches!(
        Filter::new(Some(&not_str), None, Kind::Spans),
        Err(MatchError::RegexpNeedsString(_, "Int"))
    ));

    let lib = |version: Option<&str>| MatchProperties {
        libraries: vec![LibraryMatch {
            name: "lib".into(),
            version: version.map(str::to_owned),
        }],
        ..props("strict")
    };
    let scope = InstrumentationScope {
        name: "lib".into(),
        version: "1.0".into(),
        ..InstrumentationScope::default()
    };
    assert!(include_spans(lib(None)).span(None, Some(&scope), &span));
    assert!(include_spans(lib(Some("1.0"))).span(None, Some(&scope), &span));
    assert!(!include_spans(lib(Some(""))).span(None, Some(&scope), &span));

    let by_resource = include_spans(MatchProperties {
        resources: vec![attr("service.name", Some(ConfigValue::Str("svcA".into())))],
        ..props("strict")
    });
    assert!(by_resource.span(Some(&resource("svcA")), None, &span));
    assert!(!by_resource.span(None, None, &span));
}

#[test]
fn include_is_checked_before_exclude() {
    let include = MatchProperties {
        services: vec!["svcA".into()],
        ..props("strict")
    };
    let exclude = MatchProperties {
        span_names: vec!["^health".into()],
        ..props("regexp")
    };
    let f = Filter::new(Some(&include), Some(&exclude), Kind::Spans).expect("valid");
    let named = |n: &str| Span {
        name: n.into(),
        ..Span::default()
    };
    let svc = resource("svcA");
    assert!(f.span(Some(&svc), None, &named("GET")));
    assert!(!f.span(Some(&svc), None, &named("healthz")));
    assert!(!f.span(Some(&resource("svcB")), None, &named("GET")));
}

#[test]
fn logs_match_bodies_severity_text_and_number() {
    let record = LogRecord {
        body: Some(AnyValue {
            value: Some(Value::IntValue(42)),
        }),
        severity_text: "WARN".into(),
        severity_number: 13,
        ..LogRecord::default()
    };
    let f = Filter::new(
        Some(&MatchProperties {
            log_bodies: vec!["42".into()],
            log_severity_texts: vec!["WARN".into(), "ERROR".into()],
            ..props("strict")
        }),
        None,
        Kind::Logs,
    )
    .expect("valid");
    assert!(f.log(None, None, &record));
    let min = |min, match_undefined| {
        Filter::new(
            Some(&MatchProperties {
                log_severity_number: Some(SeverityNumberMatch {
                    min,
                    match_undefined,
                }),
                ..props("")
            }),
            None,
            Kind::Logs,
        )
        .expect("no match_type needed")
    };
    assert!(min(9, false).log(None, None, &record));
    assert!(!min(17, false).log(None, None, &record));
    let undefined = LogRecord::default();
    assert!(!min(9, false).log(None, None, &undefined));
    assert!(min(9, true).log(None, None, &undefined));
}

#[test]
fn each_signal_refuses_the_properties_of_others() {
    let spans_only = MatchProperties {
        span_names: vec!["a".into()],
        ..props("strict")
    };
    assert!(Filter::new(Some(&spans_only), None, Kind::Metrics).is_err());
    assert!(Filter::new(Some(&spans_only), None, Kind::Logs).is_err());
    let metrics_only = MatchProperties {
        metric_names: vec!["a".into()],
        ..props("strict")
    };
    assert!(Filter::new(None, Some(&metrics_only), Kind::Spans).is_err());
    let empty = props("strict");
    assert!(Filter::new(Some(&empty), None, Kind::Spans).is_err());
    assert!(Filter::new(None, None, Kind::Spans)
        .expect("no sections")
        .is_noop());
}

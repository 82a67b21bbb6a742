//! Cases from otelcol's attraction tests and README, with the values otelcol produces.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::apply::{go_float_to_int, go_parse_float};
use super::*;
use redline_pipeline::ClientMetadata;

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn attrs(entries: &[(&str, Value)]) -> Vec<KeyValue> {
    entries
        .iter()
        .map(|(k, v)| KeyValue {
            key: (*k).into(),
            value: Some(AnyValue {
                value: Some(v.clone()),
            }),
            ..KeyValue::default()
        })
        .collect()
}

fn action(key: &str, action: &str) -> ActionConfig {
    ActionConfig {
        key: key.into(),
        action: action.into(),
        ..ActionConfig::default()
    }
}

fn with_value(key: &str, act: &str, value: ConfigValue) -> ActionConfig {
    ActionConfig {
        value: Some(value),
        ..action(key, act)
    }
}

fn from_attr(key: &str, act: &str, from: &str) -> ActionConfig {
    ActionConfig {
        from_attribute: from.into(),
        ..action(key, act)
    }
}

fn run(configs: &[ActionConfig], input: &[(&str, Value)]) -> (Vec<KeyValue>, bool) {
    let actions = AttrActions::new(configs).expect("valid actions");
    let mut list = attrs(input);
    let changed = actions.apply(&mut list, None);
    (list, changed)
}

#[test]
fn insert_only_adds_missing_keys() {
    let cfg = [with_value("attribute1", "insert", ConfigValue::Int(123))];
    let (out, changed) = run(&cfg, &[("anotherkey", s("bob"))]);
    assert_eq!(
        out,
        attrs(&[
            ("anotherkey", s("bob")),
            ("attribute1", Value::IntValue(123))
        ])
    );
    assert!(changed);
    let (out, changed) = run(&cfg, &[("attribute1", s("bob"))]);
    assert_eq!(out, attrs(&[("attribute1", s("bob"))]));
    assert!(!changed, "an insert of a present key changes nothing");
}

#[test]
fn update_and_upsert() {
    let update = [with_value(
        "db.secret",
        "update",
        ConfigValue::Str("redacted".into()),
    )];
    let (out, _) = run(&update, &[("boo", s("foo"))]);
    assert_eq!(out, attrs(&[("boo", s("foo"))]));
    let (out, _) = run(&update, &[("db.secret", s("password1234"))]);
    assert_eq!(out, attrs(&[("db.secret", s("redacted"))]));

    let upsert = [with_value(
        "region",
        "upsert",
        ConfigValue::Str("planet-earth".into()),
    )];
    let (out, _) = run(&upsert, &[]);
    assert_eq!(out, attrs(&[("region", s("planet-earth"))]));
    let (out, changed) = run(&upsert, &[("region", s("planet-earth"))]);
    assert_eq!(out, attrs(&[("region", s("planet-earth"))]));
    assert!(!changed, "the same value again is no change");
}

#[test]
fn from_attribute_copies_and_missing_source_does_nothing() {
    let cfg = [from_attr("string key", "insert", "original_key")];
    let (out, _) = run(&cfg, &[("original_key", Value::IntValue(7))]);
    assert_eq!(
        out,
        attrs(&[
            ("original_key", Value::IntValue(7)),
            ("string key", Value::IntValue(7))
        ])
    );
    let (out, changed) = run(&cfg, &[("other", s("x"))]);
    assert_eq!(out, attrs(&[("other", s("x"))]));
    assert!(!changed);
}

#[test]
fn default_value_fills_in_when_the_source_is_missing() {
    let cfg = [ActionConfig {
        default_value: Some(ConfigValue::Str("us-east-1".into())),
        ..from_attr("region", "insert", "cloud.region")
    }];
    let (out, _) = run(&cfg, &[]);
    assert_eq!(out, attrs(&[("region", s("us-east-1"))]));
    let (out, _) = run(&cfg, &[("cloud.region", s("eu-west-3"))]);
    assert_eq!(
        out,
        attrs(&[("cloud.region", s("eu-west-3")), ("region", s("eu-west-3"))])
    );
    // Without client metadata the default applies, as in otelcol without include_metadata.
    let ctx = [ActionConfig {
        from_context: "metadata.tenant".into(),
        default_value: Some(ConfigValue::Str("default-tenant".into())),
        ..action("tenant_id", "upsert")
    }];
    let (out, _) = run(&ctx, &[]);
    assert_eq!(out, attrs(&[("tenant_id", s("default-tenant"))]));
    // With it, the client's values (joined with `;`) for `metadata.<key>` or a bare key.
    let client = ClientMetadata::from_pairs([("Tenant", "a"), ("tenant", "b")]);
    let actions = AttrActions::new(&ctx).expect("valid");
    let mut list = Vec::new();
    assert!(actions.apply(&mut list, Some(&client)));
    assert_eq!(list, attrs(&[("tenant_id", s("a;b"))]));
    let bare = [ActionConfig {
        from_context: "TENANT".into(),
        ..action("tenant_id", "insert")
    }];
    let mut list = Vec::new();
    assert!(AttrActions::new(&bare)
        .expect("valid")
        .apply(&mut list, Some(&client)));
    assert_eq!(list, attrs(&[("tenant_id", s("a;b"))]));
}

#[test]
fn ordering_insert_upsert_delete() {
    let cfg = [
        with_value("operation", "insert", ConfigValue::Str("default".into())),
        from_attr("svc.operation", "upsert", "operation"),
        action("operation", "delete"),
    ];
    let foo = ("foo", s("casper the friendly ghost"));
    let (out, _) = run(&cfg, std::slice::from_ref(&foo));
    assert_eq!(out, attrs(&[foo.clone(), ("svc.operation", s("default"))]));
    let (out, _) = run(&cfg, &[foo.clone(), ("operation", s("arithmetic"))]);
    assert_eq!(
        out,
        attrs(&[foo.clone(), ("svc.operation", s("arithmetic"))])
    );
    let (out, _) = run(
        &cfg,
        &[
            foo.clone(),
            ("operation", s("arithmetic")),
            ("svc.operation", s("add")),
        ],
    );
    // pdata removes a key by moving the last entry into its place.
    assert_eq!(out, attrs(&[foo, ("svc.operation", s("arithmetic"))]));
}

#[test]
fn delete_by_key_moves_the_last_entry_and_by_pattern_keeps_order() {
    let (out, _) = run(
        &[action("b", "delete")],
        &[("a", s("1")), ("b", s("2")), ("c", s("3")), ("d", s("4"))],
    );
    assert_eq!(out, attrs(&[("a", s("1")), ("d", s("4")), ("c", s("3"))]));
    let by_pattern = [ActionConfig {
        pattern: "^pass.*".into(),
        ..action("", "delete")
    }];
    let (out, changed) = run(
        &by_pattern,
        &[
            ("user", s("u")),
            ("password", s("p")),
            ("passcode", s("c")),
            ("x", s("x")),
        ],
    );
    assert_eq!(out, attrs(&[("user", s("u")), ("x", s("x"))]));
    assert!(changed);
}

#[test]
fn hash_is_hex_sha256_of_the_value_bytes() {
    let cfg = [ActionConfig {
        pattern: "^updatemeby.*".into(),
        ..action("updateme", "hash")
    }];
    let cases = [
        (
            s("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        ),
        (
            Value::IntValue(24),
            "cbb032642036ec7043fa4529f06c9c9d8b12fa70ea6799a19ca8321a808d86fa",
        ),
        (
            Value::DoubleValue(2.4),
            "df3022be03461368aa299f2f30d440fd3ca45c9b62af40733f10296a53d42859",
        ),
        (
            Value::BoolValue(true),
            "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a",
        ),
        (
            Value::BoolValue(false),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        ),
        (Value::BytesValue(vec![1, 2]), ""),
    ];
    for (input, want) in cases {
        let (out, changed) = run(&cfg, &[("updateme", input.clone())]);
        assert_eq!(out, attrs(&[("updateme", s(want))]), "hash of {input:?}");
        assert!(changed);
    }
    let (out, _) = run(
        &cfg,
        &[
            ("updatemebyregexp", Value::BoolValue(false)),
            ("donotupdatemebyregexp", Value::BoolValue(false)),
        ],
    );
    assert_eq!(
        out,
        attrs(&[
            (
                "updatemebyregexp",
                s("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
            ),
            ("donotupdatemebyregexp", Value::BoolValue(false)),
        ])
    );
    // A key the pattern matches too is hashed twice.
    let twice = [ActionConfig {
        pattern: "^k$".into(),
        ..action("k", "hash")
    }];
    let (out, _) = run(&twice, &[("k", s("foo"))]);
    assert_eq!(
        out,
        attrs(&[(
            "k",
            s("505221025f9701f8a05cc22cbafeec897598b2924a9d665cbc10f0073d66da20")
        )])
    );
}

#[test]
fn extract_puts_named_groups() {
    let cfg = [ActionConfig {
        pattern: r"^\/api\/v1\/document\/(?P<new_user_key>.*)\/update\/(?P<version>.*)$".into(),
        ..action("user_key", "extract")
    }];
    let path = "/api/v1/document/12345678/update/v1";
    let (out, _) = run(
        &cfg,
        &[
            ("user_key", s(path)),
            ("new_user_key", s("2321")),
            ("foo", s("casper")),
        ],
    );
    assert_eq!(
        out,
        attrs(&[
            ("user_key", s(path)),
            ("new_user_key", s("12345678")),
            ("foo", s("casper")),
            ("version", s("v1")),
        ])
    );
    for input in [
        attrs(&[("user_key", Value::IntValue(1234))]),
        attrs(&[("user_key", s("/api/v1/document/12345678/update"))]),
        attrs(&[("boo", s("ghosts are scary"))]),
    ] {
        let mut list = input.clone();
        assert!(!AttrActions::new(&cfg)
            .expect("valid")
            .apply(&mut list, None));
        assert_eq!(list, input);
    }
}

#[test]
fn convert_follows_go_conversions() {
    let to = |t: &str| {
        [ActionConfig {
            converted_type: t.into(),
            ..action("k", "convert")
        }]
    };
    let check = |t: &str, input: Value, want: Value| {
        let (out, _) = run(&to(t), &[("k", input.clone())]);
        assert_eq!(out, attrs(&[("k", want)]), "{input:?} to {t}");
    };
    check("int", s("123"), Value::IntValue(123));
    check("int", s("+7"), Value::IntValue(7));
    check("int", s("12.5"), s("12.5"));
    check("int", Value::DoubleValue(-3.9), Value::IntValue(-3));
    check("int", Value::BoolValue(true), Value::IntValue(1));
    check("double", s("1e3"), Value::DoubleValue(1000.0));
    check("double", s("1e400"), s("1e400"));
    check("double", Value::IntValue(2), Value::DoubleValue(2.0));
    check("string", Value::IntValue(42), s("42"));
    check("string", Value::DoubleValue(1e21), s("1e+21"));
    check("string", Value::BoolValue(false), s("false"));
    check("string", Value::BytesValue(vec![0xff]), s("/w=="));
    assert_eq!(go_float_to_int(f64::NAN), i64::MIN);
    assert_eq!(go_float_to_int(1e19), i64::MIN);
    assert_eq!(go_parse_float("-Inf"), Some(f64::NEG_INFINITY));
    assert_eq!(go_parse_float("1_0"), None);
}

#[test]
fn invalid_configs_are_refused_with_the_field_named() {
    let bad = |c: ActionConfig| {
        AttrActions::new(&[action("ok", "delete"), c]).expect_err("invalid action")
    };
    let e = bad(action("", "insert"));
    assert_eq!((e.index, e.field), (1, "key"));
    assert!(matches!(e.error, ActionError::MissingKey));
    let e = bad(action("", "delete"));
    assert!(matches!(e.error, ActionError::MissingKeyOrPattern));
    let e = bad(action("k", "insert"));
    assert!(matches!(e.error, ActionError::MissingValueSource));
    let e = bad(ActionConfig {
        from_attribute: "a".into(),
        ..with_value("k", "upsert", ConfigValue::Int(1))
    });
    assert!(matches!(e.error, ActionError::MultipleValueSources));
    let e = bad(ActionConfig {
        pattern: "x".into(),
        ..with_value("k", "insert", ConfigValue::Int(1))
    });
    assert_eq!(e.field, "pattern");
    let e = bad(with_value("k", "hash", ConfigValue::Int(1)));
    assert!(matches!(
        e.error,
        ActionError::FieldNotUsed { action: "hash" }
    ));
    let e = bad(action("k", "extract"));
    assert!(matches!(e.error, ActionError::MissingPattern));
    let e = bad(ActionConfig {
        pattern: "(a)(?P<b>b)".into(),
        ..action("k", "extract")
    });
    assert!(matches!(e.error, ActionError::UnnamedGroup(_)));
    let e = bad(ActionConfig {
        pattern: "ab".into(),
        ..action("k", "extract")
    });
    assert!(matches!(e.error, ActionError::NoNamedGroups(_)));
    let e = bad(ActionConfig {
        pattern: "(".into(),
        ..action("k", "delete")
    });
    assert!(matches!(e.error, ActionError::Regex(_)));
    let e = bad(action("k", "convert"));
    assert!(matches!(e.error, ActionError::MissingConvertedType));
    let e = bad(ActionConfig {
        converted_type: "bool".into(),
        ..action("k", "convert")
    });
    assert!(matches!(e.error, ActionError::BadConvertedType(_)));
    let e = bad(action("k", "rename"));
    assert_eq!(e.field, "action");
    let e = bad(ActionConfig {
        from_context: "client.address".into(),
        ..action("k", "insert")
    });
    assert!(matches!(e.error, ActionError::UnsupportedContext(_)));
    assert!(
        AttrActions::new(&[action("k", "DELETE")]).is_ok(),
        "case-insensitive"
    );
}

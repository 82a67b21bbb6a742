//! Value expressions: trees (cases from otelcol's parser tests), spans and errors.

use super::parse_value;
use crate::ast::{ArgValue, Call, Field, Key, MathExpr, MathOp, Path, Span, Value};

/// The byte span of the first occurrence of `needle` in `text`.
pub(super) fn at(text: &str, needle: &str) -> Span {
    let start = text.find(needle).expect("needle should occur in the text");
    Span::new(start, start + needle.len())
}

/// A compact rendering of a tree without spans: `math(...)` marks a value that went
/// through arithmetic, `editor:` an editor in value position, `fn:` a function name.
pub(super) fn shape(value: &Value) -> String {
    match value {
        Value::Nil(_) => "nil".into(),
        Value::Bool(b, _) => b.to_string(),
        Value::Int(n, _) => n.to_string(),
        Value::Float(f, _) => format!("{f:?}"),
        Value::String(s, _) => format!("{s:?}"),
        Value::Bytes(bytes, _) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
        Value::Enum(name, _) => name.clone(),
        Value::Path(path) => {
            let fields: Vec<String> = path
                .fields
                .iter()
                .map(|f| format!("{}{}", f.name, keys_shape(&f.keys)))
                .collect();
            fields.join(".")
        }
        Value::Converter(call) => call_shape(call),
        Value::Editor(call) => format!("editor:{}", call_shape(call)),
        Value::List(items, _) => {
            let items: Vec<String> = items.iter().map(shape).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(entries, _) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", shape(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Math(expr) => format!("math({})", math_shape(expr)),
    }
}

fn math_shape(expr: &MathExpr) -> String {
    match expr {
        MathExpr::Leaf(value) => shape(value),
        MathExpr::Neg(inner, _) => format!("(neg {})", math_shape(inner)),
        MathExpr::Binary {
            op, left, right, ..
        } => {
            let op = match op {
                MathOp::Add => "+",
                MathOp::Sub => "-",
                MathOp::Mul => "*",
                MathOp::Div => "/",
            };
            format!("({op} {} {})", math_shape(left), math_shape(right))
        }
    }
}

fn keys_shape(keys: &[Key]) -> String {
    keys.iter()
        .map(|key| match key {
            Key::String(s, _) => format!("[{s:?}]"),
            Key::Int(n, _) => format!("[{n}]"),
            Key::Expr(value, _) => format!("[{}]", shape(value)),
        })
        .collect()
}

pub(super) fn call_shape(call: &Call) -> String {
    let args: Vec<String> = call
        .args
        .iter()
        .map(|arg| {
            let value = match &arg.value {
                ArgValue::Value(value) => shape(value),
                ArgValue::FunctionName(name) => format!("fn:{name}"),
            };
            match &arg.name {
                Some(name) => format!("{name}={value}"),
                None => value,
            }
        })
        .collect();
    format!(
        "{}({}){}",
        call.name,
        args.join(", "),
        keys_shape(&call.keys)
    )
}

fn value_shape(text: &str) -> String {
    match parse_value(text) {
        Ok(value) => shape(&value),
        Err(err) => panic!("{text:?} should parse: {}", err.render(text)),
    }
}

fn value_error(text: &str) -> String {
    match parse_value(text) {
        Ok(value) => panic!("{text:?} should not parse, got {}", shape(&value)),
        Err(err) => err.render(text),
    }
}

#[test]
fn literals_with_spans() {
    assert_eq!(parse_value("nil"), Ok(Value::Nil(Span::new(0, 3))));
    assert_eq!(parse_value("true"), Ok(Value::Bool(true, Span::new(0, 4))));
    assert_eq!(parse_value(" 12 "), Ok(Value::Int(12, Span::new(1, 3))));
    assert_eq!(parse_value("1.2"), Ok(Value::Float(1.2, Span::new(0, 3))));
    assert_eq!(
        parse_value(r#""fo\"o""#),
        Ok(Value::String("fo\"o".into(), Span::new(0, 7)))
    );
    assert_eq!(
        parse_value("0x0102030405060708"),
        Ok(Value::Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8], Span::new(0, 18)))
    );
    assert_eq!(
        parse_value("TEST_ENUM"),
        Ok(Value::Enum("TEST_ENUM".into(), Span::new(0, 9)))
    );
}

#[test]
fn literal_shapes() {
    for (text, expected) in [
        (r#""nil""#, r#""nil""#),
        ("010", "8"),
        ("1.", "1.0"),
        (".5", "0.5"),
        ("1.e5", "100000.0"),
        ("0xABCD", "0xabcd"),
        ("S", "S"),
        ("SHA256", "SHA256"),
        (r#""\xff""#, r#""ÿ""#),
    ] {
        assert_eq!(value_shape(text), expected, "{text}");
    }
}

#[test]
fn path_with_every_key_kind_and_spans() {
    let text = r#"foo.attributes["bar"].cat[0]"#;
    let expected = Path {
        fields: vec![
            Field {
                name: "foo".into(),
                keys: vec![],
                span: at(text, "foo"),
            },
            Field {
                name: "attributes".into(),
                keys: vec![Key::String("bar".into(), at(text, r#"["bar"]"#))],
                span: at(text, r#"attributes["bar"]"#),
            },
            Field {
                name: "cat".into(),
                keys: vec![Key::Int(0, at(text, "[0]"))],
                span: at(text, "cat[0]"),
            },
        ],
        span: Span::new(0, text.len()),
    };
    assert_eq!(parse_value(text), Ok(Value::Path(expected)));
}

#[test]
fn converter_with_keys_and_spans() {
    let text = r#"Split(x, ",")[0]["pass"]"#;
    let Ok(Value::Converter(call)) = parse_value(text) else {
        panic!("{text} should be a converter");
    };
    assert_eq!(call.name, "Split");
    assert_eq!(call.name_span, at(text, "Split"));
    assert_eq!(call.span, Span::new(0, text.len()));
    assert_eq!(call.args[0].span, at(text, "x"));
    assert_eq!(call.args[1].span, at(text, r#"",""#));
    assert_eq!(
        call.keys,
        vec![
            Key::Int(0, at(text, "[0]")),
            Key::String("pass".into(), at(text, r#"["pass"]"#))
        ]
    );
}

#[test]
fn paths_calls_and_keys() {
    for (text, expected) in [
        ("attributes", "attributes"),
        ("span . name", "span.name"),
        (r#"foo.bar["x"]["y"].z"#, r#"foo.bar["x"]["y"].z"#),
        (r#"Test()[0]["pass"]"#, r#"Test()[0]["pass"]"#),
        (
            r#"attributes[attributes["foo"]]"#,
            r#"attributes[attributes["foo"]]"#,
        ),
        (
            r#"attributes["foo"][Len(attributes["foo"]) - 1]"#,
            r#"attributes["foo"][math((- Len(attributes["foo"]) 1))]"#,
        ),
        ("x[-1]", "x[math(-1)]"),
        ("x[(1)]", "x[math(1)]"),
        ("x[1.5]", "x[1.5]"),
        ("x[01]", "x[1]"),
        ("x[y + 2]", "x[math((+ y 2))]"),
        ("x[Concat(a, b)]", "x[Concat(a, b)]"),
        ("IsMatch(name, \"a\")", "IsMatch(name, \"a\")"),
        ("Is Match(x)", "IsMatch(x)"),
        ("GetSomething(bear.honey)", "GetSomething(bear.honey)"),
        (
            r#"Split(x, ",")[attributes["i"]]"#,
            r#"Split(x, ",")[attributes["i"]]"#,
        ),
        // Editors as values parse; the compiler rejects them with this span.
        ("int()", "editor:int()"),
        (r#"test(animal)["kind"]"#, r#"editor:test(animal)["kind"]"#),
    ] {
        assert_eq!(value_shape(text), expected, "{text}");
    }
}

#[test]
fn arguments_named_and_function_names() {
    for (text, expected) in [
        (
            r#"F(attributes["message"], "device=*", attributes["device_name"], SHA256)"#,
            r#"F(attributes["message"], "device=*", attributes["device_name"], SHA256)"#,
        ),
        (
            r#"F(attributes["message"], Sha256)"#,
            r#"F(attributes["message"], fn:Sha256)"#,
        ),
        ("F(x, S)", "F(x, S)"),
        (r#"F(name="foo")"#, r#"F(name="foo")"#),
        (
            r#"F(set = foo.attributes["animal"], val = "dog")"#,
            r#"F(set=foo.attributes["animal"], val="dog")"#,
        ),
        ("F(fooBar = 1, b=Is Match)", "F(fooBar=1, b=fn:IsMatch)"),
        ("F()", "F()"),
    ] {
        assert_eq!(value_shape(text), expected, "{text}");
    }
}

#[test]
fn lists_and_maps() {
    for (text, expected) in [
        ("[]", "[]"),
        (r#"["value0"]"#, r#"["value0"]"#),
        (
            r#"[Concat(["a", "b"], "+"), ["1", 2, 3.0], nil, attributes["test"]]"#,
            r#"[Concat(["a", "b"], "+"), ["1", 2, 3.0], nil, attributes["test"]]"#,
        ),
        (
            "[TEST_ENUM_ONE, TEST_ENUM_TWO]",
            "[TEST_ENUM_ONE, TEST_ENUM_TWO]",
        ),
        ("[1 + 1, 2 * 3]", "[math((+ 1 1)), math((* 2 3))]"),
        ("{}", "{}"),
        (
            r#"{"stringAttr": "value", "intAttr": 3, "floatAttr": 2.5, "boolAttr": true}"#,
            r#"{"stringAttr": "value", "intAttr": 3, "floatAttr": 2.5, "boolAttr": true}"#,
        ),
        (
            r#"{"mapAttr": {"foo": "bar", "get": bear.honey, "arrayAttr":["foo", "bar"]}}"#,
            r#"{"mapAttr": {"foo": "bar", "get": bear.honey, "arrayAttr": ["foo", "bar"]}}"#,
        ),
        // Commas between map entries are optional and one may trail.
        (r#"{"a": 1 "b": 2,}"#, r#"{"a": 1, "b": 2}"#),
        (
            r#"[{"list":[{"foo":"bar"}]}, {"bar":"baz"}]"#,
            r#"[{"list": [{"foo": "bar"}]}, {"bar": "baz"}]"#,
        ),
    ] {
        assert_eq!(value_shape(text), expected, "{text}");
    }
}

#[test]
fn arithmetic_precedence_signs_and_parentheses() {
    for (text, expected) in [
        ("1000 - 600", "math((- 1000 600))"),
        ("1 + 1 * 2", "math((+ 1 (* 1 2)))"),
        ("three / One()", "math((/ three One()))"),
        ("(1 + 2) * 3", "math((* (+ 1 2) 3))"),
        ("1 - 2 - 3", "math((- (- 1 2) 3))"),
        ("8 / 4 * 2", "math((* (/ 8 4) 2))"),
        (
            "time_end - time_end - attributes[\"foo\"]",
            "math((- (- time_end time_end) attributes[\"foo\"]))",
        ),
        ("3-5", "math((- 3 5))"),
        ("3*-5", "math((* 3 -5))"),
        ("2+-3*-4", "math((+ 2 (* -3 -4)))"),
        // A sign folds into a number literal; elsewhere it negates.
        ("-1", "math(-1)"),
        ("-1.5", "math(-1.5)"),
        ("-x", "math((neg x))"),
        ("-(1)", "math((neg 1))"),
        ("-(-1)", "math((neg -1))"),
        ("-Len(x)", "math((neg Len(x)))"),
        // Unary plus changes nothing, but the value still went through arithmetic.
        ("+x", "math(x)"),
        ("+1", "math(1)"),
        ("(x)", "math(x)"),
        ("1 + int()", "math((+ 1 editor:int()))"),
    ] {
        assert_eq!(value_shape(text), expected, "{text}");
    }
}

#[test]
fn arithmetic_spans_cover_signs_and_parentheses() {
    let text = "-(a + 2) * -3";
    let Ok(Value::Math(expr)) = parse_value(text) else {
        panic!("{text} should be arithmetic");
    };
    let MathExpr::Binary {
        op: MathOp::Mul,
        left,
        right,
        span,
    } = *expr
    else {
        panic!("{text} should be a product");
    };
    assert_eq!(span, Span::new(0, text.len()));
    assert_eq!(left.span(), at(text, "-(a + 2)"));
    assert_eq!(*right, MathExpr::Leaf(Value::Int(-3, at(text, "-3"))));
}

#[test]
fn invalid_values() {
    for text in [
        "123abc",
        "1+",
        "--1",
        "+\"a\"",
        "x[]",
        "x[1 + 2]",
        "x[FOO]",
        "x[nil]",
        "x[0x01]",
        "[1,]",
        "[,1,2]",
        "[1,,2]",
        "[1 2 3]",
        "{,}",
        r#"{"a":1,,}"#,
        r#"{foo: "bar"}"#,
        r#"{fooBar: "bar"}"#,
        r#"{"a": {b: 1}}"#,
        "FOO BAR",
        "Foo",
        "[x, FOO, Bar]",
        "Foo()()",
        "X[0]",
        "a.",
        "a.0",
        "1e5",
        "0x",
        "true + 1",
        r#"Test(Test("foo")) - attributes["bar"]""#,
        r#"Test("a"")foo""#,
        "not",
        "",
    ] {
        assert!(parse_value(text).is_err(), "{text:?} should not parse");
    }
}

#[test]
fn error_messages_name_token_column_and_expectation() {
    assert_eq!(
        value_error(r#"{foo: "bar"}"#),
        r#"unexpected token "foo" at column 2: expected a string map key or `}`"#
    );
    assert_eq!(
        value_error("x[1 + 2]"),
        "unexpected token \"+\" at column 5: expected `]` (an index starting with an integer literal cannot continue)"
    );
    assert_eq!(
        value_error("1 +"),
        "unexpected end of input at column 4: expected a number, a path or a converter call"
    );
    assert_eq!(
        value_error("0xABC"),
        "byte literal 0xABC has an odd number of hexadecimal digits at column 1: expected two hexadecimal digits per byte"
    );
    assert_eq!(
        value_error("[1, 99999999999999999999]"),
        "integer literal 99999999999999999999 is out of range for a 64-bit integer at column 5"
    );
    assert_eq!(
        value_error("é + Foo"),
        r#"unexpected character "é" at column 1"#
    );
    assert_eq!(
        value_error("[\"é\", Foo]"),
        "unexpected name \"Foo\" at column 7: expected a value (a converter needs `(...)`; an enum symbol is all upper case)"
    );
}

#[test]
fn lambdas_are_rejected() {
    for text in ["(x) => x", "(_, v) => v", "() => 1", "F((a, b) => a)"] {
        let err = parse_value(text).expect_err("lambdas are not supported");
        assert_eq!(
            err.message, "lambda expressions are not supported",
            "{text}"
        );
    }
    assert_eq!(
        value_error("F(x, (v) => v)"),
        "lambda expressions are not supported at column 6"
    );
}

#[test]
fn nesting_is_capped() {
    let nested = |open: &str, close: &str, depth: usize| {
        format!("{}1{}", open.repeat(depth), close.repeat(depth))
    };
    assert!(parse_value(&nested("[", "]", 90)).is_ok());
    assert!(parse_value(&nested("(", ")", 90)).is_ok());
    assert!(parse_value(&nested("F(", ")", 45)).is_ok());
    for (open, close) in [
        ("[", "]"),
        ("(", ")"),
        ("F(", ")"),
        ("x[", "]"),
        ("-(", ")"),
        ("{\"a\":", "}"),
    ] {
        for depth in [101, 100_000] {
            let text = nested(open, close, depth);
            let err = parse_value(&text).expect_err("too deep");
            assert_eq!(
                err.message, "expression nested more than 100 levels deep",
                "{open}"
            );
        }
    }
    // An operator chain is a tree as deep as it is long.
    let chain = |n: usize| format!("x{}", " + 1".repeat(n));
    assert!(parse_value(&chain(95)).is_ok());
    for n in [101, 100_000] {
        let err = parse_value(&chain(n)).expect_err("too long");
        assert_eq!(err.message, "expression nested more than 100 levels deep");
    }
    assert!(parse_value(&format!("[{}]", ["1 * 2 + 3"; 200].join(", "))).is_ok());
}

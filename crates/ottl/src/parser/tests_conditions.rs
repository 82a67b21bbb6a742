//! Statements and conditions: trees (cases from otelcol's parser tests), spans, errors,
//! and the fuzz target's checks over every case.

use super::span_check::check;
use super::tests_values::{at, call_shape, shape};
use super::{parse_condition, parse_statement};
use crate::ast::{
    ArgValue, Argument, BoolExpr, Call, CompareOp, Comparison, Field, Key, Path, Span, Statement,
    Value,
};

fn bool_shape(expr: &BoolExpr) -> String {
    let list = |op: &str, items: &[BoolExpr]| {
        let items: Vec<String> = items.iter().map(bool_shape).collect();
        format!("({op} {})", items.join(" "))
    };
    match expr {
        BoolExpr::Or(items) => list("or", items),
        BoolExpr::And(items) => list("and", items),
        BoolExpr::Not(inner) => format!("(not {})", bool_shape(inner)),
        BoolExpr::Comparison(c) => {
            let op = match c.op {
                CompareOp::Eq => "==",
                CompareOp::Ne => "!=",
                CompareOp::Lt => "<",
                CompareOp::Le => "<=",
                CompareOp::Gt => ">",
                CompareOp::Ge => ">=",
            };
            format!("({op} {} {})", shape(&c.left), shape(&c.right))
        }
        BoolExpr::Literal(b) => b.to_string(),
        BoolExpr::Converter(call) => call_shape(call),
    }
}

fn statement_shape(text: &str) -> String {
    match parse_statement(text) {
        Ok(statement) => match &statement.where_clause {
            Some(condition) => format!(
                "{} where {}",
                call_shape(&statement.call),
                bool_shape(condition)
            ),
            None => call_shape(&statement.call),
        },
        Err(err) => panic!("{text:?} should parse: {}", err.render(text)),
    }
}

fn condition_shape(text: &str) -> String {
    match parse_condition(text) {
        Ok(condition) => bool_shape(&condition),
        Err(err) => panic!("{text:?} should parse: {}", err.render(text)),
    }
}

const VALID_STATEMENTS: &[(&str, &str)] = &[
    (r#"set("foo")"#, r#"set("foo")"#),
    ("met(1.2)", "met(1.2)"),
    ("fff(12)", "fff(12)"),
    (
        r#"fff(GetSomething({"foo":"bar"}))"#,
        r#"fff(GetSomething({"foo": "bar"}))"#,
    ),
    (
        r#"set("foo", GetSomething(bear.honey))"#,
        r#"set("foo", GetSomething(bear.honey))"#,
    ),
    (
        r#"convert_gauge_to_sum("cumulative", false)"#,
        r#"convert_gauge_to_sum("cumulative", false)"#,
    ),
    (
        r#"set(attributes["test"], nil)"#,
        r#"set(attributes["test"], nil)"#,
    ),
    (
        r#"set(attributes["test"], TEST_ENUM)"#,
        r#"set(attributes["test"], TEST_ENUM)"#,
    ),
    (
        r#"set(foo.bar["x"]["y"].z, Test()[0]["pass"])"#,
        r#"set(foo.bar["x"]["y"].z, Test()[0]["pass"])"#,
    ),
    (
        r#"set  ( foo.attributes[ "bar"].cat,   "dog")   where name=="fido""#,
        r#"set(foo.attributes["bar"].cat, "dog") where (== name "fido")"#,
    ),
    (
        r#"set(foo.attributes["bar"].cat, "dog") where name != "fido""#,
        r#"set(foo.attributes["bar"].cat, "dog") where (!= name "fido")"#,
    ),
    (
        r#"set(attributes["test"], 1000 - 600) where 1 + 1 * 2 == three / One()"#,
        r#"set(attributes["test"], math((- 1000 600))) where (== math((+ 1 (* 1 2))) math((/ three One())))"#,
    ),
    (
        r#"set(set = foo.attributes["animal"], val = "dog") where animal == "cat""#,
        r#"set(set=foo.attributes["animal"], val="dog") where (== animal "cat")"#,
    ),
    (
        r#"test() where service == "pinger" or foo.attributes["verb"] == "GET" and foo.attributes["endpoint"] == "/x/alive""#,
        r#"test() where (or (== service "pinger") (and (== foo.attributes["verb"] "GET") (== foo.attributes["endpoint"] "/x/alive")))"#,
    ),
    (
        r#"set(attributes["test"], "pass") where Split("pass|fail", "|")[attributes["bar"]] == nil"#,
        r#"set(attributes["test"], "pass") where (== Split("pass|fail", "|")[attributes["bar"]] nil)"#,
    ),
    (
        r#"set(x, 1) where IsMatch(name, "operation[AC]")"#,
        r#"set(x, 1) where IsMatch(name, "operation[AC]")"#,
    ),
    ("set(x, -1)", "set(x, math(-1))"),
    (
        "set(where, 1) where where == 1",
        "set(where, 1) where (== where 1)",
    ),
    // The grammar lets these through; otelcol's post-parse checks (and Redline's compiler)
    // reject a converter statement, an editor value and an indexed editor.
    ("Set()", "Set()"),
    ("set(int())", "set(editor:int())"),
    (r#"set(x)["key"]"#, r#"set(x)["key"]"#),
];

#[test]
fn statements() {
    for (text, expected) in VALID_STATEMENTS {
        assert_eq!(statement_shape(text), *expected, "{text}");
    }
}

#[test]
fn statement_tree_with_spans() {
    let text = r#"set(attributes["bar"], "dog") where name == "fido""#;
    let attributes = Value::Path(Path {
        fields: vec![Field {
            name: "attributes".into(),
            keys: vec![Key::String("bar".into(), at(text, r#"["bar"]"#))],
            span: at(text, r#"attributes["bar"]"#),
        }],
        span: at(text, r#"attributes["bar"]"#),
    });
    let name = Value::Path(Path {
        fields: vec![Field {
            name: "name".into(),
            keys: vec![],
            span: at(text, "name"),
        }],
        span: at(text, "name"),
    });
    let expected = Statement {
        call: Call {
            name: "set".into(),
            name_span: at(text, "set"),
            args: vec![
                Argument {
                    name: None,
                    value: ArgValue::Value(attributes),
                    span: at(text, r#"attributes["bar"]"#),
                },
                Argument {
                    name: None,
                    value: ArgValue::Value(Value::String("dog".into(), at(text, r#""dog""#))),
                    span: at(text, r#""dog""#),
                },
            ],
            keys: vec![],
            span: at(text, r#"set(attributes["bar"], "dog")"#),
        },
        where_clause: Some(BoolExpr::Comparison(Box::new(Comparison {
            left: name,
            op: CompareOp::Eq,
            right: Value::String("fido".into(), at(text, r#""fido""#)),
            span: at(text, r#"name == "fido""#),
        }))),
    };
    assert_eq!(parse_statement(text), Ok(expected));
}

#[test]
fn named_argument_span_starts_at_the_name() {
    let text = r#"set(name = "foo")"#;
    let statement = parse_statement(text).expect("named argument");
    assert_eq!(statement.call.args[0].name.as_deref(), Some("name"));
    assert_eq!(statement.call.args[0].span, at(text, r#"name = "foo""#));
}

const VALID_CONDITIONS: &[(&str, &str)] = &[
    ("true", "true"),
    ("true and false", "(and true false)"),
    ("true and true and false", "(and true true false)"),
    ("true or false", "(or true false)"),
    ("false and true or false", "(or (and false true) false)"),
    ("(false and true) or false", "(or (and false true) false)"),
    ("false and (true or false)", "(and false (or true false))"),
    (
        r#"name != "foo" and name != "bar""#,
        r#"(and (!= name "foo") (!= name "bar"))"#,
    ),
    (
        r#"name == "foo" or name == "bar""#,
        r#"(or (== name "foo") (== name "bar"))"#,
    ),
    ("true and not false", "(and true (not false))"),
    (r#"not name == "bar""#, r#"(not (== name "bar"))"#),
    ("not (true or false)", "(not (or true false))"),
    ("True()", "True()"),
    ("True() and False()", "(and True() False())"),
    ("nil == nil", "(== nil nil)"),
    (r#"nil == "nil""#, r#"(== nil "nil")"#),
    ("true == false", "(== true false)"),
    ("Int() == 1", "(== Int() 1)"),
    ("false or 1 == Int() ", "(or false (== 1 Int()))"),
    (
        r#"attributes["path"] == "/healthcheck""#,
        r#"(== attributes["path"] "/healthcheck")"#,
    ),
    ("animal > \"cat\"", "(> animal \"cat\")"),
    ("animal >= \"cat\"", "(>= animal \"cat\")"),
    ("animal <= \"cat\"", "(<= animal \"cat\")"),
    ("animal < \"cat\"", "(< animal \"cat\")"),
    ("Foo()[0]", "Foo()[0]"),
    // At `(` a comparison with parenthesised arithmetic wins over a parenthesised condition.
    ("(x) == 1", "(== math(x) 1)"),
    ("(1 + 2) * 3 == 9", "(== math((* (+ 1 2) 3)) 9)"),
    ("((x == 1))", "(== x 1)"),
    ("((x) == (1))", "(== math(x) math(1))"),
    ("(true)", "true"),
    ("not (x == 1) and true", "(and (not (== x 1)) true)"),
    // An editor as a comparison operand parses; the compiler rejects it.
    (
        r#"test(animal)["kind"] == "birds""#,
        r#"(== editor:test(animal)["kind"] "birds")"#,
    ),
];

#[test]
fn conditions() {
    for (text, expected) in VALID_CONDITIONS {
        assert_eq!(condition_shape(text), *expected, "{text}");
    }
}

#[test]
fn invalid_statements() {
    for text in [
        "set(",
        r#"set("foo)"#,
        "set(name.)",
        r#"("foo")"#,
        r#"set("foo") where name =||= "fido""#,
        "set(span_id, SpanIDWrapper{not a hex string})",
        "set(span_id, SpanIDWrapper{01})",
        r#"set("foo") where name = "fido""#,
        r#"set("foo") where name or "fido""#,
        r#"set("foo") where name and "fido""#,
        r#"set("foo") where name and"#,
        r#"set("foo") where name or"#,
        r#"set("foo") where ("#,
        r#"set("foo") where )"#,
        r#"set("foo") where (name == "fido"))"#,
        r#"set("foo") where ((name == "fido")"#,
        r#"test() where animal =< "dog""#,
        r#"test() where animal => "dog""#,
        r#"test() where animal <> "dog""#,
        "test() where animal",
        "test() where animal ==",
        "test() where ==",
        "test() where == animal",
        r#"set(attributes["test"], [1 2 3])"#,
        r#"set(attributes["test"], [1, 2,])"#,
        r#"set(attributes["test"], [{"a": 1} {"b": 2}])"#,
        "set(x, 1) where",
        "set(x, 1) x",
        "set(x)(y)",
        "set x",
        "set(x, Foo)[",
        "set(a,)",
        "set(,a)",
        "",
    ] {
        assert!(parse_statement(text).is_err(), "{text:?} should not parse");
    }
}

#[test]
fn invalid_conditions() {
    for text in [
        "set(",
        "set()",
        "test(fail())",
        r#""foo == "foo""#,
        "True(",
        r#"("foo")"#,
        "name",
        r#"name or "fido""#,
        "name and",
        "(",
        ")",
        r#"(name == "fido"))"#,
        r#"((name == "fido")"#,
        r#""test" == Foo"#,
        "not not true",
        "Foo() + 1",
        "x == 1 AND y == 2",
        "true false",
        "",
    ] {
        assert!(parse_condition(text).is_err(), "{text:?} should not parse");
    }
}

#[test]
fn error_messages() {
    let render = |text: &str| {
        parse_statement(text)
            .expect_err("statement should not parse")
            .render(text)
    };
    assert_eq!(
        render("set("),
        "unexpected end of input at column 5: expected a value"
    );
    assert_eq!(
        render(r#"set(attributes["x"], {foo: "bar"})"#),
        r#"unexpected token "foo" at column 23: expected a string map key or `}`"#
    );
    assert_eq!(
        render("set(x) wher x == 1"),
        r#"unexpected token "wher" at column 8: expected `where` and a condition, or the end of the statement"#
    );
    assert_eq!(
        render("set(x) where x"),
        "unexpected end of input at column 15: expected a comparison operator (==, !=, <, <=, >, >=)"
    );
    assert_eq!(
        render("set(x) where (x == 1"),
        "unexpected end of input at column 21: expected `)`, `and` or `or`"
    );
    assert_eq!(
        render(r#"("foo")"#),
        r#"unexpected token "(" at column 1: expected an editor call such as `set(...)`"#
    );
    let condition = "x == 1 and";
    let err = parse_condition(condition).expect_err("dangling and");
    assert_eq!(err.span, Span::new(10, 10));
    assert_eq!(err.column(condition), 11);
    assert_eq!(err.to_string(), "unexpected end of input: expected a value");
}

#[test]
fn condition_nesting_is_capped_and_stays_fast() {
    let nested = |depth: usize| format!("{}x == 1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(condition_shape(&nested(95)), "(== x 1)");
    let err = parse_condition(&nested(150)).expect_err("too deep");
    assert_eq!(err.message, "expression nested more than 100 levels deep");
    // Each `(` is tried as arithmetic, then as a condition: bounded by the depth cap.
    let long = format!("{}{}", "(".repeat(90), "1 + ".repeat(5_000));
    let started = std::time::Instant::now();
    assert!(parse_condition(&long).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(parse_condition(&"not (".repeat(10_000)).is_err());
}

#[test]
fn every_case_passes_the_fuzz_checks() {
    let mut texts: Vec<&str> = VALID_STATEMENTS.iter().map(|(text, _)| *text).collect();
    texts.extend(VALID_CONDITIONS.iter().map(|(text, _)| *text));
    texts.extend([
        "set(x, \"é\") where Foo(\"ü\")[\"日本\"] == -(a + 1)",
        "é",
        "\"unterminated é",
        "set(x, \"\\xZZ\")",
        "F(x, (v) => v)",
    ]);
    for text in texts {
        check(text);
        // Every prefix, cut at character boundaries, is another malformed input.
        for (cut, _) in text.char_indices() {
            check(&text[..cut]);
        }
    }
}

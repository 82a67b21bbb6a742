//! Cases from otelcol-contrib's pkg/sampling tests of the W3C tracestate.

use super::*;

/// (input, rv, th, other members)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
);

#[test]
fn reads_the_otel_section_and_other_vendors() {
    let cases: &[Case] = &[
        ("ot=th:1", None, Some("1"), &[]),
        (" ot=th:1 ", None, Some("1"), &[]),
        (
            " ot=th:1,other=value ",
            None,
            Some("1"),
            &[("other", "value")],
        ),
        (",,,", None, None, &[]),
        (
            " , ot=th:1, , other=value ",
            None,
            Some("1"),
            &[("other", "value")],
        ),
        (
            "ot=th:100;rv:abcdabcdabcdff",
            Some("abcdabcdabcdff"),
            Some("100"),
            &[],
        ),
        (
            " ot=th:100;rv:abcdabcdabcdff",
            Some("abcdabcdabcdff"),
            Some("100"),
            &[],
        ),
        (
            "ot=th:100;rv:abcdabcdabcdff ",
            Some("abcdabcdabcdff"),
            Some("100"),
            &[],
        ),
        ("ot=rv:11111111111111", Some("11111111111111"), None, &[]),
        (
            "ot=rv:ffffffffffffff,unknown=value,other=something",
            Some("ffffffffffffff"),
            None,
            &[("unknown", "value"), ("other", "something")],
        ),
    ];
    for (input, rv, th, others) in cases {
        let state = W3cTraceState::parse(input).expect("valid");
        assert_eq!(state.otel().rvalue(), *rv, "{input}");
        assert_eq!(state.otel().tvalue(), *th, "{input}");
        let want: Vec<(String, String)> = others
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(state.extra(), want, "{input}");
        let again = W3cTraceState::parse(&state.serialize()).expect("serialized form is valid");
        assert_eq!(again, state, "{input}");
    }
}

#[test]
fn serializes_ot_first_and_normalizes_whitespace() {
    let state = W3cTraceState::parse(" , vendor=a b,ot=th:8;x:y, , k@sys=v ").expect("valid");
    assert_eq!(state.serialize(), "ot=th:8;x:y,vendor=a b,k@sys=v");
    assert_eq!(W3cTraceState::parse(",,,").expect("valid").serialize(), "");

    let mut state = W3cTraceState::default();
    state
        .otel_mut()
        .update_threshold(crate::Threshold::from_probability(0.25).expect("in range"))
        .expect("nothing before");
    assert_eq!(state.serialize(), "ot=th:c");
}

#[test]
fn limits_and_syntax() {
    let cases = [
        ("-1=2".to_owned(), SamplingError::Syntax),
        ("=".to_owned(), SamplingError::Syntax),
        (
            format!("{}=v", "x".repeat(257)),
            SamplingError::TraceStateSize,
        ),
        (
            format!("{}@y=v", "x".repeat(242)),
            SamplingError::TraceStateSize,
        ),
        (
            format!("y@{}=v", "x".repeat(15)),
            SamplingError::TraceStateSize,
        ),
        (
            format!("x={}", "y".repeat(1023)),
            SamplingError::TraceStateSize,
        ),
        (
            format!("{}x=y", "x=y,".repeat(32)),
            SamplingError::TraceStateSize,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(W3cTraceState::parse(&input), Err(want), "{input:.40}");
    }
}

#[test]
fn the_member_limit_counts_the_32nd_member() {
    let members = |n: usize| {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(W3cTraceState::parse(&members(31)).is_ok());
    let (state, err) = W3cTraceState::parse_partial(&members(32));
    assert_eq!(err, Some(SamplingError::TraceStateSize));
    assert_eq!(state.extra().len(), 31);
}

#[test]
fn partial_parse_keeps_what_was_readable() {
    let (state, err) = W3cTraceState::parse_partial("ot=rv:zz;p:2,foo=bar");
    assert_eq!(err, Some(SamplingError::RValueSize));
    assert_eq!(state.serialize(), "ot=p:2,foo=bar");
    // A value with a space is a fine W3C value but a malformed `ot` section.
    let (state, err) = W3cTraceState::parse_partial("ot=th: 8,foo=bar");
    assert_eq!(err, Some(SamplingError::Syntax));
    assert_eq!(state.serialize(), "foo=bar");
    let (state, err) = W3cTraceState::parse_partial("foo=bar,BAD=1");
    assert_eq!(err, Some(SamplingError::Syntax));
    assert_eq!(state, W3cTraceState::default());
}

#[test]
fn key_and_value_syntax() {
    let valid = [
        "",
        "vendor1=value1,vendor2=value2,vendor3=value3",
        "tenant@system=value",
        "a=b",
        "key_with_underscore=value",
        "key-with-dash=value",
        "key*with*star=value",
        "key/with/slash=value",
        "0tenant@system=value",
        "key=value ",
        "key= value",
        "key=value\t",
    ];
    for input in valid {
        assert!(is_valid_tracestate(input), "{input:?}");
    }
    let invalid = [
        "-1=2",
        "=",
        "=value",
        "KEY=value",
        "key=",
        "1abc=value",
        "@system=value",
        "tenant@=value",
        "tenant@1system=v",
        "key=val\x00ue",
        "key=val\x1fue",
        "key\x00=value",
        "key=value\x7f",
        "a b=value",
    ];
    for input in invalid {
        assert!(!is_valid_tracestate(input), "{input:?}");
    }
}

proptest::proptest! {
    /// Any header, made of the characters that matter to the grammar: no panic, and what a
    /// clean parse writes back parses to the same state.
    #[test]
    fn any_header_parses_or_fails_cleanly(input in "[ot=,;:@ \\t0-9a-fA-Fhrvkp_*/.\\-é]{0,80}") {
        let (state, err) = W3cTraceState::parse_partial(&input);
        if err.is_none() {
            let again = W3cTraceState::parse(&state.serialize());
            proptest::prop_assert_eq!(again, Ok(state));
        }
    }

    #[test]
    fn probabilities_in_range_give_thresholds_that_round_trip(p in 0.0f64..=1.0, precision in 0u32..=14) {
        if let Ok(t) = crate::Threshold::from_probability_with_precision(p, precision) {
            let text = t.tvalue();
            if !text.is_empty() {
                proptest::prop_assert_eq!(crate::Threshold::from_tvalue(&text), Ok(t));
            }
        }
    }
}

//! Cases from otelcol-contrib's pkg/sampling tests of the `ot` section.

use super::*;

/// (input, rv, th, other pairs)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
);

fn parse_ok(input: &str) -> OtelTraceState {
    let (state, err) = OtelTraceState::parse(input);
    assert_eq!(err, None, "{input}");
    state
}

fn extra(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn parses_values_and_keeps_other_pairs_in_order() {
    let cases: &[Case] = &[
        ("th:2", None, Some("2"), &[]),
        ("th:ab", None, Some("ab"), &[]),
        ("th:abcdefabcdefab", None, Some("abcdefabcdefab"), &[]),
        ("th:1000", None, Some("1000"), &[]),
        ("e100:1", None, None, &[("e100", "1")]),
        ("e1:1;e2:2", None, None, &[("e1", "1"), ("e2", "2")]),
        ("th:2;extra:stuff", None, Some("2"), &[("extra", "stuff")]),
        ("extra:stuff;th:2", None, Some("2"), &[("extra", "stuff")]),
        (
            "e100:100;th:1;e101:101",
            None,
            Some("1"),
            &[("e100", "100"), ("e101", "101")],
        ),
        ("x:1;u:V", None, None, &[("x", "1"), ("u", "V")]),
        (
            "rv:22222222222222;extra:stuff",
            Some("22222222222222"),
            None,
            &[("extra", "stuff")],
        ),
        (
            "extra:stuff;rv:22222222222222",
            Some("22222222222222"),
            None,
            &[("extra", "stuff")],
        ),
        ("rv:ffffffffffffff", Some("ffffffffffffff"), None, &[]),
        ("x:", None, None, &[("x", "")]),
        (
            "x:0X1FFF;y:.-_-.;z:",
            None,
            None,
            &[("x", "0X1FFF"), ("y", ".-_-."), ("z", "")],
        ),
        (
            "x1y2z3:1-2-3;y1:y_1;xy:-;th:50",
            None,
            Some("50"),
            &[("x1y2z3", "1-2-3"), ("y1", "y_1"), ("xy", "-")],
        ),
    ];
    for (input, rv, th, others) in cases {
        let state = parse_ok(input);
        assert_eq!(state.rvalue(), *rv, "{input}");
        assert_eq!(state.tvalue(), *th, "{input}");
        assert_eq!(state.extra(), extra(others), "{input}");
        // What is written back parses to the same state.
        assert_eq!(parse_ok(&state.serialize()), state, "{input}");
    }
    let long_value = format!("x:{}", "_".repeat(254));
    assert_eq!(
        parse_ok(&long_value).extra(),
        extra(&[("x", &"_".repeat(254))])
    );
}

#[test]
fn malformed_sections_are_errors() {
    let syntax = [
        "",
        "th:1;",
        "th:1=p:2",
        "th:1;p:2=s:3",
        ":1;p:2=s:3",
        ":;p:2=s:3",
        ":;:",
        ":",
        "th:;p=1",
        "th:$",
        "th:0x1p+3",
        "th:14.5",
        "1:1;u:V",
        "X:1;u:V",
        "x:1;",
    ];
    for input in syntax {
        let (state, err) = OtelTraceState::parse(input);
        assert_eq!(err, Some(SamplingError::Syntax), "{input:?}");
        assert_eq!(state, OtelTraceState::default(), "{input:?}");
    }
    // Syntactically fine, but not a hex number.
    assert_eq!(
        OtelTraceState::parse("th:-1").1,
        Some(SamplingError::Syntax)
    );
    for input in ["th:ffffffffffffffff", "th:100000000000000"] {
        assert_eq!(
            OtelTraceState::parse(input).1,
            Some(SamplingError::TValueSize)
        );
    }
    for input in ["rv:100000000000000", "rv:fffffffffffffffff"] {
        assert_eq!(
            OtelTraceState::parse(input).1,
            Some(SamplingError::RValueSize)
        );
    }
    let too_long = format!("x:{}", "_".repeat(255));
    assert_eq!(
        OtelTraceState::parse(&too_long).1,
        Some(SamplingError::TraceStateSize)
    );
}

#[test]
fn a_bad_value_is_left_out_and_the_rest_kept() {
    let (state, err) = OtelTraceState::parse("rv:3;p:2");
    assert_eq!(err, Some(SamplingError::RValueSize));
    assert_eq!(state.rvalue(), None);
    assert_eq!(state.extra(), extra(&[("p", "2")]));
    assert_eq!(state.serialize(), "p:2");
    // A later bad value undoes an earlier good one.
    let (state, _) = OtelTraceState::parse("th:8;th:zz");
    assert_eq!(state.tvalue(), None);
}

#[test]
fn serializes_rv_then_th_then_the_rest() {
    let orig = "rv:10000000000000;th:3;a:b;c:d";
    let state = parse_ok(orig);
    assert_eq!(
        state.threshold().map(|t| t.probability()),
        Some(1.0 - 3.0 / 16.0)
    );
    assert_eq!(state.serialize(), orig);
    assert_eq!(parse_ok("th:0").serialize(), "th:0");
    assert_eq!(
        parse_ok("th:0").threshold().map(|t| t.probability()),
        Some(1.0)
    );

    let mut state = parse_ok("a:b");
    assert!(state.has_any_value());
    state
        .update_threshold(Threshold::from_tvalue("3").expect("valid"))
        .expect("no threshold before");
    state.set_randomness(Randomness::from_rvalue("00000000000003").expect("valid"));
    assert_eq!(state.serialize(), "rv:00000000000003;th:3;a:b");

    let mut state = parse_ok("a:b;rv:12341234123412;th:1234");
    state.clear_threshold();
    state.clear_randomness();
    assert_eq!(state.serialize(), "a:b");
}

#[test]
fn thresholds_only_rise() {
    // (arriving, adjusted count before, new probability, refused, written, count after)
    let cases: &[(&str, f64, f64, bool, &str, f64)] = &[
        ("th:8", 2.0, 2.0 / 16.0, false, "th:e", 8.0),
        ("th:8", 2.0, 14.0 / 16.0, true, "th:8", 2.0),
        ("th:f", 16.0, 0.5, true, "th:f", 16.0),
        ("th:0", 1.0, 1.0 / 16.0, false, "th:f", 16.0),
        ("", 0.0, 1.0 / 16.0, false, "th:f", 16.0),
        ("", 0.0, 1.0, false, "th:0", 1.0),
        ("th:8", 2.0, 1.0, true, "th:8", 2.0),
        (
            "th:0",
            1.0,
            2f64.powi(-56),
            false,
            "th:ffffffffffffff",
            2f64.powi(56),
        ),
        (
            "th:555",
            1.0 / (1.0 - 0x555 as f64 / 4096.0),
            0x555 as f64 / 4096.0,
            false,
            "th:aab",
            1.0 / (1.0 - 0xaab as f64 / 4096.0),
        ),
    ];
    for &(arriving, before, probability, refused, written, after) in cases {
        let mut state = if arriving.is_empty() {
            OtelTraceState::default()
        } else {
            parse_ok(arriving)
        };
        assert_eq!(state.adjusted_count(), before, "{arriving}");
        let sampled = Threshold::from_probability(probability).expect("in range");
        let outcome = state.update_threshold(sampled);
        assert_eq!(
            outcome.err(),
            refused.then_some(SamplingError::InconsistentSampling),
            "{arriving} at {probability}"
        );
        assert_eq!(state.serialize(), written, "{arriving} at {probability}");
        assert_eq!(state.adjusted_count(), after, "{arriving} at {probability}");
    }
}

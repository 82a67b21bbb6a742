//! Expected values are otelcol-contrib's pkg/sampling test and example outputs.

use super::*;

fn tvalue_of(probability: f64) -> String {
    Threshold::from_probability(probability)
        .expect("probability in range")
        .tvalue()
}

fn th(tvalue: &str) -> Threshold {
    Threshold::from_tvalue(tvalue).expect("valid t-value")
}

#[test]
fn probabilities_to_full_precision_tvalues() {
    assert_eq!(tvalue_of(1.0), "0");
    assert_eq!(tvalue_of(0.5), "8");
    assert_eq!(tvalue_of(MIN_SAMPLING_PROBABILITY), "ffffffffffffff");
    // 52 significant bits: the last hex digit of 1/3 rounds to c, not b.
    assert_eq!(tvalue_of(1.0 / 3.0), "aaaaaaaaaaaaac");
    assert_eq!(tvalue_of(2.0 / 3.0), "55555555555558");
    assert_eq!(tvalue_of(1.0 - 84.0 / 256.0), "54");
    assert_eq!(tvalue_of(1.0 - 1.0 / 256.0), "01");
    assert_eq!(tvalue_of(256.0 * MIN_SAMPLING_PROBABILITY), "ffffffffffff");
    assert_eq!(tvalue_of(1.0 - 2f64.powi(-52)), "0000000000001");
}

#[test]
fn probabilities_out_of_range_are_errors() {
    for p in [0.0, 2f64.powi(-57), 1.1, -0.5, f64::NAN] {
        assert_eq!(
            Threshold::from_probability(p),
            Err(SamplingError::ProbabilityRange),
            "{p}"
        );
    }
}

#[test]
fn rounding_to_a_precision_keeps_digits_near_the_extremes() {
    let cases: [(f64, &str, &[&str]); 6] = [
        (
            1.0 - 0x456789a as f64 / 2f64.powi(28),
            "456789a",
            &["45678a", "45679", "4568", "456", "45", "4"],
        ),
        (
            1.0 - 0x456789a as f64 / 2f64.powi(40),
            "000456789a",
            &[
                "00045678a",
                "00045679",
                "0004568",
                "000456",
                "00045",
                "0004",
            ],
        ),
        (
            1.0 - 0x789abcdef_u64 as f64 / 2f64.powi(40),
            "0789abcdef",
            &[
                "0789abcdef",
                "0789abcdf",
                "0789abce",
                "0789abd",
                "0789ac",
                "0789b",
                "078a",
                "079",
                "08",
            ],
        ),
        (
            1.0 - 0x12345678 as f64 / 2f64.powi(32),
            "12345678",
            &["1234568", "123456", "12345", "1234", "123", "12", "1"],
        ),
        (
            1.0 - 0x80801 as f64 / 2f64.powi(28),
            "0080801",
            &["00808", "008"],
        ),
        (1.0, "0", &["0"]),
    ];
    for (probability, exact, rounded) in cases {
        assert_eq!(tvalue_of(probability), exact);
        for want in rounded {
            let significant = want.trim_start_matches('0').len() as u32;
            let got = Threshold::from_probability_with_precision(probability, significant)
                .expect("in range")
                .tvalue();
            assert_eq!(got, *want, "{exact} at precision {significant}");
        }
    }
}

#[test]
fn thirds_at_precision_three() {
    let got: Vec<String> = [1.0, 2.0, 3.0]
        .iter()
        .map(|n| {
            Threshold::from_probability_with_precision(n / 3.0, 3)
                .expect("in range")
                .tvalue()
        })
        .collect();
    assert_eq!(got, ["aab", "555", "0"]);
}

#[test]
fn the_smallest_probabilities_keep_their_digits() {
    let min = MIN_SAMPLING_PROBABILITY;
    let got: Vec<String> = [1.0, 2.0, 3.0, 4.0, 8.0, 16.0]
        .iter()
        .map(|n| {
            Threshold::from_probability_with_precision(n * min, 3)
                .expect("in range")
                .tvalue()
        })
        .collect();
    assert_eq!(
        got,
        [
            "ffffffffffffff",
            "fffffffffffffe",
            "fffffffffffffd",
            "fffffffffffffc",
            "fffffffffffff8",
            "fffffffffffff"
        ]
    );
}

#[test]
fn neighbouring_floats_map_to_distinct_thresholds_where_bits_allow() {
    let below = |x: f64, n: usize| (0..n).fold(x, |x, _| x.next_down());
    let mut got = Vec::new();
    for base in [15.0 / 16.0, 0.5, 0.25, 0.125, 1.0 / 16.0] {
        for n in 0..4 {
            got.push(tvalue_of(below(base, n)));
        }
    }
    let want = [
        "1",
        "10000000000008",
        "1000000000001",
        "10000000000018",
        "8",
        "80000000000004",
        "80000000000008",
        "8000000000000c",
        "c",
        "c0000000000002",
        "c0000000000004",
        "c0000000000006",
        "e",
        "e0000000000001",
        "e0000000000002",
        "e0000000000003",
        "f",
        "f",
        "f0000000000001",
        "f0000000000001",
    ];
    assert_eq!(got, want);
}

#[test]
fn tvalues_to_probabilities() {
    assert_eq!(th("8").probability(), 0.5);
    assert_eq!(th("444").probability(), 1.0 - 0x444 as f64 / 4096.0);
    assert_eq!(th("0").probability(), 1.0);
    assert_eq!(th("c").probability(), 0.25);
    assert!((th("55555554").probability() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(Threshold::from_probability(0.5), Ok(th("8")));
    assert_eq!(th("c").adjusted_count(), 4.0);
    assert_eq!(Threshold::NEVER_SAMPLE.adjusted_count(), 0.0);
}

#[test]
fn tvalue_syntax() {
    assert_eq!(th("1").unsigned(), 1 << 52);
    assert_eq!(th("FD7").tvalue(), "fd7");
    assert_eq!(Threshold::from_tvalue(""), Err(SamplingError::TValueEmpty));
    assert_eq!(Threshold::from_tvalue("g"), Err(SamplingError::Syntax));
    assert_eq!(Threshold::from_tvalue("-1"), Err(SamplingError::Syntax));
    assert_eq!(Threshold::from_tvalue("+1"), Err(SamplingError::Syntax));
    assert_eq!(
        Threshold::from_tvalue("abababababababab"),
        Err(SamplingError::TValueSize)
    );
    assert_eq!(
        Threshold::from_tvalue("100000000000000"),
        Err(SamplingError::TValueSize)
    );
}

#[test]
fn thresholds_order_by_rejected_count() {
    assert!(th("5") > th("4"));
    assert!(th("4") > th("04"));
    assert!(th("234") < th("4"));
    assert_eq!(
        Threshold::from_unsigned(0x80000000000000),
        Ok(Threshold(0x80000000000000))
    );
    assert_eq!(
        Threshold::from_unsigned(MAX_ADJUSTED_COUNT),
        Err(SamplingError::TValueSize)
    );
}

#[test]
fn rvalue_syntax() {
    let r = Randomness::from_rvalue("12341234123412").expect("valid");
    assert_eq!(r.unsigned(), 0x12341234123412);
    assert_eq!(r.rvalue(), "12341234123412");
    for bad in ["123412341234120", "1234123412341", ""] {
        assert_eq!(
            Randomness::from_rvalue(bad),
            Err(SamplingError::RValueSize),
            "{bad}"
        );
    }
    assert_eq!(
        Randomness::from_rvalue("abcdefgabcdefg"),
        Err(SamplingError::Syntax)
    );
    assert_eq!(
        Randomness::from_rvalue("+1234123412341"),
        Err(SamplingError::Syntax)
    );
    assert_eq!(
        Randomness::from_unsigned(5).expect("in range").rvalue(),
        "00000000000005"
    );
    assert_eq!(
        Randomness::from_unsigned(MAX_ADJUSTED_COUNT),
        Err(SamplingError::RValueSize)
    );
}

#[test]
fn trace_id_randomness_is_the_last_seven_bytes() {
    let tid = [
        0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xd2, 0x9d, 0x6a, 0x72, 0x15, 0xce,
        0xd0,
    ];
    let r = Randomness::from_trace_id(&tid);
    assert_eq!(r.rvalue(), "d29d6a7215ced0");
    assert!(th("c").should_sample(r));
    assert!(th("c").should_sample(Randomness::from_rvalue("d29d6a7215ced0").expect("valid")));
}

#[test]
fn half_samples_from_randomness_0x80_upwards() {
    let half = Threshold::from_probability(0.5).expect("in range");
    let tid = |high: u8, rest: u8| {
        let mut t = [0xee; 16];
        t[9] = high;
        t[10..].fill(rest);
        t
    };
    assert!(!half.should_sample(Randomness::from_trace_id(&tid(0, 0))));
    assert!(!half.should_sample(Randomness::from_trace_id(&tid(0x7f, 0xff))));
    assert!(half.should_sample(Randomness::from_trace_id(&tid(0x80, 0))));
    assert!(half.should_sample(Randomness::from_trace_id(&tid(0xff, 0xff))));
    assert!(!Threshold::NEVER_SAMPLE.should_sample(Randomness::ALL_PROBABILITIES));
    assert!(Threshold::ALWAYS_SAMPLE.should_sample(Randomness::from_trace_id(&[0; 16])));
}

#[test]
fn frexp_exponents() {
    assert_eq!(frexp_exponent(1.0), 1);
    assert_eq!(frexp_exponent(0.5), 0);
    assert_eq!(frexp_exponent(0.1), -3);
    assert_eq!(frexp_exponent(0.0), 0);
    assert_eq!(frexp_exponent(f64::from_bits(1)), -1073);
}

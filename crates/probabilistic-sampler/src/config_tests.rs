use redline_pipeline::component::FactoryInfo;

use super::*;
use crate::ProbabilisticSamplerFactory;

fn component(body: &str) -> ComponentConfig {
    redline_processor_testkit::component(&format!("  probabilistic_sampler:\n{body}"))
}

fn settings(body: &str) -> Result<Settings, String> {
    let c = component(body);
    ProbabilisticSamplerFactory
        .validate(&c)
        .map_err(|e| e.to_string())?;
    let parsed: ProbabilisticSamplerConfig = c.parse().map_err(|e| e.to_string())?;
    parsed.settings(&c).map_err(|e| e.to_string())
}

fn hash_seed_tvalue(percentage: f32) -> String {
    match make_sampler(percentage, Mode::HashSeed, 4, 0, true, "") {
        Sampler::HashSeed { threshold, .. } => threshold.tvalue(),
        other => panic!("{percentage}%: {other:?}"),
    }
}

#[test]
fn defaults_are_otelcols() {
    let s = settings("    sampling_percentage: 15.3\n").expect("valid");
    assert!(s.fail_closed);
    assert_eq!(s.precision, 4);
    assert_eq!(s.sampling_priority, "");
    // No mode: hash_seed, with seed 0, hashing the trace id of log records.
    assert_eq!(
        s.sampler,
        Sampler::HashSeed {
            threshold: Threshold::from_unsigned((HASH_BUCKETS - 2506) << 42).expect("in range"),
            seed: 0,
            logs_use_trace_id: true,
            logs_attribute: String::new(),
        }
    );
    // Nothing set at all: 0%.
    assert_eq!(settings("    {}\n").expect("valid").sampler, Sampler::Never);
}

#[test]
fn otelcols_example_configs() {
    let s = settings("    sampling_percentage: 15.3\n    mode: \"proportional\"\n").expect("valid");
    assert_eq!(
        s.sampler,
        Sampler::Proportional {
            ratio: f64::from(15.3f32) / 100.0,
            precision: 4
        }
    );
    let s = settings(
        "    sampling_percentage: 15.3\n    hash_seed: 22\n    attribute_source: \"record\"\n    from_attribute: \"foo\"\n    sampling_priority: \"bar\"\n",
    )
    .expect("valid");
    assert!(matches!(
        s.sampler,
        Sampler::HashSeed { seed: 22, logs_use_trace_id: false, ref logs_attribute, .. } if logs_attribute == "foo"
    ));
    assert_eq!(
        (s.from_attribute.as_str(), s.sampling_priority.as_str()),
        ("foo", "bar")
    );
}

#[test]
fn invalid_values_name_their_key() {
    let cases = [
        (
            "    sampling_percentage: -15.3\n",
            "sampling_percentage",
            "sampling rate is negative",
        ),
        (
            "    sampling_percentage: .000000000000001\n",
            "sampling_percentage",
            "sampling rate is too small",
        ),
        (
            "    sampling_percentage: +.Inf\n",
            "sampling_percentage",
            "sampling rate is invalid: +Inf%",
        ),
        (
            "    sampling_percentage: 50\n    sampling_precision: 15\n",
            "sampling_precision",
            "sampling precision is too great",
        ),
        (
            "    sampling_percentage: 15.3\n    sampling_precision: 0\n",
            "sampling_precision",
            "invalid sampling precision: 0",
        ),
        (
            "    sampling_percentage: 15.3\n    sampling_precision: -1\n",
            "sampling_precision",
            "must be between 1 and 14",
        ),
        (
            "    mode: dunno\n",
            "mode",
            "unsupported sampler mode \"dunno\"",
        ),
        (
            "    attribute_source: span\n",
            "attribute_source",
            "invalid attribute source: span",
        ),
        ("    sampling_rate: 5\n", "sampling_rate", ""),
    ];
    for (body, key, message) in cases {
        let err = settings(body).expect_err(body);
        assert!(err.contains(key) && err.contains(message), "{body}: {err}");
    }
}

#[test]
fn every_mode_and_source_spelling_otelcol_takes() {
    for mode in ["hash_seed", "equalizing", "proportional", "\"\""] {
        settings(&format!("    sampling_percentage: 5\n    mode: {mode}\n")).expect(mode);
    }
    let s = settings("    sampling_percentage: 5\n    attribute_source: \"\"\n").expect("valid");
    assert!(matches!(
        s.sampler,
        Sampler::HashSeed {
            logs_use_trace_id: false,
            ..
        }
    ));
}

#[test]
fn hash_seed_thresholds_have_14_bits() {
    assert_eq!(hash_seed_tvalue(100.0), "0");
    assert_eq!(hash_seed_tvalue(75.0), "4");
    assert_eq!(hash_seed_tvalue(50.0), "8");
    assert_eq!(hash_seed_tvalue(25.0), "c");
    // 14-bit truncation: e668 rather than e666, aaac rather than aaab.
    assert_eq!(hash_seed_tvalue(10.0), "e668");
    assert_eq!(hash_seed_tvalue(100.0 / 3.0), "aaac");
    assert_eq!(hash_seed_tvalue(200.0), "0");
}

#[test]
fn hash_seed_rounds_down_to_never() {
    // About 3/4 of one bucket: rounding to nearest would keep one bucket; otelcol truncates.
    let percentage = 3.0 * 2f32.powi(-16) * 100.0;
    assert_eq!(
        make_sampler(percentage, Mode::HashSeed, 4, 4312, true, ""),
        Sampler::Never
    );
    assert_eq!(
        make_sampler(0.0, Mode::Proportional, 4, 0, true, ""),
        Sampler::Never
    );
}

#[test]
fn consistent_modes_clamp_the_ratio() {
    assert_eq!(
        make_sampler(250.0, Mode::Equalizing, 4, 0, true, ""),
        Sampler::Equalizing {
            threshold: Threshold::ALWAYS_SAMPLE
        }
    );
    assert_eq!(
        make_sampler(1.0, Mode::Equalizing, 4, 0, true, ""),
        Sampler::Equalizing {
            threshold: Threshold::from_tvalue("fd70a").expect("valid")
        }
    );
}

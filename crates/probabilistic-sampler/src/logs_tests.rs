//! Cases from otelcol-contrib's logs processor tests, run on encoded requests.

use redline_processor_testkit::logs_request;

use super::*;
use crate::config::{make_sampler, Mode};
use crate::test_support::{hex, kv};

const LOG: LogContext<'static> = LogContext {
    processor: "probabilistic_sampler",
    sampler: "logs sampler",
};
const DEFAULT_TID: &str = "fefefefefefefefefe80000000000000";

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.into()))
}

/// A sampler configured as otelcol's tests build `Config{}` (no factory defaults): fail
/// open unless asked, precision 0 (all digits), an empty source unless set.
struct Setup {
    percentage: f32,
    mode: Mode,
    source: &'static str,
    from_attribute: &'static str,
    priority: &'static str,
    seed: u32,
    precision: u32,
    fail_closed: bool,
}

const SETUP: Setup = Setup {
    percentage: 0.0,
    mode: Mode::HashSeed,
    source: "",
    from_attribute: "",
    priority: "",
    seed: 0,
    precision: 0,
    fail_closed: false,
};

impl Setup {
    fn settings(&self) -> Settings {
        Settings {
            sampler: make_sampler(
                self.percentage,
                self.mode,
                self.precision,
                self.seed,
                self.source == "traceID",
                self.from_attribute,
            ),
            fail_closed: self.fail_closed,
            precision: self.precision,
            sampling_priority: self.priority.into(),
            from_attribute: self.from_attribute.into(),
        }
    }
}

/// The records forwarded (none when the request ends here).
fn run(settings: &Settings, records: Vec<LogRecord>) -> Vec<LogRecord> {
    let mut tally = Tally::default();
    let raw = logs_request(records).encode_to_vec();
    let bytes = match sample_request(settings, &raw, LOG, &mut tally).expect("decodes") {
        Rewrite::Dropped => return Vec::new(),
        Rewrite::Unchanged => raw,
        Rewrite::Replaced(bytes, _) => bytes,
    };
    ExportLogsServiceRequest::decode(bytes.as_slice())
        .expect("valid")
        .resource_logs
        .into_iter()
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

/// otelcol's 100 test records: trace ids `0^8 i^8` (all zeros for i = 0), a hashed `rando`
/// integer, `foo` (bytes) and `bar` (the trace id in hex) on even records, `priority: 100` on every
/// fourth.
fn hundred_records() -> Vec<LogRecord> {
    (0..100u8)
        .map(|i| {
            let mut tid = [0u8; 16];
            tid[8..].fill(i);
            let mut attributes = vec![kv(
                "rando",
                Value::IntValue(i64::from(fnv_seeded(&tid, 123))),
            )];
            if i % 2 == 0 {
                attributes.push(kv("foo", Value::BytesValue(tid.to_vec())));
                // pdata prints the all-zeros trace id as "".
                let hex_id: String = match i {
                    0 => String::new(),
                    _ => tid.iter().map(|b| format!("{b:02x}")).collect(),
                };
                attributes.push(text("bar", &hex_id));
            }
            if i % 4 == 0 {
                attributes.push(kv("priority", Value::DoubleValue(100.0)));
            }
            LogRecord {
                time_unix_nano: 1_649_400_860,
                severity_number: 5,
                trace_id: tid.to_vec(),
                attributes,
                ..Default::default()
            }
        })
        .collect()
}

/// otelcol's raw 32-bit hash of the seed and bytes.
fn fnv_seeded(bytes: &[u8], seed: u32) -> u32 {
    seed.to_le_bytes()
        .iter()
        .chain(bytes)
        .fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
}

#[test]
fn how_many_of_a_hundred_records_are_kept() {
    #[rustfmt::skip]
    let cases = [
        ("happy path", Setup { percentage: 100.0, ..SETUP }, 100),
        ("nothing", Setup { fail_closed: true, ..SETUP }, 0),
        ("roughly half", Setup { percentage: 50.0, source: "traceID", fail_closed: true, ..SETUP }, 45),
        ("record source, none", Setup { source: "record", from_attribute: "foo", ..SETUP }, 0),
        ("record source, all", Setup { percentage: 100.0, source: "record", from_attribute: "foo", ..SETUP }, 100),
        ("record source", Setup { percentage: 50.0, source: "record", from_attribute: "foo", fail_closed: true, ..SETUP }, 23),
        ("record source, string", Setup { percentage: 50.0, source: "record", from_attribute: "bar", fail_closed: true, ..SETUP }, 29),
        ("priority, 0% by record", Setup { priority: "priority", source: "record", from_attribute: "rando", ..SETUP }, 25),
        ("priority, 50% by record", Setup { percentage: 50.0, priority: "priority", source: "record", from_attribute: "rando", ..SETUP }, 64),
        ("priority, 100% by record", Setup { percentage: 100.0, priority: "priority", source: "record", from_attribute: "rando", ..SETUP }, 100),
        ("priority, 0% by trace id", Setup { priority: "priority", source: "traceID", ..SETUP }, 25),
        ("priority, 50% by trace id", Setup { percentage: 50.0, priority: "priority", source: "traceID", ..SETUP }, 57),
        ("priority, 100% by trace id", Setup { percentage: 100.0, priority: "priority", source: "traceID", ..SETUP }, 100),
        ("priority with a record source", Setup { priority: "priority", source: "record", from_attribute: "foo", ..SETUP }, 25),
    ];
    for (name, setup, want) in cases {
        assert_eq!(
            run(&setup.settings(), hundred_records()).len(),
            want,
            "{name}"
        );
    }
}

fn record(tid: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_649_400_860,
        severity_number: 5,
        trace_id: if tid.is_empty() { Vec::new() } else { hex(tid) },
        attributes,
        ..Default::default()
    }
}

/// (name, setup, trace id, attributes in, attributes of the kept record or `None`)
type StateCase = (
    &'static str,
    Setup,
    &'static str,
    Vec<KeyValue>,
    Option<Vec<KeyValue>>,
);

#[test]
fn kept_records_carry_otelcols_attributes() {
    let hashed = |bytes: &[u8], seed| hashed_randomness(bytes, seed).rvalue();
    let cases: Vec<StateCase> = vec![
        (
            "100 percent by trace id",
            Setup {
                percentage: 100.0,
                source: "traceID",
                mode: Mode::Proportional,
                ..SETUP
            },
            DEFAULT_TID,
            vec![text("ignored", "value")],
            Some(vec![
                text("ignored", "value"),
                text("sampling.threshold", "0"),
            ]),
        ),
        (
            "100 percent by trace id, hash_seed",
            Setup {
                percentage: 100.0,
                source: "traceID",
                seed: 22,
                ..SETUP
            },
            DEFAULT_TID,
            vec![text("K", "V")],
            Some(vec![
                text("K", "V"),
                text("sampling.randomness", &hashed(&hex(DEFAULT_TID), 22)),
                text("sampling.threshold", "0"),
            ]),
        ),
        (
            "100 percent by attribute",
            Setup {
                percentage: 100.0,
                source: "record",
                from_attribute: "veryrandom",
                seed: 49,
                ..SETUP
            },
            "",
            vec![text("veryrandom", "1234")],
            Some(vec![
                text("veryrandom", "1234"),
                text("sampling.randomness", &hashed(b"1234", 49)),
                text("sampling.threshold", "0"),
            ]),
        ),
        (
            "0 percent",
            Setup {
                source: "traceID",
                ..SETUP
            },
            DEFAULT_TID,
            vec![],
            None,
        ),
        (
            "10 percent by priority, with incoming randomness",
            Setup {
                source: "traceID",
                priority: "veryrandom",
                precision: 6,
                ..SETUP
            },
            DEFAULT_TID,
            vec![
                text("sampling.randomness", "e6147c00000000"),
                kv("veryrandom", Value::DoubleValue(10.125)),
            ],
            Some(vec![
                text("sampling.randomness", "e6147c00000000"),
                kv("veryrandom", Value::DoubleValue(10.125)),
                text("sampling.threshold", "e6147b"),
            ]),
        ),
        (
            "25 percent incoming, 50 percent proportional",
            Setup {
                percentage: 50.0,
                source: "traceID",
                mode: Mode::Proportional,
                ..SETUP
            },
            "fefefefefefefefefef0000000000000",
            vec![text("sampling.threshold", "c")],
            Some(vec![text("sampling.threshold", "e")]),
        ),
        (
            "25 percent arriving inconsistent",
            Setup {
                percentage: 50.0,
                source: "traceID",
                mode: Mode::Equalizing,
                fail_closed: true,
                ..SETUP
            },
            "fefefefefefefefefeb0000000000000",
            vec![text("sampling.threshold", "c")],
            None,
        ),
        (
            "25 percent arriving, equalizing, a priority cannot lower it",
            Setup {
                percentage: 50.0,
                source: "traceID",
                mode: Mode::Equalizing,
                priority: "prio",
                ..SETUP
            },
            "fefefefefefefefefefefefefefefefe",
            vec![
                text("sampling.threshold", "c"),
                kv("prio", Value::IntValue(37)),
            ],
            Some(vec![
                text("sampling.threshold", "c"),
                kv("prio", Value::IntValue(37)),
            ]),
        ),
        (
            "hash_seed leaves explicit randomness alone",
            Setup {
                percentage: 100.0,
                source: "traceID",
                ..SETUP
            },
            DEFAULT_TID,
            vec![text("sampling.randomness", "f2341234123412")],
            Some(vec![text("sampling.randomness", "f2341234123412")]),
        ),
    ];
    for (name, setup, tid, attributes, want) in cases {
        let got = run(&setup.settings(), vec![record(tid, attributes)]);
        let got = got.into_iter().next().map(|r| r.attributes);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn missing_randomness_in_every_mode() {
    for mode in [Mode::HashSeed, Mode::Equalizing, Mode::Proportional] {
        for source in ["record", "traceID"] {
            for percentage in [0.0, 50.0, 100.0] {
                for fail_closed in [true, false] {
                    let setup = Setup {
                        percentage,
                        mode,
                        source,
                        from_attribute: "unused",
                        seed: 4312,
                        fail_closed,
                        ..SETUP
                    };
                    let got = run(
                        &setup.settings(),
                        vec![record("", vec![text("unused", "")])],
                    );
                    let want = percentage != 0.0 && !fail_closed;
                    assert_eq!(
                        got.len() == 1,
                        want,
                        "{mode:?} {source} {percentage}% {fail_closed}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_inconsistent_threshold_is_removed_by_moving_the_last_attribute() {
    let setup = Setup {
        percentage: 100.0,
        mode: Mode::Equalizing,
        ..SETUP
    };
    let attributes = vec![
        text("a", "1"),
        text("sampling.threshold", "c"),
        text("b", "2"),
        text("c", "3"),
    ];
    let got = run(
        &setup.settings(),
        vec![record("fefefefefefefefefeb0000000000000", attributes)],
    );
    assert_eq!(
        got[0].attributes,
        [
            text("a", "1"),
            text("c", "3"),
            text("b", "2"),
            text("sampling.threshold", "0")
        ]
    );
}

#[test]
fn attribute_values_hash_as_pdata_prints_them() {
    let a = [kv("id", Value::IntValue(42))];
    assert_eq!(hashed_bytes(&a, "id"), b"42");
    let a = [kv("id", Value::BytesValue(vec![0, 1]))];
    assert_eq!(hashed_bytes(&a, "id"), [0, 1]);
    let a = [kv("id", Value::BoolValue(true))];
    assert_eq!(hashed_bytes(&a, "id"), b"true");
    assert!(hashed_bytes(&a, "other").is_empty());
}

#[test]
fn priority_values() {
    let s = Setup {
        priority: "p",
        precision: 4,
        ..SETUP
    }
    .settings();
    let p = |value: Value| priority(&s, &[kv("p", value)]).map(|t| t.tvalue());
    assert_eq!(p(Value::DoubleValue(100.0)).as_deref(), Some("0"));
    assert_eq!(p(Value::IntValue(25)).as_deref(), Some("c"));
    assert_eq!(p(Value::IntValue(0)), None);
    assert_eq!(p(Value::IntValue(150)), None);
    assert_eq!(p(Value::IntValue(-5)), None);
    assert_eq!(p(Value::DoubleValue(f64::NAN)), None);
    assert_eq!(p(Value::StringValue("50".into())), None);
    assert_eq!(priority(&s, &[]), None);
}

//! Counters that survive a restart: a checkpoint written by one `SpanMetrics` and loaded by
//! another continues every series (counts, buckets, sums, start times, exemplars, the
//! overflow series), is refused when the settings changed or the file is damaged, and is
//! deleted as soon as a read has shown more than it holds.

mod common;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use redline_spanmetrics::config::Dimension;
use redline_spanmetrics::{CheckpointError, Config, SpanMetrics};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const UNSET: i32 = 0;
const ERROR: i32 = 2;
const MS: u64 = 1_000_000;

fn traffic(round: u64) -> Vec<u8> {
    let hit = |v: &str| vec![kv("cdn.cache.hit", s(v))];
    encode(vec![
        service(
            "checkout",
            vec![
                span("GET /cart", SERVER, UNSET, (3 + round) * MS, hit("true")),
                span("GET /cart", SERVER, ERROR, 700 * MS, hit("false")),
                span("SELECT", CLIENT, UNSET, 2 * MS, vec![]),
            ],
        ),
        service(
            "payments",
            vec![span(
                "charge",
                SERVER,
                UNSET,
                40 * MS,
                vec![kv("x", Value::IntValue(1))],
            )],
        ),
    ])
}

/// Everything a read shows, in an order that does not depend on shard placement.
fn shown(m: &SpanMetrics) -> Vec<String> {
    let sink = collect(m);
    let mut out: Vec<String> = sink
        .families
        .iter()
        .flat_map(|f| {
            f.points
                .iter()
                .map(move |(labels, point)| format!("{} {labels:?} {point:?}", f.name))
        })
        .collect();
    out.sort();
    out
}

fn fed(config: &Config, rounds: u64) -> SpanMetrics {
    let m = SpanMetrics::new(config).expect("valid");
    for r in 0..rounds {
        m.aggregate(&traffic(r)).expect("aggregates");
    }
    m
}

#[test]
fn a_restored_state_continues_every_series() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state");
    let before = fed(&reference_config(), 3);
    assert_eq!(before.write_checkpoint(&path, true).expect("writes"), 4);

    let after = SpanMetrics::new(&reference_config()).expect("valid");
    assert_eq!(after.load_checkpoint(&path).expect("loads"), Some(4));
    assert_eq!(
        shown(&after),
        shown(&before),
        "counts, buckets, sums, start times, exemplars"
    );

    // Both count on from there alike (new exemplars carry each process's own clock).
    for m in [&before, &after] {
        m.aggregate(&traffic(9)).expect("aggregates");
    }
    let timeless = |m: &SpanMetrics| -> Vec<String> {
        shown(m)
            .into_iter()
            .map(|line| {
                let mut out = String::new();
                let mut rest = line.as_str();
                while let Some(at) = rest.find("time_unix_nano: ") {
                    let (head, tail) = rest.split_at(at + "time_unix_nano: ".len());
                    out.push_str(head);
                    rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
                }
                out + rest
            })
            .collect()
    };
    assert_eq!(timeless(&after), timeless(&before));
}

#[test]
fn the_overflow_series_is_restored_too() {
    let config = Config {
        aggregation_cardinality_limit: 2,
        ..reference_config()
    };
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state");
    let before = fed(&config, 2);
    assert!(before.overflow_active());
    before.write_checkpoint(&path, false).expect("writes");
    let after = SpanMetrics::new(&config).expect("valid");
    after.load_checkpoint(&path).expect("loads");
    assert!(after.overflow_active());
    assert_eq!(shown(&after), shown(&before));
}

#[test]
fn changed_settings_or_damage_are_refused_and_nothing_is_restored() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state");
    fed(&reference_config(), 1)
        .write_checkpoint(&path, false)
        .expect("writes");

    let other_dims = Config {
        dimensions: vec![Dimension {
            name: "region".into(),
            default: None,
            glob: None,
        }],
        ..reference_config()
    };
    let m = SpanMetrics::new(&other_dims).expect("valid");
    let err = m.load_checkpoint(&path).expect_err("dimensions changed");
    assert!(
        matches!(err, CheckpointError::ConfigChanged { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("dimensions"), "{err}");
    assert_eq!(m.series_count(), 0);

    let good = std::fs::read(&path).expect("read");
    let mut flipped = good.clone();
    flipped[60] ^= 1;
    std::fs::write(&path, &flipped).expect("write");
    let m = SpanMetrics::new(&reference_config()).expect("valid");
    let err = m.load_checkpoint(&path).expect_err("damaged");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(m.series_count(), 0);

    std::fs::write(&path, &good[..good.len() / 2]).expect("write");
    assert!(m.load_checkpoint(&path).is_err(), "cut short");
    std::fs::write(
        &path,
        b"something else entirely, long enough to have a header..",
    )
    .expect("w");
    assert!(m.load_checkpoint(&path).is_err(), "not a state file");
    assert_eq!(m.series_count(), 0);

    std::fs::remove_file(&path).expect("rm");
    assert_eq!(m.load_checkpoint(&path).expect("no file is fine"), None);
}

#[test]
fn the_file_goes_once_a_read_shows_more_than_it_holds() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state");
    let m = fed(&reference_config(), 2);
    m.write_checkpoint(&path, false).expect("writes");
    // Reads of what the file holds leave it: a crash now may continue from it.
    collect(&m);
    collect(&m);
    assert!(path.exists());
    // A span counted after the write, then read: the file would now go backwards.
    m.aggregate(&traffic(5)).expect("aggregates");
    assert!(path.exists(), "counting alone changes nothing");
    collect(&m);
    assert!(!path.exists(), "deleted before the read's values went out");

    // A restored state keeps its file until the same happens.
    m.write_checkpoint(&path, false).expect("writes");
    let after = SpanMetrics::new(&reference_config()).expect("valid");
    after.load_checkpoint(&path).expect("loads");
    collect(&after);
    assert!(path.exists());
    after.aggregate(&traffic(6)).expect("aggregates");
    collect(&after);
    assert!(!path.exists());
}

#[test]
fn an_unchanged_state_is_not_written_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("state");
    let m = fed(&reference_config(), 1);
    m.write_checkpoint(&path, false).expect("writes");
    let written = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&path, b"marker: a rewrite would replace this").expect("w");
    m.write_checkpoint(&path, false).expect("skips");
    assert_eq!(
        std::fs::read(&path).expect("r"),
        b"marker: a rewrite would replace this"
    );
    m.aggregate(&traffic(1)).expect("aggregates");
    m.write_checkpoint(&path, false).expect("writes");
    assert!(
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime")
            >= written
    );
    let again = SpanMetrics::new(&reference_config()).expect("valid");
    assert_eq!(again.load_checkpoint(&path).expect("loads"), Some(4));
}

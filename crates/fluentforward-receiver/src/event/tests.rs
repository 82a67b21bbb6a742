use std::io::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

use super::*;

/// A minimal MessagePack writer for the tests' events.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn array(mut self, n: u8) -> Self {
        self.0.push(0x90 | n);
        self
    }
    fn map(mut self, n: u8) -> Self {
        self.0.push(0x80 | n);
        self
    }
    fn str(mut self, s: &str) -> Self {
        self.0.push(0xd9);
        self.0.push(u8::try_from(s.len()).expect("short"));
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn bin(mut self, b: &[u8]) -> Self {
        self.0.push(0xc6);
        self.0.extend((b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    fn int(mut self, i: i64) -> Self {
        self.0.push(0xd3);
        self.0.extend(i.to_be_bytes());
        self
    }
    fn uint(mut self, u: u64) -> Self {
        self.0.push(0xcf);
        self.0.extend(u.to_be_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn event_time(self, s: u32, ns: u32) -> Self {
        let mut b = vec![0xd7, 0x00];
        b.extend(s.to_be_bytes());
        b.extend(ns.to_be_bytes());
        self.raw(&b)
    }
}

fn records(event: &[u8]) -> Result<(Vec<LogRecord>, Parsed), Error> {
    let mut out = vec![0; otlp::REQUEST_HEAD];
    let parsed = read(event, event.len(), &mut out).map_err(|e| Error::malformed(e.reason()))?;
    let request = ExportLogsServiceRequest::decode(otlp::request(out)).expect("OTLP");
    let rl = &request.resource_logs[0];
    assert_eq!(rl.resource, Some(Default::default()), "an empty resource");
    let sl = &rl.scope_logs[0];
    assert_eq!(sl.scope, Some(Default::default()), "an empty scope");
    Ok((sl.log_records.clone(), parsed))
}

fn str_value(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Any::StringValue(s.to_owned())),
    })
}

fn attr(key: &str, value: Option<Any>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value }),
        ..Default::default()
    }
}

fn attrs(record: &LogRecord) -> Vec<(String, Option<Any>)> {
    record
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().and_then(|v| v.value)))
        .collect()
}

#[test]
fn message_mode_puts_the_tag_first_and_the_log_in_the_body() {
    let event = W::default()
        .array(4)
        .str("app.web")
        .event_time(1_700_000_000, 5)
        .map(4)
        .str("log")
        .str("GET /")
        .str("code")
        .int(200)
        .str("fluent.tag")
        .str("overwritten in place")
        .str("message")
        .raw(&[0xc0])
        .map(1)
        .str("chunk")
        .str("c1")
        .0;
    let (got, parsed) = records(&event).expect("valid");
    assert_eq!(parsed.chunk.as_deref(), Some(&b"c1"[..]));
    assert_eq!(parsed.records, 1);
    let r = &got[0];
    assert_eq!(r.time_unix_nano, 1_700_000_000_000_000_005);
    assert_eq!(r.observed_time_unix_nano, 0);
    // A nil `message` after `log` leaves the body as it was.
    assert_eq!(r.body, str_value("GET /"));
    assert_eq!(
        r.attributes,
        vec![
            attr(
                "fluent.tag",
                Some(Any::StringValue("overwritten in place".into()))
            ),
            attr("code", Some(Any::IntValue(200))),
        ]
    );
}

#[test]
fn forward_mode_puts_the_tag_last_and_converts_every_type() {
    let entry = |w: W, t: i64| {
        w.array(2)
            .int(t)
            .map(9)
            .str("s")
            .bin(b"bytes")
            .str("big")
            .uint(u64::MAX)
            .str("u")
            .uint(7)
            .str("f32")
            .raw(&[0xca, 0x3f, 0xc0, 0, 0])
            .str("f64")
            .raw(&[0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0])
            .str("b")
            .raw(&[0xc2])
            .str("nil")
            .raw(&[0xc0])
            .str("nested")
            .map(2)
            .str("k")
            .int(1)
            .str("k")
            .array(1)
            .str("v")
            .raw(&[0xc4, 3])
            .raw(b"bin")
            .str("binkey")
    };
    let event = entry(entry(W::default().array(2).str("t").array(2), 1), 2).0;
    let (got, parsed) = records(&event).expect("valid");
    assert_eq!(
        parsed,
        Parsed {
            records: 2,
            chunk: None
        }
    );
    assert_eq!(got[1].time_unix_nano, 2_000_000_000);
    assert_eq!(
        got[0].body,
        Some(AnyValue { value: None }),
        "no body: empty"
    );
    let nested = Any::KvlistValue(KeyValueList {
        values: vec![attr(
            "k",
            Some(Any::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Any::StringValue("v".into())),
                }],
            })),
        )],
    });
    assert_eq!(
        attrs(&got[0]),
        vec![
            ("s".to_owned(), Some(Any::StringValue("bytes".into()))),
            (
                "big".to_owned(),
                Some(Any::StringValue(u64::MAX.to_string()))
            ),
            ("u".to_owned(), Some(Any::IntValue(7))),
            ("f32".to_owned(), Some(Any::DoubleValue(1.5))),
            ("f64".to_owned(), Some(Any::DoubleValue(2.5))),
            ("b".to_owned(), Some(Any::BoolValue(false))),
            ("nil".to_owned(), None),
            ("nested".to_owned(), Some(nested)),
            ("bin".to_owned(), Some(Any::StringValue("binkey".into()))),
            ("fluent.tag".to_owned(), Some(Any::StringValue("t".into()))),
        ]
    );
}

#[test]
fn packed_forward_reads_plain_and_gzipped_entries_and_stops_at_a_clean_end() {
    let one = |t: i64, msg: &str| {
        W::default()
            .array(2)
            .int(t)
            .map(1)
            .str("message")
            .str(msg)
            .0
    };
    let entries = [one(1, "a"), one(2, "b")].concat();
    let plain = W::default().array(2).str("p").bin(&entries).0;
    let (got, _) = records(&plain).expect("valid");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body, str_value("b"));
    // Two gzip members, one per entry, as Go's reader reads them.
    let gzip = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(b).expect("in memory");
        e.finish().expect("in memory")
    };
    let packed = [gzip(&one(1, "a")), gzip(&one(2, "b"))].concat();
    let gz = W::default()
        .array(3)
        .str("p")
        .bin(&packed)
        .map(2)
        .str("compressed")
        .str("gzip")
        .str("chunk")
        .str("xyz")
        .0;
    let (got, parsed) = records(&gz).expect("valid");
    assert_eq!((got.len(), parsed.chunk.as_deref()), (2, Some(&b"xyz"[..])));
    // Entries cut where an element begins: the ones before stand. Cut inside one: refused.
    let mut cut = entries.clone();
    cut.extend(W::default().array(2).int(3).0);
    let event = W::default().array(2).str("p").bin(&cut).0;
    assert_eq!(records(&event).expect("a clean end").0.len(), 2);
    let mut cut = entries.clone();
    cut.extend([0x92, 0xd3, 0, 0]);
    let event = W::default().array(2).str("p").bin(&cut).0;
    assert!(matches!(records(&event), Err(Error::Malformed(_))));
}

#[test]
fn what_otelcol_refuses_is_refused() {
    let t = || W::default().array(3).str("t");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a tag that is not a string",
            W::default().array(3).int(1).int(1).map(0).0,
        ),
        ("message mode of 2", W::default().array(2).str("t").int(1).0),
        (
            "forward mode of 4",
            W::default().array(4).str("t").array(0).map(0).map(0).0,
        ),
        ("a float time", t().raw(&[0xca, 0, 0, 0, 0]).map(0).0),
        (
            "an EventTime of 4 bytes",
            t().raw(&[0xd6, 0, 0, 0, 0, 1]).map(0).0,
        ),
        ("a record that is not a map", t().int(1).array(0).0),
        (
            "a record key that is an int",
            t().int(1).map(1).int(1).int(2).0,
        ),
        (
            "a nested key that is bin",
            t().int(1).map(1).str("m").map(1).bin(b"k").int(1).0,
        ),
        ("nil as the second element", t().raw(&[0xc0]).map(0).0),
        (
            "packed entries that are not gzip",
            W::default()
                .array(3)
                .str("t")
                .bin(b"xx")
                .map(1)
                .str("compressed")
                .str("gzip")
                .0,
        ),
    ];
    for (what, event) in cases {
        let mut out = Vec::new();
        assert!(read(&event, event.len(), &mut out).is_err(), "{what}");
        assert!(out.is_empty(), "{what}: nothing written");
    }
}

#[test]
fn times_wrap_as_gos_arithmetic_does() {
    let at = |time: W| {
        let event = W::default().array(3).str("t").raw(&time.0).map(0).0;
        records(&event).expect("valid").0[0].time_unix_nano
    };
    assert_eq!(at(W::default().int(-1)), (-1_000_000_000i64) as u64);
    assert_eq!(at(W::default().uint(u64::MAX)), (-1_000_000_000i64) as u64);
    assert_eq!(at(W::default().int(0)), 0);
    // Nanoseconds over a second carry, as time.Unix normalises them.
    assert_eq!(at(W::default().event_time(1, 1_500_000_000)), 2_500_000_000);
}

#[test]
fn values_nest_as_deep_as_otlp_decoders_read_and_no_deeper() {
    let nested = |depth: u32| {
        let mut w = W::default().array(3).str("t").int(1).map(1).str("k");
        for _ in 0..depth {
            w = w.map(1).str("k");
        }
        w.int(1).0
    };
    // `nested(n)` holds n maps inside the record's value.
    let deepest = nested(crate::msgpack::MAX_DEPTH);
    assert_eq!(records(&deepest).expect("decodable").0.len(), 1);
    let mut out = Vec::new();
    let deeper = nested(crate::msgpack::MAX_DEPTH + 1);
    assert!(read(&deeper, deeper.len(), &mut out).is_err());
}

#[test]
fn a_record_of_too_many_values_is_refused_before_it_is_read() {
    let record = |elements: usize| {
        let mut w = W::default()
            .array(3)
            .str("t")
            .int(1)
            .map(1)
            .str("k")
            .raw(&[0xdd]);
        w.0.extend((elements as u32).to_be_bytes());
        w.0.resize(w.0.len() + elements, 0xc0);
        w.0
    };
    // The time, the key, the array and its elements.
    let fits = crate::msgpack::MAX_RECORD_VALUES - 3;
    assert_eq!(records(&record(fits)).expect("fits").0.len(), 1);
    let mut out = Vec::new();
    let over = record(fits + 1);
    assert!(read(&over, over.len(), &mut out).is_err());
    // An array that only claims to be long is refused from its header.
    let mut claim = W::default()
        .array(3)
        .str("t")
        .int(1)
        .map(1)
        .str("k")
        .raw(&[0xdd])
        .0;
    claim.extend(u32::MAX.to_be_bytes());
    assert!(read(&claim, claim.len(), &mut out).is_err());
}

//! OTLP logs requests as Fluent Forward events, for `--protocol fluent`: what Fluent Bit's
//! `forward` output sends for the same records, so one load measures the collectors'
//! `fluent_forward` receivers.
//!
//! One PackedForward event per request: tag `loadgen.<service.name of the first resource>`,
//! each record an entry `[EventTime, record]` whose `log` is the body and whose other keys
//! are the record's and its resource's attributes (as Fluent Bit's Kubernetes filter adds
//! pod metadata to each record), and the options `size` and `chunk`: the client waits for
//! `{"ack": chunk}`, as Fluent Bit does with `Require_ack_response`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;

/// The event for one OTLP logs request and its number of records.
pub fn to_event(otlp: &[u8], chunk: &str) -> Result<(Vec<u8>, usize), prost::DecodeError> {
    let request = ExportLogsServiceRequest::decode(otlp)?;
    let mut tag = String::from("loadgen");
    let mut entries = Vec::new();
    let mut records = 0;
    for rl in &request.resource_logs {
        let resource = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        if records == 0 {
            if let Some(service) = resource.iter().find(|kv| kv.key == "service.name") {
                tag = format!("loadgen.{}", text(service.value.as_ref()));
            }
        }
        for record in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
            records += 1;
            array(2, &mut entries);
            event_time(record.time_unix_nano, &mut entries);
            let fields: Vec<&KeyValue> = record.attributes.iter().chain(resource).collect();
            map(1 + fields.len(), &mut entries);
            string("log", &mut entries);
            value(record.body.as_ref(), &mut entries);
            for kv in fields {
                string(&kv.key, &mut entries);
                value(kv.value.as_ref(), &mut entries);
            }
        }
    }
    let mut event = Vec::with_capacity(entries.len() + 64);
    array(3, &mut event);
    string(&tag, &mut event);
    bin(&entries, &mut event);
    map(2, &mut event);
    string("size", &mut event);
    int(records as i64, &mut event);
    string("chunk", &mut event);
    string(chunk, &mut event);
    Ok((event, records))
}

/// What the receiver answers once it took the event of `chunk`.
pub fn ack(chunk: &str) -> Vec<u8> {
    let mut out = Vec::new();
    map(1, &mut out);
    string("ack", &mut out);
    string(chunk, &mut out);
    out
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn value(value: Option<&AnyValue>, out: &mut Vec<u8>) {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::IntValue(i)) => int(*i, out),
        Some(any_value::Value::DoubleValue(d)) => {
            out.push(0xcb);
            out.extend(d.to_bits().to_be_bytes());
        }
        Some(any_value::Value::BoolValue(b)) => out.push(if *b { 0xc3 } else { 0xc2 }),
        None => out.push(0xc0),
        // Strings, and anything else as the text a log shipper would make of it.
        Some(_) => string(&text(value), out),
    }
}

fn array(n: usize, out: &mut Vec<u8>) {
    header(n, 0x90, 0xdc, out);
}

fn map(n: usize, out: &mut Vec<u8>) {
    header(n, 0x80, 0xde, out);
}

/// A fix header below 16 items, else the 16- or 32-bit one (`wide`, `wide + 1`).
fn header(n: usize, fix: u8, wide: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(wide);
        out.extend(n.to_be_bytes());
    } else {
        out.push(wide + 1);
        out.extend((n as u32).to_be_bytes());
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend([0xd9, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(0xda);
        out.extend(n.to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend((n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn bin(b: &[u8], out: &mut Vec<u8>) {
    out.push(0xc6);
    out.extend((b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn int(i: i64, out: &mut Vec<u8>) {
    out.push(0xd3);
    out.extend(i.to_be_bytes());
}

/// fluentd's EventTime: seconds and nanoseconds, big-endian, extension type 0.
fn event_time(ns: u64, out: &mut Vec<u8>) {
    out.extend([0xd7, 0x00]);
    out.extend(((ns / 1_000_000_000) as u32).to_be_bytes());
    out.extend(((ns % 1_000_000_000) as u32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::model_logs::LogsGenerator;

    /// The encoder's events read back by the receiver they stand in front of: every record,
    /// its time, its body, and its attributes and resource's as record fields.
    #[test]
    fn events_round_trip_through_the_receiver() {
        let generator = LogsGenerator::new(ModelConfig::default(), 9, 40_000).expect("model");
        for index in 0..4 {
            let (request, records) = generator.request(index, 1_700_000_000_123_456_789);
            let (event, sent) = to_event(&request.encode_to_vec(), "c-1").expect("encodes");
            assert_eq!(sent, records);
            let (otlp, got) = redline_fluentforward_receiver::translate(&event).expect("reads");
            assert_eq!(got, records);
            let back = ExportLogsServiceRequest::decode(&otlp[..]).expect("OTLP");
            let back: Vec<_> = back.resource_logs[0].scope_logs[0].log_records.clone();
            let sent: Vec<_> = request
                .resource_logs
                .iter()
                .flat_map(|rl| {
                    let resource = rl.resource.clone().unwrap_or_default().attributes;
                    rl.scope_logs
                        .iter()
                        .flat_map(|sl| &sl.log_records)
                        .map(move |r| (r.clone(), resource.clone()))
                })
                .collect();
            for (got, (want, resource)) in back.iter().zip(&sent) {
                assert_eq!(got.time_unix_nano, want.time_unix_nano);
                assert_eq!(got.body, want.body);
                let keys: Vec<&str> = got.attributes.iter().map(|kv| kv.key.as_str()).collect();
                let mut expected: Vec<&str> = want
                    .attributes
                    .iter()
                    .chain(resource.iter())
                    .map(|kv| kv.key.as_str())
                    .collect();
                expected.push("fluent.tag");
                assert_eq!(keys, expected);
            }
        }
        assert_eq!(ack("c-1"), b"\x81\xa3ack\xa3c-1");
    }
}

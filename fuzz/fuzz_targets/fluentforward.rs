//! The `fluent_forward` receiver's reading of Forward-protocol events on arbitrary bytes:
//! the bytes are one connection's stream. Finding where each event ends must give the same
//! events whether the stream arrives whole or in two reads, reading an event must never
//! panic, and what it writes must decode as an OTLP logs request holding exactly the records
//! it reports.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = redline_fluentforward_receiver::events(stream, stream.len());
    let split = usize::from(split).min(stream.len());
    assert_eq!(
        whole,
        redline_fluentforward_receiver::events(stream, split),
        "the events depend on where the stream was split"
    );
    let Ok(lengths) = whole else {
        return;
    };
    let mut at = 0;
    for len in lengths {
        let event = &stream[at..at + len];
        at += len;
        let Ok((raw, records)) = redline_fluentforward_receiver::translate(event) else {
            continue;
        };
        let request = ExportLogsServiceRequest::decode(raw).expect("valid OTLP");
        let got: usize = request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum();
        assert_eq!(got, records, "records reported and written differ");
    }
});

//! The logs validator against prost on arbitrary bytes.
//!
//! Differential: `validate_logs` accepts exactly what prost's `ExportLogsServiceRequest::decode`
//! accepts (bodies nested to the recursion limit included), and on accepted input its counts
//! equal what prost decoded: resource and scope entries and log records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use redline_otlp_wire::{validate_logs, LogsStats};

/// What `validate_logs` must report for a request prost decoded.
fn expected(req: &ExportLogsServiceRequest) -> LogsStats {
    let scopes = || req.resource_logs.iter().flat_map(|rl| &rl.scope_logs);
    LogsStats {
        resource_logs: req.resource_logs.len(),
        scope_logs: scopes().count(),
        log_records: scopes().map(|sl| sl.log_records.len()).sum(),
    }
}

fn check(data: &[u8]) {
    let prost = ExportLogsServiceRequest::decode(data);
    let ours = validate_logs(data);
    match (&prost, &ours) {
        (Ok(req), Ok(stats)) => {
            assert_eq!(*stats, expected(req), "counts differ from prost's decode");
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("validator refused what prost accepts: {e}"),
        (Err(e), Ok(_)) => panic!("validator accepted what prost refuses: {e}"),
    }
}

fuzz_target!(|data: &[u8]| check(data));

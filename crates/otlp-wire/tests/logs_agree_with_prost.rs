//! Property tests: `validate_logs` accepts exactly what prost's decode of
//! `ExportLogsServiceRequest` accepts, and counts what prost's decode holds.
//!
//! Case counts are modest so `cargo test` stays fast; raise them with
//! `PROPTEST_CASES=10000 cargo test -p redline-otlp-wire --release`.

// Tests may panic on unexpected results; that is how they fail.
#![allow(clippy::unwrap_used)]

mod support;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;
use redline_otlp_wire::{validate_logs, LogsStats};
use support::{
    any_value, attributes, bytes, cases, common, field_shapes, mutate, ops, resource, scope,
    scramble, text, wrap_path, Common, Kind, Rng, Schema,
};

fn expected(req: &ExportLogsServiceRequest) -> LogsStats {
    let scopes = || req.resource_logs.iter().flat_map(|r| &r.scope_logs);
    LogsStats {
        resource_logs: req.resource_logs.len(),
        scope_logs: scopes().count(),
        log_records: scopes().map(|s| s.log_records.len()).sum(),
    }
}

fn check_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    let theirs = ExportLogsServiceRequest::decode(bytes);
    let ours = validate_logs(bytes);
    prop_assert_eq!(
        ours.is_ok(),
        theirs.is_ok(),
        "ours {:?} theirs {:?}",
        ours,
        theirs.as_ref().err()
    );
    if let (Ok(stats), Ok(req)) = (ours, theirs) {
        prop_assert_eq!(stats, expected(&req));
    }
    Ok(())
}

fn log_record() -> impl Strategy<Value = LogRecord> {
    (
        any::<(u64, u64)>(),
        (prop_oneof![0..25i32, any::<i32>()], text()),
        proptest::option::of(any_value()),
        attributes(),
        any::<(u32, u32)>(),
        (bytes(18), bytes(10)),
        text(),
    )
        .prop_map(
            |(
                (time, observed),
                (severity_number, severity_text),
                body,
                attributes,
                (dropped_attributes_count, flags),
                (trace_id, span_id),
                event_name,
            )| LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: observed,
                severity_number,
                severity_text,
                body,
                attributes,
                dropped_attributes_count,
                flags,
                trace_id,
                span_id,
                event_name,
            },
        )
}

fn request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    let scope_logs =
        (scope(), vec(log_record(), 0..4), text()).prop_map(|(scope, log_records, schema_url)| {
            ScopeLogs {
                scope,
                log_records,
                schema_url,
            }
        });
    let resource_logs = (resource(), vec(scope_logs, 0..3), text()).prop_map(
        |(resource, scope_logs, schema_url)| ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        },
    );
    vec(resource_logs, 0..3).prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum L {
    Req,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    C(Common),
}

impl Schema for L {
    fn field(self, tag: u32) -> Option<Kind<L>> {
        use L::*;
        let msg = |m, singular| Some(Kind::Message(m, singular));
        match (self, tag) {
            (Req, 1) => msg(ResourceLogs, false),
            (ResourceLogs, 1) => msg(C(Common::Resource), true),
            (ResourceLogs, 2) => msg(ScopeLogs, false),
            (ScopeLogs, 1) => msg(C(Common::Scope), true),
            (ScopeLogs, 2) => msg(LogRecord, false),
            (LogRecord, 5) => msg(C(Common::Any), true),
            (LogRecord, 6) => msg(C(Common::Kv), false),
            (C(c), tag) => common(c, tag, C),
            _ => None,
        }
    }
}

/// Where each message type sits: the field numbers leading to it from the request.
const PATHS: &[&[u32]] = &[
    &[],
    &[1],
    &[1, 1],
    &[1, 1, 1],
    &[1, 1, 1, 2],
    &[1, 1, 3],
    &[1, 2],
    &[1, 2, 1],
    &[1, 2, 1, 3],
    &[1, 2, 2],
    &[1, 2, 2, 5],
    &[1, 2, 2, 5, 5],
    &[1, 2, 2, 5, 5, 1],
    &[1, 2, 2, 5, 6],
    &[1, 2, 2, 5, 6, 1],
    &[1, 2, 2, 5, 6, 1, 2],
    &[1, 2, 2, 6],
    &[1, 2, 2, 6, 2],
];

/// Every field number 1..=16 of every message type, in every wire shape, alone in its
/// message: accepted and counted exactly as prost does.
#[test]
fn every_field_in_every_wire_shape_agrees_with_prost() {
    let mut accepted = 0;
    let mut total = 0;
    for path in PATHS {
        for tag in 1..=16 {
            for shape in field_shapes(tag) {
                let bytes = wrap_path(path, &shape);
                if let Err(e) = check_agrees(&bytes) {
                    panic!("path {path:?} field {tag} shape {shape:02x?}: {e}");
                }
                total += 1;
                accepted += usize::from(validate_logs(&bytes).is_ok());
            }
        }
    }
    assert!(
        accepted > total / 4 && accepted < total * 3 / 4,
        "{accepted}/{total}"
    );
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn counts_match_prost_struct(req in request()) {
        let bytes = req.encode_to_vec();
        let stats = validate_logs(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(stats, expected(&req));
        check_agrees(&bytes)?;
    }

    #[test]
    fn scrambled_encodings_agree(req in request(), seed in any::<u64>()) {
        let mut rng = Rng(seed | 1);
        let bytes = scramble(L::Req, &req.encode_to_vec(), &mut rng);
        prop_assert!(ExportLogsServiceRequest::decode(bytes.as_slice()).is_ok());
        check_agrees(&bytes)?;
    }

    #[test]
    fn mutated_encodings_accept_like_prost(req in request(), seed in any::<u64>(), ops in ops()) {
        let mut rng = Rng(seed | 1);
        let mut bytes = if seed % 2 == 0 {
            req.encode_to_vec()
        } else {
            scramble(L::Req, &req.encode_to_vec(), &mut rng)
        };
        mutate(&mut bytes, ops);
        check_agrees(&bytes)?;
    }

    /// Concatenated log records are one record to protobuf (bodies merge as `AnyValue`s).
    #[test]
    fn merged_log_records_like_prost(records in vec(log_record(), 1..5)) {
        let merged: Vec<u8> = records.iter().flat_map(Message::encode_to_vec).collect();
        let bytes = wrap_path(&[1, 2, 2], &merged);
        let stats = validate_logs(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(stats.log_records, 1);
        check_agrees(&bytes)?;
    }

    #[test]
    fn random_bytes_accept_like_prost(bytes in vec(any::<u8>(), 0..64)) {
        check_agrees(&bytes)?;
    }
}

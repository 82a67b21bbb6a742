//! `ExportLogsServiceRequest`: validated with prost's rules (opentelemetry-proto `logs/v1`),
//! counting log records.

use super::attributes::{any_value, key_value};
use super::envelope::{self, Names};
use super::fields::{Elements, Fields};
use crate::cursor::Cursor;
use crate::error::{WireError, WireType};

/// Counts gathered while validating an `ExportLogsServiceRequest`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogsStats {
    /// `ResourceLogs` messages.
    pub resource_logs: usize,
    /// `ScopeLogs` messages.
    pub scope_logs: usize,
    /// `LogRecord` messages (what the Collector reports as
    /// `otelcol_receiver_accepted_log_records`).
    pub log_records: usize,
}

/// Validates an encoded `ExportLogsServiceRequest` and counts its log records.
///
/// Accepts exactly what `prost` accepts when decoding it into the opentelemetry-proto types:
/// same wire rules, UTF-8 checks on `string` fields (not on `bytes`), unknown fields skipped,
/// recursion limit of [`RECURSION_LIMIT`](crate::RECURSION_LIMIT) (a deeply nested `body`
/// is refused exactly where prost refuses it). Never panics and does not allocate unless the
/// request is invalid.
///
/// ```
/// use redline_otlp_wire::validate_logs;
///
/// // resource_logs { scope_logs { log_records { body { string_value: "hi" } } } }
/// let record = [0x2a, 0x04, 0x0a, 0x02, b'h', b'i'];
/// let request = [0x0a, 0x0a, 0x12, 0x08, 0x12, 0x06].iter().chain(&record);
/// let request: Vec<u8> = request.copied().collect();
/// assert_eq!(validate_logs(&request).unwrap().log_records, 1);
/// // Truncated: refused.
/// assert!(validate_logs(&request[..request.len() - 1]).is_err());
/// ```
pub fn validate_logs(raw: &[u8]) -> Result<LogsStats, WireError> {
    let names = Names {
        resources: "resource_logs",
        scopes: "scope_logs",
        items: "log_records",
        item: "log_record",
    };
    let counts = envelope::request(Cursor::new(raw), &names, &mut log_record)?;
    Ok(LogsStats {
        resource_logs: counts.resources,
        scope_logs: counts.scopes,
        log_records: counts.items,
    })
}

/// `LogRecord`.
fn log_record(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut attributes = Elements::new("attributes", "attribute");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_type(WireType::Fixed64, "time_unix_nano")?,
            11 => f.check_type(WireType::Fixed64, "observed_time_unix_nano")?,
            // An enum: any varint.
            2 => f.check_type(WireType::Varint, "severity_number")?,
            3 => f.check_string("severity_text")?,
            // Repeated occurrences merge; each is checked on its own, as prost does.
            5 => f.singular("body", any_value)?,
            6 => attributes.read::<true>(f, |c, r| key_value(c, r))?,
            7 => f.check_type(WireType::Varint, "dropped_attributes_count")?,
            8 => f.check_type(WireType::Fixed32, "flags")?,
            9 => f.check_type(WireType::Len, "trace_id")?,
            10 => f.check_type(WireType::Len, "span_id")?,
            12 => f.check_string("event_name")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

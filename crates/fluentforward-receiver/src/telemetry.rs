//! The receiver's own metrics, as otelcol's fluentforwardreceiver serves them: one series
//! each, summed over every `fluent_forward` receiver of the process.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use redline_pipeline::telemetry::{
    CounterDesc, Telemetry, FLUENT_CLOSED_CONNECTIONS, FLUENT_EVENTS_PARSED,
    FLUENT_OPENED_CONNECTIONS, FLUENT_PARSE_FAILURES, FLUENT_RECORDS_GENERATED,
};

pub(crate) struct FluentCounters {
    pub opened_connections: Arc<AtomicU64>,
    pub closed_connections: Arc<AtomicU64>,
    pub events_parsed: Arc<AtomicU64>,
    pub parse_failures: Arc<AtomicU64>,
    pub records_generated: Arc<AtomicU64>,
}

impl FluentCounters {
    pub(crate) fn new(telemetry: &Telemetry) -> Self {
        let counter = |name, description| {
            telemetry
                .up_down_family(CounterDesc {
                    name,
                    description,
                    unit: "1",
                })
                .series(&[])
        };
        Self {
            opened_connections: counter(
                FLUENT_OPENED_CONNECTIONS,
                "Number of connections opened to the fluentforward receiver [Development]",
            ),
            closed_connections: counter(
                FLUENT_CLOSED_CONNECTIONS,
                "Number of connections closed to the fluentforward receiver [Development]",
            ),
            events_parsed: counter(
                FLUENT_EVENTS_PARSED,
                "Number of Fluent events parsed successfully [Development]",
            ),
            parse_failures: counter(
                FLUENT_PARSE_FAILURES,
                "Number of times Fluent messages failed to be decoded [Development]",
            ),
            records_generated: counter(
                FLUENT_RECORDS_GENERATED,
                "Number of log records generated from Fluent forward input [Development]",
            ),
        }
    }
}

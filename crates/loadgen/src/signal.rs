//! The three OTLP signals loadgen can send and its sink can receive, and what each calls an
//! item (the unit the Collector counts: spans, metric data points, log records).

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    #[default]
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The gRPC service of the signal's collector API.
    pub const fn service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
        }
    }

    /// The gRPC method path of the signal's `Export`.
    pub fn export_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// The signal whose `Export` method `path` is.
    pub fn from_export_path(path: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.export_path() == path)
    }

    /// The OTLP/HTTP path (`/v1/traces`, ...).
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// What one item of the signal is called, plural.
    pub fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_export_path(s.export_path()), Some(s));
            assert!(s.export_path().starts_with(&format!("/{}/", s.service())));
            assert!(s.http_path().ends_with(s.name()));
        }
        assert_eq!(Signal::from_export_path("/x.Y/Export"), None);
        assert_eq!(Signal::default(), Signal::Traces);
    }
}

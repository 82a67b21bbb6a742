//! The metrics validator against prost on arbitrary bytes.
//!
//! Differential: `validate_metrics` accepts exactly what prost's
//! `ExportMetricsServiceRequest::decode` accepts, and on accepted input its counts equal what
//! prost decoded: resource and scope entries, metrics, and data points as pdata's
//! `DataPointCount()` counts them (protobuf merge rules included: a repeated `data` oneof keeps
//! its last variant).

#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use redline_otlp_wire::{validate_metrics, MetricsStats};

/// What `validate_metrics` must report for a request prost decoded.
fn expected(req: &ExportMetricsServiceRequest) -> MetricsStats {
    let mut stats = MetricsStats {
        resource_metrics: req.resource_metrics.len(),
        ..MetricsStats::default()
    };
    for sm in req.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics) {
        stats.scope_metrics += 1;
        for m in &sm.metrics {
            stats.metrics += 1;
            stats.data_points += match &m.data {
                None => 0,
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(e)) => e.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
            };
        }
    }
    stats
}

fn check(data: &[u8]) {
    let prost = ExportMetricsServiceRequest::decode(data);
    let ours = validate_metrics(data);
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

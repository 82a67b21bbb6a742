//! The metrics and logs generators: exact item counts (generator, prost and the receiver's
//! walker agree), request sizes next to the traces ones, the shapes promised, and templates
//! that move the times per send.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use crate::encode::Template;
use crate::model::{Generator, ModelConfig};
use crate::model_logs::LogsGenerator;
use crate::model_metrics::MetricsGenerator;
use crate::sink::data_points;
use crate::templates::trace_request_bytes;

const BASE: u64 = 1_700_000_000_000_000_000;

fn trace_bytes() -> usize {
    let g = Generator::new(ModelConfig::default(), 9).expect("model");
    trace_request_bytes(&g, BASE)
}

fn metrics(target: usize) -> MetricsGenerator {
    MetricsGenerator::new(ModelConfig::default(), target).expect("model")
}

fn logs(target: usize) -> LogsGenerator {
    LogsGenerator::new(ModelConfig::default(), 9, target).expect("model")
}

fn log_records(r: &ExportLogsServiceRequest) -> usize {
    r.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

#[test]
fn metrics_counts_are_exact() {
    let g = metrics(trace_bytes());
    for i in 0..24 {
        let (req, n) = g.request(i, BASE);
        let bytes = req.encode_to_vec();
        let decoded = ExportMetricsServiceRequest::decode(&bytes[..]).expect("decodes");
        assert_eq!(data_points(&decoded), n, "template {i}");
        let walked = redline_otlp_wire::validate_metrics(&bytes).expect("walks");
        assert_eq!(walked.data_points, n);
        assert_eq!(Template::metrics(&req).expect("template").items(), n);
        assert!(n > 50, "{n} points");
    }
}

#[test]
fn delta_metrics_cover_the_second_before_each_point() {
    let cfg = ModelConfig {
        delta_metrics: true,
        ..ModelConfig::default()
    };
    let g = MetricsGenerator::new(cfg, trace_bytes()).expect("model");
    let (req, n) = g.request(3, BASE);
    let mut seen = 0;
    for m in req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
    {
        let (temporality, times): (i32, Vec<(u64, u64)>) = match &m.data {
            Some(Data::Sum(s)) => (
                s.aggregation_temporality,
                s.data_points
                    .iter()
                    .map(|p| (p.start_time_unix_nano, p.time_unix_nano))
                    .collect(),
            ),
            Some(Data::Histogram(h)) => (
                h.aggregation_temporality,
                h.data_points
                    .iter()
                    .map(|p| (p.start_time_unix_nano, p.time_unix_nano))
                    .collect(),
            ),
            other => panic!("loadgen sends sums and histograms only: {other:?}"),
        };
        assert_eq!(temporality, 1, "{}", m.name);
        for (start, time) in times {
            assert_eq!(time - start, 1_000_000_000);
            seen += 1;
        }
    }
    assert_eq!(seen, n);
}

#[test]
fn logs_counts_are_exact() {
    let g = logs(trace_bytes());
    for i in 0..24 {
        let (req, n) = g.request(i, BASE);
        let bytes = req.encode_to_vec();
        let decoded = ExportLogsServiceRequest::decode(&bytes[..]).expect("decodes");
        assert_eq!(log_records(&decoded), n, "template {i}");
        let walked = redline_otlp_wire::validate_logs(&bytes).expect("walks");
        assert_eq!(walked.log_records, n);
        assert_eq!(Template::logs(&req).expect("template").items(), n);
        assert!(n > 50, "{n} records");
    }
}

#[test]
fn requests_are_as_large_as_the_traces_ones() {
    let tg = Generator::new(ModelConfig::default(), 9).expect("model");
    let traces: Vec<usize> = (0..32).map(|i| tg.request(i, BASE).encoded_len()).collect();
    let target = trace_bytes();
    assert!((40_000..46_000).contains(&target), "traces {target} B");
    let (m, l) = (metrics(target), logs(target));
    let mut sizes = (Vec::new(), Vec::new());
    for i in 0..32 {
        sizes.0.push(m.request(i, BASE).0.encoded_len());
        sizes.1.push(l.request(i, BASE).0.encoded_len());
    }
    for s in sizes.0.iter().chain(&sizes.1) {
        for t in &traces {
            let ratio = *s as f64 / *t as f64;
            assert!((0.9..=1.1).contains(&ratio), "{s} B vs traces {t} B");
        }
    }
    // And they follow the trace model's size.
    let small = metrics(target / 4).request(0, BASE).0.encoded_len();
    assert!((target / 4..target / 4 + 3000).contains(&small), "{small}");
}

#[test]
fn metrics_have_the_promised_shape() {
    let (req, _) = metrics(trace_bytes()).request(3, BASE);
    assert_eq!(req.resource_metrics.len(), 2);
    let (mut sums, mut hists) = (0, 0);
    for rm in &req.resource_metrics {
        assert_eq!(rm.resource.as_ref().expect("resource").attributes.len(), 6);
        let mut time = None;
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let points: Vec<(usize, u64)> = match m.data.as_ref().expect("data") {
                Data::Sum(s) => {
                    sums += s.data_points.len();
                    s.data_points
                        .iter()
                        .map(|p| (p.attributes.len(), p.time_unix_nano))
                        .collect()
                }
                Data::Histogram(h) => {
                    hists += h.data_points.len();
                    for p in &h.data_points {
                        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                        assert_eq!(p.count, p.bucket_counts.iter().sum::<u64>());
                    }
                    h.data_points
                        .iter()
                        .map(|p| (p.attributes.len(), p.time_unix_nano))
                        .collect()
                }
                other => panic!("unexpected {other:?}"),
            };
            for (attrs, t) in points {
                assert_eq!(attrs, 4);
                // One collection time per instance.
                assert_eq!(*time.get_or_insert(t), t);
            }
        }
    }
    assert!(
        sums > 10 && hists > 10,
        "{sums} sum points, {hists} histogram points"
    );
}

#[test]
fn logs_have_the_promised_shape() {
    let (req, n) = logs(trace_bytes()).request(5, BASE);
    assert_eq!(req.resource_logs.len(), 2);
    let mut traces = std::collections::HashSet::new();
    for rl in &req.resource_logs {
        assert_eq!(rl.resource.as_ref().expect("resource").attributes.len(), 6);
        for r in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
            assert_eq!(r.attributes.len(), 6);
            let Some(Value::StringValue(body)) = r.body.as_ref().and_then(|b| b.value.as_ref())
            else {
                panic!("string body expected");
            };
            assert!((85..=115).contains(&body.len()), "{} B: {body}", body.len());
            assert_eq!((r.trace_id.len(), r.span_id.len(), r.flags), (16, 8, 1));
            assert!(r.span_id.iter().any(|b| *b != 0));
            assert!(r.observed_time_unix_nano >= r.time_unix_nano);
            assert!(r.severity_number > 0 && !r.severity_text.is_empty());
            traces.insert(r.trace_id.clone());
        }
    }
    assert_eq!(traces.len(), n);
}

#[test]
fn same_seed_same_requests() {
    let target = trace_bytes();
    assert_eq!(
        metrics(target).request(7, BASE).0,
        metrics(target).request(7, BASE).0
    );
    assert_eq!(
        logs(target).request(7, BASE).0,
        logs(target).request(7, BASE).0
    );
    assert_ne!(
        logs(target).request(7, BASE).0,
        logs(target).request(8, BASE).0
    );
}

#[test]
fn metric_templates_move_collection_times_only() {
    let (req, _) = metrics(trace_bytes()).request(1, BASE);
    let t = Template::metrics(&req).expect("template");
    let shift = 12_345_678_901;
    let got = ExportMetricsServiceRequest::decode(t.instantiate(4, shift)).expect("decodes");
    let mut want = req.clone();
    for m in want
        .resource_metrics
        .iter_mut()
        .flat_map(|r| &mut r.scope_metrics)
        .flat_map(|s| &mut s.metrics)
    {
        match m.data.as_mut().expect("data") {
            Data::Sum(s) => s
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano += shift),
            Data::Histogram(h) => h
                .data_points
                .iter_mut()
                .for_each(|p| p.time_unix_nano += shift),
            _ => unreachable!(),
        }
    }
    assert_eq!(got, want);
    assert_eq!(t.instantiate(0, 0), *t.bytes());
}

#[test]
fn log_templates_move_both_times() {
    let (req, _) = logs(trace_bytes()).request(2, BASE);
    let t = Template::logs(&req).expect("template");
    let shift = 5_000_000_000;
    let got = ExportLogsServiceRequest::decode(t.instantiate(9, shift)).expect("decodes");
    let mut want = req.clone();
    for r in want
        .resource_logs
        .iter_mut()
        .flat_map(|r| &mut r.scope_logs)
        .flat_map(|s| &mut s.log_records)
    {
        r.time_unix_nano += shift;
        r.observed_time_unix_nano += shift;
    }
    assert_eq!(got, want);
}

#[test]
fn empty_requests_make_empty_templates() {
    let m = Template::metrics(&ExportMetricsServiceRequest::default()).expect("empty");
    let l = Template::logs(&ExportLogsServiceRequest::default()).expect("empty");
    assert!(m.is_empty() && l.is_empty());
    assert_eq!((m.items(), l.items()), (0, 0));
}

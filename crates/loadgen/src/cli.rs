//! Command line (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::send::Protocol;
use crate::signal::Signal;
use crate::tally::{Dimension, Unit};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Load-test harness for Redline and any OTLP endpoint: realistic traces, metrics and logs, exact verification, a sink.",
    after_help = "Examples:\n  \
      loadgen sink --listen 127.0.0.1:4319 --count-listen 127.0.0.1:4320\n  \
      loadgen run --endpoint 127.0.0.1:4317 --spans 1M --verify --dimension cdn.cache.hit \\\n      \
        --metrics-url http://127.0.0.1:9464/metrics --sink-count-url http://127.0.0.1:4320/count\n  \
      loadgen run --endpoint 127.0.0.1:4317 --rate 200k --duration 60s --pid $(pidof redline)\n  \
      loadgen run --endpoint 127.0.0.1:4317 --signal logs --requests 20k --verify \\\n      \
        --sink-count-url http://127.0.0.1:4320/count\n  \
      loadgen run --endpoint sink --sink 127.0.0.1:0 --duration 10s      # loadgen's own ceiling"
)]
pub struct Cli {
    /// Log filter for stderr (`RUST_LOG` syntax).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send generated traces (or metrics, logs) to an OTLP endpoint; optionally verify the RED
    /// metrics and what reached the sink exactly.
    Run(Box<RunArgs>),
    /// Run an OTLP/gRPC sink that counts what it receives, every signal (stands in for Tempo).
    Sink(SinkArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// OTLP endpoint: host:port or URL. gRPC: 127.0.0.1:4317. HTTP: http://127.0.0.1:4318
    /// (`/v1/traces`, `/v1/metrics` or `/v1/logs` is added when there is no path). `sink`
    /// means the in-process --sink.
    #[arg(short, long, default_value = "127.0.0.1:4317")]
    pub endpoint: String,
    /// What to send: traces (the trace model below), or metrics (cumulative sums and
    /// histograms, 4 attributes per point) or logs (~100-byte bodies, 6 attributes, trace
    /// context), in requests of about the size of the traces ones. For metrics and logs,
    /// "spans" in flags and reports means data points or log records, and --verify checks
    /// what reached the sink.
    #[arg(long, value_enum, default_value_t = Signal::Traces)]
    pub signal: Signal,
    /// OTLP transport: gRPC, or HTTP with protobuf bodies; or `zipkin`: the same spans as
    /// Zipkin v2 JSON over HTTP (to `/api/v2/spans` unless the endpoint has a path); or
    /// `jaeger`: as Jaeger Thrift batches over HTTP, one per resource (to `/api/traces`); or
    /// `jaeger-grpc`: as Jaeger gRPC `PostSpans` calls, one per resource; or `fluent` (with
    /// --signal logs): each request's records as one Fluent Forward PackedForward event over
    /// TCP, acknowledged (Fluent Bit's `forward` output with `Require_ack_response`).
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    /// Connections (one HTTP/2 connection each for gRPC).
    #[arg(short, long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection (full speed); with --rate, the most in flight per
    /// connection before the scheduler waits (that wait is part of the measured latency).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Fixed rate in spans (data points, log records) per second (open loop; suffixes k and
    /// M); full speed without it.
    #[arg(short, long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// How long to send (e.g. 30s, 2m). Default 10s unless --spans or --requests is given.
    #[arg(short, long, value_parser = humantime::parse_duration, conflicts_with_all = ["spans", "requests"])]
    pub duration: Option<Duration>,
    /// Total spans (data points, log records) to send (suffixes k and M), rounded up to whole
    /// requests.
    #[arg(short, long, visible_alias = "items", value_parser = parse_count, conflicts_with = "requests")]
    pub spans: Option<u64>,
    /// Total requests to send (suffixes k and M).
    #[arg(long, value_parser = parse_count)]
    pub requests: Option<u64>,
    /// Compress requests with gzip (costs loadgen CPU per request).
    #[arg(long)]
    pub gzip: bool,
    /// Resend a request refused with UNAVAILABLE/RESOURCE_EXHAUSTED/HTTP 429, 502-504 up to
    /// N times (same ids; never after a timeout, which the collector may have counted).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Wait before a resend (doubling, up to 5s). At full speed a worker whose request ended
    /// refused also waits this long, instead of hammering the collector.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub backoff: Duration,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// A header (HTTP) or metadata entry (gRPC) on every request, `name: value`; repeatable
    /// (e.g. `--header "authorization: Basic ..."`).
    #[arg(long = "header", value_parser = parse_header)]
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Distinct pre-encoded requests, replayed round-robin with fresh ids.
    #[arg(long, default_value_t = 128)]
    pub templates: usize,
    /// Nonce mixed into every trace id (default: from the clock, so runs do not repeat ids).
    #[arg(long)]
    pub nonce: Option<u32>,

    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,

    /// Start an OTLP gRPC sink in this process on ADDR (port 0 picks one) and check what
    /// reaches it (point the collector's exporter at it, or use `--endpoint sink`).
    #[arg(long, help_heading = "Sink")]
    pub sink: Option<SocketAddr>,
    /// With --sink: decode every request with prost too (counts must agree) and count
    /// duplicate span ids.
    #[arg(long, help_heading = "Sink")]
    pub sink_check: bool,

    /// PID of the collector: report its CPU seconds over the run and its peak RSS.
    #[arg(long, help_heading = "Output")]
    pub pid: Option<u32>,
    /// Write the JSON report to FILE (`-` for stdout; the table then goes to stderr).
    #[arg(long, help_heading = "Output")]
    pub json: Option<String>,
    /// No progress bar and no table (the JSON report and errors still appear).
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Trace model")]
pub struct ModelArgs {
    /// Seed of the generated traffic (same seed, same spans; ids differ by --nonce).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Services (`service.name`), with realistic names.
    #[arg(long, default_value_t = 10)]
    pub services: usize,
    /// Span names per service (each with its kind).
    #[arg(long, default_value_t = 10)]
    pub span_names: usize,
    /// Resources (pods) per service.
    #[arg(long, default_value_t = 3)]
    pub pods: usize,
    /// Resources (service instances) per request, as in an agent's batch (an SDK sends 1).
    #[arg(long, default_value_t = 2)]
    pub resources_per_request: usize,
    /// Spans per request (one ExportTraceServiceRequest).
    #[arg(long, default_value_t = 100)]
    pub spans_per_request: usize,
    /// Mean spans per trace.
    #[arg(long, default_value_t = 10)]
    pub spans_per_trace: usize,
    /// Fraction of spans with status ERROR.
    #[arg(long, default_value_t = 0.05)]
    pub error_ratio: f64,
    /// Median span duration (log-normal).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub latency_median: Duration,
    /// 99th percentile span duration.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub latency_p99: Duration,
    /// Fraction of spans lasting exactly a bucket bound (or 1/64 ms more).
    #[arg(long, default_value_t = 0.05)]
    pub boundary_ratio: f64,
    /// Attributes per span (including cdn.cache.hit when present).
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,
    /// Fraction of spans without cdn.cache.hit.
    #[arg(long, default_value_t = 0.34)]
    pub cache_missing_ratio: f64,
    /// Of the spans with cdn.cache.hit, the fraction with `true`.
    #[arg(long, default_value_t = 0.8)]
    pub cache_hit_ratio: f64,
    /// Add `user.id` with this many distinct values (0: off). As a --dimension it multiplies
    /// the series count; raise --templates so the values actually occur.
    #[arg(long, default_value_t = 0)]
    pub high_cardinality: u64,
    /// Prefix of every service name (keeps loadgen's series apart on a shared collector).
    #[arg(long, default_value = "")]
    pub service_prefix: String,
    /// --signal metrics: send sums and histograms as deltas (each point covering the second
    /// before it), for collectors that make them cumulative (`deltatocumulative`).
    #[arg(long)]
    pub delta_metrics: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Verification")]
pub struct VerifyArgs {
    /// After sending, check every spanmetrics series against loadgen's own tally (exact
    /// calls, errors, buckets, sums, counts) and the spans that reached the sink. With
    /// --signal metrics or logs (no span metrics): check that the sink (--sink or
    /// --sink-count-url) received exactly the data points or log records accepted, and,
    /// when loadgen sends to its own sink, exactly the requests. Exits non-zero on any
    /// mismatch.
    #[arg(long)]
    pub verify: bool,
    /// Prometheus endpoint of the collector (text format).
    #[arg(long, default_value = "http://127.0.0.1:9464/metrics")]
    pub metrics_url: String,
    /// spanmetrics `namespace` (dots or underscores).
    #[arg(long, default_value = "traces_spanmetrics")]
    pub namespace: String,
    /// A spanmetrics dimension of the collector config, NAME or NAME=DEFAULT (repeatable).
    #[arg(long = "dimension", value_name = "NAME[=DEFAULT]")]
    pub dimensions: Vec<Dimension>,
    /// Histogram bucket bounds in ms (the collector's; also used for boundary durations).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2,4,6,8,10,50,100,200,400,800,1000,1400,2000,5000,10000,15000"
    )]
    pub buckets: Vec<f64>,
    /// The collector's `histogram.unit`.
    #[arg(long, value_enum, default_value_t = Unit::Ms)]
    pub histogram_unit: Unit,
    /// Labels to ignore in the exposition (e.g. ones a scraper or exporter adds).
    #[arg(long = "ignore-label", value_name = "LABEL")]
    pub ignore_labels: Vec<String>,
    /// How long to wait for the counts to settle before declaring a mismatch.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub settle_timeout: Duration,
    /// Mismatches to print (all are counted).
    #[arg(long, default_value_t = 20)]
    pub max_mismatches: usize,
    /// `GET` URL of a running `loadgen sink`'s counts, to check the forward side.
    #[arg(long)]
    pub sink_count_url: Option<String>,
    /// Compare absolute values instead of deltas over a scrape taken before sending (only
    /// right for a collector that has counted nothing of these services yet).
    #[arg(long)]
    pub no_baseline: bool,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:4319")]
    pub listen: SocketAddr,
    /// Address of the HTTP endpoint serving `GET /count` (JSON).
    #[arg(long)]
    pub count_listen: Option<SocketAddr>,
    /// Fraction of requests answered UNAVAILABLE (not counted as received).
    #[arg(long, default_value_t = 0.0)]
    pub fail_ratio: f64,
    /// Delay before answering each request (e.g. 50ms).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub delay: Duration,
    /// Decode every request with prost too (its item count must agree with the walker's),
    /// and count duplicate (trace id, span id) pairs of spans.
    #[arg(long)]
    pub check: bool,
    /// With --check: the most ids remembered (memory bound).
    #[arg(long, default_value_t = 10_000_000)]
    pub check_max_ids: usize,
    /// Print the counts to stderr this often (0s: never).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub report_interval: Duration,
    /// Also write the final counts as JSON to FILE on exit (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `1000`, `100k`, `2.5M`, `1G`.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let v = parse_rate(s)?;
    if v.fract() != 0.0 || v > 1e18 {
        return Err(format!("{s:?} is not a whole number"));
    }
    Ok(v as u64)
}

/// `name: value` as an HTTP header.
pub fn parse_header(s: &str) -> Result<(http::HeaderName, http::HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: expected `name: value`"))?;
    let name = http::HeaderName::try_from(name.trim())
        .map_err(|e| format!("`{}`: not a header name: {e}", name.trim()))?;
    let value = http::HeaderValue::try_from(value.trim())
        .map_err(|e| format!("the value of `{name}` is not a header value: {e}"))?;
    Ok((name, value))
}

/// A positive number with an optional k/M/G suffix.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G')) => (&t[..i], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{s:?} is not a number (suffixes: k, M, G)"))?;
    let v = v * mul;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("1000"), Ok(1000));
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("2.5M"), Ok(2_500_000));
        assert_eq!(parse_count("10_000"), Ok(10_000));
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("-3").is_err());
        assert!(parse_count("x").is_err());
        assert_eq!(parse_rate("1.5k"), Ok(1500.0));
    }

    #[test]
    fn parses_a_verify_run() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "--spans",
            "20k",
            "--verify",
            "--dimension",
            "cdn.cache.hit",
            "--dimension",
            "region=eu",
            "--buckets",
            "1,5,10",
        ])
        .expect("parses");
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.spans, Some(20_000));
        assert_eq!(r.verify.dimensions.len(), 2);
        assert_eq!(r.verify.dimensions[1].default.as_deref(), Some("eu"));
        assert_eq!(r.verify.buckets, vec![1.0, 5.0, 10.0]);
        assert!(
            Cli::try_parse_from(["loadgen", "run", "--spans", "1", "--duration", "1s"]).is_err()
        );
    }

    #[test]
    fn headers_parse_and_bad_ones_are_named() {
        let (name, value) = parse_header("Authorization:  Basic dTpw ").expect("parses");
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value, "Basic dTpw");
        assert!(parse_header("no-colon")
            .expect_err("refused")
            .contains("name: value"));
        assert!(parse_header("bad name: x")
            .expect_err("refused")
            .contains("bad name"));
        assert!(parse_header("x: a\nb")
            .expect_err("refused")
            .contains("`x`"));
    }
}

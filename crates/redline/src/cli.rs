//! Command line.

use std::fmt::Write as _;

use clap::{Parser, Subcommand, ValueEnum};
use redline_pipeline::component::ComponentKind;
use redline_pipeline::Factories;

#[derive(Parser, Debug)]
#[command(
    name = "redline",
    version,
    about = "OTLP traces in, RED metrics for Prometheus out, traces forwarded to Tempo.",
    long_about = "Runs an OpenTelemetry Collector-style pipeline configured with otelcol YAML. \
                  Without --config it runs an embedded default: OTLP gRPC on :4317 and HTTP on \
                  :4318, spanmetrics, Prometheus metrics on :9464, and forwarding to \
                  $REDLINE_FORWARD_ENDPOINT when that is set."
)]
pub struct Cli {
    /// Pipeline config (otelcol YAML): a path, or otelcol's `file:PATH`, `env:NAME` or
    /// `yaml:TEXT`. Given several times, the configs are merged in order (maps key by key,
    /// anything else replaced by the later one). Without it, the embedded default runs.
    #[arg(long, short = 'c', global = true, value_name = "URI")]
    pub config: Vec<String>,

    /// One value on top of the configs, as otelcol's `--set`: `key.path=value` (e.g.
    /// `exporters.otlp.endpoint=tempo:4317`; the value is YAML); may be given several times.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// otelcol's feature gates (`id`, `+id` or `-id`, comma-separated): taken where Redline
    /// behaves as they ask, refused where it does not.
    #[arg(long = "feature-gates", global = true, value_name = "GATES")]
    pub feature_gates: Vec<String>,

    /// Log format; overrides service.telemetry.logs.encoding.
    #[arg(long, value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// Log filter (e.g. `info`, `debug`, `redline_otlp_exporter=debug`); overrides
    /// service.telemetry.logs.level and RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// How long SIGTERM/SIGINT may take: stop accepting, flush, forward what is queued.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub shutdown_timeout: HumanDuration,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a config without starting anything; exits non-zero with every problem found.
    Validate,
    /// List the component types this build supports.
    Components,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
    Logfmt,
}

#[derive(Clone, Copy, Debug)]
pub struct HumanDuration(std::time::Duration);

impl From<HumanDuration> for std::time::Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    redline_pipeline::duration::parse(s).map(HumanDuration)
}

pub fn components_listing(f: &Factories) -> String {
    let mut out = String::new();
    for kind in [
        ComponentKind::Receiver,
        ComponentKind::Processor,
        ComponentKind::Connector,
        ComponentKind::Exporter,
        ComponentKind::Extension,
    ] {
        let known = f.known(kind);
        let list = if known.is_empty() {
            "(none)".to_owned()
        } else {
            known.join(", ")
        };
        let _ = writeln!(out, "{}: {list}", kind.section());
    }
    out
}

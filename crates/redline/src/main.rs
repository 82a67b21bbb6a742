//! `redline`: runs an otelcol-compatible pipeline for traces, metrics and logs, with span
//! metrics computed from the traces.

mod cli;
mod feature_gates;
mod logging;
mod process_metrics;
mod runtime;
mod telemetry_push;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use redline_pipeline::config::{self, Config, ListMerge, Source};
use redline_pipeline::host::{BuildInfo, HostInfo};
use redline_pipeline::service::{self, Service};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{BuildContext, Factories};

use cli::{Cli, Command};

const DEFAULT_CONFIG: &str = include_str!("../../../configs/default.yaml");
const DEFAULT_FORWARD_CONFIG: &str = include_str!("../../../configs/default-forward.yaml");
/// Set to an OTLP gRPC `host:port` to make the embedded default forward traces there.
const FORWARD_ENDPOINT_ENV: &str = "REDLINE_FORWARD_ENDPOINT";

/// Every component type this binary supports.
fn factories() -> Factories {
    let mut f = Factories::default();
    f.receiver(redline_otlp_receiver::OtlpReceiverFactory)
        .receiver(redline_zipkin_receiver::ZipkinReceiverFactory)
        .receiver(redline_jaeger_receiver::JaegerReceiverFactory)
        .receiver(redline_fluentforward_receiver::FluentForwardReceiverFactory)
        .processor(redline_processors::BatchProcessorFactory)
        .processor(redline_processors::MemoryLimiterFactory)
        .processor(redline_attributes_processor::ResourceProcessorFactory)
        .processor(redline_attributes_processor::AttributesProcessorFactory)
        .processor(redline_resourcedetection_processor::ResourceDetectionFactory)
        .processor(redline_transform_processor::TransformProcessorFactory)
        .processor(redline_filter_processor::FilterProcessorFactory)
        .processor(redline_probabilistic_sampler::ProbabilisticSamplerFactory)
        .processor(redline_span_processor::SpanProcessorFactory)
        .processor(redline_tailsampling_processor::TailSamplingFactory)
        .processor(redline_deltatocumulative_processor::DeltaToCumulativeFactory)
        .processor(redline_groupbyattrs_processor::GroupByAttrsFactory)
        .processor(redline_redaction_processor::RedactionFactory)
        .connector(redline_spanmetrics::SpanMetricsFactory)
        .connector(redline_servicegraph::ServiceGraphFactory)
        .connector(redline_forward_connector::ForwardConnectorFactory)
        .connector(redline_count_connector::CountConnectorFactory)
        .exporter(redline_otlp_exporter::OtlpExporterFactory)
        .exporter(redline_otlp_exporter::OtlpHttpExporterFactory)
        .exporter(redline_debug_exporter::DebugExporterFactory)
        .exporter(redline_debug_exporter::LoggingExporterFactory)
        .exporter(redline_debug_exporter::NopExporterFactory)
        .exporter(redline_prometheus_exporter::PrometheusExporterFactory)
        .exporter(redline_prometheusremotewrite_exporter::RemoteWriteExporterFactory)
        .extension(redline_extensions::HealthCheckFactory)
        .extension(redline_extensions::ZPagesFactory)
        .extension(redline_extensions::FileStorageFactory)
        .extension(redline_extensions::BearerTokenAuthFactory)
        .extension(redline_extensions::BasicAuthFactory)
        .extension(redline_extensions::HeadersSetterFactory)
        .extension(redline_pprof_extension::PprofFactory);
    f
}

/// What the command line asks for besides the subcommand: the config sources (every
/// `--config`, then every `--set`; none means the embedded default), warnings about it, and
/// every problem with it (a source or gate that cannot be taken).
struct Invocation {
    sources: Vec<Source>,
    /// How lists merge across the sources (a feature gate's choice).
    list_merge: ListMerge,
    /// Every gate Redline knows, in the state the command line left it.
    feature_gates: Vec<redline_pipeline::host::FeatureGate>,
    warnings: Vec<String>,
    errors: Vec<config::ConfigError>,
}

/// Reads the command line's config sources and feature gates.
fn invocation(cli: &Cli) -> Invocation {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    let parsed = cli.config.iter().map(|uri| Source::parse(uri));
    for source in parsed.chain(cli.set.iter().map(|flag| Source::set(flag))) {
        match source {
            Ok(source) => sources.push(source),
            Err(e) => errors.push(e),
        }
    }
    if cli.config.is_empty() && !cli.set.is_empty() {
        errors.push(config::ConfigError::new(
            None,
            None,
            "--set".to_owned(),
            "changes a config: give the config with --config too".to_owned(),
        ));
    }
    let gates = feature_gates::check(&cli.feature_gates).unwrap_or_else(|refused| {
        errors.extend(refused);
        feature_gates::Gates::default()
    });
    Invocation {
        sources,
        list_merge: gates.list_merge,
        feature_gates: gates.table,
        warnings: gates.warnings,
        errors,
    }
}

/// The embedded default config.
fn load_default() -> Result<Config, config::ConfigErrors> {
    if std::env::var_os(FORWARD_ENDPOINT_ENV).is_some() {
        config::load_str("<embedded default-forward.yaml>", DEFAULT_FORWARD_CONFIG)
    } else {
        config::load_str("<embedded default.yaml>", DEFAULT_CONFIG)
    }
}

/// Loads the config the command line names, or the embedded default.
fn load(invocation: &Invocation) -> Result<Config, config::ConfigErrors> {
    if invocation.sources.is_empty() {
        return load_default();
    }
    config::load_sources(&invocation.sources, invocation.list_merge)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Validate) => validate(&cli),
        Some(Command::Components) => {
            print!("{}", cli::components_listing(&factories()));
            ExitCode::SUCCESS
        }
        None => match run(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Logging may not be set up when the config is what failed.
                eprintln!("redline: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn validate(cli: &Cli) -> ExitCode {
    let name = if cli.config.is_empty() {
        "embedded default".to_owned()
    } else {
        cli.config.join(" + ")
    };
    let invalid = |errors: config::ConfigErrors| {
        eprintln!("{errors}");
        eprintln!(
            "redline: {name}: invalid config ({} error(s))",
            errors.0.len()
        );
        ExitCode::FAILURE
    };
    let invocation = invocation(cli);
    // A command-line problem does not hide the config's: the sources that could be taken
    // are checked too.
    let with_invocation_errors = |mut errors: Vec<config::ConfigError>| {
        let mut all = invocation.errors.clone();
        all.append(&mut errors);
        config::ConfigErrors(all)
    };
    if invocation.sources.is_empty() && !invocation.errors.is_empty() {
        // Every source given was refused: nothing to check, not the embedded default.
        return invalid(with_invocation_errors(Vec::new()));
    }
    // Read leniently: a mistake in `service` must not hide the components' own errors.
    let loaded = if invocation.sources.is_empty() {
        load_default().map(|c| (c, Vec::new()))
    } else {
        config::load_sources_lenient(&invocation.sources, invocation.list_merge)
    };
    let (config, load_errors) = match loaded {
        Ok(loaded) => loaded,
        Err(errors) => return invalid(with_invocation_errors(errors.0)),
    };
    let checked = service::validate_after_load_errors(&config, &factories(), load_errors);
    let checked = match checked {
        Ok(_) if !invocation.errors.is_empty() => Err(with_invocation_errors(Vec::new())),
        Err(errors) => Err(with_invocation_errors(errors.0)),
        ok => ok,
    };
    match checked {
        Ok(warnings) => {
            for w in invocation
                .warnings
                .iter()
                .chain(warnings.iter().map(|w| &w.0))
            {
                eprintln!("warning: {w}");
            }
            println!("{name}: config is valid");
            ExitCode::SUCCESS
        }
        Err(errors) => invalid(errors),
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let invocation = invocation(cli);
    if !invocation.errors.is_empty() {
        let errors = config::ConfigErrors(invocation.errors);
        anyhow::bail!("invalid command line:\n{errors}");
    }
    let config = load(&invocation).map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?;
    let factories = factories();
    let warnings = service::validate(&config, &factories)
        .map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?;
    logging::init(cli, &config.service.telemetry.logs)?;
    for w in invocation
        .warnings
        .iter()
        .chain(warnings.iter().map(|w| &w.0))
    {
        tracing::warn!("{w}");
    }

    let host = HostInfo {
        build: BuildInfo {
            command: "redline".to_owned(),
            description: env!("CARGO_PKG_DESCRIPTION").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        feature_gates: invocation.feature_gates,
        ..HostInfo::default()
    };
    runtime::build()?.block_on(serve(cli, config, factories, host))
}

async fn serve(
    cli: &Cli,
    config: Config,
    factories: Factories,
    host: HostInfo,
) -> anyhow::Result<()> {
    let telemetry = Telemetry::new();
    telemetry.register_source(std::sync::Arc::new(process_metrics::ProcessMetrics::new(
        telemetry.start_time_unix_nano(),
    )));
    let pushers = telemetry_push::start(&config.service.telemetry, &telemetry)?;
    let ctx = BuildContext::new(telemetry.clone()).with_host(host);
    let service = Service::start(&config, &factories, ctx)
        .await
        .with_context(|| format!("{}: could not start the pipeline", config.file))?;
    let metrics = &config.service.telemetry.metrics;
    let self_metrics = match &metrics.endpoint {
        Some(endpoint) => {
            match start_self_telemetry(endpoint, metrics.prometheus_suffixes, &telemetry).await {
                Ok(running) => Some(running),
                Err(e) => {
                    service
                        .shutdown(Instant::now() + Duration::from_secs(2))
                        .await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    for (component, name, addr) in service.local_addrs() {
        tracing::info!(%component, endpoint = name, %addr, "listening");
    }
    tracing::info!(config = %config.file, version = env!("CARGO_PKG_VERSION"), "redline is running");

    let signal = wait_for_signal().await?;
    let timeout = Duration::from(cli.shutdown_timeout);
    tracing::info!(%signal, timeout = ?timeout, "shutting down: no longer accepting data, draining");
    let started = Instant::now();
    let mut errors = service.shutdown(started + timeout).await;
    pushers.shutdown(started + timeout).await;
    if let Some(running) = self_metrics {
        // Last, so the final counters can still be scraped while the pipeline drains.
        // Even when draining used the whole deadline, give the server a moment to close.
        let deadline = (started + timeout).max(Instant::now() + Duration::from_millis(500));
        if let Err(e) = running.shutdown(deadline).await {
            errors.push(e);
        }
    }
    for e in &errors {
        tracing::error!(component = %e.component, reason = %e.reason, "unclean shutdown");
    }
    tracing::info!(took = ?started.elapsed(), "stopped");
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} component(s) did not stop cleanly", errors.len())
    }
}

/// Serves Redline's own metrics (`otelcol_receiver_accepted_spans`, ...) in the Prometheus
/// format on `endpoint`, as otelcol does on :8888: in the classic text format only (its Go
/// exporter never answers in OpenMetrics, whose counters would be renamed `…_total`), and
/// with unit and type suffixes only when `suffixes` says so.
async fn start_self_telemetry(
    endpoint: &str,
    suffixes: bool,
    telemetry: &Telemetry,
) -> anyhow::Result<Box<dyn redline_pipeline::RunningComponent>> {
    let config: redline_prometheus_exporter::Config = serde_json::from_value(serde_json::json!({
        "endpoint": endpoint,
        "add_metric_suffixes": suffixes,
        "enable_open_metrics": false,
    }))
    .context("service.telemetry.metrics")?;
    let source: std::sync::Arc<dyn redline_pipeline::MetricsSource> =
        std::sync::Arc::new(telemetry.clone());
    let running = redline_prometheus_exporter::start("telemetry", &config, vec![source])
        .await
        .with_context(|| format!("service.telemetry.metrics: serving on {endpoint}"))?;
    for (name, addr) in running.local_addrs() {
        tracing::info!(component = "service.telemetry.metrics", endpoint = name, %addr, "listening");
    }
    Ok(running)
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

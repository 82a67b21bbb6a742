//! Logging setup: text by default, JSON or logfmt on request; the level from the command
//! line, then RUST_LOG, then the config's service.telemetry.logs.level. Where lines go, the
//! fields added to each and sampling come from service.telemetry.logs too. Text is coloured
//! only when every output is a terminal and NO_COLOR is unset.

mod output;
mod sampling;

use anyhow::Context;
use redline_pipeline::config::LogsConfig;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::{Cli, LogFormat};

pub fn init(cli: &Cli, logs: &LogsConfig) -> anyhow::Result<()> {
    let filter = match (&cli.log_level, std::env::var("RUST_LOG")) {
        (Some(level), _) => EnvFilter::try_new(level).context("--log-level")?,
        (None, Ok(env)) if !env.is_empty() => EnvFilter::try_new(env).context("RUST_LOG")?,
        _ => EnvFilter::try_new(logs.level.as_deref().unwrap_or("info"))
            .context("service.telemetry.logs.level")?,
    };
    let format = match (cli.log_format, logs.encoding.as_deref()) {
        (Some(f), _) => f,
        (None, Some("json")) => LogFormat::Json,
        (None, Some("logfmt")) => LogFormat::Logfmt,
        (None, _) => LogFormat::Text,
    };
    let outputs = output::Outputs::open(
        logs.output_paths.as_deref(),
        &logs.initial_fields,
        format == LogFormat::Json,
    )?;
    let ansi = outputs.colour(std::env::var_os("NO_COLOR").as_deref());
    let sampler = sampling::Sampler::new(logs.sampling);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_target(false)
            .layer()
            .with_writer(outputs)
            .with_filter(sampler)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_writer(outputs)
            .with_filter(sampler)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(outputs)
            .with_filter(sampler)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init()
        .map_err(|e| anyhow::anyhow!("setting up logging: {e}"))?;
    for notice in &logs.notices {
        tracing::info!("{notice}");
    }
    Ok(())
}

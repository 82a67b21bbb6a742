//! Logging setup: text by default, JSON on request; the level from the command line, then
//! RUST_LOG, then the config's service.telemetry.logs.level.

use anyhow::Context;
use redline_pipeline::config::LogsConfig;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, LogFormat};

pub fn init(cli: &Cli, logs: &LogsConfig) -> anyhow::Result<()> {
    let filter = match (&cli.log_level, std::env::var("RUST_LOG")) {
        (Some(level), _) => EnvFilter::try_new(level).context("--log-level")?,
        (None, Ok(env)) if !env.is_empty() => EnvFilter::try_new(env).context("RUST_LOG")?,
        _ => EnvFilter::try_new(logs.level.as_deref().unwrap_or("info"))
            .context("service.telemetry.logs.level")?,
    };
    let json = match (cli.log_format, logs.encoding.as_deref()) {
        (Some(f), _) => f == LogFormat::Json,
        (None, Some("logfmt")) => anyhow::bail!(
            "service.telemetry.logs.encoding: `logfmt` is not supported by Redline yet (use console or json)"
        ),
        (None, encoding) => encoding == Some("json"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

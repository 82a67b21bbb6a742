//! Logging setup: text by default, JSON or logfmt on request; the level from the command
//! line, then RUST_LOG, then the config's service.telemetry.logs.level.

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
    let format = match (cli.log_format, logs.encoding.as_deref()) {
        (Some(f), _) => f,
        (None, Some("json")) => LogFormat::Json,
        (None, Some("logfmt")) => LogFormat::Logfmt,
        (None, _) => LogFormat::Text,
    };
    let result = match format {
        LogFormat::Logfmt => {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            let layer = tracing_logfmt::builder()
                .with_target(false)
                .layer()
                .with_writer(std::io::stderr);
            tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init()
                .map_err(|e| e.to_string())
        }
        LogFormat::Json | LogFormat::Text => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_target(false);
            if format == LogFormat::Json {
                builder.json().flatten_event(true).try_init()
            } else {
                builder.try_init()
            }
            .map_err(|e| e.to_string())
        }
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

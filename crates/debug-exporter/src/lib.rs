//! The `debug` exporter, which prints telemetry as otelcol's does; `logging`, its former name
//! (removed from otelcol, accepted here with a warning naming `debug`); and `nop`, which takes
//! everything and prints nothing.
//!
//! Unlike the forwarding exporters, `debug` must read the data: each batch is decoded with
//! opentelemetry-proto's types and printed in otelcol v0.161's formats (`basic`, `normal`,
//! `detailed`), off the pipeline's path (see `exporter`).

mod config;
mod exporter;
mod format;

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, Consumer, ExporterFactory,
    RunningComponent, Signal,
};

pub use config::{DebugConfig, LoggingConfig, NopConfig, Verbosity};
pub use exporter::{start, start_nop, Output, Settings, Started, Writer};
pub use format::{render, Counts, RenderError, Rendered};

/// A config of `debug` or `logging`, which differ only in how they become [`Settings`].
trait PrintingConfig: serde::de::DeserializeOwned + Send + 'static {
    /// Checks what serde cannot; the error names the key.
    fn check(&self) -> Result<(), config::Invalid>;
    /// The exporter's settings; may open its outputs, so it runs when the exporter is built.
    fn settings(self, id: &ComponentId, signal: Signal) -> Result<Settings, BuildError>;
}

impl PrintingConfig for DebugConfig {
    fn check(&self) -> Result<(), config::Invalid> {
        DebugConfig::check(self)
    }

    fn settings(self, id: &ComponentId, _: Signal) -> Result<Settings, BuildError> {
        let output = if self.use_internal_logger {
            Output::Logger
        } else {
            let writers = self
                .paths()
                .iter()
                .map(|p| {
                    Writer::open(p).map_err(|e| {
                        BuildError::new(id, format!("output_paths: cannot open `{p}`: {e}"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Output::Writers(writers)
        };
        Ok(Settings {
            verbosity: self.verbosity,
            sampling_initial: count(self.sampling_initial),
            sampling_thereafter: count(self.sampling_thereafter),
            output,
        })
    }
}

impl PrintingConfig for LoggingConfig {
    fn check(&self) -> Result<(), config::Invalid> {
        LoggingConfig::check(self)
    }

    fn settings(self, id: &ComponentId, _: Signal) -> Result<Settings, BuildError> {
        let verbosity = self
            .verbosity()
            .map_err(|e| BuildError::new(id, format!("{}: {}", e.key_path, e.reason)))?;
        Ok(Settings {
            verbosity,
            sampling_initial: count(self.sampling_initial),
            sampling_thereafter: count(self.sampling_thereafter),
            output: Output::Logger,
        })
    }
}

fn parse<C: PrintingConfig>(config: &ComponentConfig) -> Result<C, ConfigError> {
    let parsed: C = config.parse()?;
    parsed.check().map_err(|e| config.locate(e))?;
    Ok(parsed)
}

/// Parses now, so a bad config is reported where it is; settles the settings and starts in
/// the build's future.
fn build<C: PrintingConfig>(
    config: &ComponentConfig,
    ctx: &BuildContext,
    signal: Signal,
) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
    let id = config.id().clone();
    let parsed = parse::<C>(config);
    let ctx = ctx.clone();
    Box::pin(async move {
        let settings = parsed
            .map_err(|e| BuildError::new(&id, e))?
            .settings(&id, signal)?;
        Ok(start(&id, signal, &ctx, settings))
    })
}

/// Sampling counts are checked non-negative; a count too large for u64 cannot be written.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The `debug` exporter, for traces, metrics and logs.
pub struct DebugExporterFactory;

impl FactoryInfo for DebugExporterFactory {
    fn type_name(&self) -> &'static str {
        "debug"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse::<DebugConfig>(config).map(|_| ())
    }
}

impl ExporterFactory for DebugExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build::<DebugConfig>(config, ctx, signal)
    }
}

/// `logging`: otelcol's former debug exporter, printed through Redline's log as `debug` does.
pub struct LoggingExporterFactory;

impl FactoryInfo for LoggingExporterFactory {
    fn type_name(&self) -> &'static str {
        "logging"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse::<LoggingConfig>(config).map(|_| ())
    }

    /// Shown by `redline validate` and once at the start, not per signal at build time.
    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        let mut out = vec![
            "the `logging` exporter was removed from otelcol; use the `debug` exporter instead \
             (Redline runs this one as `debug`)"
                .to_owned(),
        ];
        if parse::<LoggingConfig>(config).is_ok_and(|c| c.loglevel.is_some()) {
            out.push("`loglevel` is deprecated; set `verbosity` instead".to_owned());
        }
        out
    }
}

impl ExporterFactory for LoggingExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        build::<LoggingConfig>(config, ctx, signal)
    }
}

/// `nop`: takes everything, counts it as sent, prints nothing.
pub struct NopExporterFactory;

impl FactoryInfo for NopExporterFactory {
    fn type_name(&self) -> &'static str {
        "nop"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<NopConfig>().map(|_| ())
    }
}

impl ExporterFactory for NopExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        signal: Signal,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = config.parse::<NopConfig>();
        let ctx = ctx.clone();
        Box::pin(async move {
            parsed.map_err(|e| BuildError::new(&id, e))?;
            Ok(start_nop(&id, signal, &ctx))
        })
    }
}

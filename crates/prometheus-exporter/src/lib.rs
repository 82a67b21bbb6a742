//! Prometheus exporter: text 0.0.4 and OpenMetrics exposition served over HTTP.
//!
//! Compatible with otelcol's `prometheus` exporter: same config keys, same name translation
//! (`traces.spanmetrics.duration` + unit `ms` → `traces_spanmetrics_duration_milliseconds`,
//! counters `_total`, attribute keys with dots → underscores), same number formatting.
//! Metrics are pulled from the pipeline's [`MetricsSource`]s at scrape time and rendered
//! straight into the response body.
//!
//! Deviations from otelcol, on purpose:
//! - `enable_open_metrics` defaults to true, so exemplars reach Grafana with the reference
//!   config unchanged.
//! - `metric_expiration` has no effect (series expire in the connector that owns them).
//! - OpenMetrics counters and histograms carry no `_created` samples.
//! - Exemplar timestamps are written exactly (`1700000000.123`), not through a float.

mod config;
mod names;
mod negotiate;
mod numfmt;
mod render;
mod server;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExporterFactory, MetricsSource,
    RunningComponent, Signal,
};

pub use config::{Config, Invalid, ResourceToTelemetry};
pub use negotiate::{accepts_gzip, negotiate, Negotiated};
pub use render::{
    render, Format, OptionsError, RenderOptions, OPENMETRICS_001_CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};

/// The `prometheus` exporter factory.
pub struct PrometheusExporterFactory;

impl FactoryInfo for PrometheusExporterFactory {
    fn type_name(&self) -> &'static str {
        "prometheus"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }
}

impl ExporterFactory for PrometheusExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn build_metrics(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        let _ = ctx;
        let id = config.id().clone();
        let parsed = Config::from_component(config);
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            start(&id.to_string(), &parsed, sources)
                .await
                .map_err(|e| BuildError::new(&id, e))
        })
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}: {}", .0.key, .0.reason)]
    Config(#[from] Invalid),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Starts the exporter from an already-parsed config: binds the endpoint and serves
/// `/metrics`. The returned component reports its address as `metrics`.
pub async fn start(
    component: &str,
    config: &Config,
    sources: Vec<Arc<dyn MetricsSource>>,
) -> Result<Box<dyn RunningComponent>, StartError> {
    config.check()?;
    if let Some(expiration) = config.metric_expiration {
        tracing::warn!(
            component,
            ?expiration,
            "metric_expiration has no effect in Redline: series expire in the spanmetrics \
             connector (its metrics_expiration setting)"
        );
    }
    let scraper = Arc::new(server::Scraper {
        sources: sources.into(),
        options: config.render_options()?,
        enable_open_metrics: config.enable_open_metrics,
        last_len: AtomicUsize::new(0),
    });
    let addr = config.bind_address()?;
    let running = server::Running::start(component.to_owned(), &addr, scraper)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(Box::new(running))
}

#[cfg(test)]
mod tests;

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
mod escape;
mod exemplar;
mod labels;
mod names;
mod native;
mod negotiate;
mod numfmt;
mod proto;
mod render;
mod render_proto;
mod server;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExporterFactory, MetricsFlow,
    MetricsSource, RunningComponent, Signal,
};

pub use config::{AuthConfig, Config, Invalid, ResourceToTelemetry};
pub use negotiate::{accepts_gzip, negotiate, Encoding, Negotiated};
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

    fn extension_refs(
        &self,
        config: &ComponentConfig,
    ) -> Vec<(String, redline_pipeline::ComponentId)> {
        Config::from_component(config)
            .ok()
            .and_then(|c| c.auth)
            .and_then(|auth| auth.id().ok())
            .map(|id| vec![("auth.authenticator".to_owned(), id)])
            .unwrap_or_default()
    }
}

impl ExporterFactory for PrometheusExporterFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Metrics]
    }

    fn metrics_flow(&self) -> MetricsFlow {
        MetricsFlow::Sources
    }

    fn build_metrics_reader(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<(
        Arc<dyn redline_pipeline::Consumer>,
        Box<dyn RunningComponent>,
    )> {
        let id = config.id().clone();
        let parsed = Config::from_component(config);
        let extensions = ctx.extensions.clone();
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            // Extensions are built before exporters: a missing one is a config mistake.
            let auth = match &parsed.auth {
                None => None,
                Some(auth) => {
                    let key = format!("exporters.{id}.auth.authenticator");
                    let ext = auth
                        .id()
                        .map_err(|e| BuildError::new(&id, format!("{key}: {e}")))?;
                    let found = extensions
                        .authenticator(&ext)
                        .map_err(|e| BuildError::new(&id, format!("{key}: {e}")))?;
                    Some(found)
                }
            };
            start_with_auth(&id.to_string(), &parsed, sources, auth)
                .await
                .map_err(|e| match e {
                    StartError::Tls(t) => {
                        BuildError::new(&id, format!("exporters.{id}.tls.{}: {}", t.key, t.reason))
                    }
                    other => BuildError::new(&id, other),
                })
                .map(|running| {
                    (
                        Arc::new(NotYet) as Arc<dyn redline_pipeline::Consumer>,
                        running,
                    )
                })
        })
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}: {}", .0.key, .0.reason)]
    Config(#[from] Invalid),
    #[error("tls.{}: {}", .0.key, .0.reason)]
    Tls(#[from] redline_pipeline::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Starts the exporter from an already-parsed config: binds the endpoint and serves
/// `/metrics`. The returned component reports its address as `metrics`. A config with
/// `auth` needs [`start_with_auth`].
pub async fn start(
    component: &str,
    config: &Config,
    sources: Vec<Arc<dyn MetricsSource>>,
) -> Result<Box<dyn RunningComponent>, StartError> {
    start_with_auth(component, config, sources, None).await
}

/// [`start`] with the authenticator that `auth.authenticator` names, already resolved.
pub async fn start_with_auth(
    component: &str,
    config: &Config,
    sources: Vec<Arc<dyn MetricsSource>>,
    auth: Option<Arc<dyn ServerAuthenticator>>,
) -> Result<Box<dyn RunningComponent>, StartError> {
    config.check()?;
    if config.auth.is_some() && auth.is_none() {
        return Err(StartError::Config(Invalid {
            key: "auth.authenticator".to_owned(),
            reason: "the authenticator extension was not given to the exporter".to_owned(),
        }));
    }
    let tls = match &config.tls {
        Some(tls) => {
            for warning in tls.warnings() {
                tracing::warn!(component, "{warning}");
            }
            Some(tls.load(redline_pipeline::tls::ALPN_HTTP)?)
        }
        None => None,
    };
    if auth.is_some() && tls.is_none() {
        tracing::warn!(
            component,
            "auth is set without tls: credentials cross the network in clear text"
        );
    }
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
        auth,
    });
    let addr = config.bind_address()?;
    let running = server::Running::start(component.to_owned(), &addr, scraper, tls)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(Box::new(running))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kinds;

/// PLACEHOLDER(issue-11): refuses OTLP metrics batches until the translation lands.
struct NotYet;

impl redline_pipeline::Consumer for NotYet {
    fn reserve(
        &self,
        _: &redline_pipeline::Batch,
    ) -> Result<Box<dyn redline_pipeline::Reservation>, redline_pipeline::Refused> {
        Err(redline_pipeline::Refused {
            component: "placeholder".into(),
            reason: "not yet".into(),
            retry_after: std::time::Duration::from_secs(1),
        })
    }
}

//! Prometheus exporter: text 0.0.4, OpenMetrics and protobuf exposition served over HTTP.
//!
//! Compatible with otelcol's `prometheus` exporter: same config keys, same name translation
//! (`traces.spanmetrics.duration` + unit `ms` → `traces_spanmetrics_duration_milliseconds`,
//! counters `_total`, attribute keys with dots → underscores), same number formatting.
//! Metrics are pulled from the pipeline's [`MetricsSource`]s (connectors, and the exporter's
//! own accumulator of the OTLP metrics batches it is given) at scrape time and rendered
//! straight into the response body, in the text formats or as protobuf.
//!
//! Deviations from otelcol, on purpose:
//! - `enable_open_metrics` defaults to true, so exemplars reach Grafana with the reference
//!   config unchanged.
//! - `metric_expiration` applies to OTLP metrics only: connector series expire in the
//!   connector that owns them.
//! - OpenMetrics counters and histograms carry no `_created` samples.
//! - Exemplar timestamps are written exactly (`1700000000.123`), not through a float.
//! - Families, series and (in the text formats) labels come in the order the sources give
//!   them; client_golang sorts all three. The samples are the same.
//! - The protobuf text encodings (`encoding=text`, `compact-text`) are not offered: a scraper
//!   asking only for them gets the text format.
//! - A scraper that stops reading for a minute has its scrape cut off, so the rendering
//!   thread is not held forever (otelcol has no write timeout by default).

mod config;
mod escape;
mod exemplar;
mod labels;
mod names;
mod native;
mod negotiate;
mod numfmt;
mod otlp;
mod proto;
mod render;
mod render_proto;
mod server;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::extension::ServerAuthenticator;
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, Consumer, ExporterFactory, MetricsFlow,
    MetricsSource, RunningComponent, Signal,
};
use redline_prometheus_translate::{Accumulator, Settings};

pub use config::{AuthConfig, Config, Invalid};
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

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        Config::from_component(config)
            .map(|c| c.timeouts().deprecation_warnings(""))
            .unwrap_or_default()
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
        let telemetry = ctx.telemetry.clone();
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
            let counters = telemetry.exporter(&id.to_string(), Signal::Metrics);
            start_exporter(&id.to_string(), &parsed, sources, auth, counters)
                .await
                .map_err(|e| match e {
                    StartError::Tls(t) => {
                        BuildError::new(&id, format!("exporters.{id}.tls.{}: {}", t.key, t.reason))
                    }
                    other => BuildError::new(&id, other),
                })
        })
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
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
    let counters = Arc::new(redline_pipeline::telemetry::ExporterCounters::default());
    start_exporter(component, config, sources, auth, counters)
        .await
        .map(|(_, running)| running)
}

/// A started exporter: the consumer OTLP metrics batches go to, and the running server.
pub type Started = (Arc<dyn Consumer>, Box<dyn RunningComponent>);

/// [`start_with_auth`], also taking OTLP metrics batches: they are accumulated into series
/// served next to `sources`, and counted in `counters` as otelcol counts an exporter's points.
pub async fn start_exporter(
    component: &str,
    config: &Config,
    mut sources: Vec<Arc<dyn MetricsSource>>,
    auth: Option<Arc<dyn ServerAuthenticator>>,
    counters: Arc<redline_pipeline::telemetry::ExporterCounters>,
) -> Result<Started, StartError> {
    config.check()?;
    if config.auth.is_some() && auth.is_none() {
        return Err(StartError::Config(Invalid::new(
            "auth.authenticator",
            "the authenticator extension was not given to the exporter",
        )));
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
    let (resource_labels, deprecated) = config.resource_labels()?;
    if deprecated {
        // otelcol warns the same way: resource_constant_labels is its successor.
        tracing::warn!(
            component,
            "resource_to_telemetry_conversion is deprecated; use resource_constant_labels instead"
        );
    }
    let expiration = config
        .metric_expiration
        .unwrap_or(otlp::DEFAULT_METRIC_EXPIRATION);
    let accumulator = Arc::new(Accumulator::new(
        Settings {
            resource_labels,
            scope_labels: !config.without_scope_info,
            target_info: true,
        },
        expiration,
    ));
    sources.push(accumulator.clone());
    let scraper = Arc::new(server::Scraper {
        sources: sources.into(),
        options: config.render_options()?,
        enable_open_metrics: config.enable_open_metrics,
        last_len: AtomicUsize::new(0),
        auth,
    });
    let addr = config.bind_address()?;
    let running = server::Running::start(
        component.to_owned(),
        &addr,
        scraper,
        tls,
        &config.timeouts(),
    )
    .await
    .map_err(|source| StartError::Bind { addr, source })?;
    otlp::spawn_cleanup(&accumulator, expiration);
    let consumer = otlp::OtlpConsumer::new(component.to_owned(), accumulator, counters);
    Ok((Arc::new(consumer), Box::new(running)))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_connections;
#[cfg(test)]
mod tests_kinds;
#[cfg(test)]
mod tests_otlp;
#[cfg(test)]
mod tests_proto;
#[cfg(test)]
mod tests_stream;

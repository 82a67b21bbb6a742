//! `prometheusremotewrite` exporter: pushes the pipeline's metrics to a Prometheus
//! remote-write 1.0 endpoint (Prometheus with `--web.enable-remote-write-receiver`, Mimir,
//! Cortex, Thanos Receive, VictoriaMetrics, Grafana Cloud).
//!
//! Compatible with otelcol contrib's exporter: same config keys and defaults, same series
//! names and labels as the `prometheus` exporter (the translation is shared, see
//! `redline_pipeline::prom_names`), histograms as classic `_bucket{le}` / `_sum` / `_count`
//! series, exemplars (`trace_id`, `span_id`) on counters and buckets, snappy-compressed
//! `WriteRequest`s cut at `max_batch_size_bytes`.
//!
//! Two inputs. Connector stores (span metrics) are pulled: every `push_interval` the exporter
//! walks its sources and stamps every sample with that one collection time; when
//! `push_interval` is not set it is the spanmetrics connector's `metrics_flush_interval`, the
//! cadence at which otelcol's connector would push. OTLP metrics batches are translated one
//! by one as otelcol's translator translates each request (`redline_prometheus_translate`:
//! points keep their timestamps, summaries, native histograms for exponential ones,
//! `job`/`instance`/`target_info` from the resource, scope labels); see `batches`.
//! 5xx, 429 (honouring `Retry-After`), timeouts and connection errors are retried with
//! otelcol's backoff; other 4xx are dropped and counted. At shutdown one final push is made
//! and the queue drained until the deadline, so the last values arrive.
//!
//! Deviations from otelcol, on purpose:
//! - Series from connector stores have no resource, so no `job`/`instance`/`target_info`
//!   (docs/architecture.md §4). For several replicas pushing to one endpoint, set
//!   `external_labels: {instance: ${env:HOSTNAME}}`.
//! - The queue holds pushes, bounded in count (`queue_size`) and compressed bytes
//!   (`queue_size_bytes`). A collected push that does not fit drops the oldest waiting push,
//!   since cumulative values make the newest one worth more; an OTLP batch that does not fit
//!   is refused at `reserve`, so the client retries (otelcol: `enqueue_failed`).
//! - Two series with the same name and labels in one collected push (two sources exporting
//!   the same metric) are sent once: Prometheus would refuse the whole request. Two points
//!   of one series in one OTLP request are sent as two time series of one sample each, where
//!   otelcol merges them into one time series with two samples: the same samples arrive.
//! - Points with time 0 take the push's time (otelcol would send timestamp 0).
//! - A metric name that comes back with another kind in the same push (an explicit and an
//!   exponential histogram of one name) keeps the first kind; the other is skipped and
//!   counted, where otelcol sends both series sets.
//! - Metadata (`send_metadata`) is sent once per family name; otelcol sends one entry per
//!   metric of the request, repeating a name that comes back.

mod batches;
mod client;
pub mod config;
mod encode;
mod exporter;
mod native;
pub mod proto;
mod settings;
mod wire;

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::telemetry::ExporterCounters;
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExporterFactory, MetricsFlow,
    MetricsSource, RunningComponent, Signal,
};

pub use config::Config;
pub use encode::{encode, EncodeOptions, Encoded, Request};
pub use exporter::{Running, Stats};
pub use settings::{ClientAuth, Invalid, Settings, DEFAULT_TIMEOUT};

/// The `prometheusremotewrite` exporter factory (metrics only).
pub struct RemoteWriteExporterFactory;

fn parse(config: &ComponentConfig) -> Result<(Config, Settings), ConfigError> {
    let parsed: Config = config.parse()?;
    let settings = parsed.settings().map_err(|e| config.locate(e))?;
    Ok((parsed, settings))
}

impl FactoryInfo for RemoteWriteExporterFactory {
    fn type_name(&self) -> &'static str {
        "prometheusremotewrite"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["prometheus_remote_write"]
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }
}

impl ExporterFactory for RemoteWriteExporterFactory {
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
        let counters = ctx.telemetry.exporter(&id.to_string(), Signal::Metrics);
        let parsed = parse(config);
        let extensions = ctx.extensions.clone();
        Box::pin(async move {
            let (_, mut settings) = parsed.map_err(|e| BuildError::new(&id, e))?;
            if let Some(auth) = &mut settings.auth {
                let found = extensions
                    .client_authenticator(&auth.id)
                    .map_err(|e| BuildError::new(&id, format!("{}: {e}", auth.key)))?;
                auth.authenticator = Some(found);
            }
            let running = start_counted(&id.to_string(), settings, sources, counters)
                .map_err(|e| BuildError::new(&id, e))?;
            Ok((
                running.consumer(),
                Box::new(running) as Box<dyn RunningComponent>,
            ))
        })
    }
}

/// Starts the exporter from checked settings (see [`Config::settings`]): builds the HTTP
/// client (reading TLS files) and spawns the collector and sender tasks on the current Tokio
/// runtime. The first push is made one interval after the start.
pub fn start(
    component: &str,
    settings: Settings,
    sources: Vec<Arc<dyn MetricsSource>>,
) -> Result<Running, Invalid> {
    start_counted(component, settings, sources, Arc::default())
}

/// [`start`], counting the points of OTLP batches (see [`Running::consumer`]) in `counters`.
pub fn start_counted(
    component: &str,
    settings: Settings,
    sources: Vec<Arc<dyn MetricsSource>>,
    counters: Arc<ExporterCounters>,
) -> Result<Running, Invalid> {
    let client = client::HttpClient::new(&settings)?;
    if !settings.ignored_keys.is_empty() {
        tracing::info!(
            exporter = component,
            keys = %settings.ignored_keys.join(", "),
            "{}",
            redline_http_client::IGNORED_KEYS_NOTE
        );
    }
    Ok(Running::start(
        component.to_owned(),
        settings,
        sources,
        client,
        counters,
    ))
}

#[cfg(test)]
mod tests;

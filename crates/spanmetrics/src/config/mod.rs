//! The `spanmetrics` connector section, with otelcol's keys and defaults.
//!
//! Deviations from otelcol, each on purpose:
//! - `exemplars.enabled` defaults to `true`: the reference dashboard links metrics to traces
//!   with the reference config unchanged. Redline keeps the one most recent exemplar per
//!   series (memory budget), so `max_per_data_point` above 1 behaves as 1; 0 turns them off.
//! - `histogram.exponential.max_size` outside 2..=16384 is an error (otelcol clamps it
//!   silently into that range).
//! - `aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA` is refused (the metrics are
//!   pulled by Prometheus, which needs cumulative), and any other value than the two otelcol
//!   spellings is an error rather than silently cumulative.
//! - `resource_metrics_key_attributes` is accepted and has no effect: series are keyed by
//!   their labels, not by the whole resource (docs/architecture.md §4).
//! - `dimensions_cache_size`, `resource_metrics_cache_size` and `metric_timestamp_cache_size`
//!   tune caches Redline does not have; they are accepted and a warning is logged.
//! - `aggregation_cardinality_limit` defaults to [`DEFAULT_CARDINALITY_LIMIT`] (otelcol: 0,
//!   unlimited) and `metrics_expiration` to [`DEFAULT_METRICS_EXPIRATION`] (otelcol: 0, never):
//!   memory stays bounded with an unchanged otelcol file (docs/architecture.md §5). Setting either to 0
//!   restores otelcol's behaviour.

mod events;
mod families;
pub mod glob;
mod glob_dims;
mod settings;

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use settings::{Invalid, Settings, Unit};

/// otelcol's default namespace (`connector.spanmetrics.legacyMetricNames` off).
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";

/// otelcol's default buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: [f64; 16] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0,
    10_000.0, 15_000.0,
];

/// Redline's default for `aggregation_cardinality_limit` (otelcol: 0 = unlimited). It is the
/// scale the connector is built and benchmarked for (docs/architecture.md §7: ≤256 bytes per series, so
/// ≤~25 MB of series state; a 100k-series scrape renders in ≤100 ms): a span-name or attribute
/// explosion costs at most that, and folds into the `otel.metric.overflow` series beyond it.
pub const DEFAULT_CARDINALITY_LIMIT: i64 = 100_000;

/// Redline's default for `metrics_expiration` (otelcol: 0 = never), the same as Tempo's
/// metrics-generator (`stale_duration`). Without expiry, label sets from a past burst would
/// hold their place under the cardinality limit until a restart, and every later new label
/// set would land in the overflow series.
pub const DEFAULT_METRICS_EXPIRATION: Duration = Duration::from_secs(15 * 60);

pub const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";
pub const DELTA: &str = "AGGREGATION_TEMPORALITY_DELTA";

/// Label keys of the default dimensions, in the order they are written.
pub const SERVICE_NAME: &str = "service.name";
pub const SPAN_NAME: &str = "span.name";
pub const SPAN_KIND: &str = "span.kind";
pub const STATUS_CODE: &str = "status.code";
pub const DEFAULT_DIMENSIONS: [&str; 4] = [SERVICE_NAME, SPAN_NAME, SPAN_KIND, STATUS_CODE];
/// The label `enable_metrics_sampling_method` adds, and its two values (otelcol's).
pub const SAMPLING_METHOD: &str = "sampling.method";
/// The labels `include_instrumentation_scope` adds for a span of a listed scope (otelcol's).
pub const SCOPE_NAME: &str = "span.instrumentation.scope.name";
pub const SCOPE_VERSION: &str = "span.instrumentation.scope.version";
pub const EXTRAPOLATED: &str = "extrapolated";
pub const COUNTED: &str = "counted";
/// The label `tempo_red_table` adds: Tempo's metrics-generator name for the service.
pub const TEMPO_SERVICE: &str = "service";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub namespace: String,
    pub dimensions: Vec<Dimension>,
    pub exclude_dimensions: Vec<String>,
    pub histogram: HistogramConfig,
    pub aggregation_temporality: String,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub metrics_flush_interval: Duration,
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub metrics_expiration: Duration,
    /// otelcol's per-series expiry (0 = never). A series here is its label set and
    /// `metrics_expiration` already expires series one by one, so a series goes after the
    /// shorter of the two (see [`Settings::expiration`]).
    #[serde(deserialize_with = "redline_pipeline::duration::deserialize")]
    pub series_expiration: Duration,
    /// 0 = unlimited, as in otelcol (whose default it is; Redline's is
    /// [`DEFAULT_CARDINALITY_LIMIT`]). Signed so a negative value gets a clear error.
    pub aggregation_cardinality_limit: i64,
    pub exemplars: ExemplarsConfig,
    pub resource_metrics_key_attributes: Vec<String>,
    pub dimensions_cache_size: Option<i64>,
    pub resource_metrics_cache_size: Option<i64>,
    pub metric_timestamp_cache_size: Option<i64>,
    pub events: EventsConfig,
    /// otelcol's key: dimensions the `calls` family has on top of `dimensions` (looked up as
    /// they are). With these or `histogram.dimensions`, calls and duration are kept in two
    /// stores, each keyed by its own label set.
    pub calls_dimensions: Vec<Dimension>,
    /// otelcol's key: spans of these instrumentation scopes (by name) get the scope's name
    /// and version (when not empty) as labels.
    pub include_instrumentation_scope: Vec<String>,
    /// otelcol's key: copy the resource attributes onto the pushed metrics' resource even with
    /// the `connector.spanmetrics.excludeResourceMetrics` gate on. That gate is off (its
    /// default, the only state Redline runs with), so otelcol copies them either way and the
    /// key changes nothing, here as there.
    pub add_resource_attributes: bool,
    /// Redline's own key: a storage extension (`file_storage`) where the series state is
    /// kept across restarts, so counters continue instead of starting from zero.
    pub storage: Option<String>,
    /// otelcol's key: adds `sampling.method` = `extrapolated` (the span carried a sampling
    /// threshold) or `counted` to every series.
    pub enable_metrics_sampling_method: bool,
    /// Redline's key (Tempo's name): a span attribute, or else resource attribute, whose
    /// numeric value is the span's count, ahead of the tracestate's adjusted count.
    pub span_multiplier_key: Option<String>,
    /// Redline's key: serve what the Grafana Tempo data source's RED table queries, a `service`
    /// label on every series and a `latency` histogram in seconds beside `duration`.
    pub tempo_red_table: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            dimensions: Vec::new(),
            exclude_dimensions: Vec::new(),
            histogram: HistogramConfig::default(),
            aggregation_temporality: CUMULATIVE.to_owned(),
            // otelcol's default since v0.110; here it only paces the expiration sweep.
            metrics_flush_interval: Duration::from_secs(60),
            metrics_expiration: DEFAULT_METRICS_EXPIRATION,
            series_expiration: Duration::ZERO,
            aggregation_cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
            exemplars: ExemplarsConfig::default(),
            resource_metrics_key_attributes: Vec::new(),
            dimensions_cache_size: None,
            resource_metrics_cache_size: None,
            metric_timestamp_cache_size: None,
            events: EventsConfig::default(),
            calls_dimensions: Vec::new(),
            include_instrumentation_scope: Vec::new(),
            add_resource_attributes: false,
            storage: None,
            enable_metrics_sampling_method: false,
            span_multiplier_key: None,
            tempo_red_table: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Empty for a glob dimension.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub default: Option<String>,
    /// otelcol's glob dimension: every span attribute whose key matches becomes a label, and
    /// every resource attribute the span does not have.
    #[serde(default)]
    pub glob: Option<String>,
}

impl Dimension {
    /// The attribute `name` as a dimension, left off where a span has no value.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            default: None,
            glob: None,
        }
    }

    /// The same, with `default` where a span has no value.
    pub fn with_default(name: &str, default: &str) -> Self {
        Self {
            default: Some(default.to_owned()),
            ..Self::named(name)
        }
    }
}

/// The key paths `check_all` names, in order (unit tests of the checks).
#[cfg(test)]
fn problem_paths(c: &Config) -> Vec<String> {
    use redline_pipeline::CheckAll;
    c.check_all()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.key_path)
        .collect()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    pub disable: bool,
    pub unit: String,
    pub explicit: Option<ExplicitConfig>,
    #[serde(deserialize_with = "redline_pipeline::config::present")]
    pub exponential: Option<ExponentialConfig>,
    /// otelcol's key: dimensions the `duration` family has on top of `dimensions`.
    pub dimensions: Vec<Dimension>,
}

impl Default for HistogramConfig {
    fn default() -> Self {
        Self {
            disable: false,
            unit: "ms".to_owned(),
            explicit: None,
            exponential: None,
            dimensions: Vec::new(),
        }
    }
}

/// `histogram.exponential`: a base-2 exponential histogram of at most `max_size` buckets
/// (otelcol's default 160 when absent or 0).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExponentialConfig {
    pub max_size: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplicitConfig {
    #[serde(deserialize_with = "deserialize_durations")]
    pub buckets: Option<Vec<Duration>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    pub enabled: bool,
    pub max_per_data_point: Option<i64>,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        // Redline deviation: on by default (see the module docs).
        Self {
            enabled: true,
            max_per_data_point: None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    pub enabled: bool,
    pub dimensions: Vec<Dimension>,
}

fn deserialize_durations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Duration>>, D::Error> {
    let raw = Option::<Vec<String>>::deserialize(d)?;
    raw.map(|v| {
        v.iter()
            .map(|s| redline_pipeline::duration::parse(s).map_err(serde::de::Error::custom))
            .collect()
    })
    .transpose()
}

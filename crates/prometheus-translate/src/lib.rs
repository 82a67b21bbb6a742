//! OTLP metrics → Prometheus series, as otelcol-contrib's `prometheus` exporter (scraped,
//! through an [`Accumulator`]) and `prometheusremotewrite` exporter (pushed, [`translate`])
//! produce them.
//!
//! The translation stops short of Prometheus names: series are walked into a
//! [`MetricsSink`] with OpenTelemetry metric names, UCUM units and attribute keys, and every
//! sink applies the naming rules itself (`redline_pipeline::prom_names`). What this crate
//! decides is which series exist, their values and times, and which labels they carry:
//!
//! - point attributes, with the resource's merged in when
//!   [`Settings::resource_labels`] selects any (a resource attribute replaces the value of a
//!   point attribute with the same key, in its place; others are appended), as otelcol's
//!   `resourcetotelemetry` wrapper does before the exporter sees the data;
//! - scope labels (`otel_scope_*`), `job` (`service.namespace/service.name`) and `instance`
//!   (`service.instance.id`), in the order and under the conditions of each exporter (see
//!   [`Accumulator`] and [`translate`]);
//! - attribute values rendered as pdata's `Value.AsString()` does (Go float formatting,
//!   base64 bytes, arrays and maps as JSON with sorted keys).
//!
//! What every sink must do with what it is given (otelcol's rules at the sink end):
//!
//! - scrape (Prometheus exporter): a series whose label names collide after translation
//!   (`a.b` and `a_b`, or a point attribute `job`) is dropped whole, as otelcol's client
//!   registry refuses it; only `target_info` joins colliding values with `;`;
//! - remote write: colliding point-attribute names are joined with `;` (a repeated value
//!   written once); `job`/`instance`, then `external_labels` (only where no label of that
//!   name exists), then the scope labels override what came before;
//! - a point with the no-recorded-value flag arrives (remote write only) as
//!   [`redline_pipeline::STALE_NAN`] in the number value, or in `sum` of histograms,
//!   summaries and exponential histograms: every sample of that point is written as the
//!   stale marker (buckets, count, sum, quantiles);
//! - exponential histograms arrive as received: a sink refuses scale < -4 and merges scales
//!   above 8 down to 8, as otelcol does;
//! - two `family()` calls may translate to the same Prometheus name (an explicit and an
//!   exponential histogram of one metric, or names that only collide under the sink's naming
//!   settings): the sink merges them into one family or drops the conflicting kind.
//!
//! Where this differs from otelcol, and why:
//!
//! - delta exponential histograms are merged exactly: otelcol's merge counts the first
//!   bucket twice when a range starts inside a merged bucket, and its zero-threshold filter
//!   uses a wrong bucket bound on the positive side only;
//! - exemplars without both a 16-byte trace id and an 8-byte span id are dropped, because
//!   [`Exemplar`] carries exactly those; otelcol keeps them (with fewer labels) and, in remote
//!   write, adds their filtered attributes as exemplar labels;
//! - a remote-write histogram point without a sum is passed with sum 0 ([`HistogramPoint`]
//!   has no optional sum); otelcol omits its `_sum` series;
//! - gauges flagged as Prometheus `unknown` in the metric metadata are plain gauges
//!   ([`MetricKind`] has no untyped kind); otelcol's scrape exporter writes them untyped;
//! - the family type-conflict check of the scrape exporter runs here, per family, see
//!   [`Accumulator`].

mod accumulator;
mod push;
mod resource_labels;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, number_data_point, Exemplar as OtlpExemplar,
};
use prost::Message;
use redline_pipeline::metrics::Exemplar;

pub use accumulator::{Accumulated, Accumulator};
pub use push::{translate, Translated};
pub use resource_labels::{KeyPattern, ResourceLabels, ResourceLabelsConfig};

/// For each resource of `request`, its attributes that become labels.
fn resource_selections<'a>(
    request: &'a opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    settings: &Settings,
) -> Vec<Option<std::borrow::Cow<'a, [opentelemetry_proto::tonic::common::v1::KeyValue]>>> {
    request
        .resource_metrics
        .iter()
        .map(|rm| {
            let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes);
            settings.resource_labels.select(resource)
        })
        .collect()
}

#[cfg(doc)]
use redline_pipeline::metrics::{HistogramPoint, MetricKind, MetricsSink};

/// What the exporters make of resources and scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Which resource attributes become labels of every series (`resource_constant_labels`,
    /// `resource_to_telemetry_conversion`).
    pub resource_labels: ResourceLabels,
    /// `otel_scope_*` labels. The prometheus exporter: `!without_scope_info` (on by
    /// default). Remote write v0.161: `!disable_scope_info`, also on by default; it writes
    /// `otel_scope_name` and `otel_scope_version` only when not empty and never
    /// `otel_scope_schema_url`.
    pub scope_labels: bool,
    /// Emit `target_info` (family OTel name `target_info`, kind Gauge, value 1) per distinct
    /// resource. Always on in the prometheus exporter; `target_info.enabled` (default on) in
    /// remote write.
    pub target_info: bool,
}

impl Default for Settings {
    /// otelcol's defaults for both exporters.
    fn default() -> Self {
        Settings {
            resource_labels: ResourceLabels::Off,
            scope_labels: true,
            target_info: true,
        }
    }
}

/// Why a request could not be translated at all.
#[derive(Debug, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot decode the OTLP metrics request: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// The family name of the resource info series.
pub const TARGET_INFO: &str = "target_info";
/// Its description, as otelcol writes it.
pub const TARGET_INFO_DESCRIPTION: &str = "Target metadata";

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// OTLP `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

fn decode(request: &[u8]) -> Result<ExportMetricsServiceRequest, TranslateError> {
    Ok(ExportMetricsServiceRequest::decode(request)?)
}

/// pdata's `Map.Get`: the first attribute with that key.
fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().find(|kv| kv.key == key)
}

fn attr_string(kv: &KeyValue) -> Cow<'_, str> {
    redline_pdata_text::as_string(kv.value.as_ref())
}

/// The `job` label of a resource: `service.name`, prefixed by `service.namespace/` when set.
fn job(resource: &[KeyValue]) -> Option<String> {
    let name = attr_string(get(resource, SERVICE_NAME)?);
    Some(match get(resource, SERVICE_NAMESPACE) {
        Some(ns) => format!("{}/{}", attr_string(ns), name),
        None => name.into_owned(),
    })
}

/// The `instance` label of a resource: `service.instance.id`.
fn instance(resource: &[KeyValue]) -> Option<String> {
    get(resource, SERVICE_INSTANCE_ID).map(|kv| attr_string(kv).into_owned())
}

fn is_identifying(key: &str) -> bool {
    matches!(key, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID)
}

/// Scope attribute keys that would shadow the scope's own name, version or schema url.
fn is_reserved_scope_attribute(key: &str) -> bool {
    matches!(key, "name" | "version" | "schema_url")
}

/// Point attributes as strings, with the resource's merged in the way `resourcetotelemetry`
/// does it (`PutEmpty`: the first point attribute with the key takes the resource's value).
fn point_attributes<'a>(
    point: &'a [KeyValue],
    resource: Option<&'a [KeyValue]>,
    out: &mut Vec<(&'a str, Cow<'a, str>)>,
) {
    out.clear();
    out.extend(point.iter().map(|kv| (kv.key.as_str(), attr_string(kv))));
    if let Some(resource) = resource {
        for kv in resource {
            let value = attr_string(kv);
            match out.iter_mut().find(|(k, _)| *k == kv.key) {
                Some(slot) => slot.1 = value,
                None => out.push((kv.key.as_str(), value)),
            }
        }
    }
}

/// The exemplars a sink can carry: those with a full trace and span id.
fn exemplars(otlp: &[OtlpExemplar]) -> Vec<Exemplar> {
    otlp.iter()
        .filter_map(|e| {
            let trace_id: [u8; 16] = e.trace_id.as_slice().try_into().ok()?;
            let span_id: [u8; 8] = e.span_id.as_slice().try_into().ok()?;
            let value = match e.value {
                Some(exemplar::Value::AsDouble(d)) => d,
                Some(exemplar::Value::AsInt(i)) => i as f64,
                None => 0.0,
            };
            Some(Exemplar {
                value,
                time_unix_nano: e.time_unix_nano,
                trace_id,
                span_id,
            })
        })
        .collect()
}

fn number_value(value: Option<&number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => 0.0,
    }
}

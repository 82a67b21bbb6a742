//! Pushes Redline's own metrics with otelcol's `periodic` readers
//! (`service.telemetry.metrics.readers[].periodic`): one task per reader encodes
//! [`Telemetry`] every `interval` and sends it over OTLP/HTTP, OTLP/gRPC, or to stdout.
//!
//! A failed export is logged and the next interval tries again: Redline's own telemetry never
//! stops or slows the pipeline. On shutdown every reader pushes once more, so the final
//! counts (after draining) reach the backend, as the OpenTelemetry SDK's reader does.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redline_otlp_metrics_encode::proto::common::v1::{any_value, AnyValue, KeyValue};
use redline_otlp_metrics_encode::{Encoder, Target, Temporality};
use redline_pipeline::config::{
    AttributeValue, PeriodicReaderConfig, PushExporterConfig, TelemetryConfig, TelemetryResource,
    Temporality as ConfigTemporality,
};
use redline_pipeline::telemetry::{now_unix_nano, Telemetry};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod send;
mod target_info;

use send::OtlpSender;
use target_info::{TargetInfo, WithoutTargetInfo};

/// The scope of Redline's own metrics, as otelcol names its own.
const SCOPE_NAME: &str = "redline";
/// The semantic-conventions schema otelcol v0.161 puts on its resource.
const DEFAULT_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.40.0";
/// The least time the final pushes get at shutdown.
const FINAL_PUSH_MIN: Duration = Duration::from_secs(1);

/// The running readers.
pub struct Pushers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Logs the telemetry settings accepted without effect, and starts one task per periodic
/// reader. Fails, as otelcol does at startup, when an exporter cannot be built (a TLS file
/// that cannot be read).
pub fn start(config: &TelemetryConfig, telemetry: &Telemetry) -> anyhow::Result<Pushers> {
    for notice in &config.notices {
        tracing::info!("{notice}");
    }
    let (stop, stopped) = watch::channel(false);
    let target = Arc::new(target(&config.resource));
    // One resource for both: the pull endpoint serves it as `target_info`.
    telemetry.register_source(Arc::new(TargetInfo {
        labels: target
            .resource
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), attribute_text(kv)))
            .collect(),
    }));
    let mut tasks = Vec::with_capacity(config.metrics.push.len());
    for reader in &config.metrics.push {
        let exporter = match &reader.exporter {
            PushExporterConfig::Console => Exporter::Console,
            PushExporterConfig::Otlp(otlp) => Exporter::Otlp(Box::new(
                OtlpSender::new(otlp).with_context(|| format!("{}: exporter", reader.path))?,
            )),
        };
        let temporality = match &reader.exporter {
            PushExporterConfig::Otlp(o) if o.temporality != ConfigTemporality::Cumulative => {
                Temporality::Delta
            }
            _ => Temporality::Cumulative,
        };
        tracing::info!(
            reader = %reader.path,
            exporter = %exporter.describe(),
            interval = ?reader.interval,
            "pushing Redline's own metrics"
        );
        let reader = Reader {
            config: reader.clone(),
            exporter,
            encoder: Encoder::new(temporality),
            target: target.clone(),
            telemetry: WithoutTargetInfo(telemetry.clone()),
        };
        tasks.push(tokio::spawn(reader.run(stopped.clone())));
    }
    Ok(Pushers { stop, tasks })
}

impl Pushers {
    /// Makes every reader push a last time, waiting for them until `deadline`, or a moment
    /// more when draining the pipeline used it up: the final counts are worth a try.
    pub async fn shutdown(self, deadline: std::time::Instant) {
        let _ = self.stop.send(true);
        let deadline = Instant::from_std(deadline).max(Instant::now() + FINAL_PUSH_MIN);
        for mut task in self.tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!("the last push of Redline's own metrics did not finish in time");
                task.abort();
            }
        }
    }
}

/// The resource otelcol gives its own telemetry: `service.name`, `service.version` and a
/// random `service.instance.id`, then the configured attributes (a `null` removes one).
fn target(resource: &TelemetryResource) -> Target {
    let mut attributes: Vec<(String, AttributeValue)> = vec![
        ("service.name".into(), AttributeValue::Str("redline".into())),
        (
            "service.version".into(),
            AttributeValue::Str(env!("CARGO_PKG_VERSION").into()),
        ),
        (
            "service.instance.id".into(),
            AttributeValue::Str(random_uuid()),
        ),
    ];
    for (name, value) in &resource.attributes {
        attributes.retain(|(n, _)| n != name);
        if let Some(value) = value {
            attributes.push((name.clone(), value.clone()));
        }
    }
    let mut target = Target {
        schema_url: resource
            .schema_url
            .clone()
            .unwrap_or_else(|| DEFAULT_SCHEMA_URL.to_owned()),
        scope_name: SCOPE_NAME.into(),
        scope_version: env!("CARGO_PKG_VERSION").into(),
        ..Target::default()
    };
    target.resource.attributes = attributes
        .into_iter()
        .map(|(key, value)| KeyValue {
            key,
            value: Some(AnyValue {
                value: Some(match value {
                    AttributeValue::Str(s) => any_value::Value::StringValue(s),
                    AttributeValue::Bool(b) => any_value::Value::BoolValue(b),
                    AttributeValue::Int(i) => any_value::Value::IntValue(i),
                    AttributeValue::Double(d) => any_value::Value::DoubleValue(d),
                }),
            }),
            ..KeyValue::default()
        })
        .collect();
    target
}

/// An attribute's value as a label value.
fn attribute_text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// A version-4 UUID, as otelcol makes `service.instance.id`.
fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

enum Exporter {
    /// otelcol's `console` exporter: every export written to stdout.
    Console,
    Otlp(Box<OtlpSender>),
}

impl Exporter {
    fn describe(&self) -> String {
        match self {
            Self::Console => "console".into(),
            Self::Otlp(sender) => sender.describe(),
        }
    }
}

struct Reader {
    config: PeriodicReaderConfig,
    exporter: Exporter,
    encoder: Encoder,
    target: Arc<Target>,
    telemetry: WithoutTargetInfo<Telemetry>,
}

impl Reader {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.config.interval;
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        // A slow export delays the next one rather than sending a burst to catch up.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.push(false).await,
                _ = stop.changed() => {
                    self.push(true).await;
                    return;
                }
            }
        }
    }

    /// One export, bounded by the reader's timeout; a failure is logged, never returned.
    async fn push(&mut self, last: bool) {
        let start = self.telemetry.0.start_time_unix_nano();
        let request = self
            .encoder
            .request(&self.telemetry, &self.target, start, now_unix_nano());
        let timeout = self.config.timeout;
        let result = match &self.exporter {
            Exporter::Console => console(&request),
            Exporter::Otlp(sender) => {
                match tokio::time::timeout(timeout, sender.send(request)).await {
                    Ok(r) => r,
                    Err(_) => Err(anyhow::anyhow!(
                        "no answer within the reader's {timeout:?} timeout"
                    )),
                }
            }
        };
        if let Err(e) = result {
            let what = if last {
                "could not push Redline's final metrics"
            } else {
                "could not push Redline's own metrics; trying again next interval"
            };
            tracing::warn!(
                reader = %self.config.path,
                exporter = %self.exporter.describe(),
                error = %format!("{e:#}"),
                "{what}"
            );
        }
    }
}

/// Writes the request as OTLP/JSON to stdout, one document per export.
fn console(
    request: &redline_otlp_metrics_encode::proto::collector::metrics::v1::ExportMetricsServiceRequest,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(request).context("encoding as JSON")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").context("writing to stdout")?;
    Ok(())
}

#[cfg(test)]
mod tests;

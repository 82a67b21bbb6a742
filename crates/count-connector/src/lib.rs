//! The `count` connector (otelcol-contrib's countconnector): spans, span events, metrics,
//! data points and log records counted into delta sums, one int point per resource, metric
//! and attribute set, sent on as one metrics request per request received.
//!
//! It must read items to judge their conditions and attributes, so it decodes each request;
//! the request itself goes on untouched to the other consumers of its pipeline. The counts
//! are reserved on the metrics pipelines before the request is accepted (docs/architecture.md
//! §1, "Reserve, then commit"): a full metrics exporter refuses the request back to the
//! client, so no item is forwarded uncounted or counted twice.

mod config;
mod count;
mod tally;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;
use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::edit::undecodable;
use redline_pipeline::{
    Batch, BuildContext, BuildError, ComponentConfig, ConfigError, ConnectorFactory,
    ConnectorParts, Consumer, MetricsFlow, Refused, Reservation, RunningComponent, Signal,
    SignalConsumers,
};

use crate::config::Definitions;
use crate::count::Counted;

/// Registers as `count`: traces, metrics and logs → metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountConnectorFactory;

impl FactoryInfo for CountConnectorFactory {
    fn type_name(&self) -> &'static str {
        "count"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        redline_pipeline::config::first_problem(self.validate_all(config))
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        config::compile(config).err().unwrap_or_default()
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        config::warnings(config)
    }
}

impl ConnectorFactory for CountConnectorFactory {
    fn signals(&self) -> &'static [(Signal, Signal)] {
        &[
            (Signal::Traces, Signal::Metrics),
            (Signal::Metrics, Signal::Metrics),
            (Signal::Logs, Signal::Metrics),
        ]
    }

    fn metrics_flow(&self) -> MetricsFlow {
        MetricsFlow::Batches
    }

    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<ConnectorParts> {
        let id = config.id().to_string();
        let built = config::compile(config).map_err(|errors| {
            BuildError::new(
                config.id(),
                redline_pipeline::config::problems_text(&errors),
            )
        });
        Box::pin(async move {
            let definitions = built?;
            let running: Box<dyn RunningComponent> = Box::new(NoopRunning);
            Ok(ConnectorParts {
                input: Arc::new(Count {
                    id,
                    definitions,
                    next,
                }),
                metrics: None,
                running,
            })
        })
    }
}

struct Count {
    id: String,
    definitions: Definitions,
    next: SignalConsumers,
}

impl Count {
    /// The counts of one request, decoded for the purpose.
    fn count(&self, batch: &Batch) -> Result<Counted, Refused> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let undecodable = |e: prost::DecodeError| undecodable(&self.id, e);
        let counted = match batch.signal {
            Signal::Traces => count::traces(&self.definitions, &batch.raw, now),
            Signal::Metrics => {
                let mut request =
                    ExportMetricsServiceRequest::decode(batch.raw.as_ref()).map_err(undecodable)?;
                count::metrics(&self.definitions, &mut request, now)
            }
            Signal::Logs => {
                let mut request =
                    ExportLogsServiceRequest::decode(batch.raw.as_ref()).map_err(undecodable)?;
                count::logs(&self.definitions, &mut request, now)
            }
        };
        // otelcol's connector returns the evaluation error, and its receiver has the client
        // retry the request.
        counted.map_err(|e| {
            tracing::warn!(connector = %self.id, error = %e, "failed to count a request");
            Refused {
                component: self.id.clone(),
                reason: e.to_string(),
                retry_after: Duration::from_secs(1),
                permanent: false,
            }
        })
    }
}

impl Consumer for Count {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let counted = self.count(batch)?;
        if counted.points == 0 {
            return Ok(Box::new(NothingCounted));
        }
        let Some(next) = self.next.get(Signal::Metrics) else {
            // The graph only routes a signal here when a metrics pipeline takes the output.
            return Err(Refused {
                component: self.id.clone(),
                reason: "no metrics pipeline receives from this connector".to_owned(),
                retry_after: Duration::from_secs(1),
                permanent: false,
            });
        };
        let mut out = Batch::new(
            Signal::Metrics,
            Bytes::from(counted.request.encode_to_vec()),
            counted.points,
        );
        // otelcol's connector hands its counts on with the request's context.
        out.set_client(batch.client().cloned());
        let inner = next.reserve(&out)?;
        Ok(Box::new(CountsReserved { inner, out }))
    }
}

/// A request none of whose items counted: otelcol sends an empty metrics request on, which
/// carries nothing, so nothing is sent.
struct NothingCounted;

impl Reservation for NothingCounted {
    fn commit(self: Box<Self>, _: Batch) {}
}

/// The counts of the request being accepted, reserved on the metrics pipelines.
struct CountsReserved {
    inner: Box<dyn Reservation>,
    out: Batch,
}

impl Reservation for CountsReserved {
    fn commit(self: Box<Self>, _received: Batch) {
        self.inner.commit(self.out);
    }
}

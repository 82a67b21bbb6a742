//! The `forward` connector: what one pipeline exports, the pipelines of the same signal that
//! list it as a receiver take in, unchanged. Users split a pipeline this way to share a
//! receiver and processors between several exporter groups.
//!
//! Nothing is copied or held: a batch is reserved on every downstream pipeline before any
//! of them gets it (the reserve/commit contract of docs/architecture.md §2), so a full
//! downstream exporter refuses the batch back to the client instead of losing it.

use std::sync::Arc;

use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, ConnectorFactory, ConnectorParts, Consumer,
    MetricsFlow, Refused, Reservation, RunningComponent, Signal, SignalConsumers,
};
use serde::Deserialize;

/// `forward` takes no settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {}

/// Registers as `forward`: traces → traces, metrics → metrics, logs → logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardConnectorFactory;

impl FactoryInfo for ForwardConnectorFactory {
    fn type_name(&self) -> &'static str {
        "forward"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<Config>().map(|_| ())
    }
}

impl ConnectorFactory for ForwardConnectorFactory {
    fn signals(&self) -> &'static [(Signal, Signal)] {
        &[
            (Signal::Traces, Signal::Traces),
            (Signal::Metrics, Signal::Metrics),
            (Signal::Logs, Signal::Logs),
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
        Box::pin(async move {
            let running: Box<dyn RunningComponent> = Box::new(NoopRunning);
            Ok(ConnectorParts {
                input: Arc::new(Forward { id, next }),
                metrics: None,
                running,
            })
        })
    }
}

struct Forward {
    id: String,
    next: SignalConsumers,
}

impl Consumer for Forward {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        match self.next.get(batch.signal) {
            Some(next) => next.reserve(batch),
            // The graph only routes a signal here when a pipeline of it takes the output.
            None => Err(Refused {
                component: self.id.clone(),
                reason: format!("no {} pipeline receives from this connector", batch.signal),
                retry_after: std::time::Duration::from_secs(1),
                permanent: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use parking_lot::Mutex;
    use redline_pipeline::config::load_str;
    use redline_pipeline::consumer::CommitFn;

    struct Recording(Arc<Mutex<Vec<(Signal, usize)>>>);

    impl Consumer for Recording {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            let got = self.0.clone();
            Ok(Box::new(CommitFn(move |b: Batch| {
                got.lock().push((b.signal, b.items))
            })))
        }
    }

    fn component(yaml: &str) -> ComponentConfig {
        let text = format!(
            "connectors:\n  forward:{yaml}\nreceivers:\n  r:\nexporters:\n  e:\nservice:\n  pipelines:\n    logs:\n      receivers: [r]\n      exporters: [e]\n"
        );
        let config = load_str("test.yaml", &text).expect("loads");
        config.connectors[0].clone()
    }

    #[tokio::test]
    async fn passes_each_signal_to_its_pipelines_unchanged() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let next = SignalConsumers::default()
            .with(Signal::Logs, Arc::new(Recording(got.clone())))
            .with(Signal::Metrics, Arc::new(Recording(got.clone())));
        let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
        let parts = ForwardConnectorFactory
            .build(&component(""), &ctx, next)
            .await
            .expect("builds");
        assert!(parts.metrics.is_none());
        let logs = Batch::new(Signal::Logs, Bytes::from_static(b"l"), 3);
        parts.input.consume(logs).expect("logs pipeline takes it");
        let metrics = Batch::new(Signal::Metrics, Bytes::from_static(b"m"), 5);
        parts
            .input
            .consume(metrics)
            .expect("metrics pipeline takes it");
        let traces = Batch::traces(Bytes::from_static(b"t"), 1);
        assert!(parts.input.consume(traces).is_err(), "no traces pipeline");
        assert_eq!(*got.lock(), vec![(Signal::Logs, 3), (Signal::Metrics, 5)]);
    }

    #[test]
    fn takes_no_settings() {
        assert!(ForwardConnectorFactory.validate(&component(" {}")).is_ok());
        let err = ForwardConnectorFactory
            .validate(&component("\n    timeout: 1s"))
            .expect_err("unknown key");
        assert!(err.to_string().contains("timeout"), "{err}");
    }
}

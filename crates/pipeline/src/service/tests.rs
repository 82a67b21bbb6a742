//! Graph checks and start/stop order, with fake components.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::*;
use crate::component::{
    BuildResult, ConnectorFactory, ConnectorParts, ExporterFactory, FactoryInfo, ReceiverFactory,
};
use crate::config::{load_str, ConfigError};
use crate::consumer::{CommitFn, Refused, Reservation};
use crate::metrics::MetricsSink;
use crate::TracesBatch;

type Log = Arc<Mutex<Vec<String>>>;

struct Recorder {
    log: Log,
    name: String,
}

impl RunningComponent for Recorder {
    fn shutdown(self: Box<Self>, _: Instant) -> BoxFuture<'static, Result<(), ShutdownError>> {
        self.log.lock().push(format!("stop {}", self.name));
        Box::pin(async { Ok(()) })
    }
}

fn recorder(log: &Log, name: impl Into<String>) -> Box<dyn RunningComponent> {
    let name = name.into();
    log.lock().push(format!("start {name}"));
    Box::new(Recorder {
        log: log.clone(),
        name,
    })
}

struct Fake {
    type_name: &'static str,
    log: Log,
}

impl FactoryInfo for Fake {
    fn type_name(&self) -> &'static str {
        self.type_name
    }
    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            #[allow(dead_code)]
            endpoint: Option<String>,
        }
        config.parse::<Cfg>().map(|_| ())
    }
}

struct Counting(Log);

impl TracesConsumer for Counting {
    fn reserve(&self, _: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        let log = self.0.clone();
        Ok(Box::new(CommitFn(move |b: TracesBatch| {
            log.lock().push(format!("got {}", b.span_count))
        })))
    }
}

impl MetricsSource for Counting {
    fn collect(&self, _: &mut dyn MetricsSink) {}
}

impl ReceiverFactory for Fake {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }
    fn build_traces(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        next: Arc<dyn TracesConsumer>,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        let r = recorder(&self.log, format!("receiver {}", config.id()));
        Box::pin(async move {
            next.consume(TracesBatch::new(bytes::Bytes::new(), 7))
                .map_err(|e| BuildError::new(&ComponentId::new("x", None), e))?;
            Ok(r)
        })
    }
}

impl ExporterFactory for Fake {
    fn signals(&self) -> &'static [Signal] {
        if self.type_name == "prom" {
            &[Signal::Metrics]
        } else {
            &[Signal::Traces]
        }
    }
    fn build_traces(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
    ) -> BuildResult<(Arc<dyn TracesConsumer>, Box<dyn RunningComponent>)> {
        let r = recorder(&self.log, format!("exporter {}", config.id()));
        let c: Arc<dyn TracesConsumer> = Arc::new(Counting(self.log.clone()));
        Box::pin(async move { Ok((c, r)) })
    }
    fn build_metrics(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        let r = recorder(
            &self.log,
            format!("exporter {} sources={}", config.id(), sources.len()),
        );
        Box::pin(async move { Ok(r) })
    }
}

impl ConnectorFactory for Fake {
    fn signals(&self) -> &'static [(Signal, Signal)] {
        &[(Signal::Traces, Signal::Metrics)]
    }
    fn build(&self, config: &ComponentConfig, _: &BuildContext) -> BuildResult<ConnectorParts> {
        let running = recorder(&self.log, format!("connector {}", config.id()));
        let c = Arc::new(Counting(self.log.clone()));
        Box::pin(async move {
            Ok(ConnectorParts {
                traces: c.clone(),
                metrics: c,
                running,
            })
        })
    }
}

fn factories(log: &Log) -> Factories {
    let fake = |t| Fake {
        type_name: t,
        log: log.clone(),
    };
    let mut f = Factories::default();
    f.receiver(fake("otlp"))
        .exporter(fake("otlp"))
        .exporter(fake("prom"))
        .connector(fake("spanmetrics"));
    f
}

const GOOD: &str = "\
receivers:
  otlp:
connectors:
  spanmetrics:
exporters:
  otlp/tempo:
    endpoint: tempo:4317
  prom:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prom]
";

fn errors_of(yaml: &str) -> Vec<String> {
    let log = Log::default();
    let config = load_str("test.yaml", yaml).expect("loads");
    match validate(&config, &factories(&log)) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn good_graph_validates() {
    assert_eq!(errors_of(GOOD), Vec::<String>::new());
}

#[test]
fn dangling_reference_names_the_pipeline_list_and_line() {
    let errors = errors_of(&GOOD.replace("[spanmetrics, otlp/tempo]", "[spanmetrics, otlp/tmpo]"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("test.yaml:13:")
            && errors[0].contains("service.pipelines.traces.exporters: references `otlp/tmpo`"),
        "{}",
        errors[0]
    );
}

#[test]
fn unknown_type_lists_supported_ones() {
    let errors = errors_of(
        &GOOD
            .replace("  otlp/tempo:", "  jaeger/tempo:")
            .replace("otlp/tempo]", "jaeger/tempo]"),
    );
    assert!(
        errors.iter().any(
            |e| e.contains("exporters.jaeger/tempo: unknown exporter type `jaeger`")
                && e.contains("otlp, prom")
        ),
        "{errors:?}"
    );
}

#[test]
fn connector_on_one_side_only_is_an_error() {
    let yaml = GOOD.replace(
        "      receivers: [spanmetrics]\n      exporters: [prom]\n",
        "      receivers: [otlp]\n      exporters: [prom]\n",
    );
    let errors = errors_of(&yaml);
    assert!(
        errors
            .iter()
            .any(|e| e
                .contains("connectors.spanmetrics: is used as an exporter but not as a receiver")),
        "{errors:?}"
    );
    // The otlp receiver makes no metrics.
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`otlp` does not support metrics pipelines")),
        "{errors:?}"
    );
}

#[test]
fn wrong_signal_and_component_config_errors_are_all_reported() {
    let yaml = GOOD
        .replace(
            "exporters: [spanmetrics, otlp/tempo]",
            "exporters: [spanmetrics, otlp/tempo, prom]",
        )
        .replace(
            "endpoint: tempo:4317",
            "endpoint: tempo:4317\n    endpont: x",
        );
    let errors = errors_of(&yaml);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors
        .iter()
        .any(|e| e.contains("exporters.otlp/tempo.endpont: unknown field")));
    assert!(errors
        .iter()
        .any(|e| e.contains("`prom` does not support traces pipelines")));
}

#[test]
fn unused_component_is_a_warning() {
    let log = Log::default();
    let yaml = GOOD.replace("  prom:\n", "  prom:\n  otlp/spare:\n");
    let config = load_str("test.yaml", &yaml).expect("loads");
    let warnings = validate(&config, &factories(&log)).expect("valid");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0]
        .0
        .contains("exporters.otlp/spare is defined but not used"));
}

#[tokio::test]
async fn starts_downstream_first_and_stops_receivers_first() {
    let log = Log::default();
    let config = load_str("test.yaml", GOOD).expect("loads");
    let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
    let service = Service::start(&config, &factories(&log), ctx)
        .await
        .expect("starts");
    service
        .shutdown(Instant::now() + std::time::Duration::from_secs(1))
        .await;
    assert_eq!(
        *log.lock(),
        vec![
            "start connector spanmetrics",
            "start exporter otlp/tempo",
            "start exporter prom sources=1",
            "start receiver otlp",
            // The receiver's first batch reached both consumers of the traces pipeline.
            "got 7",
            "got 7",
            "stop receiver otlp",
            "stop connector spanmetrics",
            "stop exporter otlp/tempo",
            "stop exporter prom sources=1",
        ]
    );
}

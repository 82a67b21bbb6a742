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
use crate::Batch;

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

impl Consumer for Counting {
    fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let log = self.0.clone();
        Ok(Box::new(CommitFn(move |b: Batch| {
            log.lock().push(format!("got {}", b.items))
        })))
    }
}

impl MetricsSource for Counting {
    fn collect(&self, _: &mut dyn MetricsSink) {}
}

impl ReceiverFactory for Fake {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        if let Some(budget) = ctx.body_budget {
            self.log
                .lock()
                .push(format!("receiver {} body budget {budget}", config.id()));
        }
        let r = recorder(&self.log, format!("receiver {}", config.id()));
        Box::pin(async move {
            for signal in next.signals() {
                if let Some(consumer) = next.get(signal) {
                    consumer
                        .consume(Batch::new(signal, bytes::Bytes::new(), 7))
                        .map_err(|e| BuildError::new(&ComponentId::new("x", None), e))?;
                }
            }
            Ok(r)
        })
    }
}

impl ExporterFactory for Fake {
    fn signals(&self) -> &'static [Signal] {
        if self.type_name == "prom" {
            &[Signal::Metrics]
        } else {
            &Signal::ALL
        }
    }
    fn metrics_flow(&self) -> MetricsFlow {
        if self.type_name == "prom" {
            MetricsFlow::Sources
        } else {
            MetricsFlow::Batches
        }
    }
    fn build(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        signal: Signal,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let name = if signal == Signal::Traces {
            format!("exporter {}", config.id())
        } else {
            format!("exporter {} {signal}", config.id())
        };
        let r = recorder(&self.log, name);
        let c: Arc<dyn Consumer> = Arc::new(Counting(self.log.clone()));
        Box::pin(async move { Ok((c, r)) })
    }
    fn build_metrics_reader(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        sources: Vec<Arc<dyn MetricsSource>>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let r = recorder(
            &self.log,
            format!("exporter {} sources={}", config.id(), sources.len()),
        );
        let c: Arc<dyn Consumer> = Arc::new(Counting(self.log.clone()));
        Box::pin(async move { Ok((c, r)) })
    }
}

/// Passes each batch to the pipelines of its signal, as `forward` does.
struct Forwarding(SignalConsumers);

impl Consumer for Forwarding {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        match self.0.get(batch.signal) {
            Some(next) => next.reserve(batch),
            None => Err(Refused {
                component: "fwd".into(),
                reason: "no pipeline".into(),
                retry_after: std::time::Duration::from_secs(1),
                permanent: false,
            }),
        }
    }
}

impl ConnectorFactory for Fake {
    fn signals(&self) -> &'static [(Signal, Signal)] {
        if self.type_name == "fwd" {
            &[
                (Signal::Traces, Signal::Traces),
                (Signal::Metrics, Signal::Metrics),
                (Signal::Logs, Signal::Logs),
            ]
        } else {
            &[(Signal::Traces, Signal::Metrics)]
        }
    }
    fn metrics_flow(&self) -> MetricsFlow {
        if self.type_name == "fwd" {
            MetricsFlow::Batches
        } else {
            MetricsFlow::Sources
        }
    }
    fn build(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<ConnectorParts> {
        let pushing = if next.get(Signal::Metrics).is_some() && self.type_name != "fwd" {
            " pushes metrics"
        } else {
            ""
        };
        let running = recorder(&self.log, format!("connector {}{pushing}", config.id()));
        let forwarding = self.type_name == "fwd";
        let c = Arc::new(Counting(self.log.clone()));
        Box::pin(async move {
            Ok(if forwarding {
                ConnectorParts {
                    input: Arc::new(Forwarding(next)),
                    metrics: None,
                    running,
                }
            } else {
                ConnectorParts {
                    input: c.clone(),
                    metrics: Some(c),
                    running,
                }
            })
        })
    }
}

impl crate::component::ProcessorFactory for Fake {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }
    fn edits_data(&self) -> bool {
        self.type_name != "batch"
    }
    fn body_budget(&self, config: &ComponentConfig) -> Option<u64> {
        (self.type_name == "limiter").then(|| match config.id().name() {
            Some("small") => 500,
            _ => 1000,
        })
    }
    fn build(
        &self,
        config: &ComponentConfig,
        _: &BuildContext,
        signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let r = recorder(&self.log, format!("processor {} {signal}", config.id()));
        Box::pin(async move { Ok((next, r)) })
    }
}

/// Starts the fake components of `config`, then stops them; what they did is in `log`.
async fn start_and_stop(config: &Config, log: &Log) {
    let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
    let service = Service::start(config, &factories(log), ctx)
        .await
        .expect("starts");
    service
        .shutdown(Instant::now() + std::time::Duration::from_secs(1))
        .await;
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
        .connector(fake("spanmetrics"))
        .connector(fake("fwd"))
        .processor(fake("transform"))
        .processor(fake("limiter"))
        .processor(fake("batch"));
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
        errors.iter().any(|e| e
            .contains("exporters.jaeger/tempo: exporter `jaeger` is not supported by Redline")
            && e.contains("Redline's exporters: otlp, prom")),
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
    assert_eq!(errors.len(), 1, "{errors:?}");
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
        .contains("exporters.otlp/spare: defined but not used"));
}

#[tokio::test]
async fn starts_downstream_first_and_stops_receivers_first() {
    let log = Log::default();
    let config = load_str("test.yaml", GOOD).expect("loads");
    start_and_stop(&config, &log).await;
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

const THREE_SIGNALS: &str = "\
receivers:
  otlp:
connectors:
  spanmetrics:
  fwd:
exporters:
  otlp/tempo:
  otlp/loki:
  prom:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, fwd]
    traces/out:
      receivers: [fwd]
      exporters: [otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prom]
    metrics/app:
      receivers: [otlp]
      exporters: [otlp/tempo]
    logs:
      receivers: [otlp]
      exporters: [fwd]
    logs/out:
      receivers: [fwd]
      exporters: [otlp/loki]
";

#[tokio::test]
async fn three_signals_and_forward_connectors_are_wired_before_receivers_start() {
    assert_eq!(errors_of(THREE_SIGNALS), Vec::<String>::new());
    let log = Log::default();
    let config = load_str("test.yaml", THREE_SIGNALS).expect("loads");
    let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
    let service = Service::start(&config, &factories(&log), ctx)
        .await
        .expect("starts");
    service
        .shutdown(Instant::now() + std::time::Duration::from_secs(1))
        .await;
    let log = log.lock().clone();
    let pos = |needle: &str| {
        log.iter()
            .position(|l| l == needle)
            .unwrap_or_else(|| panic!("no {needle:?} in {log:#?}"))
    };
    // One exporter instance per id and signal.
    for started in [
        "start exporter otlp/tempo",
        "start exporter otlp/tempo metrics",
        "start exporter otlp/loki logs",
        "start exporter prom sources=1",
    ] {
        assert!(pos(started) < pos("start receiver otlp"), "{log:#?}");
    }
    // traces: spanmetrics and (through fwd) otlp/tempo; metrics: otlp/tempo; logs: (through
    // fwd) otlp/loki. Four deliveries of the receiver's batch of 7.
    assert_eq!(log.iter().filter(|l| *l == "got 7").count(), 4, "{log:#?}");
    assert!(pos("stop receiver otlp") < pos("stop connector fwd"));
    assert!(pos("stop connector fwd") < pos("stop exporter otlp/loki logs"));
}

#[test]
fn connector_cycles_are_refused() {
    let yaml = THREE_SIGNALS.replace(
        "    traces/out:\n      receivers: [fwd]\n      exporters: [otlp/tempo]\n",
        "    traces/out:\n      receivers: [fwd]\n      exporters: [fwd]\n",
    );
    let errors = errors_of(&yaml);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("connectors form a cycle through pipelines")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn span_metrics_are_pushed_only_where_an_exporter_cannot_read_them() {
    // `prom` reads the connector's store and takes the OTLP batches of `metrics/app`;
    // `otlp/tempo` can only take batches, so the connector pushes into `metrics` too.
    let yaml = THREE_SIGNALS
        .replace(
            "      receivers: [spanmetrics]\n      exporters: [prom]\n",
            "      receivers: [spanmetrics]\n      exporters: [prom, otlp/tempo]\n",
        )
        .replace(
            "      receivers: [otlp]\n      exporters: [otlp/tempo]\n",
            "      receivers: [otlp]\n      exporters: [otlp/tempo, prom]\n",
        );
    assert_eq!(errors_of(&yaml), Vec::<String>::new());
    let log = Log::default();
    let config = load_str("test.yaml", &yaml).expect("loads");
    let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
    let service = Service::start(&config, &factories(&log), ctx)
        .await
        .expect("starts");
    service
        .shutdown(Instant::now() + std::time::Duration::from_secs(1))
        .await;
    let log = log.lock().clone();
    assert!(
        log.iter()
            .any(|l| l == "start connector spanmetrics pushes metrics"),
        "{log:#?}"
    );
    // The receiver's batch of 7: spanmetrics and fwd→otlp/tempo (traces), otlp/tempo and
    // prom (metrics), fwd→otlp/loki (logs).
    assert_eq!(log.iter().filter(|l| *l == "got 7").count(), 5, "{log:#?}");

    // Without a batch-only exporter the connector is only read, never pushed from.
    let log = Log::default();
    let config = load_str("test.yaml", THREE_SIGNALS).expect("loads");
    let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
    let service = Service::start(&config, &factories(&log), ctx)
        .await
        .expect("starts");
    service
        .shutdown(Instant::now() + std::time::Duration::from_secs(1))
        .await;
    assert!(log
        .lock()
        .iter()
        .any(|l| l == "start connector spanmetrics"));
}

#[tokio::test]
async fn a_processor_that_edits_metrics_sees_span_metrics_pushed_through_it() {
    // With `transform` in the metrics pipeline, `prom` must not read the store past it: the
    // connector pushes, the batches pass the processor, `prom` takes them (no source).
    // `batch` changes nothing, so with it the store is still read in place.
    for (processor, connector, exporter) in [
        (
            "transform",
            "start connector spanmetrics pushes metrics",
            "start exporter prom sources=0",
        ),
        (
            "batch",
            "start connector spanmetrics",
            "start exporter prom sources=1",
        ),
    ] {
        let yaml = GOOD
            .replace(
                "service:",
                &format!("processors:\n  {processor}:\nservice:"),
            )
            .replace(
                "      receivers: [spanmetrics]\n",
                &format!("      receivers: [spanmetrics]\n      processors: [{processor}]\n"),
            );
        assert_eq!(errors_of(&yaml), Vec::<String>::new());
        let log = Log::default();
        let config = load_str("test.yaml", &yaml).expect("loads");
        let ctx = BuildContext::new(crate::telemetry::Telemetry::new());
        let service = Service::start(&config, &factories(&log), ctx)
            .await
            .expect("starts");
        service
            .shutdown(Instant::now() + std::time::Duration::from_secs(1))
            .await;
        let log = log.lock().clone();
        assert!(log.iter().any(|l| l == connector), "{processor}: {log:#?}");
        assert!(log.iter().any(|l| l == exporter), "{processor}: {log:#?}");
    }
}

#[test]
fn unknown_connector_type_gives_one_error() {
    let yaml = THREE_SIGNALS
        .replace("  fwd:\n", "  fwd:\n  routing:\n")
        .replace(
            "      receivers: [fwd]\n      exporters: [otlp/loki]\n",
            "      receivers: [routing]\n      exporters: [otlp/loki]\n",
        )
        .replace(
            "      receivers: [otlp]\n      exporters: [fwd]\n    logs/out",
            "      receivers: [otlp]\n      exporters: [routing]\n    logs/out",
        );
    let errors = errors_of(&yaml);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("connectors.routing: connector `routing` is not supported by Redline"),
        "{errors:?}"
    );
}

#[test]
fn service_mistakes_do_not_hide_component_errors() {
    let log = Log::default();
    let yaml = GOOD
        .replace(
            "endpoint: tempo:4317",
            "endpoint: tempo:4317\n    endpont: x",
        )
        .replace(
            "  pipelines:\n",
            "  telemetry:\n    metrics: {level: chatty}\n  pipelines:\n",
        )
        .replace(
            "      receivers: [spanmetrics]\n",
            "      receivers: [spanmetrics]\n      procesors: [x]\n",
        );
    let (config, load_errors) =
        crate::config::load_str_lenient("test.yaml", &yaml).expect("is YAML");
    assert_eq!(load_errors.len(), 2, "{load_errors:?}");
    let errors = super::validate_after_load_errors(&config, &factories(&log), load_errors)
        .expect_err("invalid");
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(shown
        .iter()
        .any(|e| e.contains("service.telemetry.metrics.level")));
    assert!(shown
        .iter()
        .any(|e| e.contains("service.pipelines.metrics.procesors")));
    assert!(shown
        .iter()
        .any(|e| e.contains("exporters.otlp/tempo.endpont: unknown field")));
}

#[tokio::test]
async fn a_receiver_gets_the_smallest_body_budget_of_the_pipelines_it_feeds() {
    let log = Log::default();
    let config = load_str(
        "test.yaml",
        "\
receivers:
  otlp:
  otlp/other:
processors:
  limiter:
  limiter/small:
exporters:
  otlp/tempo:
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [limiter]
      exporters: [otlp/tempo]
    logs:
      receivers: [otlp, otlp/other]
      processors: [limiter/small]
      exporters: [otlp/tempo]
    metrics:
      receivers: [otlp/other]
      exporters: [otlp/tempo]
",
    )
    .expect("loads");
    start_and_stop(&config, &log).await;
    let budgets: Vec<String> = log
        .lock()
        .iter()
        .filter(|l| l.contains("body budget"))
        .cloned()
        .collect();
    assert_eq!(
        budgets,
        vec![
            "receiver otlp body budget 500",
            "receiver otlp/other body budget 500",
        ]
    );
}

#[test]
fn the_host_is_described_as_otelcol_shows_it() {
    let log = Log::default();
    let yaml = format!(
        "{GOOD}    traces/edited:\n      receivers: [otlp]\n      processors: [limiter, transform]\n      \
         exporters: [otlp/tempo]\n    traces/limited:\n      receivers: [otlp]\n      \
         processors: [batch]\n      exporters: [otlp/tempo]\n"
    );
    let config = load_str("test.yaml", &yaml).expect("loads");
    let host = crate::host::HostInfo::default().describe(&config, &factories(&log));
    let row = |id: &str| {
        host.pipelines
            .iter()
            .find(|p| p.id == id)
            .expect("described")
    };
    let traces = row("traces");
    assert_eq!(traces.exporters, ["spanmetrics (connector)", "otlp/tempo"]);
    assert!(!traces.mutates_data && traces.processors.is_empty());
    assert_eq!(row("metrics").receivers, ["spanmetrics (connector)"]);
    let edited = row("traces/edited");
    assert_eq!(edited.processors, ["limiter", "transform"]);
    assert!(edited.mutates_data);
    // The fake batch declares no change to data (otelcol's memory_limiter is such a one).
    assert!(!row("traces/limited").mutates_data);
    assert!(host.extensions.is_empty());
}

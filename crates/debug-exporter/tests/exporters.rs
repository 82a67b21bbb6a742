//! The `debug`, `logging` and `nop` exporters built from YAML by their factories: what they
//! print, what they count, and what they refuse in a config.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redline_debug_exporter::{
    DebugConfig, DebugExporterFactory, LoggingConfig, LoggingExporterFactory, NopExporterFactory,
    Verbosity,
};
use redline_pipeline::component::FactoryInfo;
use redline_pipeline::config::load_str;
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::{
    Batch, BuildContext, ComponentConfig, ConfigError, ExporterFactory, Signal,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn section(type_name: &str, yaml: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n\
         exporters:\n  {type_name}:\n{yaml}\n\
         service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [{type_name}]\n"
    );
    load_str("test.yaml", &text)
        .expect("file loads")
        .exporters
        .into_iter()
        .next()
        .expect("exporter section")
}

fn debug_error(yaml: &str) -> ConfigError {
    DebugExporterFactory
        .validate(&section("debug", yaml))
        .expect_err("invalid")
}

fn batch(signal: Signal, name: &str, items: usize) -> Batch {
    Batch::new(signal, Bytes::from(fixture(name)), items)
}

#[test]
fn debug_defaults_are_otelcols() {
    let s = section("debug", "");
    DebugExporterFactory.validate(&s).expect("valid");
    let c: DebugConfig = s.parse().expect("parses");
    assert_eq!(c.verbosity, Verbosity::Basic);
    assert_eq!((c.sampling_initial, c.sampling_thereafter), (2, 1));
    assert!(c.use_internal_logger);
    let c: DebugConfig = section("debug", "    verbosity: Detailed")
        .parse()
        .expect("case-insensitive like otelcol");
    assert_eq!(c.verbosity, Verbosity::Detailed);
}

#[test]
fn bad_debug_keys_are_named() {
    let e = debug_error("    verbosity: loud");
    assert_eq!(e.path, "exporters.debug.verbosity", "{e}");
    let e = debug_error("    verbosity: none");
    assert!(e.reason.contains("nop"), "{e}");
    let e = debug_error("    verbosty: basic");
    assert!(e.to_string().contains("verbosty"), "{e}");
    let e = debug_error("    output_paths: [stderr]");
    assert_eq!(e.path, "exporters.debug.output_paths", "{e}");
    let e = debug_error("    sampling_initial: -1");
    assert_eq!(e.path, "exporters.debug.sampling_initial", "{e}");
    let e = debug_error("    sending_queue:\n      enabled: true");
    assert!(e.reason.contains("not support"), "{e}");
    DebugExporterFactory
        .validate(&section(
            "debug",
            "    use_internal_logger: false\n    output_paths: [stdout, stderr]",
        ))
        .expect("valid");
}

#[test]
fn logging_is_accepted_with_its_old_keys() {
    let s = section(
        "logging",
        "    loglevel: debug\n    sampling_initial: 5\n    sampling_thereafter: 200",
    );
    LoggingExporterFactory.validate(&s).expect("valid");
    let c: LoggingConfig = s.parse().expect("parses");
    assert_eq!(c.verbosity(), Ok(Verbosity::Detailed));
    let c: LoggingConfig = section("logging", "").parse().expect("parses");
    assert_eq!(c.verbosity(), Ok(Verbosity::Normal));
    assert_eq!(
        c.sampling_thereafter, 500,
        "the logging exporter's own default"
    );
    let e = LoggingExporterFactory
        .validate(&section(
            "logging",
            "    loglevel: info\n    verbosity: basic",
        ))
        .expect_err("both");
    assert_eq!(e.path, "exporters.logging.loglevel", "{e}");
    let e = LoggingExporterFactory
        .validate(&section("logging", "    use_internal_logger: false"))
        .expect_err("a debug-only key");
    assert!(e.to_string().contains("use_internal_logger"), "{e}");
}

#[test]
fn nop_takes_no_settings() {
    NopExporterFactory
        .validate(&section("nop", ""))
        .expect("valid");
    let e = NopExporterFactory
        .validate(&section("nop", "    verbosity: basic"))
        .expect_err("no keys");
    assert!(e.to_string().contains("verbosity"), "{e}");
}

/// Polls `cond` until it holds or 10 s pass.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

#[tokio::test]
async fn debug_writes_otelcols_console_output_and_counts_per_signal() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("debug.txt");
    let s = section(
        "debug",
        &format!(
            "    verbosity: normal\n    use_internal_logger: false\n    output_paths: [\"{}\"]",
            out.display()
        ),
    );
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    let mut expected = String::new();
    let mut running = Vec::new();
    for (signal, name, items) in [
        (Signal::Traces, "traces", 4),
        (Signal::Metrics, "metrics", 11),
        (Signal::Logs, "logs", 4),
    ] {
        let (consumer, r) = DebugExporterFactory
            .build(&s, &ctx, signal)
            .await
            .expect("builds");
        consumer
            .consume(batch(signal, &format!("{name}.pb"), items))
            .expect("never refuses");
        let text = String::from_utf8(fixture(&format!("{name}.normal.txt"))).expect("utf-8");
        // Wait for this signal's output before the next, so the file's order is known.
        expected.push_str(&text);
        let want = expected.clone();
        assert!(
            eventually(|| std::fs::read_to_string(&out).unwrap_or_default() == want).await,
            "{signal} printed as otelcol does"
        );
        let counters = telemetry.exporter("debug", signal);
        assert_eq!(counters.sent.load(Ordering::SeqCst), items as u64);
        assert_eq!(counters.send_failed.load(Ordering::SeqCst), 0);
        running.push(r);
    }
    for r in running {
        r.shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
    }
}

#[tokio::test]
async fn sampling_prints_the_first_batches_of_each_second() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("sampled.txt");
    let s = section(
        "debug",
        &format!(
            "    use_internal_logger: false\n    sampling_initial: 2\n    sampling_thereafter: 0\n    output_paths: [\"{}\"]",
            out.display()
        ),
    );
    let telemetry = Telemetry::new();
    let (consumer, running) = DebugExporterFactory
        .build(&s, &BuildContext::new(telemetry.clone()), Signal::Logs)
        .await
        .expect("builds");
    for _ in 0..5 {
        consumer
            .consume(batch(Signal::Logs, "logs.pb", 4))
            .expect("never refuses");
    }
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let printed = std::fs::read_to_string(&out).expect("output");
    let line = String::from_utf8(fixture("logs.basic.txt")).expect("utf-8");
    assert_eq!(printed, line.repeat(2), "two printed, the rest sampled out");
    let sent = telemetry
        .exporter("debug", Signal::Logs)
        .sent
        .load(Ordering::SeqCst);
    assert_eq!(sent, 20, "sampled-out batches are still exported");
}

#[tokio::test]
async fn shutdown_prints_what_is_queued_and_later_batches_are_only_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("drain.txt");
    let s = section(
        "debug",
        &format!(
            "    verbosity: detailed\n    use_internal_logger: false\n    output_paths: [\"{}\"]",
            out.display()
        ),
    );
    let telemetry = Telemetry::new();
    let (consumer, running) = DebugExporterFactory
        .build(&s, &BuildContext::new(telemetry.clone()), Signal::Metrics)
        .await
        .expect("builds");
    for _ in 0..3 {
        consumer
            .consume(batch(Signal::Metrics, "metrics.pb", 11))
            .expect("never refuses");
    }
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let one = String::from_utf8(fixture("metrics.detailed.txt")).expect("utf-8");
    assert_eq!(
        std::fs::read_to_string(&out).expect("output"),
        one.repeat(3)
    );
    consumer
        .consume(batch(Signal::Metrics, "metrics.pb", 11))
        .expect("still never refuses");
    let sent = telemetry
        .exporter("debug", Signal::Metrics)
        .sent
        .load(Ordering::SeqCst);
    assert_eq!(sent, 44);
    assert_eq!(
        std::fs::read_to_string(&out).expect("output"),
        one.repeat(3),
        "nothing printed after shutdown"
    );
}

#[tokio::test]
async fn the_internal_logger_path_prints_without_failing() {
    // Output through `tracing` is not captured here; the batches must be taken and counted.
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    for (factory, yaml, type_name) in [
        (
            &DebugExporterFactory as &dyn ExporterFactory,
            "    verbosity: detailed",
            "debug",
        ),
        (&LoggingExporterFactory, "    loglevel: info", "logging"),
    ] {
        let (consumer, running) = factory
            .build(&section(type_name, yaml), &ctx, Signal::Traces)
            .await
            .expect("builds");
        consumer
            .consume(batch(Signal::Traces, "traces.pb", 4))
            .expect("never refuses");
        running
            .shutdown(Instant::now() + Duration::from_secs(5))
            .await
            .expect("clean shutdown");
        let sent = telemetry
            .exporter(type_name, Signal::Traces)
            .sent
            .load(Ordering::SeqCst);
        assert_eq!(sent, 4, "{type_name}");
    }
}

#[tokio::test]
async fn nop_counts_everything_and_prints_nothing() {
    let telemetry = Telemetry::new();
    let ctx = BuildContext::new(telemetry.clone());
    for signal in Signal::ALL {
        let (consumer, running) = NopExporterFactory
            .build(&section("nop", ""), &ctx, signal)
            .await
            .expect("builds");
        for _ in 0..3 {
            consumer
                .consume(Batch::new(
                    signal,
                    Bytes::from_static(b"not even decoded"),
                    7,
                ))
                .expect("never refuses");
        }
        assert_eq!(
            telemetry
                .exporter("nop", signal)
                .sent
                .load(Ordering::SeqCst),
            21
        );
        running
            .shutdown(Instant::now() + Duration::from_secs(1))
            .await
            .expect("nothing to stop");
    }
}

//! Metrics and logs over real gRPC on 127.0.0.1: loadgen's senders to its own sink, which
//! must count exactly the requests, items and bytes sent, per signal; and the binary's
//! `--signal ... --verify` against its in-process sink.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use redline_loadgen::engine::{self, Live, Pacing, Plan, Stop};
use redline_loadgen::model::{Generator, ModelConfig};
use redline_loadgen::send::{Conn, Protocol, Target};
use redline_loadgen::signal::Signal;
use redline_loadgen::sink::{Sink, SinkConfig};
use redline_loadgen::templates::prepare;

const BASE: u64 = 1_700_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_logs_reach_the_sink_exactly() {
    let sink = Sink::start(SinkConfig {
        check: true,
        ..Default::default()
    })
    .await
    .expect("sink starts");
    let traces = Generator::new(ModelConfig::default(), 5).expect("model");
    for signal in [Signal::Metrics, Signal::Logs] {
        let before = sink.counts();
        let templates = Arc::new(
            prepare(signal, &traces, 8, BASE, None)
                .expect("templates")
                .templates,
        );
        let target = Target {
            endpoint: format!("127.0.0.1:{}", sink.addr.port()),
            protocol: Protocol::Grpc,
            gzip: signal == Signal::Logs,
            timeout: Duration::from_secs(10),
            signal,
            headers: http::HeaderMap::new(),
        };
        let mut conns = Vec::new();
        for _ in 0..2 {
            conns.push(Conn::connect(&target).await.expect("connects"));
        }
        let live = Arc::new(Live::new(templates.len()));
        let plan = Plan {
            rate_rps: None,
            stop: Stop::Requests(100),
            connections: 2,
            concurrency: 4,
            retry: Default::default(),
            pacing: Pacing::Thread,
        };
        engine::run(plan, templates.clone(), conns, live.clone(), BASE).await;
        assert_eq!(live.requests_accepted.load(Relaxed), 100, "{signal:?}");
        // 100 sends round-robin over 8 templates: 13 of the first 4, 12 of the others.
        let sent_items: u64 = (0..100).map(|k| templates[k % 8].items() as u64).sum();
        let sent_bytes: u64 = (0..100).map(|k| templates[k % 8].len() as u64).sum();
        assert_eq!(live.spans_accepted.load(Relaxed), sent_items);
        let now = sink.counts();
        let (r, i, b) = now.of(signal);
        let (r0, i0, b0) = before.of(signal);
        assert_eq!(
            (r - r0, i - i0, b - b0),
            (100, sent_items, sent_bytes),
            "{signal:?}"
        );
        assert_eq!(
            (now.requests, now.spans),
            (0, 0),
            "nothing counted as traces"
        );
        assert_eq!(now.malformed_requests, 0);
    }
    let c = sink.counts();
    assert!(c.data_points > 0 && c.log_records > 0);
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_the_wrong_signal_is_refused() {
    let sink = Sink::start(SinkConfig::default()).await.expect("sink");
    let traces = Generator::new(ModelConfig::default(), 5).expect("model");
    let logs = prepare(Signal::Logs, &traces, 1, BASE, None).expect("templates");
    // Log records sent to the metrics service do not walk as metrics.
    let target = Target {
        endpoint: format!("127.0.0.1:{}", sink.addr.port()),
        protocol: Protocol::Grpc,
        gzip: false,
        timeout: Duration::from_secs(10),
        signal: Signal::Metrics,
        headers: http::HeaderMap::new(),
    };
    let conn = Conn::connect(&target).await.expect("connects");
    let live = Arc::new(Live::new(1));
    let plan = Plan {
        rate_rps: None,
        stop: Stop::Requests(1),
        connections: 1,
        concurrency: 1,
        retry: Default::default(),
        pacing: Pacing::Thread,
    };
    engine::run(
        plan,
        Arc::new(logs.templates),
        vec![conn],
        live.clone(),
        BASE,
    )
    .await;
    assert_eq!(live.requests_refused.load(Relaxed), 1);
    let by = live.refused_by_status.lock().expect("lock").clone();
    assert!(by.contains_key("INVALID_ARGUMENT"), "{by:?}");
    assert_eq!(sink.counts().malformed_requests, 1);
    sink.stop().await;
}

fn run_binary(signal: &str) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--signal",
            signal,
            "--endpoint",
            "sink",
            "--sink",
            "127.0.0.1:0",
            "--sink-check",
            "--requests",
            "60",
            "--templates",
            "8",
            "--verify",
            "--quiet",
            "--json",
            "-",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

#[test]
fn the_binary_verifies_metrics_and_logs_at_its_own_sink() {
    for (signal, key) in [("metrics", "data_points"), ("logs", "log_records")] {
        let r = run_binary(signal);
        assert_eq!(r["signal"], signal);
        assert_eq!(r["accepted"]["requests"], 60);
        let items = r["accepted"]["spans"].as_u64().expect("items");
        assert!(items > 60 * 50, "{signal}: {items}");
        assert_eq!(r["sink"][key], items);
        assert_eq!(r["sink"]["spans"], 0);
        let v = &r["verify"];
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["sink"]["received_spans"], items);
        assert_eq!(v["sink"]["expected_requests"], 60);
        assert_eq!(v["sink"]["received_bytes"], v["sink"]["accepted_bytes"]);
        let bytes = r["bytes_per_request"].as_f64().expect("bytes");
        assert!((38_000.0..48_000.0).contains(&bytes), "{signal}: {bytes} B");
    }
}

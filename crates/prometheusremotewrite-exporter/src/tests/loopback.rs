//! The exporter against a tiny in-process remote-write receiver on 127.0.0.1: headers,
//! retries, drops, periodic and final pushes, shutdown against a dead endpoint.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use redline_net_testkit::ClosedPort;
use redline_pipeline::component::FactoryInfo as _;
use redline_pipeline::{ExporterFactory as _, MetricsSource, RunningComponent};

use super::*;
use crate::config::Config;

/// What the receiver got: the status it answered, the headers and the (compressed) body.
#[derive(Clone, Debug)]
pub(super) struct Received {
    pub(super) status: u16,
    headers: HeaderMap,
    pub(super) body: Bytes,
}

#[derive(Default)]
pub(super) struct Receiver {
    /// Statuses to answer with, in order; 204 once empty.
    script: Mutex<VecDeque<u16>>,
    got: Mutex<Vec<Received>>,
}

impl Receiver {
    pub(super) fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

async fn write(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let status = r.script.lock().expect("lock").pop_front().unwrap_or(204);
    r.got.lock().expect("lock").push(Received {
        status,
        headers,
        body,
    });
    let status = StatusCode::from_u16(status).expect("status");
    (
        status,
        if status.is_success() {
            ""
        } else {
            "scripted failure"
        },
    )
}

pub(super) async fn receiver(script: &[u16]) -> (Arc<Receiver>, SocketAddr) {
    let r = Arc::new(Receiver {
        script: Mutex::new(script.iter().copied().collect()),
        got: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/api/v1/write", post(write))
        .with_state(r.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (r, addr)
}

pub(super) fn yaml(body: &str) -> ComponentConfig {
    let text = format!(
        "exporters:\n  prometheusremotewrite:\n{body}\nservice:\n  pipelines:\n    metrics:\n      receivers: [spanmetrics]\n      exporters: [prometheusremotewrite]\n"
    );
    redline_pipeline::config::load_str("redline.yaml", &text)
        .unwrap_or_else(|e| panic!("loads: {e}"))
        .exporters
        .into_iter()
        .next()
        .expect("one exporter")
}

use redline_pipeline::ComponentConfig;

/// Starts the exporter on `addr` with fast retries and the extra YAML lines.
fn start(addr: SocketAddr, extra: &str, source: Arc<dyn MetricsSource>) -> crate::Running {
    let retry = if extra.contains("retry_on_failure") {
        ""
    } else {
        "    retry_on_failure:\n      initial_interval: 10ms\n      max_interval: 20ms\n"
    };
    let body = format!("    endpoint: http://{addr}/api/v1/write\n{retry}{extra}");
    let c: Config = yaml(&body).parse().expect("parses");
    let settings = c.settings().expect("valid");
    crate::start("prometheusremotewrite", settings, vec![source]).expect("starts")
}

pub(super) async fn stop(
    r: crate::Running,
    within: Duration,
) -> Result<(), redline_pipeline::ShutdownError> {
    let stopped = tokio::time::timeout(
        within + Duration::from_secs(5),
        Box::new(r).shutdown(Instant::now() + within),
    )
    .await;
    stopped.expect("shutdown returns by its deadline (plus slack)")
}

pub(super) async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_429_then_delivers_the_final_push() {
    let (rx, addr) = receiver(&[500, 429, 503]).await;
    let running = start(
        addr,
        "    push_interval: 1h\n    headers:\n      X-Scope-OrgID: tenant-1\n    external_labels:\n      instance: redline-1",
        Arc::new(Spanlike::new(17)),
    );
    let stats = running.stats();
    // Nothing is pushed before the interval; the final push at shutdown carries everything.
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");

    let got = rx.got();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 429, 503, 204]
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "a retry resends the same bytes"
    );
    let h = &got[0].headers;
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(header("content-encoding"), "snappy");
    assert_eq!(header("content-type"), "application/x-protobuf");
    assert_eq!(header("x-prometheus-remote-write-version"), "0.1.0");
    assert!(
        header("user-agent").starts_with("Redline/"),
        "{}",
        header("user-agent")
    );
    assert_eq!(header("x-scope-orgid"), "tenant-1");

    let (series, _) = series_of(&[decode(&got[3].body)]);
    assert_eq!(series.len(), 9);
    for s in series.values() {
        let want = if s.label("__name__") == Some("queue_utilization_ratio") {
            "own"
        } else {
            "redline-1"
        };
        assert_eq!(s.label("instance"), Some(want), "{s:?}");
    }
    assert_eq!(stats.pushes.load(Ordering::Relaxed), 1);
    assert_eq!(stats.requests_sent.load(Ordering::Relaxed), 1);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 3);
    assert_eq!(stats.requests_failed.load(Ordering::Relaxed), 0);
    assert_eq!(stats.timeseries_sent.load(Ordering::Relaxed), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_dropped_and_counted_not_retried() {
    let (rx, addr) = receiver(&[400]).await;
    let running = start(addr, "    push_interval: 1h", Arc::new(Spanlike::new(1)));
    let stats = running.stats();
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    assert_eq!(rx.got().len(), 1);
    assert_eq!(stats.requests_failed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.timeseries_failed.load(Ordering::Relaxed), 9);
    assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    assert_eq!(stats.requests_sent.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_pushes_carry_fresh_values_and_increasing_timestamps() {
    let (rx, addr) = receiver(&[]).await;
    let source = Arc::new(Spanlike::new(5));
    let running = start(addr, "    push_interval: 30ms", source.clone());
    wait_for("two pushes", || rx.got().len() >= 2).await;
    source.calls.store(42, Ordering::Relaxed);
    let calls_value = |r: &Received| {
        let (series, _) = series_of(&[decode(&r.body)]);
        series
            .values()
            .find(|s| {
                s.label("service_name") == Some("checkout")
                    && s.label("__name__") == Some("traces_spanmetrics_calls_total")
            })
            .map(|s| s.samples[0].0)
    };
    wait_for("a push with the new value", || {
        rx.got().iter().any(|r| calls_value(r) == Some(42.0))
    })
    .await;
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");

    let got = rx.got();
    assert!(got.len() >= 3);
    let mut last_ts = 0;
    for r in &got {
        let (series, _) = series_of(&[decode(&r.body)]);
        let stamps: std::collections::BTreeSet<i64> = series
            .values()
            .flat_map(|s| s.samples.iter().map(|x| x.1))
            .collect();
        assert_eq!(stamps.len(), 1, "one timestamp per push");
        let ts = *stamps.iter().next().expect("one");
        assert!(ts > last_ts, "timestamps increase: {ts} after {last_ts}");
        last_ts = ts;
    }
    assert_eq!(calls_value(got.last().expect("final push")), Some(42.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_queue_the_final_push_is_sent_inline() {
    let (rx, addr) = receiver(&[503]).await;
    let running = start(
        addr,
        "    push_interval: 1h\n    remote_write_queue:\n      enabled: false",
        Arc::new(Spanlike::new(3)),
    );
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    assert_eq!(
        rx.got().iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![503, 204]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_does_not_hold_shutdown() {
    let down = ClosedPort::reserve();
    let running = start(
        down.addr(),
        "    push_interval: 1h\n    retry_on_failure:\n      initial_interval: 10ms\n      max_interval: 20ms\n      max_elapsed_time: 0",
        Arc::new(Spanlike::new(3)),
    );
    let stats = running.stats();
    // The final push is made at shutdown and retried until the deadline; the window leaves
    // a loaded 2-core CI machine time to collect, connect and fail at least once.
    let _ = stop(running, Duration::from_secs(2)).await;
    assert_eq!(stats.requests_sent.load(Ordering::Relaxed), 0);
    assert_eq!(stats.requests_failed.load(Ordering::Relaxed), 1);
    assert!(stats.retries.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interval_defaults_to_the_sources_flush_interval() {
    let (_rx, addr) = receiver(&[]).await;
    let mut s = Spanlike::new(1);
    s.flush = Some(Duration::from_secs(15));
    let running = start(addr, "", Arc::new(s));
    assert_eq!(running.interval(), Duration::from_secs(15));
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let running = start(addr, "", Arc::new(Spanlike::new(1)));
    assert_eq!(running.interval(), crate::config::DEFAULT_PUSH_INTERVAL);
    stop(running, Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_factory_builds_from_yaml_and_pushes() {
    let (rx, addr) = receiver(&[]).await;
    let section = yaml(&format!(
        "    endpoint: http://{addr}/api/v1/write\n    push_interval: 1h"
    ));
    let f = crate::RemoteWriteExporterFactory;
    assert_eq!(f.type_name(), "prometheusremotewrite");
    assert_eq!(f.signals(), &[redline_pipeline::Signal::Metrics]);
    let ctx = redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let (_, running) = f
        .build_metrics_reader(
            &section,
            &ctx,
            vec![Arc::new(Spanlike::new(2)) as Arc<dyn MetricsSource>],
        )
        .await
        .unwrap_or_else(|e| panic!("builds: {e}"));
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    assert_eq!(rx.got().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_credentials_go_with_every_push_and_replace_a_configured_header() {
    use redline_pipeline::extension::{
        AuthError, ClientAuthenticator, ExtensionCapabilities, Extensions,
    };

    struct Basic;
    impl ClientAuthenticator for Basic {
        fn add_credentials(
            &self,
            headers: &mut HeaderMap,
            _: Option<&redline_pipeline::ClientMetadata>,
        ) -> Result<(), AuthError> {
            headers.insert(
                "authorization",
                axum::http::HeaderValue::from_static("Basic bWltaXI6cHc="),
            );
            Ok(())
        }
    }

    let (rx, addr) = receiver(&[]).await;
    let section = yaml(&format!(
        "    endpoint: http://{addr}/api/v1/write\n    push_interval: 1h\n    headers:\n      Authorization: Bearer from-headers\n    auth:\n      authenticator: basicauth/mimir"
    ));
    // Without the extension running, the build fails naming the key and the id.
    let telemetry = redline_pipeline::telemetry::Telemetry::new();
    let bare = redline_pipeline::BuildContext::new(telemetry.clone());
    let err = crate::RemoteWriteExporterFactory
        .build_metrics_reader(&section, &bare, vec![Arc::new(Spanlike::new(3))])
        .await
        .err()
        .expect("no such extension")
        .to_string();
    assert!(
        err.contains("auth.authenticator") && err.contains("basicauth/mimir"),
        "{err}"
    );

    let mut extensions = Extensions::default();
    extensions.insert(
        redline_pipeline::ComponentId::new("basicauth", Some("mimir")),
        ExtensionCapabilities {
            client_authenticator: Some(Arc::new(Basic)),
            ..ExtensionCapabilities::default()
        },
    );
    let ctx = redline_pipeline::BuildContext::new(telemetry).with_extensions(extensions);
    let (_, running) = crate::RemoteWriteExporterFactory
        .build_metrics_reader(&section, &ctx, vec![Arc::new(Spanlike::new(3))])
        .await
        .expect("builds");
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
    let got = rx.got();
    assert_eq!(got.len(), 1, "the final push");
    assert_eq!(got[0].headers["authorization"], "Basic bWltaXI6cHc=");
}

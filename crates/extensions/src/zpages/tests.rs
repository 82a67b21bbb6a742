use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redline_pipeline::host::{BuildInfo, FeatureGate, PipelineSummary};
use redline_pipeline::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn section(yaml: &str) -> ComponentConfig {
    crate::test_config::extension_section("zpages", yaml)
}

fn problem(yaml: &str) -> String {
    ZPagesFactory
        .validate(&section(yaml))
        .expect_err("refused")
        .to_string()
}

#[test]
fn defaults_follow_otelcol() {
    let parsed = parse(&section("    {}")).expect("valid");
    assert_eq!(parsed.endpoint, "localhost:55679");
    assert!(!parsed.expvar.enabled);
    let parsed = parse(&section("    endpoint: :0\n    expvar: {enabled: true}")).expect("valid");
    assert_eq!(parsed.endpoint, ":0");
    assert!(parsed.expvar.enabled);
}

#[test]
fn bad_keys_are_named() {
    assert!(problem("    endpont: :1").contains("endpont"));
    assert!(problem("    expvar: {enable: true}").contains("enable"));
    let e = problem("    endpoint: ''");
    assert!(e.contains("\"endpoint\" is required"), "{e}");
    let e = problem("    endpoint: localhost");
    assert!(e.contains("endpoint") && e.contains("missing port"), "{e}");
    let e = problem("    tls: {cert_file: c.pem}");
    assert!(e.contains("tls.key_file"), "{e}");
    for key in ["cors", "auth", "response_headers"] {
        let e = problem(&format!("    {key}: {{}}"));
        assert!(
            e.contains(key) && e.contains("does not support yet"),
            "{key}: {e}"
        );
    }
}

#[test]
fn text_from_the_config_is_escaped() {
    assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    let mut page = Page::new("<t>");
    page.table(&["A"], &[vec!["x\n<y>".to_owned()]]);
    let text = page.finish();
    assert!(text.contains("<title>&lt;t&gt;</title>"), "{text}");
    assert!(text.contains("<td>x<br>&lt;y&gt;</td>"), "{text}");
}

fn host() -> HostInfo {
    HostInfo {
        build: BuildInfo {
            command: "redline".to_owned(),
            description: "test build".to_owned(),
            version: "1.2.3".to_owned(),
        },
        feature_gates: vec![FeatureGate {
            id: "confmap.enableMergeAppendOption",
            enabled: true,
            stage: "Alpha",
            redline: "Redline does what either state asks",
        }],
        pipelines: vec![
            PipelineSummary {
                id: "traces".to_owned(),
                signal: Signal::Traces,
                mutates_data: true,
                receivers: vec!["otlp".to_owned()],
                processors: vec!["memory_limiter".to_owned(), "batch".to_owned()],
                exporters: vec![
                    "otlp/tempo".to_owned(),
                    "spanmetrics (connector)".to_owned(),
                ],
            },
            PipelineSummary {
                id: "metrics".to_owned(),
                signal: Signal::Metrics,
                mutates_data: false,
                receivers: vec!["spanmetrics (connector)".to_owned()],
                processors: vec![],
                exporters: vec!["prometheus".to_owned()],
            },
        ],
        extensions: vec!["zpages".to_owned(), "health_check".to_owned()],
        ..HostInfo::default()
    }
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sends");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("reads");
    answer
}

#[tokio::test]
async fn pages_show_the_host_and_expvar_only_when_enabled() {
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new()).with_host(host());
    let (_, running) = ZPagesFactory
        .build(&section("    endpoint: 127.0.0.1:0"), &ctx)
        .await
        .expect("builds");
    let addr = running.local_addrs()[0].1;

    let service = get(addr, "/debug/servicez").await;
    assert!(service.starts_with("HTTP/1.0 200"), "{service}");
    assert!(service.contains("text/html; charset=utf-8"), "{service}");
    for text in [
        "Service redline",
        "test build",
        "1.2.3",
        "href=\"pipelinez\"",
    ] {
        assert!(service.contains(text), "{text} in {service}");
    }

    let pipelines = get(addr, "/debug/pipelinez").await;
    // Sorted by id, components in order, one per line.
    let metrics = pipelines.find("<td>metrics</td>").expect("metrics row");
    let traces = pipelines.find("<td>traces</td>").expect("traces row");
    assert!(metrics < traces, "{pipelines}");
    assert!(
        pipelines.contains(
            "<tr><td>traces</td><td>traces</td><td>true</td><td>otlp</td>\
             <td>memory_limiter<br>batch</td><td>otlp/tempo<br>spanmetrics (connector)</td></tr>"
        ),
        "{pipelines}"
    );
    let one = get(
        addr,
        "/debug/pipelinez?pipelinenamez=traces&componentnamez=batch&componentkindz=processor",
    )
    .await;
    assert!(one.contains("<h4>processor: traces/batch</h4>"), "{one}");

    let extensions = get(addr, "/debug/extensionz").await;
    let health = extensions.find("<td>health_check</td>").expect("listed");
    let zpages = extensions.find("<td>zpages</td>").expect("listed");
    assert!(health < zpages, "sorted: {extensions}");

    let features = get(addr, "/debug/featurez").await;
    assert!(
        features.contains("<td>confmap.enableMergeAppendOption</td><td>true</td><td>Alpha</td>"),
        "{features}"
    );

    assert!(get(addr, "/debug/expvarz")
        .await
        .starts_with("HTTP/1.0 404"));
    assert!(get(addr, "/debug/tracez").await.starts_with("HTTP/1.0 404"));
    running
        .shutdown(Instant::now() + Duration::from_secs(1))
        .await
        .expect("stops");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "closed"
    );
}

#[tokio::test]
async fn expvar_serves_the_command_line_and_memory() {
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let (_, running) = ZPagesFactory
        .build(
            &section("    endpoint: 127.0.0.1:0\n    expvar: {enabled: true}"),
            &ctx,
        )
        .await
        .expect("builds");
    let addr = running.local_addrs()[0].1;
    let answer = get(addr, "/debug/expvarz").await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a body");
    assert!(head.contains("application/json"), "{head}");
    let doc: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(doc["cmdline"], serde_json::json!(args));
    if cfg!(target_os = "linux") {
        let rss = doc["process"]["resident_memory_bytes"]
            .as_u64()
            .expect("rss");
        assert!(rss >= 1 << 20 && rss.is_multiple_of(1024), "{rss}");
        assert!(doc["process"]["threads"].as_u64().expect("threads") >= 1);
    }
    running
        .shutdown(Instant::now() + Duration::from_secs(1))
        .await
        .expect("stops");
}

#[tokio::test]
async fn a_taken_port_fails_the_start_naming_the_endpoint() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = taken.local_addr().expect("bound").port();
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let e = ZPagesFactory
        .build(&section(&format!("    endpoint: 127.0.0.1:{port}")), &ctx)
        .await
        .err()
        .expect("port in use");
    let text = e.to_string();
    assert!(
        text.contains("zpages") && text.contains("endpoint: cannot listen"),
        "{text}"
    );
}

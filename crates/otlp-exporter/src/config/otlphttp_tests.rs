//! Tests of the `otlphttp` config.

use super::*;
use crate::config::http_client::ConnectionReuse;

#[test]
fn signal_urls_follow_otelcol() {
    let c = HttpConfig::new("http://loki:3100/otlp");
    assert_eq!(
        c.url(Signal::Logs),
        Some(("http://loki:3100/otlp/v1/logs".into(), "endpoint"))
    );
    let c = HttpConfig::new("https://collector:4318/");
    assert_eq!(
        c.url(Signal::Traces).map(|u| u.0),
        Some("https://collector:4318/v1/traces".into())
    );
    let mut c = HttpConfig::new("http://c:4318");
    c.metrics_endpoint = Some("http://mimir/otlp/v1/metrics".into());
    assert_eq!(
        c.url(Signal::Metrics),
        Some(("http://mimir/otlp/v1/metrics".into(), "metrics_endpoint"))
    );
    c.endpoint = None;
    assert_eq!(c.url(Signal::Traces), None);
    assert!(c.check().is_ok(), "one signal endpoint is enough");
}

#[test]
fn checks_name_the_bad_key() {
    let key = |f: &dyn Fn(&mut HttpConfig)| {
        let mut c = HttpConfig::new("http://collector:4318");
        f(&mut c);
        c.check().expect_err("invalid").key_path
    };
    assert_eq!(key(&|c| c.endpoint = None), "endpoint");
    assert_eq!(
        key(&|c| c.endpoint = Some("collector:4318".into())),
        "endpoint"
    );
    assert_eq!(
        key(&|c| c.logs_endpoint = Some("ftp://x/y".into())),
        "logs_endpoint"
    );
    assert_eq!(
        key(&|c| c.proxy_url = Some("socks5://proxy:1080".into())),
        "proxy_url"
    );
    assert_eq!(key(&|c| c.max_idle_conns = Some(-1)), "max_idle_conns");
    assert_eq!(
        key(&|c| {
            c.keepalive = Some(HttpKeepaliveConfig::default());
            c.idle_conn_timeout = Some(Duration::from_secs(1));
        }),
        "idle_conn_timeout"
    );
    assert_eq!(
        key(&|c| c.compression_params = Some(CompressionParams { level: 12 })),
        "compression_params.level"
    );
    assert_eq!(
        key(&|c| {
            c.headers
                .insert("Content-Type".into(), Secret::from("text/plain"));
        }),
        "headers.Content-Type"
    );
    assert_eq!(
        key(&|c| c.sending_queue.num_consumers = 0),
        "sending_queue.num_consumers"
    );
    assert!(HttpConfig::new("http://collector:4318").check().is_ok());
}

#[test]
fn compression_levels_resolve_like_otelcol() {
    let level = |compression, level: Option<i64>| {
        let mut c = HttpConfig::new("http://c:4318");
        c.compression = compression;
        c.compression_params = level.map(|level| CompressionParams { level });
        c.check().expect("valid");
        c.compression_level()
    };
    assert_eq!(level(HttpCompression::Gzip, None), Some(6));
    assert_eq!(level(HttpCompression::Gzip, Some(-1)), Some(6));
    assert_eq!(level(HttpCompression::Deflate, Some(9)), Some(9));
    assert_eq!(level(HttpCompression::Zstd, None), Some(1));
    assert_eq!(level(HttpCompression::Zstd, Some(19)), Some(19));
    assert_eq!(level(HttpCompression::None, None), None);
}

#[test]
fn connection_reuse_from_either_spelling() {
    let mut c = HttpConfig::new("http://c:4318");
    assert_eq!(
        c.connection_reuse(),
        ConnectionReuse {
            keep_alive: true,
            idle_timeout: Duration::from_secs(90),
            max_idle: None,
        }
    );
    c.max_idle_conns = Some(100);
    c.max_idle_conns_per_host = Some(4);
    c.idle_conn_timeout = Some(Duration::from_secs(5));
    c.disable_keep_alives = Some(true);
    assert_eq!(
        c.connection_reuse(),
        ConnectionReuse {
            keep_alive: false,
            idle_timeout: Duration::from_secs(5),
            max_idle: Some(4),
        }
    );
    let mut c = HttpConfig::new("http://c:4318");
    c.keepalive = Some(HttpKeepaliveConfig {
        enabled: Some(true),
        idle_conn_timeout: Some(Duration::from_secs(60)),
        max_idle_conns: Some(50),
        max_idle_conns_per_host: None,
    });
    assert_eq!(c.connection_reuse().max_idle, Some(50));
    assert_eq!(c.connection_reuse().idle_timeout, Duration::from_secs(60));
}

//! The exporter over TLS to a real tonic server with a certificate from a CA made for the
//! test (rcgen): `tls.ca_file`, mutual TLS with `cert_file`/`key_file`, and
//! `server_name_override` and `insecure_skip_verify`, as Redline talks to a Tempo behind TLS.

mod common;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{batch, eventually, request, span_count, start, start_with, Started};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use parking_lot::Mutex;
use rcgen::ExtendedKeyUsagePurpose;
use redline_otlp_exporter::config::RetryConfig;
use redline_otlp_exporter::Config;
use support::fast_retries;
use support::pki::Pki;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// Counts the spans it accepts and keeps each call's `authorization` metadata.
#[derive(Clone, Default)]
struct Tempo {
    spans: Arc<Mutex<usize>>,
    authorizations: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Tempo {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        *self.spans.lock() += span_count(request.get_ref());
        let auth = request.metadata().get("authorization");
        self.authorizations.lock().push(
            auth.and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        );
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A TLS Tempo on 127.0.0.1 with a certificate for `names`; with `client_ca`, it requires
/// client certificates from that CA.
async fn tls_tempo(
    pki: &Pki,
    names: &[&str],
    client_ca: Option<&Pki>,
) -> (SocketAddr, Tempo, tokio::task::JoinHandle<()>) {
    let (cert, key) = pki.leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(ca.ca.pem()));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tempo = Tempo::default();
    // Redline sends gzip by default, as otelcol does.
    let svc = TraceServiceServer::new(tempo.clone()).accept_compressed(CompressionEncoding::Gzip);
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .tls_config(tls)
            .expect("server TLS")
            .add_service(svc)
            .serve_with_incoming(TcpIncoming::from(listener))
            .await;
    });
    (addr, tempo, task)
}

/// TLS on (no `insecure`), fast retries that give up after a moment.
fn tls_config(endpoint: String) -> Config {
    let mut c = Config::new(endpoint);
    c.retry_on_failure = RetryConfig {
        max_elapsed_time: Duration::from_millis(500),
        ..fast_retries()
    };
    c.sending_queue.num_consumers = 1;
    c
}

/// Sends `n` spans and waits until they are delivered or given up; returns (sent, failed).
async fn send(s: &Started, n: usize) -> (u64, u64) {
    s.consumer
        .consume(batch(&request("checkout", n, 1)))
        .expect("queued");
    let settled = eventually(|| s.sent() + s.failed() >= n as u64).await;
    assert!(settled, "the batch was neither delivered nor given up");
    (s.sent(), s.failed())
}

async fn stop(s: Started) {
    let _ = s
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn ca_file_trusts_the_tempo_certificate() {
    let pki = Pki::new("tempo CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["localhost"], None).await;
    let mut cfg = tls_config(format!("localhost:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    let s = start(cfg);
    assert_eq!(send(&s, 6).await, (6, 0));
    assert_eq!(*tempo.spans.lock(), 6);
    stop(s).await;
    task.abort();
}

#[tokio::test]
async fn a_server_from_another_ca_is_not_trusted() {
    let pki = Pki::new("tempo CA");
    let other = Pki::new("other CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["localhost"], None).await;
    let mut cfg = tls_config(format!("localhost:{}", addr.port()));
    cfg.tls.ca_file = Some(other.ca_file());
    let s = start(cfg);
    assert_eq!(send(&s, 3).await, (0, 3));
    assert_eq!(*tempo.spans.lock(), 0);
    stop(s).await;
    task.abort();
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = Pki::new("tempo CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["localhost"], Some(&pki)).await;

    let (cert, key) = pki.leaf(&["redline"], ExtendedKeyUsagePurpose::ClientAuth);
    let mut cfg = tls_config(format!("localhost:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    cfg.tls.cert_file = Some(pki.write("client.pem", &cert));
    cfg.tls.key_file = Some(pki.write("client.key", &key));
    let s = start(cfg);
    assert_eq!(send(&s, 4).await, (4, 0));
    stop(s).await;

    let mut cfg = tls_config(format!("localhost:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    let s = start(cfg);
    assert_eq!(send(&s, 2).await, (0, 2), "no client certificate: refused");
    stop(s).await;
    assert_eq!(*tempo.spans.lock(), 4);
    task.abort();
}

#[tokio::test]
async fn server_name_override_checks_another_name() {
    let pki = Pki::new("tempo CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["tempo.internal"], None).await;
    let mut cfg = tls_config(format!("127.0.0.1:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    cfg.tls.server_name_override = Some("tempo.internal".into());
    let s = start(cfg);
    assert_eq!(send(&s, 5).await, (5, 0));
    stop(s).await;

    // Without the override the name (127.0.0.1) is not in the certificate.
    let mut cfg = tls_config(format!("127.0.0.1:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    let s = start(cfg);
    assert_eq!(send(&s, 1).await, (0, 1));
    stop(s).await;
    assert_eq!(*tempo.spans.lock(), 5);
    task.abort();
}

#[tokio::test]
async fn insecure_skip_verify_takes_any_certificate_for_any_name() {
    // Signed by a CA Redline was not given, for a name that is not the endpoint's: refused
    // unless verification is off, when the data still goes over TLS (the server speaks
    // nothing else).
    let pki = Pki::new("self-signed tempo CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["tempo.internal"], None).await;
    let endpoint = format!("127.0.0.1:{}", addr.port());
    let mut cfg = tls_config(endpoint.clone());
    cfg.tls.insecure_skip_verify = true;
    let s = start(cfg);
    assert_eq!(send(&s, 7).await, (7, 0));
    stop(s).await;

    let other = Pki::new("other CA");
    let mut cfg = tls_config(endpoint);
    cfg.tls.ca_file = Some(other.ca_file());
    let s = start(cfg);
    assert_eq!(send(&s, 2).await, (0, 2), "verified: refused");
    stop(s).await;
    assert_eq!(*tempo.spans.lock(), 7);
    task.abort();
}

/// Hands out a new token for every call, as a rotated token file would.
struct CountingToken(std::sync::atomic::AtomicUsize);

impl redline_pipeline::extension::ClientAuthenticator for CountingToken {
    fn add_credentials(
        &self,
        headers: &mut http::HeaderMap,
        _: Option<&redline_pipeline::ClientMetadata>,
    ) -> Result<(), redline_pipeline::extension::AuthError> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let value = http::HeaderValue::try_from(format!("Bearer token-{n}"))
            .map_err(|_| redline_pipeline::extension::AuthError::denied("bad token"))?;
        headers.insert(http::header::AUTHORIZATION, value);
        Ok(())
    }
}

#[tokio::test]
async fn the_authenticators_credentials_go_with_every_call() {
    use redline_pipeline::extension::{ClientAuthConfig, ExtensionCapabilities, Extensions};
    use redline_pipeline::ComponentId;

    let pki = Pki::new("tempo CA");
    let (addr, tempo, task) = tls_tempo(&pki, &["localhost"], None).await;
    let mut extensions = Extensions::default();
    extensions.insert(
        ComponentId::new("bearertokenauth", Some("tempo")),
        ExtensionCapabilities {
            client_authenticator: Some(Arc::new(CountingToken(0.into()))),
            ..ExtensionCapabilities::default()
        },
    );
    let mut cfg = tls_config(format!("localhost:{}", addr.port()));
    cfg.tls.ca_file = Some(pki.ca_file());
    cfg.auth = Some(ClientAuthConfig {
        authenticator: "bearertokenauth/tempo".into(),
    });
    let s = start_with(cfg, extensions);
    assert_eq!(send(&s, 2).await, (2, 0));
    assert_eq!(send(&s, 3).await, (5, 0));
    stop(s).await;
    assert_eq!(
        *tempo.authorizations.lock(),
        ["Bearer token-0", "Bearer token-1"]
    );
    task.abort();
}

#[tokio::test]
async fn an_authenticator_that_is_not_running_fails_the_start() {
    use redline_pipeline::extension::{ClientAuthConfig, Extensions};
    use redline_pipeline::{BuildContext, ComponentId};

    let mut cfg = tls_config("localhost:4317".into());
    cfg.auth = Some(ClientAuthConfig {
        authenticator: "bearertokenauth/missing".into(),
    });
    let ctx = BuildContext::new(redline_pipeline::telemetry::Telemetry::new())
        .with_extensions(Extensions::default());
    let id = ComponentId::new("otlp", Some("tempo"));
    let err = redline_otlp_exporter::start(&id, cfg, &ctx, redline_pipeline::Signal::Traces)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("auth.authenticator") && err.contains("bearertokenauth/missing"),
        "{err}"
    );
}

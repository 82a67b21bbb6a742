//! `otlphttp` over HTTPS to a loopback server with a certificate from a CA made for the test
//! (rcgen): `tls.ca_file`, `server_name_override`, and mutual TLS.

mod http_sink;
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use http_sink::{batch, eventually};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rcgen::ExtendedKeyUsagePurpose;
use redline_otlp_exporter::config::RetryConfig;
use redline_otlp_exporter::HttpConfig;
use redline_pipeline::Signal;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::fast_retries;
use support::pki::Pki;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// An HTTPS server on 127.0.0.1 with a certificate for `names`, requiring client
/// certificates from `client_ca` when given; counts the requests it answers.
async fn https_server(
    pki: &Pki,
    names: &[&str],
    client_ca: Option<&Pki>,
) -> (SocketAddr, Arc<Mutex<usize>>, tokio::task::JoinHandle<()>) {
    let (cert, key) = pki.leaf(names, ExtendedKeyUsagePurpose::ServerAuth);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.ca.pem().as_bytes()) {
                roots.add(c.expect("CA")).expect("root");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(Mutex::new(0usize));
    let served = count.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let served = served.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let served = served.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        *served.lock() += 1;
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, count, task)
}

/// HTTPS to `url`, fast retries that give up after a moment.
fn config(url: String) -> HttpConfig {
    let mut c = HttpConfig::new(url);
    c.retry_on_failure = RetryConfig {
        max_elapsed_time: Duration::from_millis(500),
        ..fast_retries()
    };
    c.sending_queue.num_consumers = 1;
    c
}

/// Sends `n` log records and waits until they are delivered or given up: (sent, failed).
async fn send(config: HttpConfig, n: usize) -> (u64, u64) {
    let s = http_sink::start(config, Signal::Logs);
    s.consumer
        .consume(batch(Signal::Logs, n, 1))
        .expect("queued");
    assert!(
        eventually(|| s.sent() + s.failed() >= n as u64).await,
        "neither delivered nor given up"
    );
    let result = (s.sent(), s.failed());
    let _ = s
        .running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await;
    result
}

#[tokio::test]
async fn ca_file_trusts_the_server_certificate() {
    let pki = Pki::new("collector CA");
    let (addr, served, task) = https_server(&pki, &["localhost"], None).await;
    let mut c = config(format!("https://localhost:{}", addr.port()));
    c.tls.ca_file = Some(pki.ca_file());
    assert_eq!(send(c, 6).await, (6, 0));
    assert_eq!(*served.lock(), 1);

    let other = Pki::new("other CA");
    let mut c = config(format!("https://localhost:{}", addr.port()));
    c.tls.ca_file = Some(other.ca_file());
    assert_eq!(
        send(c, 3).await,
        (0, 3),
        "a server from another CA is not trusted"
    );
    assert_eq!(*served.lock(), 1);
    task.abort();
}

#[tokio::test]
async fn server_name_override_checks_another_name() {
    let pki = Pki::new("collector CA");
    let (addr, served, task) = https_server(&pki, &["collector.internal"], None).await;
    let mut c = config(format!("https://127.0.0.1:{}/", addr.port()));
    c.tls.ca_file = Some(pki.ca_file());
    c.tls.server_name_override = Some("collector.internal".into());
    assert_eq!(send(c, 5).await, (5, 0));

    let mut c = config(format!("https://127.0.0.1:{}", addr.port()));
    c.tls.ca_file = Some(pki.ca_file());
    assert_eq!(
        send(c, 1).await,
        (0, 1),
        "127.0.0.1 is not in the certificate"
    );
    assert_eq!(*served.lock(), 1);
    task.abort();
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = Pki::new("collector CA");
    let (addr, served, task) = https_server(&pki, &["localhost"], Some(&pki)).await;
    let (cert, key) = pki.leaf(&["redline"], ExtendedKeyUsagePurpose::ClientAuth);
    let mut c = config(format!("https://localhost:{}", addr.port()));
    c.tls.ca_file = Some(pki.ca_file());
    c.tls.cert_file = Some(pki.write("client.pem", &cert));
    c.tls.key_file = Some(pki.write("client.key", &key));
    assert_eq!(send(c, 4).await, (4, 0));

    let mut c = config(format!("https://localhost:{}", addr.port()));
    c.tls.ca_file = Some(pki.ca_file());
    assert_eq!(send(c, 2).await, (0, 2), "no client certificate: refused");
    assert_eq!(*served.lock(), 1);
    task.abort();
}

#[tokio::test]
async fn a_missing_ca_file_fails_the_build_naming_the_key() {
    let mut c = config("https://localhost:4318".into());
    c.tls.ca_file = Some("/nonexistent/ca.pem".into());
    let ctx = redline_pipeline::BuildContext::new(redline_pipeline::telemetry::Telemetry::new());
    let id = redline_pipeline::ComponentId::new("otlphttp", None);
    let err = redline_otlp_exporter::start_http(&id, c, &ctx, Signal::Traces)
        .err()
        .expect("unreadable CA");
    assert!(err.reason.contains("tls.ca_file"), "{}", err.reason);
}

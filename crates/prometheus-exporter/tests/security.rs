//! `/metrics` over TLS, with mutual TLS and with an authenticator, against a real rustls +
//! hyper client on 127.0.0.1. Certificates are made per test with rcgen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use redline_pipeline::extension::{AuthCheck, AuthError, ServerAuthenticator};
use redline_pipeline::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::RunningComponent;
use redline_prometheus_exporter::{start_with_auth, AuthConfig, Config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test CA");
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        Self {
            dir: tempfile::tempdir().expect("tmp"),
            ca,
        }
    }

    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    }

    fn server_tls(&self, mutual: bool) -> ServerTlsConfig {
        let (cert, key) = self.leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        ServerTlsConfig {
            cert_file: Some(self.write("server.pem", &cert)),
            key_file: Some(self.write("server.key", &key)),
            client_ca_file: mutual.then(|| self.write("ca.pem", &self.ca.pem())),
            ..ServerTlsConfig::default()
        }
    }

    fn client(&self, identity: Option<(String, String)>) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca.pem().as_bytes()).expect("pem"))
            .expect("root");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
                )
                .expect("identity"),
            None => builder.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// One counter, so a successful scrape has a known body.
struct OneCounter;

impl MetricsSource for OneCounter {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        sink.family(&FamilyDesc {
            name: "scrapes",
            description: "a test counter",
            unit: "1",
            kind: MetricKind::Counter,
        });
        sink.counter(&[], 7, 0, None);
    }
}

/// Accepts `Authorization: Basic <base64 of prom:pw>` only (stands in for basicauth).
struct BasicCheck;

impl ServerAuthenticator for BasicCheck {
    fn authenticate(&self, headers: &HeaderMap) -> AuthCheck {
        let result = match headers.get("authorization") {
            None => Err(AuthError::denied("no basic auth provided")),
            // base64("prom:pw")
            Some(v) if v == "Basic cHJvbTpwdw==" => Ok(()),
            Some(_) => Err(AuthError::denied("invalid credentials")),
        };
        // Decided later, as basicauth's bcrypt checks are.
        AuthCheck::Pending(Box::pin(async move { result }))
    }
}

async fn start(tls: ServerTlsConfig, auth: bool) -> Box<dyn RunningComponent> {
    let config = Config {
        tls: Some(tls),
        auth: auth.then(|| AuthConfig {
            authenticator: "basicauth".into(),
            request_params: None,
        }),
        ..test_config()
    };
    let authenticator: Option<Arc<dyn ServerAuthenticator>> =
        auth.then(|| Arc::new(BasicCheck) as Arc<dyn ServerAuthenticator>);
    start_with_auth(
        "prometheus",
        &config,
        vec![Arc::new(OneCounter)],
        authenticator,
    )
    .await
    .expect("starts")
}

fn test_config() -> Config {
    serde_json::from_str(r#"{"endpoint": "127.0.0.1:0", "enable_open_metrics": false}"#)
        .expect("config")
}

async fn scrape(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    authorization: Option<&str>,
) -> std::io::Result<(StatusCode, String)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = Request::get("/metrics").header("host", "localhost");
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new()).expect("request"))
        .await
        .map_err(std::io::Error::other)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn stop(running: Box<dyn RunningComponent>) {
    running
        .shutdown(Instant::now() + Duration::from_secs(5))
        .await
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_basic_auth() {
    let pki = Pki::new();
    let running = start(pki.server_tls(false), true).await;
    let addr = running.local_addrs()[0].1;
    let client = pki.client(None);

    let (status, body) = scrape(addr, &client, None).await.expect("answers");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, "no basic auth provided\n");
    let (status, body) = scrape(addr, &client, Some("Basic cHJvbTpvdGhlcg=="))
        .await
        .expect("answers");
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid credentials\n")
    );
    let (status, body) = scrape(addr, &client, Some("Basic cHJvbTpwdw=="))
        .await
        .expect("answers");
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("scrapes_total 7"), "{body}");

    // Plain HTTP on the TLS port gets nothing useful.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("scrapes_total"));
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_scrapers_without_a_certificate() {
    let pki = Pki::new();
    let running = start(pki.server_tls(true), false).await;
    let addr = running.local_addrs()[0].1;

    let identity = pki.leaf("prometheus", ExtendedKeyUsagePurpose::ClientAuth);
    let (status, body) = scrape(addr, &pki.client(Some(identity)), None)
        .await
        .expect("mTLS scrape");
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("scrapes_total 7"), "{body}");

    let refused = scrape(addr, &pki.client(None), None).await;
    assert!(
        refused.is_err(),
        "a scraper without a certificate must be refused"
    );
    stop(running).await;
}

#[tokio::test]
async fn bad_tls_files_and_missing_authenticators_are_start_errors() {
    let pki = Pki::new();
    let config = Config {
        tls: Some(ServerTlsConfig {
            key_file: Some("/nonexistent/key.pem".into()),
            ..pki.server_tls(false)
        }),
        ..test_config()
    };
    let e = start_with_auth("prometheus", &config, vec![], None)
        .await
        .err()
        .expect("fails")
        .to_string();
    assert!(
        e.contains("tls.key_file") && e.contains("/nonexistent/key.pem"),
        "{e}"
    );

    let config = Config {
        auth: Some(AuthConfig {
            authenticator: "basicauth".into(),
            request_params: None,
        }),
        ..test_config()
    };
    let e = start_with_auth("prometheus", &config, vec![], None)
        .await
        .err()
        .expect("fails")
        .to_string();
    assert!(e.contains("auth.authenticator"), "{e}");
}

//! TLS, mutual TLS and authentication of the receiver on 127.0.0.1:0, against real clients:
//! tonic's TraceServiceClient over TLS for gRPC, hyper over tokio-rustls for HTTPS. The CA and
//! certificates are made fresh for each test with rcgen.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use parking_lot::Mutex;
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use redline_otlp_receiver::{
    AuthConfig, Config, GrpcConfig, HttpConfig, OtlpReceiverFactory, Protocols,
};
use redline_pipeline::consumer::CommitFn;
use redline_pipeline::extension::{
    AuthError, ExtensionCapabilities, Extensions, ServerAuthenticator,
};
use redline_pipeline::telemetry::Telemetry;
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::{
    BuildContext, ComponentId, Refused, Reservation, RunningComponent, TracesBatch, TracesConsumer,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA and what it signed, written to a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        Self {
            dir: tempfile::tempdir().expect("tmp dir"),
            ca,
        }
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn server(&self) -> Leaf {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn client(&self) -> Leaf {
        self.leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    }

    /// A server `tls` section with the certificate and key in files.
    fn server_tls(&self) -> ServerTlsConfig {
        let leaf = self.server();
        ServerTlsConfig {
            cert_file: Some(self.write("server.pem", &leaf.cert_pem)),
            key_file: Some(self.write("server.key", &leaf.key_pem)),
            ..ServerTlsConfig::default()
        }
    }

    fn mtls(&self) -> ServerTlsConfig {
        ServerTlsConfig {
            client_ca_file: Some(self.write("ca.pem", &self.ca_pem())),
            ..self.server_tls()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver under test

#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<TracesBatch>>>,
}

impl TracesConsumer for Recorder {
    fn reserve(&self, _: &TracesBatch) -> Result<Box<dyn Reservation>, Refused> {
        let got = self.got.clone();
        Ok(Box::new(CommitFn(move |b| got.lock().push(b))))
    }
}

const TOKEN: &str = "s3cr3t-t0ken";

/// Stands in for bearertokenauth: the receiver must only call it and act on its answer.
struct TokenCheck;

impl ServerAuthenticator for TokenCheck {
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        match headers.get("authorization") {
            None => Err(AuthError(
                "missing or empty authorization header: authorization".into(),
            )),
            Some(v) if v.as_bytes() == format!("Bearer {TOKEN}").as_bytes() => Ok(()),
            Some(_) => Err(AuthError("scheme or token does not match".into())),
        }
    }
}

fn auth() -> Option<AuthConfig> {
    Some(AuthConfig {
        authenticator: "bearertokenauth/in".into(),
        request_params: None,
    })
}

fn context(telemetry: &Telemetry) -> BuildContext {
    let mut ext = Extensions::default();
    ext.insert(
        ComponentId::new("bearertokenauth", Some("in")),
        ExtensionCapabilities {
            authenticator: Some(Arc::new(TokenCheck)),
            ..ExtensionCapabilities::default()
        },
    );
    BuildContext::new(telemetry.clone()).with_extensions(ext)
}

struct Receiver {
    running: Option<Box<dyn RunningComponent>>,
    recorder: Recorder,
    telemetry: Telemetry,
    grpc: Option<SocketAddr>,
    http: Option<SocketAddr>,
}

impl Receiver {
    async fn start(config: Config) -> Self {
        Self::try_start(config).await.expect("receiver starts")
    }

    async fn try_start(config: Config) -> Result<Self, String> {
        let telemetry = Telemetry::new();
        let recorder = Recorder::default();
        let running = OtlpReceiverFactory
            .start(
                &ComponentId::new("otlp", None),
                &config,
                &context(&telemetry),
                Arc::new(recorder.clone()),
            )
            .await
            .map_err(|e| e.to_string())?;
        let addrs = running.local_addrs();
        let find = |n: &str| addrs.iter().find(|(k, _)| *k == n).map(|(_, a)| *a);
        Ok(Self {
            grpc: find("grpc"),
            http: find("http"),
            running: Some(running),
            recorder,
            telemetry,
        })
    }

    fn spans(&self) -> usize {
        self.recorder.got.lock().iter().map(|b| b.span_count).sum()
    }

    fn accepted(&self, transport: &'static str) -> u64 {
        self.telemetry
            .receiver("otlp", transport)
            .accepted_spans
            .load(Ordering::Relaxed)
    }

    async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown(Instant::now() + Duration::from_secs(5))
                .await
                .expect("clean shutdown");
        }
    }
}

fn grpc_config(tls: Option<ServerTlsConfig>, auth: Option<AuthConfig>) -> Config {
    Config {
        protocols: Protocols {
            grpc: Some(GrpcConfig {
                endpoint: "127.0.0.1:0".into(),
                tls,
                auth,
                ..GrpcConfig::default()
            }),
            http: None,
        },
    }
}

fn http_config(tls: Option<ServerTlsConfig>, auth: Option<AuthConfig>) -> Config {
    Config {
        protocols: Protocols {
            grpc: None,
            http: Some(HttpConfig {
                endpoint: "127.0.0.1:0".into(),
                tls,
                auth,
                ..HttpConfig::default()
            }),
        },
    }
}

fn request(n: u8) -> ExportTraceServiceRequest {
    let spans = (1..=n)
        .map(|i| Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            name: format!("span-{i}"),
            kind: 2,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("svc".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<&Leaf>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem));
    }
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

async fn export(channel: Channel, token: Option<&str>, n: u8) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::new(channel);
    let mut req = tonic::Request::new(request(n));
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii"),
        );
    }
    client.export(req).await.map(|_| ())
}

fn client_tls(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

struct HttpsAnswer {
    status: StatusCode,
    body: Bytes,
    alpn: Option<Vec<u8>>,
}

/// POSTs over HTTP/1.1 on TLS, as a plain OTLP/HTTP exporter would.
async fn https_post(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> std::io::Result<HttpsAnswer> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let stream = connector.connect(name, tcp).await?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = Request::post("/v1/traces")
        .header("host", "localhost")
        .header("content-type", content_type);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(HttpsAnswer { status, body, alpn })
}

const TLS_ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

// ---------------------------------------------------------------------------------------------
// gRPC

#[tokio::test]
async fn grpc_over_tls_with_the_token_is_accepted() {
    let pki = Pki::new("test CA");
    let r = Receiver::start(grpc_config(Some(pki.server_tls()), auth())).await;
    let addr = r.grpc.expect("grpc");
    let channel = tls_channel(addr, &pki.ca_pem(), None)
        .await
        .expect("TLS connects");
    export(channel.clone(), Some(TOKEN), 3)
        .await
        .expect("accepted");
    export(channel, Some(TOKEN), 2).await.expect("accepted");
    assert_eq!(r.spans(), 5);
    assert_eq!(r.accepted("grpc"), 5);
    r.shutdown().await;
}

#[tokio::test]
async fn grpc_without_or_with_a_wrong_token_is_unauthenticated_and_not_counted() {
    let pki = Pki::new("test CA");
    let r = Receiver::start(grpc_config(Some(pki.server_tls()), auth())).await;
    let channel = tls_channel(r.grpc.expect("grpc"), &pki.ca_pem(), None)
        .await
        .expect("TLS connects");
    for token in [None, Some("wrong-t0ken"), Some("")] {
        let status = export(channel.clone(), token, 3)
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{token:?}: {status:?}"
        );
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            assert!(!status.message().contains(t), "echoed: {status:?}");
        }
    }
    let missing = export(channel, None, 1).await.expect_err("refused");
    assert!(missing.message().contains("authorization"), "{missing:?}");
    assert_eq!(r.spans(), 0);
    assert_eq!(r.accepted("grpc"), 0);
    let refused = r
        .telemetry
        .receiver("otlp", "grpc")
        .refused_spans
        .load(Ordering::Relaxed);
    assert_eq!(
        refused, 0,
        "unauthenticated requests are not decoded, so not counted"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn plaintext_client_cannot_talk_to_a_tls_server() {
    let pki = Pki::new("test CA");
    let r = Receiver::start(grpc_config(Some(pki.server_tls()), None)).await;
    let addr = r.grpc.expect("grpc");
    let result = match Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
    {
        Ok(channel) => export(channel, None, 1).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(result.is_err(), "a plaintext request must fail");
    // A client that trusts another CA refuses the server.
    let other = Pki::new("other CA");
    let refused = match tls_channel(addr, &other.ca_pem(), None).await {
        Ok(channel) => export(channel, None, 1).await.is_err(),
        Err(_) => true,
    };
    assert!(
        refused,
        "a client trusting another CA must refuse the server"
    );
    assert_eq!(r.spans(), 0);
    r.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new("test CA");
    let r = Receiver::start(grpc_config(Some(pki.mtls()), None)).await;
    let addr = r.grpc.expect("grpc");

    let client = pki.client();
    let channel = tls_channel(addr, &pki.ca_pem(), Some(&client))
        .await
        .expect("mTLS connects");
    export(channel, None, 4)
        .await
        .expect("accepted with a client certificate");
    assert_eq!(r.spans(), 4);

    let without = match tls_channel(addr, &pki.ca_pem(), None).await {
        Ok(channel) => export(channel, None, 1).await.is_err(),
        Err(_) => true,
    };
    assert!(without, "a client without a certificate must be refused");

    let stranger = Pki::new("other CA").client();
    let foreign = match tls_channel(addr, &pki.ca_pem(), Some(&stranger)).await {
        Ok(channel) => export(channel, None, 1).await.is_err(),
        Err(_) => true,
    };
    assert!(foreign, "a certificate from another CA must be refused");
    assert_eq!(r.spans(), 4);
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[tokio::test]
async fn https_with_bearer_token() {
    let pki = Pki::new("test CA");
    let r = Receiver::start(http_config(Some(pki.server_tls()), auth())).await;
    let addr = r.http.expect("http");
    let body = request(3).encode_to_vec();
    let tls = || client_tls(&pki.ca_pem(), TLS_ALL, &[b"http/1.1"]);

    let ok = https_post(
        addr,
        tls(),
        Some(TOKEN),
        "application/x-protobuf",
        body.clone(),
    )
    .await
    .expect("HTTPS works");
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(r.spans(), 3);

    let none = https_post(addr, tls(), None, "application/json", b"{}".to_vec())
        .await
        .expect("answers");
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let text = String::from_utf8_lossy(&none.body).into_owned();
    assert!(
        text.contains("missing or empty authorization header"),
        "{text}"
    );
    assert!(
        text.contains("\"code\":16"),
        "a google.rpc.Status in JSON: {text}"
    );

    let wrong = https_post(addr, tls(), Some("guess-t0ken"), "text/plain", body)
        .await
        .expect("answers");
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let text = String::from_utf8_lossy(&wrong.body).into_owned();
    assert!(
        text.contains("does not match") && !text.contains("guess-t0ken"),
        "{text}"
    );
    assert_eq!(r.spans(), 3);
    assert_eq!(r.accepted("http"), 3);
    r.shutdown().await;
}

#[tokio::test]
async fn https_negotiates_h2_or_http1_and_honours_min_version() {
    let pki = Pki::new("test CA");
    let tls = ServerTlsConfig {
        min_version: Some("1.3".into()),
        ..pki.server_tls()
    };
    let r = Receiver::start(http_config(Some(tls), None)).await;
    let addr = r.http.expect("http");
    let body = request(1).encode_to_vec();

    let h1 = https_post(
        addr,
        client_tls(&pki.ca_pem(), TLS_ALL, &[b"http/1.1"]),
        None,
        "application/x-protobuf",
        body.clone(),
    )
    .await
    .expect("TLS 1.3 works");
    assert_eq!(h1.status, StatusCode::OK);
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // Offered both, the server picks h2 (checked on the handshake alone).
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_tls(
        &pki.ca_pem(),
        TLS_ALL,
        &[b"h2", b"http/1.1"],
    )));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    let stream = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    let old = https_post(
        addr,
        client_tls(&pki.ca_pem(), &[&rustls::version::TLS12], &[b"http/1.1"]),
        None,
        "application/x-protobuf",
        body,
    )
    .await;
    assert!(
        old.is_err(),
        "a TLS 1.2-only client must be refused with min_version 1.3"
    );
    assert_eq!(r.spans(), 1);
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Build errors

#[tokio::test]
async fn bad_files_and_missing_extensions_fail_the_build_with_the_key() {
    let pki = Pki::new("test CA");
    let missing = ServerTlsConfig {
        cert_file: Some("/nonexistent/server.pem".into()),
        ..pki.server_tls()
    };
    let e = Receiver::try_start(grpc_config(Some(missing), None))
        .await
        .err()
        .expect("fails");
    assert!(
        e.contains("receivers.otlp.protocols.grpc.tls.cert_file")
            && e.contains("/nonexistent/server.pem"),
        "{e}"
    );

    // The key of another certificate.
    let other = pki.server();
    let mismatched = ServerTlsConfig {
        key_file: Some(pki.write("other.key", &other.key_pem)),
        ..pki.server_tls()
    };
    let e = Receiver::try_start(http_config(Some(mismatched), None))
        .await
        .err()
        .expect("fails");
    assert!(
        e.contains("receivers.otlp.protocols.http.tls.key_file"),
        "{e}"
    );
    assert!(!e.contains("PRIVATE KEY"), "no key material in errors: {e}");

    let garbage = ServerTlsConfig {
        key_file: Some(pki.write("garbage.key", "-----BEGIN PRIVATE KEY-----\nnot-base64!\n")),
        ..pki.server_tls()
    };
    let e = Receiver::try_start(grpc_config(Some(garbage), None))
        .await
        .err()
        .expect("fails");
    assert!(
        e.contains("tls.key_file") && !e.contains("not-base64"),
        "{e}"
    );

    let undefined = Some(AuthConfig {
        authenticator: "bearertokenauth/nope".into(),
        request_params: None,
    });
    let e = Receiver::try_start(grpc_config(None, undefined))
        .await
        .err()
        .expect("fails");
    assert!(
        e.contains("receivers.otlp.protocols.grpc.auth.authenticator")
            && e.contains("bearertokenauth/nope"),
        "{e}"
    );
}

#[tokio::test]
async fn inline_pem_certificates_work() {
    let pki = Pki::new("test CA");
    let leaf = pki.server();
    let tls = ServerTlsConfig {
        cert_pem: Some(leaf.cert_pem.as_str().into()),
        key_pem: Some(leaf.key_pem.as_str().into()),
        ..ServerTlsConfig::default()
    };
    let r = Receiver::start(grpc_config(Some(tls), None)).await;
    let channel = tls_channel(r.grpc.expect("grpc"), &pki.ca_pem(), None)
        .await
        .expect("connects");
    export(channel, None, 2).await.expect("accepted");
    assert_eq!(r.spans(), 2);
    // The key parses as PKCS#8, as rcgen writes it.
    assert!(PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).is_ok());
    r.shutdown().await;
}

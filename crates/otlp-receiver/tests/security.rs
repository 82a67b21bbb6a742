//! TLS, mutual TLS and authentication of the receiver on 127.0.0.1:0, against real clients:
//! tonic's TraceServiceClient over TLS for gRPC, hyper over tokio-rustls for HTTPS. The CA and
//! certificates are made fresh for each test with rcgen.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use redline_otlp_receiver::{AuthConfig, Config, GrpcConfig, HttpConfig, Protocols};
use redline_pipeline::extension::{
    AuthCheck, AuthError, ExtensionCapabilities, Extensions, ServerAuthenticator,
};
use redline_pipeline::tls::ServerTlsConfig;
use redline_pipeline::ComponentId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use tonic::transport::Channel;
use tonic::Code;

use common::pki::{Leaf, Pki};
use common::requests::request_of;
use common::tls_client::{client_tls, https_post, tls_channel, TLS_ALL};
use common::{Receiver, Recorder};

const TOKEN: &str = "s3cr3t-t0ken";

/// Stands in for bearertokenauth: the receiver must only call it and act on its answer.
/// Tokens starting `slow-` are decided later, as basicauth's bcrypt checks are; `busy` finds
/// the check queue full.
struct TokenCheck;

impl ServerAuthenticator for TokenCheck {
    fn authenticate(&self, headers: &HeaderMap) -> AuthCheck {
        let mismatch = || AuthError::denied("scheme or token does not match");
        let Some(given) = headers.get("authorization") else {
            return Err(AuthError::denied(
                "missing or empty authorization header: authorization",
            ))
            .into();
        };
        match given.as_bytes().strip_prefix(b"Bearer ") {
            Some(t) if t == TOKEN.as_bytes() => Ok(()).into(),
            Some(b"busy") => Err(AuthError::Busy).into(),
            Some(t) if t.starts_with(b"slow-") => {
                let ok = t == format!("slow-{TOKEN}").as_bytes();
                AuthCheck::Pending(Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    if ok {
                        Ok(())
                    } else {
                        Err(mismatch())
                    }
                }))
            }
            _ => Err(mismatch()).into(),
        }
    }
}

fn auth() -> Option<AuthConfig> {
    Some(AuthConfig {
        authenticator: "bearertokenauth/in".into(),
        request_params: None,
    })
}

/// The running extensions: [`TokenCheck`] as `bearertokenauth/in`.
fn extensions() -> Extensions {
    let mut ext = Extensions::default();
    ext.insert(
        ComponentId::new("bearertokenauth", Some("in")),
        ExtensionCapabilities {
            authenticator: Some(Arc::new(TokenCheck)),
            ..ExtensionCapabilities::default()
        },
    );
    ext
}

async fn start(config: Config) -> Receiver {
    try_start(config).await.expect("receiver starts")
}

async fn try_start(config: Config) -> Result<Receiver, String> {
    Receiver::try_start(config, Recorder::default(), extensions()).await
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

async fn export(channel: Channel, token: Option<&str>, n: u8) -> Result<(), tonic::Status> {
    let mut client = TraceServiceClient::new(channel);
    let mut req = tonic::Request::new(request_of(n));
    if let Some(t) = token {
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii"),
        );
    }
    client.export(req).await.map(|_| ())
}

/// Whether a gRPC client trusting `ca_pem`, with `identity` as its certificate, is refused
/// at the handshake or on its first export: under TLS 1.3 a client only learns that the
/// server refused its certificate when it next reads.
async fn refused_over_tls(addr: SocketAddr, ca_pem: &str, identity: Option<&Leaf>) -> bool {
    match tls_channel(addr, ca_pem, identity).await {
        Ok(channel) => export(channel, None, 1).await.is_err(),
        Err(_) => true,
    }
}

// ---------------------------------------------------------------------------------------------
// gRPC

#[tokio::test]
async fn grpc_over_tls_with_the_token_is_accepted() {
    let pki = Pki::new("test CA");
    let r = start(grpc_config(Some(pki.server_tls()), auth())).await;
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
    let r = start(grpc_config(Some(pki.server_tls()), auth())).await;
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
    assert_eq!(
        r.refused("grpc"),
        0,
        "unauthenticated requests are not decoded, so not counted"
    );
    r.shutdown().await;
}

#[tokio::test]
async fn grpc_checks_decided_later_are_awaited_and_a_full_queue_is_unavailable() {
    let r = start(grpc_config(None, auth())).await;
    let channel = Channel::from_shared(format!("http://{}", r.grpc.expect("grpc")))
        .expect("uri")
        .connect()
        .await
        .expect("connects");
    export(channel.clone(), Some(&format!("slow-{TOKEN}")), 4)
        .await
        .expect("accepted once the check passes");
    let wrong = export(channel.clone(), Some("slow-guess"), 2)
        .await
        .expect_err("refused");
    assert_eq!(wrong.code(), Code::Unauthenticated, "{wrong:?}");
    let busy = export(channel.clone(), Some("busy"), 2)
        .await
        .expect_err("refused");
    assert_eq!(busy.code(), Code::Unavailable, "retryable: {busy:?}");
    assert!(busy.message().contains("retry"), "{busy:?}");
    export(channel, Some(TOKEN), 1).await.expect("accepted");
    assert_eq!(r.spans(), 5);
    assert_eq!(r.accepted("grpc"), 5);
    r.shutdown().await;
}

#[tokio::test]
async fn plaintext_client_cannot_talk_to_a_tls_server() {
    let pki = Pki::new("test CA");
    let r = start(grpc_config(Some(pki.server_tls()), None)).await;
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
    let refused = refused_over_tls(addr, &other.ca_pem(), None).await;
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
    let r = start(grpc_config(Some(pki.mtls()), None)).await;
    let addr = r.grpc.expect("grpc");

    let client = pki.client();
    let channel = tls_channel(addr, &pki.ca_pem(), Some(&client))
        .await
        .expect("mTLS connects");
    export(channel, None, 4)
        .await
        .expect("accepted with a client certificate");
    assert_eq!(r.spans(), 4);

    let without = refused_over_tls(addr, &pki.ca_pem(), None).await;
    assert!(without, "a client without a certificate must be refused");

    let stranger = Pki::new("other CA").client();
    let foreign = refused_over_tls(addr, &pki.ca_pem(), Some(&stranger)).await;
    assert!(foreign, "a certificate from another CA must be refused");
    assert_eq!(r.spans(), 4);
    r.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[tokio::test]
async fn https_with_bearer_token() {
    let pki = Pki::new("test CA");
    let r = start(http_config(Some(pki.server_tls()), auth())).await;
    let addr = r.http.expect("http");
    let body = request_of(3).encode_to_vec();
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

    let slow = https_post(
        addr,
        tls(),
        Some(&format!("slow-{TOKEN}")),
        "application/x-protobuf",
        request_of(2).encode_to_vec(),
    )
    .await
    .expect("answers");
    assert_eq!(
        slow.status,
        StatusCode::OK,
        "accepted once the check passes"
    );
    let busy = https_post(
        addr,
        tls(),
        Some("busy"),
        "application/json",
        b"{}".to_vec(),
    )
    .await
    .expect("answers");
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE, "retryable");
    assert_eq!(r.spans(), 5);
    assert_eq!(r.accepted("http"), 5);
    r.shutdown().await;
}

#[tokio::test]
async fn https_negotiates_h2_or_http1_and_honours_min_version() {
    let pki = Pki::new("test CA");
    let tls = ServerTlsConfig {
        min_version: Some("1.3".into()),
        ..pki.server_tls()
    };
    let r = start(http_config(Some(tls), None)).await;
    let addr = r.http.expect("http");
    let body = request_of(1).encode_to_vec();

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
    let e = try_start(grpc_config(Some(missing), None))
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
    let e = try_start(http_config(Some(mismatched), None))
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
    let e = try_start(grpc_config(Some(garbage), None))
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
    let e = try_start(grpc_config(None, undefined))
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
    let r = start(grpc_config(Some(tls), None)).await;
    let channel = tls_channel(r.grpc.expect("grpc"), &pki.ca_pem(), None)
        .await
        .expect("connects");
    export(channel, None, 2).await.expect("accepted");
    assert_eq!(r.spans(), 2);
    // The key parses as PKCS#8, as rcgen writes it.
    assert!(PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).is_ok());
    r.shutdown().await;
}

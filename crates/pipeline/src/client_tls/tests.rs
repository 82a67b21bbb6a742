//! Client TLS: checks that name their key, files read with errors that name key and file,
//! and a mutual-TLS handshake against the server side of this crate.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::tls::{ServerTlsConfig, ALPN_HTTP};

fn key_of(f: impl FnOnce(&mut ClientTlsConfig)) -> Option<&'static str> {
    let mut c = ClientTlsConfig::default();
    f(&mut c);
    c.check().err().map(|e| e.key)
}

#[test]
fn checks_name_the_key() {
    assert_eq!(key_of(|_| {}), None);
    assert_eq!(
        key_of(|c| {
            c.ca_file = Some("/ca.pem".into());
            c.ca_pem = Some(Secret::from("x"));
        }),
        Some("ca_pem")
    );
    assert_eq!(
        key_of(|c| {
            c.cert_file = Some("/c.pem".into());
            c.cert_pem = Some(Secret::from("x"));
            c.key_file = Some("/k.pem".into());
        }),
        Some("cert_pem")
    );
    assert_eq!(
        key_of(|c| {
            c.cert_file = Some("/c.pem".into());
            c.key_file = Some("/k.pem".into());
            c.key_pem = Some(Secret::from("x"));
        }),
        Some("key_pem")
    );
    assert_eq!(
        key_of(|c| c.cert_file = Some("/c.pem".into())),
        Some("key_file")
    );
    assert_eq!(
        key_of(|c| c.key_pem = Some(Secret::from("x"))),
        Some("cert_file")
    );
    assert_eq!(
        key_of(|c| c.min_version = Some("1.0".into())),
        Some("min_version")
    );
    assert_eq!(
        key_of(|c| c.max_version = Some("1.1".into())),
        Some("max_version")
    );
    assert_eq!(
        key_of(|c| {
            c.min_version = Some("1.3".into());
            c.max_version = Some("1.2".into());
        }),
        Some("min_version")
    );
    assert_eq!(
        key_of(|c| c.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()]),
        Some("cipher_suites")
    );
    assert_eq!(
        key_of(|c| c.curve_preferences = vec!["P224".into()]),
        Some("curve_preferences")
    );
    assert_eq!(
        key_of(|c| {
            c.cert_pem = Some(Secret::from("x"));
            c.key_pem = Some(Secret::from("y"));
            c.reload_interval = Some(Duration::from_secs(60));
        }),
        Some("reload_interval")
    );
    assert_eq!(
        key_of(|c| c.server_name_override = Some(String::new())),
        Some("server_name_override")
    );
    assert_eq!(
        key_of(|c| c.server_name_override = Some("not a name!".into())),
        Some("server_name_override")
    );
    assert_eq!(
        key_of(|c| {
            c.min_version = Some("1.2".into());
            c.max_version = Some(String::new());
            c.server_name_override = Some("tempo.internal".into());
        }),
        None
    );
}

#[test]
fn insecure_skip_verify_still_reads_a_ca_given() {
    // As otelcol, which loads the CA before it knows nothing will check against it.
    let missing = ClientTlsConfig {
        insecure_skip_verify: true,
        ca_file: Some("/nonexistent/redline-ca.pem".into()),
        ..ClientTlsConfig::default()
    };
    let e = missing.rustls_config().expect_err("no such file");
    assert_eq!(e.key, "ca_file");
    let none = ClientTlsConfig {
        insecure_skip_verify: true,
        ..ClientTlsConfig::default()
    };
    none.rustls_config().expect("no CA needed");
}

#[test]
fn ca_files_are_named_when_missing_or_not_pem() {
    let missing = ClientTlsConfig {
        ca_file: Some("/nonexistent/redline-ca.pem".into()),
        ..ClientTlsConfig::default()
    };
    let e = missing.root_store().expect_err("no such file");
    assert_eq!(e.key, "ca_file");
    assert!(e.reason.contains("/nonexistent/redline-ca.pem"), "{e}");

    let dir = tempfile::tempdir().expect("tmp");
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "hello").expect("write");
    let c = ClientTlsConfig {
        ca_file: Some(not_pem.display().to_string()),
        ..ClientTlsConfig::default()
    };
    let e = c.root_store().expect_err("not a certificate");
    assert_eq!(e.key, "ca_file");
    assert!(e.reason.contains("holds no PEM certificate"), "{e}");

    let c = ClientTlsConfig {
        ca_pem: Some(Secret::from("hello")),
        ..ClientTlsConfig::default()
    };
    assert_eq!(c.root_store().expect_err("not PEM").key, "ca_pem");
}

#[test]
fn a_garbage_key_is_named_without_being_echoed() {
    let (cert, _) = self_signed("redline");
    let c = ClientTlsConfig {
        cert_pem: Some(Secret::from(cert)),
        key_pem: Some(Secret::from(
            "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n",
        )),
        ..ClientTlsConfig::default()
    };
    let e = c.rustls_config().expect_err("bad key");
    assert_eq!(e.key, "key_pem");
    assert!(!e.reason.contains("SECRET"), "{e}");
}

/// A certificate for `name` and its key (PEM). Self-signed: a client or server that lists it
/// as its CA trusts exactly this certificate.
fn self_signed(name: &str) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    let cert = params.self_signed(&key).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

/// Runs one handshake of `client` against a server that presents `server` (a certificate
/// for `tempo.internal` and its key) and requires a client certificate signed by
/// `client_ca`; returns whether bytes made it across.
async fn handshake(
    server: &(String, String),
    client_ca: &str,
    client: &ClientTlsConfig,
) -> Result<(), String> {
    negotiate(server, Some(client_ca), client, |_| {})
        .await
        .map(|_| ())
}

/// [`handshake`] with the server's section changed by `server_tls` and a client certificate
/// required only with `client_ca`; returns the version and suite agreed on.
async fn negotiate(
    server: &(String, String),
    client_ca: Option<&str>,
    client: &ClientTlsConfig,
    server_tls: impl FnOnce(&mut ServerTlsConfig),
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let config = client.rustls_config().map_err(|e| e.to_string())?;
    negotiate_with(server, client_ca, Arc::new(config), server_tls).await
}

/// [`negotiate`] with a client config built once, for several handshakes.
async fn negotiate_with(
    server: &(String, String),
    client_ca: Option<&str>,
    config: Arc<rustls::ClientConfig>,
    server_tls: impl FnOnce(&mut ServerTlsConfig),
) -> Result<(rustls::ProtocolVersion, rustls::CipherSuite), String> {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        Some(path.display().to_string())
    };
    let mut server_config = ServerTlsConfig {
        cert_file: write("server.pem", &server.0),
        key_file: write("server.key", &server.1),
        client_ca_file: client_ca.and_then(|ca| write("client-ca.pem", ca)),
        ..ServerTlsConfig::default()
    };
    server_tls(&mut server_config);
    let acceptor = server_config.load(ALPN_HTTP).expect("server TLS");

    let connector = tokio_rustls::TlsConnector::from(config);
    let (client_io, server_io) = tokio::io::duplex(16 * 1024);
    let serve = async move {
        let mut tls = acceptor.accept(server_io).await?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let connect = async move {
        let name = ServerName::try_from("tempo.internal").expect("name");
        let mut tls = connector.connect(name, client_io).await?;
        tls.write_all(b"hello").await?;
        tls.flush().await?;
        Ok::<_, std::io::Error>(tls)
    };
    let (served, connected) = tokio::join!(serve, connect);
    let tls = connected.map_err(|e| format!("client: {e}"))?;
    let got = served.map_err(|e| format!("server: {e}"))?;
    assert_eq!(&got, b"hello");
    let session = tls.get_ref().1;
    Ok((
        session.protocol_version().expect("negotiated"),
        session
            .negotiated_cipher_suite()
            .expect("negotiated")
            .suite(),
    ))
}

#[tokio::test]
async fn reload_interval_presents_the_renewed_client_certificate() {
    let server = self_signed("tempo.internal");
    let (old_cert, old_key) = self_signed("redline");
    let (new_cert, new_key) = self_signed("redline");
    let dir = tempfile::tempdir().expect("tmp");
    let cert_file = dir.path().join("client.pem");
    let key_file = dir.path().join("client.key");
    std::fs::write(&cert_file, &old_cert).expect("write");
    std::fs::write(&key_file, &old_key).expect("write");
    let client = ClientTlsConfig {
        ca_pem: Some(Secret::from(server.0.clone())),
        cert_file: Some(cert_file.display().to_string()),
        key_file: Some(key_file.display().to_string()),
        reload_interval: Some(Duration::from_millis(50)),
        ..ClientTlsConfig::default()
    };
    // One config for every handshake, as an exporter keeps its connector.
    let config = Arc::new(client.rustls_config().expect("client TLS"));
    // The server trusts exactly the certificate it is given as client CA (self-signed).
    negotiate_with(&server, Some(&old_cert), config.clone(), |_| {})
        .await
        .expect("the first certificate");

    // cert-manager renews the files in place.
    std::fs::write(&cert_file, &new_cert).expect("write");
    std::fs::write(&key_file, &new_key).expect("write");
    tokio::time::sleep(Duration::from_millis(120)).await;
    negotiate_with(&server, Some(&new_cert), config.clone(), |_| {})
        .await
        .expect("the renewed certificate");
    let e = negotiate_with(&server, Some(&old_cert), config, |_| {})
        .await
        .expect_err("the old one is gone");
    assert!(e.starts_with("server:"), "the server refuses it: {e}");
}

#[tokio::test]
async fn versions_suites_and_curves_limit_what_the_client_offers() {
    use rustls::{CipherSuite, ProtocolVersion};

    let server = self_signed("tempo.internal");
    let trusting = ClientTlsConfig {
        ca_pem: Some(Secret::from(server.0.clone())),
        ..ClientTlsConfig::default()
    };
    let (version, _) = negotiate(&server, None, &trusting, |_| {})
        .await
        .expect("defaults");
    assert_eq!(version, ProtocolVersion::TLSv1_3);

    let tls13_only = ClientTlsConfig {
        min_version: Some("1.3".into()),
        ..trusting.clone()
    };
    let e = negotiate(&server, None, &tls13_only, |s| {
        s.max_version = Some("1.2".into())
    })
    .await
    .expect_err("no common version");
    assert!(e.starts_with("client:") || e.starts_with("server:"), "{e}");

    // The self-signed certificate is ECDSA P-256: the ECDSA suite named is the one agreed on.
    let tls12_suite = ClientTlsConfig {
        max_version: Some("1.2".into()),
        cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into()],
        curve_preferences: vec!["P384".into()],
        ..trusting.clone()
    };
    let agreed = negotiate(&server, None, &tls12_suite, |_| {})
        .await
        .expect("a TLS 1.2 suite both have");
    assert_eq!(
        agreed,
        (
            ProtocolVersion::TLSv1_2,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        )
    );
    let no_common_curve = ClientTlsConfig {
        curve_preferences: vec!["P384".into()],
        ..trusting
    };
    negotiate(&server, None, &no_common_curve, |s| {
        s.curve_preferences = vec!["X25519".into()]
    })
    .await
    .expect_err("no key exchange group in common");
}

#[tokio::test]
async fn mutual_tls_with_the_server_side() {
    let server = self_signed("tempo.internal");
    let (cert, key) = self_signed("redline");
    let with_cert = ClientTlsConfig {
        ca_pem: Some(Secret::from(server.0.clone())),
        cert_pem: Some(Secret::from(cert.clone())),
        key_pem: Some(Secret::from(key)),
        ..ClientTlsConfig::default()
    };
    handshake(&server, &cert, &with_cert)
        .await
        .expect("trusted both ways");

    let without_cert = ClientTlsConfig {
        ca_pem: Some(Secret::from(server.0.clone())),
        ..ClientTlsConfig::default()
    };
    let e = handshake(&server, &cert, &without_cert)
        .await
        .expect_err("no client certificate");
    assert!(e.starts_with("server:"), "the server refuses it: {e}");

    let (other, _) = self_signed("tempo.internal");
    let untrusting = ClientTlsConfig {
        ca_pem: Some(Secret::from(other)),
        ..with_cert
    };
    let e = handshake(&server, &cert, &untrusting)
        .await
        .expect_err("another certificate");
    assert!(
        e.starts_with("client:"),
        "the client refuses the server: {e}"
    );
}

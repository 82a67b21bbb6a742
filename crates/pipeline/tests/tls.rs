//! The server TLS acceptor against a real rustls client on 127.0.0.1: the handshake deadline,
//! certificate reloading and the cipher suite filter.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair};
use redline_pipeline::client_tls::AnyServerCertificate;
use redline_pipeline::tls::{ServerTlsConfig, TlsAcceptor, ALPN_HTTP};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A self-signed certificate for `localhost` with `cn` as its common name.
fn self_signed(cn: &str) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    (cert.pem(), key.serialize_pem())
}

fn client(provider: rustls::crypto::CryptoProvider) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(provider);
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        // Any certificate: these tests look at which one was served, not at trust (the
        // receiver's tests cover verification).
        .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(provider)))
        .with_no_client_auth();
    // A resumed session shows no certificate: every handshake here must be a full one.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Serves one connection: handshake, then echo one byte. Returns the handshake result.
async fn serve_one(listener: &TcpListener, acceptor: &TlsAcceptor) -> std::io::Result<()> {
    let (tcp, _) = listener.accept().await?;
    let mut tls = acceptor.accept(tcp).await?;
    let mut b = [0u8; 1];
    tls.read_exact(&mut b).await?;
    tls.write_all(&b).await?;
    tls.flush().await
}

/// Connects, handshakes and returns the DER of the certificate the server showed, and the
/// negotiated cipher suite.
async fn handshake(
    addr: std::net::SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<(Vec<u8>, rustls::CipherSuite)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"x").await?;
    let mut b = [0u8; 1];
    tls.read_exact(&mut b).await?;
    let conn = tls.get_ref().1;
    let cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default();
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| s.suite())
        .unwrap_or(rustls::CipherSuite::Unknown(0));
    Ok((cert, suite))
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("pem")
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn a_silent_client_is_dropped_at_the_handshake_deadline() {
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = self_signed("a");
    std::fs::write(dir.path().join("c.pem"), cert).expect("write");
    std::fs::write(dir.path().join("k.pem"), key).expect("write");
    let acceptor = ServerTlsConfig {
        cert_file: Some(dir.path().join("c.pem").display().to_string()),
        key_file: Some(dir.path().join("k.pem").display().to_string()),
        ..ServerTlsConfig::default()
    }
    .load(ALPN_HTTP)
    .expect("loads")
    .with_handshake_timeout(Duration::from_millis(200));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Connects and says nothing.
    let _silent = TcpStream::connect(addr).await.expect("connect");
    let result = tokio::time::timeout(Duration::from_secs(5), serve_one(&listener, &acceptor))
        .await
        .expect("the acceptor gives up by itself");
    let e = result.expect_err("no handshake");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test]
async fn certificates_are_reloaded_after_reload_interval() {
    let dir = tempfile::tempdir().expect("tmp");
    let cert_file = dir.path().join("c.pem");
    let key_file = dir.path().join("k.pem");
    let (cert_a, key_a) = self_signed("a");
    std::fs::write(&cert_file, &cert_a).expect("write");
    std::fs::write(&key_file, &key_a).expect("write");
    let acceptor = ServerTlsConfig {
        cert_file: Some(cert_file.display().to_string()),
        key_file: Some(key_file.display().to_string()),
        reload_interval: Some(Duration::from_millis(500)),
        ..ServerTlsConfig::default()
    }
    .load(ALPN_HTTP)
    .expect("loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connector = client(rustls::crypto::ring::default_provider());

    let (served, _) = tokio::join!(serve_one(&listener, &acceptor), handshake(addr, &connector));
    served.expect("served");

    let (cert_b, key_b) = self_signed("b");
    std::fs::write(&cert_file, &cert_b).expect("write");
    std::fs::write(&key_file, &key_b).expect("write");
    // Within the interval the old certificate is still served.
    let (served, got) = tokio::join!(serve_one(&listener, &acceptor), handshake(addr, &connector));
    served.expect("served");
    assert_eq!(got.expect("handshake").0, der(&cert_a));

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (served, got) = tokio::join!(serve_one(&listener, &acceptor), handshake(addr, &connector));
    served.expect("served");
    assert_eq!(got.expect("handshake").0, der(&cert_b));

    // A broken file is not taken: the last good certificate stays.
    std::fs::write(&cert_file, "garbage").expect("write");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (served, got) = tokio::join!(serve_one(&listener, &acceptor), handshake(addr, &connector));
    served.expect("served");
    assert_eq!(got.expect("handshake").0, der(&cert_b));
}

#[tokio::test]
async fn cipher_suites_restrict_tls12() {
    let (cert, key) = self_signed("a");
    let acceptor = ServerTlsConfig {
        cert_pem: Some(cert.as_str().into()),
        key_pem: Some(key.as_str().into()),
        max_version: Some("1.2".into()),
        cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()],
        ..ServerTlsConfig::default()
    }
    .load(ALPN_HTTP)
    .expect("loads");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");

    let default = client(rustls::crypto::ring::default_provider());
    let (served, got) = tokio::join!(serve_one(&listener, &acceptor), handshake(addr, &default));
    served.expect("served");
    assert_eq!(
        got.expect("handshake").1,
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    );

    let mut only_aes128 = rustls::crypto::ring::default_provider();
    only_aes128
        .cipher_suites
        .retain(|s| s.suite() == rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256);
    let only_aes128 = client(only_aes128);
    let (served, got) = tokio::join!(
        serve_one(&listener, &acceptor),
        handshake(addr, &only_aes128)
    );
    assert!(
        served.is_err() && got.is_err(),
        "no common suite: no handshake"
    );
}

//! TLS for servers: otelcol's `configtls.ServerConfig` keys, and the rustls acceptor they
//! build. Every component that listens (receivers, the Prometheus exporter) embeds
//! [`ServerTlsConfig`] as its `tls` key, so the keys, defaults and error messages are the same
//! everywhere, as in otelcol.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rustls::client::ResolvesClientCert;
use rustls::crypto::{ring as ring_provider, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{Secret, Unsupported};
use crate::only_bool::OnlyBool;

pub use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake after connecting. The handshake runs in
/// the connection's own task; the limit keeps a client that connects and stays silent from
/// holding a connection slot forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN for a gRPC server: HTTP/2 only (gRPC clients refuse a server that does not select h2).
pub const ALPN_H2: &[&[u8]] = &[b"h2"];
/// ALPN for an HTTP server that speaks both HTTP/2 and HTTP/1.1.
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The `tls` section of a server (otelcol's `configtls.ServerConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: Option<String>,
    pub cert_pem: Option<Secret>,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    pub key_pem: Option<Secret>,
    /// CAs that client certificates must chain to; setting it requires every client to
    /// present a valid certificate (mutual TLS).
    pub client_ca_file: Option<String>,
    /// Only `false`: the client CA file is read once, at start.
    pub client_ca_file_reload: bool,
    /// Accepted because otelcol accepts it on servers, where it has no effect there either
    /// (a warning says so): client certificates are verified against `client_ca_file`.
    pub ca_file: Option<String>,
    pub ca_pem: Option<Secret>,
    /// Also trust the system's CAs for client certificates (with `client_ca_file`).
    pub include_system_ca_certs_pool: bool,
    /// `1.2` (default) or `1.3`.
    pub min_version: Option<String>,
    /// `1.2` or `1.3` (default).
    pub max_version: Option<String>,
    /// TLS 1.2 suites by their Go/IANA names; TLS 1.3 suites are always on, as in Go.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups by Go name: `X25519`, `P256`, `P384`.
    pub curve_preferences: Vec<String>,
    /// Re-read `cert_file` and `key_file` on the first handshake after this much time.
    #[serde(deserialize_with = "crate::duration::deserialize_opt")]
    pub reload_interval: Option<Duration>,
    pub tpm: Option<Unsupported>,
    /// Only `false`: it lets `cipher_suites` name Go's insecure suites, which rustls does not have.
    pub include_insecure_cipher_suites: Option<OnlyBool<false>>,
}

/// A bad TLS setting or file: `key` is relative to the `tls` section (`cert_file`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct TlsError {
    pub key: &'static str,
    pub reason: String,
}

pub(crate) fn err(key: &'static str, reason: impl Into<String>) -> TlsError {
    TlsError {
        key,
        reason: reason.into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Version {
    Tls12,
    Tls13,
}

fn parse_version(key: &'static str, value: Option<&str>) -> Result<Option<Version>, TlsError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some("1.2") => Ok(Some(Version::Tls12)),
        Some("1.3") => Ok(Some(Version::Tls13)),
        Some(v @ ("1.0" | "1.1")) => Err(err(
            key,
            format!("TLS {v} is an otelcol setting Redline does not support (1.2 and 1.3 are)"),
        )),
        Some(v) => Err(err(
            key,
            format!("unknown TLS version `{v}` (expected 1.2 or 1.3)"),
        )),
    }
}

fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(ring_provider::kx_group::X25519),
        "P256" => Ok(ring_provider::kx_group::SECP256R1),
        "P384" => Ok(ring_provider::kx_group::SECP384R1),
        "P521" | "X25519MLKEM768" => Err(format!(
            "`{name}` is an otelcol setting Redline does not support yet (X25519, P256 and P384 are)"
        )),
        _ => Err(format!(
            "unknown curve `{name}` (expected X25519, P256 or P384)"
        )),
    }
}

/// Go's TLS 1.3 suite names: accepted and ignored, as Go does (TLS 1.3 suites are not
/// configurable).
const GO_TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn tls12_suite(name: &str) -> Result<Option<SupportedCipherSuite>, String> {
    if GO_TLS13_SUITES.contains(&name) {
        return Ok(None);
    }
    // Go also knows the ChaCha suites without the `_SHA256` of their IANA names.
    let iana = if name.ends_with("_CHACHA20_POLY1305") {
        format!("{name}_SHA256")
    } else {
        name.to_owned()
    };
    ring_provider::DEFAULT_CIPHER_SUITES
        .iter()
        .find(|s| s.tls13().is_none() && s.suite().as_str() == Some(iana.as_str()))
        .copied()
        .map(Some)
        .ok_or_else(|| {
            format!(
                "cipher suite `{name}` is not supported by Redline (its TLS 1.2 suites are the \
                 ECDHE AES-GCM and CHACHA20-POLY1305 ones)"
            )
        })
}

/// The checks of `min_version`, `max_version`, `cipher_suites` and `curve_preferences`, which
/// servers and clients share.
pub(crate) fn check_suites(
    min_version: Option<&str>,
    max_version: Option<&str>,
    cipher_suites: &[String],
    curve_preferences: &[String],
) -> Result<(), TlsError> {
    let min = parse_version("min_version", min_version)?;
    let max = parse_version("max_version", max_version)?;
    if let (Some(min), Some(max)) = (min, max) {
        if min > max {
            return Err(err(
                "min_version",
                "min_version cannot be greater than max_version",
            ));
        }
    }
    for name in cipher_suites {
        tls12_suite(name).map_err(|r| err("cipher_suites", r))?;
    }
    for name in curve_preferences {
        kx_group(name).map_err(|r| err("curve_preferences", r))?;
    }
    Ok(())
}

/// The TLS versions from `min_version` (default 1.2) to `max_version` (default 1.3).
pub(crate) fn protocol_versions(
    min_version: Option<&str>,
    max_version: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    let min = parse_version("min_version", min_version)?.unwrap_or(Version::Tls12);
    let max = parse_version("max_version", max_version)?.unwrap_or(Version::Tls13);
    let mut v = Vec::new();
    if min <= Version::Tls12 && max >= Version::Tls12 {
        v.push(&rustls::version::TLS12);
    }
    if max >= Version::Tls13 {
        v.push(&rustls::version::TLS13);
    }
    Ok(v)
}

/// ring with only the TLS 1.2 suites and the key exchange groups named (all when the list is
/// empty); TLS 1.3 suites are always on, as in Go.
pub(crate) fn provider(
    cipher_suites: &[String],
    curve_preferences: &[String],
) -> Result<CryptoProvider, TlsError> {
    let mut provider = ring_provider::default_provider();
    if !cipher_suites.is_empty() {
        let mut wanted = Vec::new();
        for name in cipher_suites {
            if let Some(s) = tls12_suite(name).map_err(|r| err("cipher_suites", r))? {
                wanted.push(s);
            }
        }
        provider
            .cipher_suites
            .retain(|s| s.tls13().is_some() || wanted.contains(s));
    }
    if !curve_preferences.is_empty() {
        provider.kx_groups = curve_preferences
            .iter()
            .map(|n| kx_group(n).map_err(|r| err("curve_preferences", r)))
            .collect::<Result<_, _>>()?;
    }
    Ok(provider)
}

impl ServerTlsConfig {
    /// Checks the settings without reading any file.
    pub fn check(&self) -> Result<(), TlsError> {
        if self.cert_file.is_some() && self.cert_pem.is_some() {
            return Err(err(
                "cert_pem",
                "provide either cert_file or cert_pem, not both",
            ));
        }
        if self.key_file.is_some() && self.key_pem.is_some() {
            return Err(err(
                "key_pem",
                "provide either key_file or key_pem, not both",
            ));
        }
        if self.ca_file.is_some() && self.ca_pem.is_some() {
            return Err(err("ca_pem", "provide either ca_file or ca_pem, not both"));
        }
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if !has_cert {
            return Err(err(
                "cert_file",
                "a TLS server needs a certificate (cert_file or cert_pem) and its key",
            ));
        }
        if !has_key {
            return Err(err(
                "key_file",
                "a TLS server needs the certificate's key (key_file or key_pem)",
            ));
        }
        if self.client_ca_file_reload {
            return Err(err(
                "client_ca_file_reload",
                "`true` is an otelcol setting Redline does not support yet",
            ));
        }
        check_suites(
            self.min_version.as_deref(),
            self.max_version.as_deref(),
            &self.cipher_suites,
            &self.curve_preferences,
        )?;
        if self.reload_interval.is_some() && self.cert_file.is_none() && self.key_file.is_none() {
            return Err(err(
                "reload_interval",
                "only certificates read from cert_file/key_file can be reloaded",
            ));
        }
        Ok(())
    }

    /// What is accepted but has no effect, for the component to log at start.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut w = Vec::new();
        if self.ca_file.is_some() || self.ca_pem.is_some() {
            w.push(
                "tls.ca_file/ca_pem have no effect on a server (as in otelcol); set \
                 tls.client_ca_file to require and verify client certificates",
            );
        }
        if self.include_system_ca_certs_pool && self.client_ca_file.is_none() {
            w.push("tls.include_system_ca_certs_pool has no effect without tls.client_ca_file");
        }
        w
    }

    /// Reads the files and builds the acceptor; `alpn` lists the protocols offered.
    pub fn load(&self, alpn: &[&[u8]]) -> Result<TlsAcceptor, TlsError> {
        self.check()?;
        let provider = Arc::new(provider(&self.cipher_suites, &self.curve_preferences)?);
        let versions = protocol_versions(self.min_version.as_deref(), self.max_version.as_deref())?;
        let cert = CertSource::from_config(self)?;
        let resolver = Arc::new(Resolver::new(cert, self.reload_interval, provider.clone())?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| err("min_version", e.to_string()))?;
        let builder = match &self.client_ca_file {
            Some(file) => {
                let roots = self.client_roots(file)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| err("client_ca_file", format!("`{file}`: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    fn client_roots(&self, file: &str) -> Result<RootCertStore, TlsError> {
        let pem = read("client_ca_file", file)?;
        let certs = certs_from_pem("client_ca_file", file, &pem)?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(err(
                "client_ca_file",
                format!("`{file}` holds no usable CA certificate"),
            ));
        }
        if self.include_system_ca_certs_pool {
            match crate::system_ca::bundle() {
                Some((_, pem)) => {
                    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
                    roots.add_parsable_certificates(certs);
                }
                None => {
                    return Err(err(
                        "include_system_ca_certs_pool",
                        format!(
                            "no system CA bundle found (tried {})",
                            crate::system_ca::places()
                        ),
                    ))
                }
            }
        }
        Ok(roots)
    }
}

pub(crate) fn read(key: &'static str, file: &str) -> Result<Vec<u8>, TlsError> {
    crate::user_file::read(file).map_err(|e| err(key, format!("cannot read `{file}`: {e}")))
}

/// Certificates of a PEM text; `what` names the file (or the inline key) in errors.
fn certs_from_pem(
    key: &'static str,
    what: &str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(key, format!("`{what}` is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(key, format!("`{what}` holds no PEM certificate")));
    }
    Ok(certs)
}

/// Where a certificate and its key come from (a server's, or a client's for mutual TLS).
#[derive(Clone)]
pub(crate) struct CertSource {
    cert: PemSource,
    key: PemSource,
}

#[derive(Clone)]
enum PemSource {
    File(String),
    Inline(Secret),
}

impl CertSource {
    fn from_config(c: &ServerTlsConfig) -> Result<Self, TlsError> {
        Self::pick(&c.cert_file, &c.cert_pem, &c.key_file, &c.key_pem)?
            .ok_or_else(|| err("cert_file", "is required for a TLS server"))
    }

    /// The files or inline PEMs given; `None` when neither half is, an error when only one is.
    pub(crate) fn pick(
        cert_file: &Option<String>,
        cert_pem: &Option<Secret>,
        key_file: &Option<String>,
        key_pem: &Option<Secret>,
    ) -> Result<Option<Self>, TlsError> {
        let pick = |file: &Option<String>, pem: &Option<Secret>| match (file, pem) {
            (Some(f), _) => Some(PemSource::File(f.clone())),
            (None, Some(p)) => Some(PemSource::Inline(p.clone())),
            (None, None) => None,
        };
        match (pick(cert_file, cert_pem), pick(key_file, key_pem)) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(err("key_file", "is required with a certificate")),
            (None, Some(_)) => Err(err("cert_file", "is required with a key")),
        }
    }

    pub(crate) fn load(&self, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let (cert_key, cert_name, cert_pem) = match &self.cert {
            PemSource::File(f) => ("cert_file", f.as_str(), read("cert_file", f)?),
            PemSource::Inline(p) => ("cert_pem", "cert_pem", p.expose().as_bytes().to_vec()),
        };
        let (key_key, key_name, key_pem) = match &self.key {
            PemSource::File(f) => ("key_file", f.as_str(), read("key_file", f)?),
            PemSource::Inline(p) => ("key_pem", "key_pem", p.expose().as_bytes().to_vec()),
        };
        let certs = certs_from_pem(cert_key, cert_name, &cert_pem)?;
        // The parser's error can quote what it choked on: say only where.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            err(
                key_key,
                format!("`{key_name}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            )
        })?;
        CertifiedKey::from_der(certs, key, provider).map_err(|e| {
            err(
                key_key,
                format!("the key in `{key_name}` cannot be used with the certificate in `{cert_name}`: {e}"),
            )
        })
    }
}

/// Hands out the certificate, re-reading it after `reload_interval` (on the next handshake,
/// as otelcol does): a server's, or a client's for mutual TLS. A reload that fails keeps the
/// previous certificate and says why.
pub(crate) struct Resolver {
    source: CertSource,
    provider: Arc<CryptoProvider>,
    interval: Option<Duration>,
    state: RwLock<(Arc<CertifiedKey>, Instant)>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn new(
        source: CertSource,
        interval: Option<Duration>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let key = Arc::new(source.load(&provider)?);
        Ok(Self {
            source,
            provider,
            interval,
            state: RwLock::new((key, Instant::now())),
        })
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl Resolver {
    fn current(&self) -> Arc<CertifiedKey> {
        let Some(interval) = self.interval.filter(|i| !i.is_zero()) else {
            return self.state.read().0.clone();
        };
        {
            let state = self.state.read();
            if state.1.elapsed() < interval {
                return state.0.clone();
            }
        }
        let mut state = self.state.write();
        // Another handshake may have reloaded while this one waited for the lock.
        if state.1.elapsed() >= interval {
            match self.source.load(&self.provider) {
                Ok(key) => {
                    state.0 = Arc::new(key);
                    tracing::debug!("TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificate reload failed; keeping the previous one")
                }
            }
            state.1 = Instant::now();
        }
        state.0.clone()
    }
}

/// Performs server handshakes within [`HANDSHAKE_TIMEOUT`].
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Sets the handshake deadline (tests use a short one).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Runs the server side of the handshake on `io`; a client that has not finished it
    /// within the deadline gets `TimedOut`.
    pub async fn accept<IO>(&self, io: IO) -> io::Result<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.inner.accept(io)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake did not complete in time",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut ServerTlsConfig)) -> ServerTlsConfig {
        let mut c = ServerTlsConfig {
            cert_file: Some("/c.pem".into()),
            key_file: Some("/k.pem".into()),
            ..ServerTlsConfig::default()
        };
        f(&mut c);
        c
    }

    fn key_of(c: &ServerTlsConfig) -> Option<&'static str> {
        c.check().err().map(|e| e.key)
    }

    #[test]
    fn checks_name_the_key() {
        assert_eq!(key_of(&with(|_| {})), None);
        assert_eq!(key_of(&with(|c| c.cert_file = None)), Some("cert_file"));
        assert_eq!(key_of(&with(|c| c.key_file = None)), Some("key_file"));
        assert_eq!(
            key_of(&with(|c| c.key_pem = Some(Secret::from("x")))),
            Some("key_pem")
        );
        assert_eq!(
            key_of(&with(|c| c.min_version = Some("1.1".into()))),
            Some("min_version")
        );
        assert_eq!(
            key_of(&with(|c| {
                c.min_version = Some("1.3".into());
                c.max_version = Some("1.2".into());
            })),
            Some("min_version")
        );
        assert_eq!(
            key_of(&with(|c| c.max_version = Some("2".into()))),
            Some("max_version")
        );
        assert_eq!(
            key_of(&with(|c| c.client_ca_file_reload = true)),
            Some("client_ca_file_reload")
        );
        assert_eq!(
            key_of(&with(|c| c.curve_preferences = vec!["P521".into()])),
            Some("curve_preferences")
        );
        assert_eq!(
            key_of(&with(
                |c| c.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()]
            )),
            Some("cipher_suites")
        );
        assert_eq!(
            key_of(&with(|c| {
                c.cipher_suites = vec![
                    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
                    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
                    "TLS_AES_128_GCM_SHA256".into(),
                ];
                c.curve_preferences = vec!["X25519".into(), "P256".into()];
            })),
            None
        );
    }

    #[test]
    fn missing_files_name_key_and_file() {
        let e = with(|_| {}).load(ALPN_H2).expect_err("no such file");
        assert_eq!(e.key, "cert_file");
        assert!(e.to_string().contains("/c.pem"), "{e}");
    }

    #[test]
    fn garbage_pem_does_not_echo_the_key() {
        let dir = std::env::temp_dir().join(format!("redline-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "not a certificate").expect("write");
        let c = ServerTlsConfig {
            cert_file: Some(cert.display().to_string()),
            key_pem: Some(Secret::from("SECRET-KEY-MATERIAL")),
            ..ServerTlsConfig::default()
        };
        let e = c.load(ALPN_H2).expect_err("bad cert");
        assert_eq!(e.key, "cert_file");
        assert!(e.reason.contains("holds no PEM certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

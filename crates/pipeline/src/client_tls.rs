//! TLS for clients: otelcol's `configtls.ClientConfig` keys, their checks, and the trust roots
//! and client certificate they name. Every component that connects out (the exporters)
//! embeds [`ClientTlsConfig`] as its `tls` key, so keys, defaults and error messages are the
//! same everywhere, as [`crate::tls::ServerTlsConfig`] does for components that listen.
//!
//! Errors are [`TlsError`]s whose key is relative to the `tls` section: the component adds
//! where the section is (`tls`, `http.tls`).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::config::{Secret, Unsupported};
use crate::only_bool::OnlyBool;
use crate::system_ca;
use crate::tls::{
    check_suites, err, protocol_versions, provider, read, CertSource, Resolver, TlsError,
};

/// The `tls` section of a client (otelcol's `configtls.ClientConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTlsConfig {
    /// gRPC's plaintext switch: TLS is off when true, unless a CA is given or the endpoint is
    /// `https://` (otelcol's rule). For an HTTP client the endpoint's scheme decides instead.
    pub insecure: bool,
    /// TLS without checking the server's certificate (its chain and its name), as Go's
    /// `InsecureSkipVerify`: the handshake's signature is still checked against the key the
    /// server presents, so the session is encrypted, but to whoever answers.
    pub insecure_skip_verify: bool,
    /// The name the server's certificate must carry, in place of the endpoint's host.
    pub server_name_override: Option<String>,
    /// The CAs that sign the server's certificate; absent, the system's.
    pub ca_file: Option<String>,
    pub ca_pem: Option<Secret>,
    /// Also trust the system's roots when a CA is given.
    pub include_system_ca_certs_pool: bool,
    /// A client certificate (PEM, leaf first) and its key, for servers that require one.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert_pem: Option<Secret>,
    pub key_pem: Option<Secret>,
    /// `1.2` (default) or `1.3`.
    pub min_version: Option<String>,
    /// `1.2` or `1.3` (default).
    pub max_version: Option<String>,
    /// TLS 1.2 suites by their Go/IANA names; TLS 1.3 suites are always on, as in Go.
    pub cipher_suites: Vec<String>,
    /// Key exchange groups by Go name: `X25519`, `P256`, `P384`.
    pub curve_preferences: Vec<String>,
    /// Re-read `cert_file` and `key_file` on the first handshake after this much time, as
    /// otelcol does (the CA is read once).
    #[serde(deserialize_with = "crate::duration::deserialize_opt")]
    pub reload_interval: Option<Duration>,
    pub tpm: Option<Unsupported>,
    /// Only `false`: it lets `cipher_suites` name Go's insecure suites, which Redline has none of.
    pub include_insecure_cipher_suites: Option<OnlyBool<false>>,
}

impl ClientTlsConfig {
    /// A CA is configured (`ca_file` or `ca_pem`).
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_pem.is_some()
    }

    /// Checks the settings without reading any file.
    pub fn check(&self) -> Result<(), TlsError> {
        let pairs = [
            (
                self.ca_file.is_some() && self.ca_pem.is_some(),
                "ca_pem",
                "ca_file or ca_pem",
            ),
            (
                self.cert_file.is_some() && self.cert_pem.is_some(),
                "cert_pem",
                "cert_file or cert_pem",
            ),
            (
                self.key_file.is_some() && self.key_pem.is_some(),
                "key_pem",
                "key_file or key_pem",
            ),
        ];
        if let Some((_, key, what)) = pairs.into_iter().find(|(both, _, _)| *both) {
            return Err(err(key, format!("give either {what}, not both")));
        }
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if has_cert && !has_key {
            return Err(err(
                "key_file",
                "is required when a client certificate is given",
            ));
        }
        if has_key && !has_cert {
            return Err(err("cert_file", "is required when a client key is given"));
        }
        check_suites(
            self.min_version.as_deref(),
            self.max_version.as_deref(),
            &self.cipher_suites,
            &self.curve_preferences,
        )?;
        match self.server_name_override.as_deref() {
            Some("") => Err(err("server_name_override", "must not be empty")),
            Some(name) if ServerName::try_from(name).is_err() => Err(err(
                "server_name_override",
                "must be a DNS name or IP address",
            )),
            _ => Ok(()),
        }?;
        if self.reload_interval.is_some() && self.cert_file.is_none() && self.key_file.is_none() {
            return Err(err(
                "reload_interval",
                "only certificates read from cert_file/key_file can be reloaded",
            ));
        }
        Ok(())
    }

    /// The roots the server's certificate must chain to: the CA given, and the system's when
    /// none is given or `include_system_ca_certs_pool` asks for them too. Reads the files.
    pub fn root_store(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        self.add_configured_roots(&mut roots)?;
        if !self.has_ca() || self.include_system_ca_certs_pool {
            match system_ca::bundle() {
                Some((path, pem)) => {
                    let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 && !self.has_ca() {
                        return Err(err(
                            "ca_file",
                            format!("no CA given and the system CA bundle `{path}` holds no usable certificate"),
                        ));
                    }
                }
                None if !self.has_ca() => {
                    return Err(err(
                        "ca_file",
                        format!(
                            "no CA given and no system CA bundle found (tried {})",
                            system_ca::places()
                        ),
                    ))
                }
                None => {}
            }
        }
        Ok(roots)
    }

    fn add_configured_roots(&self, roots: &mut RootCertStore) -> Result<(), TlsError> {
        if let Some(file) = &self.ca_file {
            add_roots(roots, "ca_file", file, &read("ca_file", file)?)?;
        }
        if let Some(pem) = &self.ca_pem {
            add_roots(roots, "ca_pem", "ca_pem", pem.expose().as_bytes())?;
        }
        Ok(())
    }

    /// The rustls config of a client: [`Self::root_store`] (or, with `insecure_skip_verify`,
    /// no verification of the server's certificate), the client certificate when one is
    /// configured (read again after `reload_interval`), and the versions, suites and groups
    /// allowed, on the ring provider. Reads the files.
    pub fn rustls_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        self.check()?;
        let provider = Arc::new(provider(&self.cipher_suites, &self.curve_preferences)?);
        let versions = protocol_versions(self.min_version.as_deref(), self.max_version.as_deref())?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| err("min_version", e.to_string()))?;
        let builder = if self.insecure_skip_verify {
            // A CA given is still read, as otelcol loads it: a missing file is an error either
            // way. The system's roots, which nothing would use, are not required.
            if self.has_ca() {
                let mut roots = RootCertStore::empty();
                self.add_configured_roots(&mut roots)?;
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServerCertificate::new(
                    provider.clone(),
                )))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        let identity = CertSource::pick(
            &self.cert_file,
            &self.cert_pem,
            &self.key_file,
            &self.key_pem,
        )?;
        Ok(match identity {
            Some(source) => builder.with_client_cert_resolver(Arc::new(Resolver::new(
                source,
                self.reload_interval,
                provider,
            )?)),
            None => builder.with_no_client_auth(),
        })
    }
}

/// `insecure_skip_verify`: any certificate is taken for any name, but the handshake must
/// still be signed by the key of the certificate presented (with the provider's algorithms),
/// as Go's TLS client does with `InsecureSkipVerify`.
#[derive(Debug)]
pub struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AnyServerCertificate {
    /// Checks handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Adds every certificate of a PEM bundle; a bundle with none is an error, since rustls would
/// otherwise fail every handshake later with a vague message.
fn add_roots(
    roots: &mut RootCertStore,
    key: &'static str,
    what: &str,
    pem: &[u8],
) -> Result<(), TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok);
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(err(key, format!("`{what}` holds no PEM certificate")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

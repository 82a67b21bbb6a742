//! otelcol's `configtls` client settings and the rustls config built from them, for
//! `https://` endpoints.

use std::sync::Arc;

use redline_pipeline::config::Unsupported;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::config::{OnlyBool, Opaque};
use crate::settings::{invalid, Invalid};

/// Where Debian, RHEL, SUSE, Alpine and macOS keep the system's CA bundle (what Go reads).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// gRPC's plaintext switch; an HTTP client's scheme decides (`http://` or `https://`).
    pub insecure: bool,
    pub insecure_skip_verify: Option<OnlyBool<false>>,
    pub ca_file: Option<String>,
    pub ca_pem: Option<Opaque>,
    /// Also trust the system's roots when a CA is given.
    pub include_system_ca_certs_pool: bool,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub cert_pem: Option<Opaque>,
    pub key_pem: Option<Opaque>,
    pub server_name_override: Option<String>,
    /// Only what rustls does anyway: TLS 1.2 (or empty) as minimum, 1.3 (or empty) as maximum.
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Unsupported>,
    pub curve_preferences: Option<Unsupported>,
    pub reload_interval: Option<Unsupported>,
    pub tpm_config: Option<Unsupported>,
}

impl TlsConfig {
    /// Checks what serde cannot; `prefix` is the key path of this section (`tls`, `http.tls`).
    pub fn check(&self, prefix: &str) -> Result<(), Invalid> {
        let key = |k: &str| format!("{prefix}.{k}");
        let both = |a: bool, b: bool, k: &str, what: &str| {
            if a && b {
                Err(invalid(key(k), format!("give either {what}, not both")))
            } else {
                Ok(())
            }
        };
        both(
            self.ca_file.is_some(),
            self.ca_pem.is_some(),
            "ca_pem",
            "ca_file or ca_pem",
        )?;
        both(
            self.cert_file.is_some(),
            self.cert_pem.is_some(),
            "cert_pem",
            "cert_file or cert_pem",
        )?;
        both(
            self.key_file.is_some(),
            self.key_pem.is_some(),
            "key_pem",
            "key_file or key_pem",
        )?;
        let has_cert = self.cert_file.is_some() || self.cert_pem.is_some();
        let has_key = self.key_file.is_some() || self.key_pem.is_some();
        if has_cert != has_key {
            return Err(invalid(
                key(if has_cert { "key_file" } else { "cert_file" }),
                "a client certificate and its key go together",
            ));
        }
        if let Some(v) = self.min_version.as_deref() {
            if !(v.is_empty() || v == "1.2") {
                return Err(invalid(
                    key("min_version"),
                    format!("`{v}` is not supported yet; Redline uses TLS 1.2 as the minimum"),
                ));
            }
        }
        if let Some(v) = self.max_version.as_deref() {
            if !(v.is_empty() || v == "1.3") {
                return Err(invalid(
                    key("max_version"),
                    format!("`{v}` is not supported yet; Redline allows up to TLS 1.3"),
                ));
            }
        }
        if let Some(name) = &self.server_name_override {
            if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
                return Err(invalid(
                    key("server_name_override"),
                    "must be a DNS name or IP address",
                ));
            }
        }
        Ok(())
    }

    /// The rustls client config: the CA given (and/or the system's roots), and the client
    /// certificate if any. Reads the files named in the config.
    pub fn client_config(&self, prefix: &str) -> Result<rustls::ClientConfig, Invalid> {
        let key = |k: &str| format!("{prefix}.{k}");
        let mut roots = rustls::RootCertStore::empty();
        let mut has_ca = false;
        if let Some(file) = &self.ca_file {
            add_roots(&mut roots, &read(&key("ca_file"), file)?, &key("ca_file"))?;
            has_ca = true;
        }
        if let Some(pem) = &self.ca_pem {
            add_roots(&mut roots, pem.0.as_bytes(), &key("ca_pem"))?;
            has_ca = true;
        }
        if !has_ca || self.include_system_ca_certs_pool {
            let bundle = SYSTEM_CA_BUNDLES
                .iter()
                .find_map(|path| std::fs::read(path).ok());
            match bundle {
                Some(b) => add_roots(&mut roots, &b, "the system CA bundle")?,
                None if !has_ca => {
                    return Err(invalid(
                        key("ca_file"),
                        format!(
                            "no CA given and no system CA bundle found (tried {})",
                            SYSTEM_CA_BUNDLES.join(", ")
                        ),
                    ))
                }
                None => {}
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(prefix, e.to_string()))?
            .with_root_certificates(roots);
        let cert = match (&self.cert_file, &self.cert_pem) {
            (Some(f), _) => Some(read(&key("cert_file"), f)?),
            (None, Some(p)) => Some(p.0.clone().into_bytes()),
            (None, None) => None,
        };
        let private = match (&self.key_file, &self.key_pem) {
            (Some(f), _) => Some(read(&key("key_file"), f)?),
            (None, Some(p)) => Some(p.0.clone().into_bytes()),
            (None, None) => None,
        };
        match (cert, private) {
            (Some(cert), Some(private)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
                    .collect::<Result<_, _>>()
                    .map_err(|e| {
                        invalid(key("cert_file"), format!("not a PEM certificate: {e}"))
                    })?;
                let private = PrivateKeyDer::from_pem_slice(&private)
                    .map_err(|e| invalid(key("key_file"), format!("not a PEM private key: {e}")))?;
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| invalid(key("cert_file"), e.to_string()))
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }
}

fn read(key: &str, file: &str) -> Result<Vec<u8>, Invalid> {
    std::fs::read(file).map_err(|e| invalid(key, format!("cannot read `{file}`: {e}")))
}

/// Adds every certificate of a PEM bundle; a bundle with none is an error (rustls would
/// otherwise fail every handshake later with a vague message).
fn add_roots(roots: &mut rustls::RootCertStore, pem: &[u8], what: &str) -> Result<(), Invalid> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid(what, "holds no usable PEM certificate"));
    }
    Ok(())
}

//! The system's trusted CAs, found as Go's crypto/x509 (and so otelcol) finds them on Linux:
//! `SSL_CERT_FILE`, else the first bundle in the places distributions keep one. A TLS client
//! trusts them when no CA is configured or `include_system_ca_certs_pool` is set.

/// Where Debian, RHEL, SUSE, Alpine and others keep the system CA bundle, tried in order after
/// `SSL_CERT_FILE`.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The first system CA bundle found (PEM), and its path.
pub(crate) fn bundle() -> Option<(String, Vec<u8>)> {
    std::env::var("SSL_CERT_FILE")
        .ok()
        .into_iter()
        .chain(BUNDLES.iter().map(|s| (*s).to_owned()))
        .find_map(|path| std::fs::read(&path).ok().map(|pem| (path, pem)))
}

/// Where [`bundle`] looks, for messages that say nothing was found.
pub(crate) fn places() -> String {
    format!("SSL_CERT_FILE, {}", BUNDLES.join(", "))
}

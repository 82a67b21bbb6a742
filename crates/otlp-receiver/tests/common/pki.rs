//! A CA made fresh for each test with rcgen, and the certificates it signs.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use redline_pipeline::tls::ServerTlsConfig;

/// A CA and what it signed, written to a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
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

    pub fn server(&self) -> Leaf {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    pub fn client(&self) -> Leaf {
        self.leaf(&["client"], ExtendedKeyUsagePurpose::ClientAuth)
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.display().to_string()
    }

    /// A server `tls` section with the certificate and key in files.
    pub fn server_tls(&self) -> ServerTlsConfig {
        let leaf = self.server();
        ServerTlsConfig {
            cert_file: Some(self.write("server.pem", &leaf.cert_pem)),
            key_file: Some(self.write("server.key", &leaf.key_pem)),
            ..ServerTlsConfig::default()
        }
    }

    pub fn mtls(&self) -> ServerTlsConfig {
        ServerTlsConfig {
            client_ca_file: Some(self.write("ca.pem", &self.ca_pem())),
            ..self.server_tls()
        }
    }
}

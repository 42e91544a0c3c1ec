//! A test certificate authority and a server certificate it issued, as
//! files a Petrel `[tls]` section can point at.

use std::path::{Path, PathBuf};

pub struct TestPki {
    /// The server certificate alone.
    pub cert: PathBuf,
    /// The server certificate followed by the CA's (what a server sends).
    pub chain: PathBuf,
    pub key: PathBuf,
    /// The CA certificate, to trust.
    pub ca: PathBuf,
    pub ca_der: Vec<u8>,
    pub cert_der: Vec<u8>,
}

/// Issues a certificate for `names` from a new CA, written into `dir`.
pub fn issue(dir: &Path, names: &[&str]) -> TestPki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Petrel test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
    let out = TestPki {
        cert: dir.join("cert.pem"),
        chain: dir.join("chain.pem"),
        key: dir.join("key.pem"),
        ca: dir.join("ca.pem"),
        ca_der: ca.der().to_vec(),
        cert_der: cert.der().to_vec(),
    };
    std::fs::write(&out.cert, cert.pem()).unwrap();
    std::fs::write(&out.chain, cert.pem() + &ca.pem()).unwrap();
    std::fs::write(&out.key, key.serialize_pem()).unwrap();
    std::fs::write(&out.ca, ca.pem()).unwrap();
    out
}

impl TestPki {
    /// A rustls server configuration presenting this certificate chain.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&self.chain)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&self.key).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        std::sync::Arc::new(cfg)
    }
}

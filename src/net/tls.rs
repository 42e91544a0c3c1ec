//! TLS configuration (rustls) and the self-signed certificate made on first
//! start.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Writes a self-signed certificate for `hostname` unless both files exist.
pub fn ensure_self_signed(cert: &Path, key: &Path, hostname: &str) -> anyhow::Result<bool> {
    if cert.exists() && key.exists() {
        return Ok(false);
    }
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let ck = rcgen::generate_simple_self_signed(names)?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if let Some(dir) = key.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cert, ck.cert.pem())?;
    write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    Ok(true)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// A certificate chain and its key, read from PEM files.
fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| anyhow::anyhow!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("bad certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read private key {}: {e}", key.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| anyhow::anyhow!("unusable private key {}: {e}", key.display()))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match().map_err(|e| {
        anyhow::anyhow!(
            "{} and {} do not belong together: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(ck))
}

/// Picks the certificate by the name the client asks for (SNI, RFC 6066):
/// one of `tls.sni`, else the default one.
#[derive(Debug)]
struct BySni {
    names: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|n| {
            self.names
                .get(&n.trim_end_matches('.').to_ascii_lowercase())
        });
        Some(by_name.unwrap_or(&self.default).clone())
    }
}

/// One `[[tls.sni]]` entry, its paths resolved.
pub struct SniCert<'a> {
    pub names: &'a [String],
    pub certificate: std::path::PathBuf,
    pub private_key: std::path::PathBuf,
}

/// The server's TLS: the default certificate, and per-name ones chosen by
/// SNI. Each name must be one its certificate is valid for.
pub fn acceptor(cert: &Path, key: &Path, sni: &[SniCert<'_>]) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = load(cert, key, &provider)?;
    let mut names = HashMap::new();
    for entry in sni {
        let ck = load(&entry.certificate, &entry.private_key, &provider)?;
        let ee = webpki::EndEntityCert::try_from(&ck.cert[0]).map_err(|e| {
            anyhow::anyhow!("bad certificate {}: {e:?}", entry.certificate.display())
        })?;
        for name in entry.names {
            let lower = name.trim_end_matches('.').to_ascii_lowercase();
            let server_name = rustls::pki_types::ServerName::try_from(lower.clone())
                .map_err(|_| anyhow::anyhow!("tls.sni: `{name}` is not a host name"))?;
            ee.verify_is_valid_for_subject_name(&server_name)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "tls.sni: {} is not valid for `{name}` (not among its names)",
                        entry.certificate.display()
                    )
                })?;
            names.insert(lower, ck.clone());
        }
    }
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { names, default }));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

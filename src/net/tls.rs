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

/// The certificates in use: per name (SNI, RFC 6066), and the default.
#[derive(Debug)]
struct Certs {
    names: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

/// Picks the certificate by the name the client asks for; the set can be
/// replaced while the server runs ([`Certificates::reload`]): handshakes
/// after that get the new one, on every listener.
#[derive(Debug)]
pub struct Certificates {
    current: std::sync::RwLock<Arc<Certs>>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let by_name = hello.server_name().and_then(|n| {
            certs
                .names
                .get(&n.trim_end_matches('.').to_ascii_lowercase())
        });
        Some(by_name.unwrap_or(&certs.default).clone())
    }
}

impl Certificates {
    /// Reads the files again and puts them in use; on any error the
    /// certificates in use stay and the error is returned.
    pub fn reload(&self, cert: &Path, key: &Path, sni: &[SniCert<'_>]) -> anyhow::Result<()> {
        let provider = rustls::crypto::ring::default_provider();
        let certs = read_all(cert, key, sni, &provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certs);
        Ok(())
    }
}

/// One `[[tls.sni]]` entry, its paths resolved.
pub struct SniCert<'a> {
    pub names: &'a [String],
    pub certificate: std::path::PathBuf,
    pub private_key: std::path::PathBuf,
}

/// Reads the default certificate and the `tls.sni` ones, checking each
/// name against its certificate.
fn read_all(
    cert: &Path,
    key: &Path,
    sni: &[SniCert<'_>],
    provider: &CryptoProvider,
) -> anyhow::Result<Certs> {
    let default = load(cert, key, provider)?;
    let mut names = HashMap::new();
    for entry in sni {
        let ck = load(&entry.certificate, &entry.private_key, provider)?;
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
    Ok(Certs { names, default })
}

/// The server's TLS: the default certificate, and per-name ones chosen by
/// SNI. Each name must be one its certificate is valid for. The returned
/// [`Certificates`] replaces them all later without a restart.
pub fn acceptor(
    cert: &Path,
    key: &Path,
    sni: &[SniCert<'_>],
) -> anyhow::Result<(TlsAcceptor, Arc<Certificates>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = Arc::new(Certificates {
        current: std::sync::RwLock::new(Arc::new(read_all(cert, key, sni, &provider)?)),
    });
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    Ok((TlsAcceptor::from(Arc::new(config)), certs))
}

/// A TLS client configuration that checks certificates against the
/// system's roots plus the PEM trust anchors in `extra_ca` (none when the
/// path is empty); `key` names the setting in errors.
pub fn checked_client(extra_ca: &Path, key: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut extra = Vec::new();
    if !extra_ca.as_os_str().is_empty() {
        for c in CertificateDer::pem_file_iter(extra_ca)
            .map_err(|e| format!("{key} {}: {e}", extra_ca.display()))?
        {
            extra.push(c.map_err(|e| format!("{key} {}: {e}", extra_ca.display()))?);
        }
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| e.to_string())?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

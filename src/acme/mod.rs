//! Automatic certificates (ACME, RFC 8555) with `instant-acme`: the
//! default certificate (`tls.certificate`) is ordered for `tls.acme.domains`
//! (or `hostname` plus the `mta-sts.`, `autoconfig.` and `autodiscover.`
//! names of hosted domains that resolve) and renewed `renew-before-days`
//! before it expires, answering HTTP-01 (RFC 8555 §8.3) or TLS-ALPN-01
//! (RFC 8737) challenges. The new files replace the old ones in place and go into
//! every listener at once ([`crate::net::tls::Certificates::reload`]); a
//! failure keeps the certificate in use and is retried with backoff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

pub mod client;

use crate::config::Config;
use crate::core::SharedCore;
use crate::net::tls::Certificates;
use crate::net::Shutdown;

/// One certificate for every handshake (the validation certificate).
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The ALPN protocol of TLS-ALPN-01 validation handshakes (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Open challenges while an order waits: HTTP-01 tokens and their key
/// authorizations, TLS-ALPN-01 validation configurations by name.
#[derive(Default)]
pub struct Challenges {
    http: Mutex<HashMap<String, String>>,
    alpn: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    recheck: tokio::sync::Notify,
}

impl Challenges {
    /// Asks the ACME task to check the certificate's names now (a domain
    /// was added), instead of at the next hourly check.
    pub fn recheck(&self) {
        self.recheck.notify_one();
    }

    /// The key authorization for `token`, if a challenge for it is open.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    /// The TLS configuration for a validation handshake naming `name`
    /// (RFC 8737 §3: the acmeIdentifier certificate, `acme-tls/1` only).
    pub fn alpn_config(&self, name: Option<&str>) -> Option<Arc<rustls::ServerConfig>> {
        let name = name?.trim_end_matches('.').to_ascii_lowercase();
        self.alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()
    }

    fn set(&self, token: String, key_authorization: String) {
        self.http
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, key_authorization);
    }

    fn set_alpn(&self, name: &str, digest: &[u8]) -> anyhow::Result<()> {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // Not with_single_cert: it parses the certificate with webpki,
        // which refuses the critical acmeIdentifier extension.
        let signing =
            provider
                .key_provider
                .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
                    key.serialize_der().into(),
                ))?;
        let ck = Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone()],
            signing,
        ));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(ck)));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        self.alpn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_ascii_lowercase(), Arc::new(config));
        Ok(())
    }

    fn clear(&self) {
        self.http.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.alpn.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Where the default certificate lives and how to reload it.
pub struct Files {
    pub certificates: Arc<Certificates>,
    pub data_dir: PathBuf,
}

/// Unix time the certificate at `path` stops being valid, if it reads.
fn not_after(path: &Path) -> Option<u64> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?;
    let leaf = certs.first()?;
    let ee = webpki::EndEntityCert::try_from(leaf).ok()?;
    // Asked about a moment far in the future, webpki says when it expired.
    let anchor = webpki::anchor_from_trusted_cert(certs.last()?)
        .ok()?
        .to_owned();
    let far =
        rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(u32::MAX as u64 * 4));
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    match ee.verify_for_usage(
        algs.all,
        &[anchor],
        &certs[1..],
        far,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    ) {
        Err(webpki::Error::CertExpired { not_after, .. }) => Some(not_after.as_secs()),
        _ => None,
    }
}

/// Whether the certificate at `cert` was issued for every name, and
/// stays valid beyond `before` seconds from now.
fn is_current(cert: &Path, names: &[String], before: u64) -> bool {
    let Some(end) = not_after(cert) else {
        return false;
    };
    let covers = || -> Option<bool> {
        use rustls::pki_types::pem::PemObject;
        let leaf = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .ok()?
            .next()?
            .ok()?;
        let ee = webpki::EndEntityCert::try_from(&leaf).ok()?;
        Some(names.iter().all(|n| {
            rustls::pki_types::ServerName::try_from(n.as_str())
                .is_ok_and(|sn| ee.verify_is_valid_for_subject_name(&sn).is_ok())
        }))
    };
    end > crate::core::unix_now() as u64 + before && covers().unwrap_or(false)
}

/// Writes `data` to `path` through a temporary file and a rename, synced.
fn replace(path: &Path, data: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("acme-new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable once the directory is synced.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The names the certificate should carry: `tls.acme.domains` when set;
/// else the host name plus, for every hosted domain, the `mta-sts.`,
/// `autoconfig.` and `autodiscover.` names that exist in DNS (a name
/// without an address would fail the whole order; it is logged and taken
/// in at a later check once it resolves).
async fn wanted_names(core: &crate::core::Core) -> Vec<String> {
    let cfg = &core.config;
    if !cfg.tls.acme.domains.is_empty() {
        return cfg.tls.acme.domains.clone();
    }
    let mut names = vec![cfg.hostname.to_ascii_lowercase()];
    let domains = core.directory.list_domains().await.unwrap_or_default();
    for d in domains {
        for prefix in ["mta-sts", "autoconfig", "autodiscover"] {
            let name = format!("{prefix}.{}", d.name.to_ascii_lowercase());
            if names.contains(&name) {
                continue;
            }
            match core.resolver.ips(&name).await {
                crate::queue::route::Lookup::Found(_) => names.push(name),
                _ => {
                    tracing::info!(%name, "ACME: {name} has no address in DNS yet; left off the certificate until it has")
                }
            }
        }
    }
    names
}

/// The account: from `DATA/acme/account.json`, else created and saved.
/// A new account is created only once the CA's terms of service, if it has
/// any, are agreed to in the configuration (RFC 8555 §7.3).
async fn account(cfg: &Config, data_dir: &Path) -> anyhow::Result<Account> {
    let acme = &cfg.tls.acme;
    let http = || {
        client::AcmeHttp::new(&Config::resolve(data_dir, &acme.ca_file)).map_err(anyhow::Error::msg)
    };
    let dir = data_dir.join("acme");
    std::fs::create_dir_all(&dir)?;
    let saved = dir.join("account.json");
    if let Ok(text) = std::fs::read_to_string(&saved) {
        let creds: AccountCredentials = serde_json::from_str(&text)?;
        return Ok(Account::builder_with_http(Box::new(http()?))
            .from_credentials(creds)
            .await?);
    }
    let client = http()?;
    let (status, body) = client.get(&acme.directory).await?;
    if status != 200 {
        let detail = client::problem_detail(&body)
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        anyhow::bail!(
            "the ACME directory {} answered {status}{detail}",
            acme.directory
        );
    }
    let directory: serde_json::Value = serde_json::from_slice(&body)?;
    let meta = &directory["meta"];
    if meta["externalAccountRequired"] == serde_json::Value::Bool(true) {
        anyhow::bail!(
            "the CA at {} requires external account binding (RFC 8555 §7.3.4), which Petrel does not support yet; use a CA that does not (Let's Encrypt, for one)",
            acme.directory
        );
    }
    if let Some(terms) = meta["termsOfService"].as_str() {
        if !acme.agree_to_terms {
            anyhow::bail!(
                "the CA's terms of service are at {terms}: read them, and if you accept them set tls.acme.agree-to-terms = true"
            );
        }
    }
    let contact: Vec<&str> = acme.contact.iter().map(String::as_str).collect();
    let (account, creds) = Account::builder_with_http(Box::new(client))
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: acme.agree_to_terms,
                only_return_existing: false,
            },
            acme.directory.clone(),
            None,
        )
        .await?;
    replace(&saved, &serde_json::to_string(&creds)?, true)?;
    tracing::info!(directory = %acme.directory, "ACME: account created");
    Ok(account)
}

/// RFC 8555 §11.4: the chain a CA returns holds certificates and nothing
/// else, the end-entity certificate first (§9.1).
fn check_chain(pem: &str) -> anyhow::Result<()> {
    let mut blocks = 0;
    for line in pem.lines() {
        if let Some(label) = line.trim_end().strip_prefix("-----BEGIN ") {
            if label != "CERTIFICATE-----" {
                anyhow::bail!(
                    "the CA's certificate chain holds a `{}` block; refused",
                    line.trim_end()
                );
            }
            blocks += 1;
        }
    }
    if blocks == 0 {
        anyhow::bail!("the CA returned no certificate");
    }
    Ok(())
}

/// One order: challenges answered, the certificate chain and its key.
async fn order(
    cfg: &Config,
    data_dir: &Path,
    names: &[String],
    challenges: &Challenges,
) -> anyhow::Result<(String, String)> {
    let account = account(cfg, data_dir).await?;
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account.new_order(&NewOrder::new(&ids)).await?;
    let mut auths = order.authorizations();
    while let Some(a) = auths.next().await {
        let mut a = a?;
        if a.status == AuthorizationStatus::Valid {
            continue;
        }
        let alpn = cfg.tls.acme.challenge == "tls-alpn-01";
        let kind = if alpn {
            ChallengeType::TlsAlpn01
        } else {
            ChallengeType::Http01
        };
        let mut ch = a.challenge(kind).ok_or_else(|| {
            anyhow::anyhow!(
                "the ACME server offers no {} challenge",
                cfg.tls.acme.challenge
            )
        })?;
        let ka = ch.key_authorization();
        if alpn {
            let name = ch.identifier().to_string();
            challenges.set_alpn(&name, ka.digest().as_ref())?;
        } else {
            challenges.set(ch.token.clone(), ka.as_str().to_string());
        }
        ch.set_ready().await?;
    }
    let retry = RetryPolicy::default();
    let status = order.poll_ready(&retry).await?;
    if status != OrderStatus::Ready {
        anyhow::bail!("the order is {status:?}: the ACME server could not check the names (is port 80 reachable for them?)");
    }
    let key = order.finalize().await?;
    let chain = order.poll_certificate(&retry).await?;
    check_chain(&chain)?;
    Ok((chain, key))
}

/// How often the certificate is checked against its end and the names
/// wanted (a domain added since gets its names on the next check).
const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// Orders a certificate when the one in place is missing, lacks a wanted
/// name, or is near its end; then checks again every hour.
pub fn spawn(core: SharedCore, files: Files, mut shutdown: Shutdown) {
    let cfg = core.config.clone();
    if cfg.tls.acme.directory.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let cert = Config::resolve(&files.data_dir, &cfg.tls.certificate);
        let key = Config::resolve(&files.data_dir, &cfg.tls.private_key);
        let before = cfg.tls.acme.renew_before_days * 86400;
        let mut backoff = Duration::from_secs(60);
        loop {
            let names = wanted_names(&core).await;
            let wait = if is_current(&cert, &names, before) {
                backoff = Duration::from_secs(60);
                CHECK_EVERY
            } else {
                tracing::info!(names = %names.join(","), "ACME: ordering a certificate");
                let mut got = order(&cfg, &files.data_dir, &names, &core.acme).await;
                // RFC 8555 §6.5: a nonce refused as badNonce is retried by
                // instant-acme with the refusal's nonce; should a refusal
                // still end the order, it starts again at once (a few times)
                // rather than after the backoff.
                for _ in 0..3 {
                    match &got {
                        Err(e) if e.to_string().contains("badNonce") => {
                            tracing::info!("ACME: nonce refused (badNonce); ordering again");
                            core.acme.clear();
                            got = order(&cfg, &files.data_dir, &names, &core.acme).await;
                        }
                        _ => break,
                    }
                }
                core.acme.clear();
                let installed = got.and_then(|(chain, pk)| {
                    replace(&key, &pk, true)?;
                    replace(&cert, &chain, false)?;
                    files.certificates.reload(
                        &cert,
                        &key,
                        &crate::server::sni_certs(&cfg, &files.data_dir),
                    )
                });
                match installed {
                    Ok(()) => {
                        tracing::info!(names = %names.join(","), "ACME: certificate installed");
                        metrics::counter!("petrel_acme_orders_total", "result" => "ok")
                            .increment(1);
                        backoff = Duration::from_secs(60);
                        CHECK_EVERY
                    }
                    Err(e) => {
                        tracing::error!(names = %names.join(","), retry_in = backoff.as_secs(), "ACME: no certificate: {e}; the one in use stays");
                        metrics::counter!("petrel_acme_orders_total", "result" => "failed")
                            .increment(1);
                        let w = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(6 * 3600));
                        w
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = core.acme.recheck.notified() => {}
                _ = shutdown.wait() => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_and_names_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["mx.example.org".to_string()]).unwrap();
        let end = crate::core::unix_now() + 10 * 86400;
        leaf.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(end as u64);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let path = dir.path().join("cert.pem");
        std::fs::write(&path, cert.pem()).unwrap();
        assert_eq!(not_after(&path), Some(end as u64));
        let names = vec!["mx.example.org".to_string()];
        assert!(is_current(&path, &names, 5 * 86400));
        assert!(
            !is_current(&path, &names, 30 * 86400),
            "within renew-before"
        );
        assert!(!is_current(&path, &["other.example.org".to_string()], 0));
        assert!(!is_current(&dir.path().join("missing.pem"), &names, 0));
    }

    #[test]
    fn chains_hold_certificates_only() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        check_chain(&format!("{cert}{cert}")).unwrap();
        assert!(check_chain("").is_err());
        let with_key =
            format!("{cert}-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
        assert!(check_chain(&with_key).is_err());
        assert!(check_chain(&format!("{cert}-----BEGIN CERTIFICATEX-----\n")).is_err());
    }
}

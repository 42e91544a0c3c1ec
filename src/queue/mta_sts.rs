//! MTA-STS (RFC 8461), sending side: the `_mta-sts` TXT record, the policy
//! fetched over HTTPS with a checked certificate, a cache in the store, and
//! what the policy means for delivery (which MX hosts, TLS with a valid
//! certificate). Also the policy Petrel serves for its own domains.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};

use crate::core::{unix_now, Core};

/// Largest policy accepted (RFC 8461 §3.3 suggests 64 KB).
const MAX_POLICY: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub mode: Mode,
    pub mx: Vec<String>,
    pub max_age: u64,
    /// The TXT record id this policy was fetched under.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub fetched: i64,
}

impl Policy {
    /// Parses a policy file (RFC 8461 §3.2): `key: value` lines.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut version = None;
        let mut mode = None;
        let mut mx = Vec::new();
        let mut max_age = None;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| format!("policy line without ':': {line}"))?;
            let v = v.trim();
            match k.trim() {
                "version" => version = Some(v.to_string()),
                "mode" => {
                    mode = Some(match v {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return Err(format!("unknown mode `{v}`")),
                    })
                }
                "mx" => mx.push(v.to_ascii_lowercase()),
                "max_age" => {
                    max_age = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|n| *n <= 31_557_600)
                            .ok_or_else(|| format!("bad max_age `{v}`"))?,
                    )
                }
                _ => {} // unknown keys are ignored (§3.2)
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err("policy version is not STSv1".into());
        }
        let mode = mode.ok_or("policy without mode")?;
        if mode != Mode::None && mx.is_empty() {
            return Err("policy without mx".into());
        }
        Ok(Policy {
            mode,
            mx,
            max_age: max_age.ok_or("policy without max_age")?,
            id: String::new(),
            fetched: 0,
        })
    }

    /// Whether an MX host name matches one of the policy's patterns
    /// (RFC 8461 §4.1: "*." matches exactly one left-most label).
    pub fn allows_mx(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| match p.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
            None => host == *p,
        })
    }

    fn is_fresh(&self, now: i64) -> bool {
        self.fetched + self.max_age as i64 > now
    }
}

/// The `id` of a `v=STSv1; id=…` record, if the record is valid (§3.1).
pub fn txt_id(txt: &str) -> Option<String> {
    let mut fields = txt.split(';').map(str::trim);
    if fields.next()? != "v=STSv1" {
        return None;
    }
    fields
        .find_map(|f| f.strip_prefix("id="))
        .filter(|id| {
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(String::from)
}

fn k_policy(domain: &str) -> Vec<u8> {
    let mut k = b"Xs".to_vec();
    k.extend_from_slice(domain.as_bytes());
    k
}

/// The policy in force for `domain`, if any: from the cache while its TXT
/// id is unchanged and it is fresh, else fetched. A failed fetch keeps a
/// cached policy that has not expired (§5.1).
pub async fn policy_for(core: &Core, domain: &str) -> Option<Policy> {
    let now = unix_now();
    let cached: Option<Policy> = match core.store.get(k_policy(domain)).await {
        Ok(Some(v)) => serde_json::from_slice(&v).ok(),
        _ => None,
    };
    let txt = core
        .resolver
        .auth
        .txt_raw_lookup(format!("_mta-sts.{domain}."))
        .await
        .ok()
        .and_then(|raw| txt_id(&String::from_utf8_lossy(&raw)));
    let Some(id) = txt else {
        // No record (or no answer): a cached policy still applies.
        return cached.filter(|p| p.is_fresh(now));
    };
    if let Some(p) = &cached {
        if p.id == id && p.is_fresh(now) {
            return cached;
        }
    }
    match fetch(core, domain).await {
        Ok(mut p) => {
            p.id = id;
            p.fetched = now;
            let v = serde_json::to_vec(&p).expect("serialises");
            let k = k_policy(domain);
            let _ = core
                .store
                .transact(move |txn| {
                    txn.put(k, v);
                    Ok(())
                })
                .await;
            Some(p)
        }
        Err(e) => {
            tracing::warn!(%domain, "MTA-STS policy fetch failed: {e}");
            cached.filter(|p| p.is_fresh(now))
        }
    }
}

/// A TLS client configuration that checks certificates against the
/// system's roots plus `tls.extra-ca`.
pub fn verified_tls(core: &Core) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut extra = Vec::new();
    let path = &core.config.tls.extra_ca;
    if !path.as_os_str().is_empty() {
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("tls.extra-ca {}: {e}", path.display()))?
        {
            extra.push(c.map_err(|e| format!("tls.extra-ca {}: {e}", path.display()))?);
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

/// GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt (§3.3): a valid
/// certificate, status 200, no redirects, text/plain.
pub(crate) async fn fetch(core: &Core, domain: &str) -> Result<Policy, String> {
    let host = format!("mta-sts.{domain}");
    let port = core.config.queue.mta_sts_port;
    let ips = match core.resolver.ips(&host).await {
        crate::queue::route::Lookup::Found(ips) => ips,
        _ => return Err(format!("{host} has no address")),
    };
    let tls = verified_tls(core)?;
    let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect((ips[0], port))
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/.well-known/mta-sts.txt")
            .header(hyper::header::HOST, host.as_str())
            .body(Empty::<hyper::body::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let res = send.send_request(req).await.map_err(|e| e.to_string())?;
        if res.status() != hyper::StatusCode::OK {
            return Err(format!("policy answer {}", res.status()));
        }
        let text_plain = res
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/plain"));
        if !text_plain {
            return Err("policy is not text/plain".into());
        }
        let body = Limited::new(res.into_body(), MAX_POLICY)
            .collect()
            .await
            .map_err(|e| format!("policy body: {e}"))?
            .to_bytes();
        Policy::parse(&String::from_utf8_lossy(&body))
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .map_err(|_| "policy fetch timed out".to_string())?
}

/// The policy Petrel publishes for its own domains (`[mta-sts]`).
pub fn own_policy(core: &Core) -> Option<String> {
    let c = &core.config.mta_sts;
    if c.mode == "off" {
        return None;
    }
    let mx = if c.mx.is_empty() {
        vec![core.config.hostname.clone()]
    } else {
        c.mx.clone()
    };
    let mut text = format!("version: STSv1\r\nmode: {}\r\n", c.mode);
    for m in mx {
        text.push_str(&format!("mx: {m}\r\n"));
    }
    text.push_str(&format!("max_age: {}\r\n", c.max_age));
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        let p = Policy::parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 86400\r\n").unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.allows_mx("mail.example.com."));
        assert!(p.allows_mx("MX1.example.net"));
        assert!(!p.allows_mx("a.b.example.net"), "one label only");
        assert!(!p.allows_mx("example.net"));
        assert!(!p.allows_mx("evil.com"));
        assert!(
            Policy::parse("version: STSv1\nmode: enforce\nmax_age: 5\n").is_err(),
            "no mx"
        );
        assert!(Policy::parse("version: STSv2\nmode: none\nmax_age: 5\n").is_err());
        assert!(Policy::parse("version: STSv1\nmode: sometimes\nmx: a\nmax_age: 5\n").is_err());
        assert!(Policy::parse("version: STSv1\nmode: none\nmax_age: 99999999999\n").is_err());
        assert!(Policy::parse("garbage").is_err());
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            txt_id("v=STSv1; id=20190429T010101"),
            Some("20190429T010101".into())
        );
        assert_eq!(txt_id("v=STSv1;id=abc"), Some("abc".into()));
        assert_eq!(txt_id("v=spf1 -all"), None);
        assert_eq!(txt_id("v=STSv1; id="), None);
        assert_eq!(txt_id("v=STSv1; id=a-b"), None);
    }
}

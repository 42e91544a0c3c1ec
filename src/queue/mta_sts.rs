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
                // §3.2: of a field other than "mx" only the first counts.
                "version" if version.is_none() => version = Some(v.to_string()),
                "mode" if mode.is_none() => {
                    mode = Some(match v {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return Err(format!("unknown mode `{v}`")),
                    })
                }
                "mx" => mx.push(v.to_ascii_lowercase()),
                "max_age" if max_age.is_none() => {
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

/// The `id` of one `_mta-sts` TXT record, if the record is valid (§3.1):
/// US-ASCII, `v=STSv1` first, then `key=value` fields separated by `;`
/// (unknown keys ignored, of a repeated `id` the first counts), and an id
/// of 1 to 32 letters and digits.
pub fn txt_id(txt: &str) -> Option<String> {
    if !txt.is_ascii() {
        return None;
    }
    let mut fields = txt.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let mut id = None;
    let mut fields = fields.peekable();
    while let Some(field) = fields.next() {
        if field.is_empty() && fields.peek().is_none() {
            break; // a trailing delimiter
        }
        let (key, value) = field.split_once('=')?;
        let key_ok = key.len() <= 32
            && key.starts_with(|c: char| c.is_ascii_alphanumeric())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        let value_ok = !value.is_empty()
            && value
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=');
        if !key_ok || !value_ok {
            return None;
        }
        if key == "id" && id.is_none() {
            id = Some(value);
        }
    }
    id.filter(|id| id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(String::from)
}

/// The policy id published for a domain, from all TXT records at
/// `_mta-sts.DOMAIN` (§3.1): records not beginning with `v=STSv1` are set
/// aside; anything but exactly one remaining valid record means no policy.
pub fn record_id(records: &[Vec<u8>]) -> Option<String> {
    let mut sts = records.iter().filter(|r| r.starts_with(b"v=STSv1"));
    let only = sts.next()?;
    if sts.next().is_some() {
        return None;
    }
    txt_id(std::str::from_utf8(only).ok()?)
}

fn k_policy(domain: &str) -> Vec<u8> {
    let mut k = b"Xs".to_vec();
    k.extend_from_slice(domain.as_bytes());
    k
}

/// The last failed fetch for a domain: under which TXT id, and when.
fn k_failure(domain: &str) -> Vec<u8> {
    let mut k = b"Xf".to_vec();
    k.extend_from_slice(domain.as_bytes());
    k
}

/// After a failed fetch, the same policy id is not fetched again for this
/// long (§3.3: "five minutes or longer per version ID").
const RETRY_FAILED_FETCH: i64 = 300;

/// A cached policy is fetched again once this old even when its id has not
/// changed (§3.3, §10.2: refresh before expiry, suggested daily), or after
/// half its max_age when that is shorter.
fn refresh_due(p: &Policy, now: i64) -> bool {
    let every = (p.max_age as i64 / 2).clamp(1, 86_400);
    now >= p.fetched + every
}

/// The policy in force for `domain`, if any (§3.3, §5.1):
/// - the cached one while its TXT id is unchanged and a refresh is not due;
/// - else fetched again; a fetch that fails keeps a cached policy that has
///   not expired, logs a warning (unless the cached mode is "none") and is
///   not retried for the same id within five minutes;
/// - with no usable TXT record, the cached policy while it is fresh.
pub async fn policy_for(core: &Core, domain: &str) -> Option<Policy> {
    let now = unix_now();
    let cached: Option<Policy> = match core.store.get(k_policy(domain)).await {
        Ok(Some(v)) => serde_json::from_slice(&v).ok(),
        _ => None,
    }
    .filter(|p: &Policy| p.is_fresh(now));
    // §3.4: the policy domain is the recipient domain itself, never a
    // parent zone.
    let id = core
        .resolver
        .txt_records(&format!("_mta-sts.{domain}."))
        .await
        .and_then(|records| record_id(&records));
    let Some(id) = id else {
        return cached;
    };
    if let Some(p) = &cached {
        if p.id == id && !refresh_due(p, now) {
            return cached;
        }
    }
    let failed: Option<(String, i64)> = match core.store.get(k_failure(domain)).await {
        Ok(Some(v)) => serde_json::from_slice(&v).ok(),
        _ => None,
    };
    if failed.is_some_and(|(fid, at)| fid == id && now < at + RETRY_FAILED_FETCH) {
        return cached;
    }
    let (policy, key, value, clear) = match fetch(core, domain).await {
        Ok(mut p) => {
            tracing::info!(%domain, %id, mode = ?p.mode, "MTA-STS policy fetched");
            p.id = id;
            p.fetched = now;
            let v = serde_json::to_vec(&p).expect("serialises");
            (Some(p), k_policy(domain), v, Some(k_failure(domain)))
        }
        Err(e) => {
            if cached.as_ref().is_none_or(|p| p.mode != Mode::None) {
                let then = if cached.is_some() {
                    "using the cached policy"
                } else {
                    "delivering as if the domain had no policy"
                };
                tracing::warn!(%domain, "MTA-STS policy fetch failed: {e}; {then}");
            }
            let v = serde_json::to_vec(&(id, now)).expect("serialises");
            (cached, k_failure(domain), v, None)
        }
    };
    let _ = core
        .store
        .transact(move |txn| {
            txn.put(key, value);
            if let Some(k) = clear {
                txn.delete(k);
            }
            Ok(())
        })
        .await;
    policy
}

/// A TLS client configuration that checks certificates against the
/// system's roots plus `tls.extra-ca`.
/// Built once (reading the system's roots is not free) and shared by
/// every checked connection: policy fetches, MTA-STS and REQUIRETLS hops,
/// relay logins.
pub fn verified_tls(core: &Core) -> Result<Arc<rustls::ClientConfig>, String> {
    if let Some(cfg) = core.checked_tls.get() {
        return Ok(cfg.clone());
    }
    let cfg = crate::net::tls::checked_client(&core.config.tls.extra_ca, "tls.extra-ca")?;
    Ok(core.checked_tls.get_or_init(|| cfg).clone())
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
        // §3.1: v=STSv1 first; US-ASCII only; §3.2: unknown fields are
        // ignored, of a repeated field the first counts.
        assert_eq!(txt_id("id=1; v=STSv1"), None);
        assert_eq!(txt_id("v=STSv1; id=1; note=é"), None);
        assert_eq!(
            txt_id("v=STSv1; id=1; ext-key=any!value;"),
            Some("1".into())
        );
        assert_eq!(txt_id("v=STSv1;\tid=7 ; id=8"), Some("7".into()));
        assert_eq!(txt_id("v=STSv1; id=1; garbage"), None);
        assert_eq!(txt_id("v=STSv10; id=1"), None);
    }

    #[test]
    fn one_record_or_none() {
        let r = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(
            record_id(&r(&["v=spf1 -all", "v=STSv1; id=5"])),
            Some("5".into())
        );
        assert_eq!(record_id(&r(&["v=STSv1; id=5", "v=STSv1; id=6"])), None);
        assert_eq!(record_id(&r(&["v=STSv1; id=5", "v=STSv1 broken"])), None);
        assert_eq!(record_id(&r(&[])), None);
    }

    #[test]
    fn first_of_a_repeated_policy_field_counts() {
        let p = Policy::parse(
            "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmx: b.example\nmax_age: 60\nmax_age: 99\nfuture: x\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Testing);
        assert_eq!(p.max_age, 60);
        assert!(p.allows_mx("a.example") && p.allows_mx("b.example"));
    }

    #[test]
    fn refresh_is_due_daily_or_at_half_max_age() {
        let p = |max_age| Policy {
            mode: Mode::Enforce,
            mx: vec![],
            max_age,
            id: "1".into(),
            fetched: 1000,
        };
        assert!(!refresh_due(&p(604_800), 1000 + 86_399));
        assert!(refresh_due(&p(604_800), 1000 + 86_400));
        assert!(!refresh_due(&p(4), 1001));
        assert!(refresh_due(&p(4), 1002));
    }
}

//! Sending to push subscriptions (RFC 8620 §7.2): the PushVerification
//! when one is made, then, once verified, a StateChange whenever the
//! account's mail changes (coalesced: one POST per change notification,
//! naming what changed since the last one). POSTs go over HTTPS only, to
//! an address checked at each send: loopback, private and link-local
//! addresses are refused unless `jmap.push-allow-private` (§8.6: no
//! requests into the server's own network). A 429 pauses the
//! subscription for a minute, changes gather meanwhile (§7.2); an
//! expired subscription is deleted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hyper::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::core::{unix_now, SharedCore};
use crate::mail::records::Kind;

/// A push subscription as kept (the URL never leaves the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushSub {
    pub credential: String,
    pub device_client_id: String,
    pub url: String,
    pub expires: i64,
    pub types: Option<Vec<String>>,
    pub verification_code: String,
    pub verified: bool,
    #[serde(default)]
    pub created: i64,
    /// RFC 8620 §7.2 `keys`: pushes are encrypted for them (RFC 8291).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<super::webpush::PushKeys>,
}

/// Whether the credential a subscription belongs to still works: the
/// account is enabled and, for a token, the token is not revoked (§7.2:
/// otherwise the subscription is destroyed).
async fn credential_alive(core: &crate::core::Core, acct: u32, cred: &str) -> bool {
    match core.directory.account_by_id(acct).await {
        Ok(Some(a)) if a.enabled => {}
        Ok(_) => return false,
        Err(_) => return true,
    }
    match cred.strip_prefix("token:").map(str::parse::<u64>) {
        Some(Ok(id)) => core.directory.token_exists(acct, id).await.unwrap_or(true),
        Some(Err(_)) => false,
        None => true,
    }
}

/// Whether `ip` is outside the server's own networks.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.octets()[0] == 100 && (64..128).contains(&v.octets()[1]))
        }
        IpAddr::V6(v) => {
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80)
                && v.to_ipv4_mapped().is_none_or(|m| public(IpAddr::V4(m)))
        }
    }
}

/// Host, port and path of an https URL.
pub fn target(url: &str) -> Result<(String, u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("the URL must begin with https://".into());
    }
    let host = uri
        .host()
        .ok_or("the URL has no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok((host, uri.port_u16().unwrap_or(443), path))
}

/// The address to connect to: the host resolved, private addresses
/// refused unless allowed.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    addrs
        .into_iter()
        .find(|a| allow_private || public(a.ip()))
        .ok_or_else(|| {
            format!("{host} resolves to no public address (jmap.push-allow-private is off)")
        })
}

/// The checked TLS client configuration for push URLs, built once.
fn tls_config(core: &crate::core::Core) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
        std::sync::OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let c = crate::net::tls::checked_client(&core.config.jmap.push_ca_file, "jmap.push-ca-file")?;
    Ok(CONFIG.get_or_init(|| c).clone())
}

/// POSTs `body` (JSON) to the subscription's URL, encrypted when it has
/// keys (RFC 8291, `Content-Encoding: aes128gcm`); the HTTP status.
pub async fn post(core: &crate::core::Core, sub: &PushSub, body: &Value) -> Result<u16, String> {
    let url = sub.url.as_str();
    // RFC 8620 §7.2: application/json either way; encrypted, the JSON
    // is under the aes128gcm content coding.
    let (coding, body) = match &sub.keys {
        None => (None, Bytes::from(body.to_string())),
        Some(k) => (
            Some("aes128gcm"),
            Bytes::from(super::webpush::encrypt(k, body.to_string().as_bytes())?),
        ),
    };
    let (host, port, path) = target(url)?;
    let addr = resolve(&host, port, core.config.jmap.push_allow_private).await?;
    let tls = tls_config(core)?;
    let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
    let send = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = hyper::Request::post(path)
            .header(hyper::header::HOST, host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            // RFC 8030 §5.2, asked by RFC 8620 §7.2.
            .header("TTL", "86400");
        if let Some(c) = coding {
            req = req.header(hyper::header::CONTENT_ENCODING, c);
        }
        let req = req
            .body(http_body_util::Full::new(body))
            .map_err(|e| e.to_string())?;
        let rsp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        Ok::<u16, String>(rsp.status().as_u16())
    };
    tokio::time::timeout(Duration::from_secs(15), send)
        .await
        .map_err(|_| format!("{host} did not answer in 15 s"))?
}

/// §7.2.2: the verification push of a new subscription.
pub fn verify(core: SharedCore, id: String, sub: PushSub) {
    tokio::spawn(async move {
        let body = json!({"@type": "PushVerification", "pushSubscriptionId": id, "verificationCode": sub.verification_code});
        match post(&core, &sub, &body).await {
            Ok(s) => tracing::info!(subscription = %id, status = s, "JMAP push verification sent"),
            Err(e) => tracing::warn!(subscription = %id, "JMAP push verification not sent: {e}"),
        }
    });
}

/// The accounts whose subscriptions hear of a change in `acct`: its own
/// and those it shares a mailbox with by a direct grant (RFC 8620
/// §1.6.2; grants to "anyone" push to no one else).
async fn listeners(
    core: &crate::core::Core,
    acct: u32,
) -> Result<Vec<u32>, crate::mail::MailError> {
    let mut out = vec![acct];
    for m in core.mail.mailboxes(acct).await? {
        for g in &m.acl {
            let lookup = crate::mail::acl::Rights::parse(&g.rights).is_some_and(|r| r.has('l'));
            if g.who != crate::mail::acl::ANYONE && lookup && !out.contains(&g.who) {
                out.push(g.who);
            }
        }
    }
    Ok(out)
}

/// Starts the task that pushes StateChanges to verified subscriptions.
pub fn spawn(core: SharedCore, mut shutdown: crate::net::Shutdown) {
    tokio::spawn(async move {
        let mut rx = core.mail.subscribe();
        // (subscriber, subscription, account changed) → the state pushed
        // last.
        let mut last: HashMap<(u32, u64, u32), u64> = HashMap::new();
        let mut paused: HashMap<(u32, u64), tokio::time::Instant> = HashMap::new();
        // Account → who hears of its changes, as read at an ACL version
        // (grants change rarely; changes come with every delivery).
        let mut heard_by: HashMap<u32, (u64, Vec<u32>)> = HashMap::new();
        loop {
            let acct = tokio::select! {
                r = rx.recv() => match r {
                    Ok(a) => a,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                _ = shutdown.wait() => return,
            };
            // The account's state once per notification, not per subscription.
            let current = core
                .mail
                .account_usage(acct)
                .await
                .map(|u| u.state)
                .unwrap_or(0);
            let version = core.mail.acl_version();
            let users = match heard_by.get(&acct) {
                Some((v, users)) if *v == version => users.clone(),
                _ => match listeners(&core, acct).await {
                    Ok(users) => {
                        heard_by.insert(acct, (version, users.clone()));
                        users
                    }
                    // Read again next time; the owner still hears.
                    Err(_) => vec![acct],
                },
            };
            for user in users {
                push_to(&core, user, acct, current, &mut last, &mut paused).await;
            }
        }
    });
}

/// Pushes what changed in `acct` to the subscriptions of `user`.
async fn push_to(
    core: &crate::core::Core,
    user: u32,
    acct: u32,
    current: u64,
    last: &mut HashMap<(u32, u64, u32), u64>,
    paused: &mut HashMap<(u32, u64), tokio::time::Instant>,
) {
    let Ok(subs) = core
        .mail
        .records::<PushSub>(user, Kind::PushSubscription)
        .await
    else {
        return;
    };
    let now = unix_now();
    for (n, sub) in subs {
        if sub.expires <= now || !credential_alive(core, user, &sub.credential).await {
            // §7.2: no requests after expiry or once the credential is
            // gone; the record (and its URL) goes.
            let _ = core
                .mail
                .delete_record(user, Kind::PushSubscription, n)
                .await;
            continue;
        }
        if !sub.verified
            || paused
                .get(&(user, n))
                .is_some_and(|t| *t > tokio::time::Instant::now())
        {
            continue;
        }
        let types: Vec<String> = sub
            .types
            .clone()
            .unwrap_or_else(|| super::watch::TYPES.iter().map(|t| t.to_string()).collect());
        let key = (user, n, acct);
        let mut at = *last.entry(key).or_insert(current.saturating_sub(1));
        let before = at;
        let Some(changed) = super::watch::account_changes(core, acct, &mut at, &types).await else {
            last.insert(key, at);
            continue;
        };
        let change = json!({
            "@type": "StateChange",
            "changed": { super::id::account(acct): changed }
        });
        match post(core, &sub, &change).await {
            Ok(429) => {
                // Gather changes; try again in a minute.
                paused.insert(
                    (user, n),
                    tokio::time::Instant::now() + Duration::from_secs(60),
                );
                last.insert(key, before);
            }
            Ok(s) if (200..300).contains(&s) => {
                metrics::counter!("petrel_jmap_pushes_total").increment(1);
                last.insert(key, at);
            }
            Ok(s) => {
                tracing::info!(
                    account = user,
                    subscription = n,
                    status = s,
                    "JMAP push refused"
                );
                last.insert(key, at);
            }
            Err(e) => {
                tracing::info!(account = user, subscription = n, "JMAP push failed: {e}");
                last.insert(key, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_urls() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(public(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            target("https://push.example/a?b=1").unwrap(),
            ("push.example".into(), 443, "/a?b=1".into())
        );
        assert_eq!(target("https://[::1]:8443/").unwrap().1, 8443);
        assert!(target("http://push.example/").is_err());
    }
}

//! Where a message for a domain goes: a smarthost, a per-domain route, or
//! the domain's MX hosts (RFC 5321 §5.1) with implicit MX and null MX
//! (RFC 7505). DNS goes through hickory-resolver (via mail-auth) to the
//! servers in `[resolver]`, so tests use a real local DNS server.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::common::cache::NoCache;
use mail_auth::hickory_resolver::config::ConnectionConfig;
use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolverConfig as HickoryConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::hickory_resolver::proto::dnssec::TrustAnchors;
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::{IpLookupStrategy, MessageAuthenticator, RecordSet, MX};

use crate::config::{Config, ResolverConfig, TlsMode};

/// A DNS answer sorted into what mail routing needs to tell apart.
#[derive(Debug)]
pub enum Lookup<T> {
    Found(T),
    /// NXDOMAIN or no records of the type: a definite answer.
    NotFound,
    /// Timeout, SERVFAIL, refused…: try again later (never a bounce).
    TempFail(String),
}

pub struct Resolver {
    pub auth: MessageAuthenticator,
    /// The same servers, with DNSSEC validation (DANE lookups only: a
    /// zone with broken signatures must not stop ordinary mail).
    pub dnssec: TokioResolver,
}

fn classify<T>(r: mail_auth::Result<T>) -> Lookup<T> {
    match r {
        Ok(v) => Lookup::Found(v),
        Err(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(_))) => Lookup::NotFound,
        Err(e) => Lookup::TempFail(e.to_string()),
    }
}

impl Resolver {
    pub fn new(cfg: &ResolverConfig) -> anyhow::Result<Resolver> {
        let (config, mut opts) = if cfg.nameservers.is_empty() {
            mail_auth::hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|_| {
                // No /etc/resolv.conf: the local stub.
                let ns = NameServerConfig::udp_and_tcp(IpAddr::from([127, 0, 0, 1]));
                (
                    HickoryConfig::from_name_servers(vec![ns]),
                    ResolverOpts::default(),
                )
            })
        } else {
            let servers = cfg
                .nameservers
                .iter()
                .map(|a| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = a.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = a.port();
                    NameServerConfig::new(a.ip(), true, vec![udp, tcp])
                })
                .collect();
            (
                HickoryConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = Duration::from_secs(cfg.timeout.max(1));
        opts.attempts = 2;
        // Answers without a TTL of their own (NXDOMAIN without an SOA) are
        // kept this long, so mail from one sender does not ask again and
        // again.
        opts.negative_min_ttl = Some(Duration::from_secs(cfg.negative_ttl));
        opts.cache_size = 32_768;
        let anchors = if cfg.trust_anchors.is_empty() {
            TrustAnchors::default()
        } else {
            TrustAnchors::from_file(std::path::Path::new(&cfg.trust_anchors)).map_err(|e| {
                anyhow::anyhow!("resolver.trust-anchors `{}`: {e}", cfg.trust_anchors)
            })?
        };
        let mut secure_opts = opts.clone();
        secure_opts.validate = true;
        let dnssec =
            TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default())
                .with_options(secure_opts)
                .with_trust_anchor(std::sync::Arc::new(anchors))
                .build()
                .map_err(|e| anyhow::anyhow!("cannot set up DNSSEC validation: {e}"))?;
        let auth = MessageAuthenticator::new(config, opts)
            .map_err(|e| anyhow::anyhow!("cannot set up DNS: {e}"))?;
        Ok(Resolver { auth, dnssec })
    }

    /// MX hosts by preference (equal preferences shuffled, §5.1).
    pub async fn mx(&self, domain: &str) -> Lookup<Vec<(u16, String)>> {
        let r = self
            .auth
            .mx_lookup(domain, None::<&NoCache<Box<str>, RecordSet<MX>>>)
            .await;
        match classify(r) {
            Lookup::Found(set) => {
                let mut out = Vec::new();
                for mx in set.rrset.iter() {
                    let mut names: Vec<String> = mx
                        .exchanges
                        .iter()
                        .map(|e| e.trim_end_matches('.').to_ascii_lowercase())
                        .collect();
                    use rand::seq::SliceRandom;
                    names.shuffle(&mut rand::thread_rng());
                    out.extend(names.into_iter().map(|n| (mx.preference, n)));
                }
                if out.is_empty() {
                    Lookup::NotFound
                } else {
                    Lookup::Found(out)
                }
            }
            Lookup::NotFound => Lookup::NotFound,
            Lookup::TempFail(e) => Lookup::TempFail(e),
        }
    }

    /// Every TXT record at `name`, each record's strings joined without
    /// spaces (RFC 8461 §3.1, RFC 7208 §3.3); CNAMEs are followed. None
    /// when there is no answer (not found or a failure alike).
    pub async fn txt_records(&self, name: &str) -> Option<Vec<Vec<u8>>> {
        use mail_auth::hickory_resolver::proto::rr::RData;
        let lookup = self.auth.0.txt_lookup(name).await.ok()?;
        let records: Vec<Vec<u8>> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Some(records)
    }

    /// A then AAAA addresses of a host name (or the literal itself).
    pub async fn ips(&self, host: &str) -> Lookup<Vec<IpAddr>> {
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return Lookup::Found(vec![ip]);
        }
        let r = self
            .auth
            .ip_lookup(
                host,
                IpLookupStrategy::Ipv4thenIpv6,
                10,
                None::<&NoCache<Box<str>, RecordSet<std::net::Ipv4Addr>>>,
                None::<&NoCache<Box<str>, RecordSet<std::net::Ipv6Addr>>>,
            )
            .await;
        match classify(r) {
            Lookup::Found(v) if v.is_empty() => Lookup::NotFound,
            other => other,
        }
    }
}

/// One server to try, with everything needed to talk to it.
#[derive(Debug, Clone)]
pub struct Hop {
    /// Host name (for TLS SNI and logs).
    pub name: String,
    pub addrs: Vec<SocketAddr>,
    pub tls: TlsMode,
    /// AUTH PLAIN credentials (smarthost only).
    pub auth: Option<(String, String)>,
    /// TLS with a certificate valid for `name` is required (MTA-STS enforce).
    pub verify: bool,
    /// DANE for this host (MX routing only).
    pub dane: super::dane::Dane,
}

/// Why there is nowhere to send to.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteError {
    pub permanent: bool,
    /// An SMTP-style reply text with enhanced code, for DSNs.
    pub reply: String,
}

impl RouteError {
    fn temp(reply: String) -> RouteError {
        RouteError {
            permanent: false,
            reply,
        }
    }
    fn perm(reply: String) -> RouteError {
        RouteError {
            permanent: true,
            reply,
        }
    }
}

/// Splits "host:port" (IPv6 literals in brackets).
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (h, p) = s.rsplit_once(':')?;
    Some((
        h.trim_matches(|c| c == '[' || c == ']').to_string(),
        p.parse().ok()?,
    ))
}

async fn hop_for(
    resolver: &Resolver,
    target: &str,
    tls: TlsMode,
    auth: Option<(String, String)>,
) -> Result<Vec<Hop>, RouteError> {
    let (host, port) = split_host_port(target).ok_or_else(|| {
        RouteError::temp(format!(
            "451 4.3.5 Bad route `{target}` in the configuration"
        ))
    })?;
    let addrs = match resolver.ips(&host).await {
        Lookup::Found(ips) => ips,
        Lookup::NotFound => {
            // Host names like "localhost" come from /etc/hosts.
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(it) => it.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            }
        }
        Lookup::TempFail(e) => {
            return Err(RouteError::temp(format!(
                "451 4.4.3 DNS error for {host}: {e}"
            )))
        }
    };
    if addrs.is_empty() {
        return Err(RouteError::temp(format!(
            "451 4.4.3 Relay host {host} has no address"
        )));
    }
    // RFC 8314 §3.3: a relay we log in to is reached over TLS with a
    // checked certificate (system roots plus tls.extra-ca), never in clear.
    let login = auth.is_some();
    let tls = match tls {
        TlsMode::Implicit => TlsMode::Implicit,
        _ if login => TlsMode::Required,
        other => other,
    };
    Ok(vec![Hop {
        name: host,
        addrs: addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        tls,
        auth,
        verify: login,
        dane: super::dane::Dane::None,
    }])
}

/// RFC 8461 §3.4: mail sent through a configured relay or route follows
/// the MTA-STS policy of the relay host's own name, not the recipient's.
async fn smart_host_policy(
    core: &crate::core::Core,
    mut hops: Vec<Hop>,
) -> Result<Vec<Hop>, RouteError> {
    if !core.config.queue.mta_sts {
        return Ok(hops);
    }
    for hop in &mut hops {
        // An address or a bare name (localhost) has no policy domain.
        if hop.name.parse::<IpAddr>().is_ok() || !hop.name.contains('.') {
            continue;
        }
        let Some(p) = super::mta_sts::policy_for(core, &hop.name).await else {
            continue;
        };
        match p.mode {
            super::mta_sts::Mode::Enforce => {
                if !p.allows_mx(&hop.name) {
                    return Err(RouteError::temp(format!(
                        "451 4.7.5 Relay host {} does not match its MTA-STS policy",
                        hop.name
                    )));
                }
                hop.verify = true;
                hop.tls = TlsMode::Required;
            }
            super::mta_sts::Mode::Testing if !p.allows_mx(&hop.name) => {
                tracing::warn!(host = %hop.name, "MTA-STS (testing): relay host outside its policy");
            }
            _ => {}
        }
    }
    Ok(hops)
}

/// The servers to try for `domain`, best first.
pub async fn route(core: &crate::core::Core, domain: &str) -> Result<Vec<Hop>, RouteError> {
    let cfg: &Config = &core.config;
    let resolver = &core.resolver;
    let q = &cfg.queue;
    if let Some(target) = q.routes.get(domain) {
        let hops = hop_for(resolver, target, q.tls, None).await?;
        return smart_host_policy(core, hops).await;
    }
    if !q.relay.is_empty() {
        let auth =
            (!q.relay_user.is_empty()).then(|| (q.relay_user.clone(), q.relay_secret.clone()));
        let hops = hop_for(resolver, &q.relay, q.relay_tls, auth).await?;
        return smart_host_policy(core, hops).await;
    }
    let mut names: Vec<String> = match resolver.mx(domain).await {
        Lookup::Found(list) => {
            // RFC 7505 §3: a single MX of "." means the domain takes no mail.
            if list.len() == 1 && list[0].1.is_empty() {
                return Err(RouteError::perm(format!(
                    "556 5.1.10 Domain {domain} does not accept mail (null MX)"
                )));
            }
            list.into_iter()
                .map(|(_, n)| n)
                .filter(|n| !n.is_empty())
                .collect()
        }
        // §5.1: no MX records — the domain itself is the implicit MX.
        Lookup::NotFound => vec![domain.to_string()],
        Lookup::TempFail(e) => {
            return Err(RouteError::temp(format!(
                "451 4.4.3 MX lookup for {domain} failed: {e}"
            )))
        }
    };
    // RFC 8461 §5: with an enforced policy only matching MX hosts, over TLS
    // with a valid certificate; "testing" only logs.
    let mut verify = false;
    if q.mta_sts {
        if let Some(p) = super::mta_sts::policy_for(core, domain).await {
            match p.mode {
                super::mta_sts::Mode::Enforce => {
                    names.retain(|n| p.allows_mx(n));
                    if names.is_empty() {
                        return Err(RouteError::temp(format!(
                            "451 4.7.5 No MX host of {domain} matches its MTA-STS policy"
                        )));
                    }
                    verify = true;
                }
                super::mta_sts::Mode::Testing => {
                    if names.iter().any(|n| !p.allows_mx(n)) {
                        tracing::warn!(%domain, "MTA-STS (testing): MX hosts outside the policy");
                    }
                }
                super::mta_sts::Mode::None => {}
            }
        }
    }
    // RFC 7672 §2.2.1: TLSA records count only behind a secure MX set.
    let dane = q.dane && super::dane::mx_secure(&resolver.dnssec, domain).await;
    let mut hops = Vec::new();
    let mut temp = None;
    for name in names {
        let dane = if dane {
            super::dane::lookup(&resolver.dnssec, &name).await
        } else {
            super::dane::Dane::None
        };
        // DANE, where it applies, takes the place of MTA-STS (RFC 8461 §2).
        let verify = verify && dane == super::dane::Dane::None;
        match resolver.ips(&name).await {
            Lookup::Found(ips) => hops.push(Hop {
                addrs: ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, q.mx_port))
                    .collect(),
                tls: if verify || dane != super::dane::Dane::None {
                    TlsMode::Required
                } else {
                    q.tls
                },
                name,
                auth: None,
                verify,
                dane,
            }),
            Lookup::NotFound => {}
            Lookup::TempFail(e) => temp = Some(e),
        }
    }
    if hops.is_empty() {
        return Err(match temp {
            Some(e) => RouteError::temp(format!(
                "451 4.4.3 Address lookup for the MX of {domain} failed: {e}"
            )),
            None => RouteError::perm(format!(
                "550 5.1.2 Domain {domain} has no mail server address"
            )),
        });
    }
    Ok(hops)
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("mx.example:25"),
            Some(("mx.example".into(), 25))
        );
        assert_eq!(split_host_port("[::1]:2525"), Some(("::1".into(), 2525)));
        assert_eq!(split_host_port("nohost"), None);
    }
}

//! SPF, RFC 7208: check_host() for the HELO and MAIL FROM identities.
//!
//! Written here rather than taken from mail-auth because the openspf.org
//! test suite (tests/spf_suite.rs) showed mail-auth 0.13 departing from
//! the RFC in 65 of its 201 cases (syntax errors accepted, several TXT
//! records merged into one, names it cannot query). The record grammar is
//! in `record`, macro expansion in `macros`; this file evaluates, asking
//! DNS through the server's hickory resolver. Results are handed on as
//! mail-auth's `SpfOutput`, which its DMARC and Authentication-Results
//! code take.

pub mod macros;
pub mod record;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::hickory_resolver::TokioResolver;
use mail_auth::{SpfOutput, SpfResult};

use macros::{expand, to_query_name, Vars};
use record::{Context, MacroString, Mechanism, Qualifier};

/// DNS-querying terms allowed per check (§4.6.4).
const MAX_DNS_TERMS: u32 = 10;
/// Lookups answering "no such name" or "no data" allowed per check
/// (§4.6.4, the recommended default).
const MAX_VOID_LOOKUPS: u32 = 2;
/// MX and PTR names looked at per mechanism (§4.6.4).
const MAX_NAMES: usize = 10;

/// Outcome of one lookup.
enum Dns<T> {
    Found(Vec<T>),
    /// NXDOMAIN or an empty answer.
    Void,
    /// Timeout, SERVFAIL, a malformed answer.
    Error,
}

impl<T> Dns<T> {
    fn map<U>(self, f: impl FnOnce(Vec<T>) -> Vec<U>) -> Dns<U> {
        match self {
            Dns::Found(v) => Dns::Found(f(v)),
            Dns::Void => Dns::Void,
            Dns::Error => Dns::Error,
        }
    }
}

/// What a check knows about the message and the connection.
pub struct Identity<'a> {
    pub ip: IpAddr,
    pub helo: &'a str,
    /// Local part and domain of <sender> (§4.3: "postmaster" for an empty
    /// local part).
    pub local: &'a str,
    pub domain: &'a str,
}

/// Evaluation state shared by the nested check_host() calls of one check.
struct Check<'a> {
    dns: &'a TokioResolver,
    id: &'a Identity<'a>,
    receiver: &'a str,
    dns_terms: u32,
    void: u32,
}

type Eval = (SpfResult, Option<String>);

/// Checks the MAIL FROM identity; an empty reverse-path is checked as
/// postmaster@HELO (§2.4).
pub async fn check_mail_from(
    dns: &TokioResolver,
    receiver: &str,
    ip: IpAddr,
    helo: &str,
    mail_from: &str,
) -> SpfOutput {
    if mail_from.is_empty() {
        return check_helo(dns, receiver, ip, helo).await;
    }
    let (local, domain) = mail_from.rsplit_once('@').unwrap_or(("", mail_from));
    let local = if local.is_empty() {
        "postmaster"
    } else {
        local
    };
    run(dns, receiver, ip, helo, local, domain).await
}

/// Checks the HELO identity (§2.3).
pub async fn check_helo(dns: &TokioResolver, receiver: &str, ip: IpAddr, helo: &str) -> SpfOutput {
    run(dns, receiver, ip, helo, "postmaster", helo).await
}

async fn run(
    dns: &TokioResolver,
    receiver: &str,
    ip: IpAddr,
    helo: &str,
    local: &str,
    domain: &str,
) -> SpfOutput {
    // IPv4-mapped IPv6 addresses are IPv4 addresses (§5, item 9).
    let id = Identity {
        ip: ip.to_canonical(),
        helo,
        local,
        domain,
    };
    let mut check = Check {
        dns,
        id: &id,
        receiver,
        dns_terms: 0,
        void: 0,
    };
    let (result, explanation) = check.check_host(domain.to_string()).await;
    let out = SpfOutput::new(domain.to_ascii_lowercase()).with_result(result);
    match explanation {
        Some(e) => out.with_explanation(e),
        None => out,
    }
}

/// A domain fit to query: labels of 1 to 63 bytes, at most 253 in all,
/// at least two labels (§4.3).
fn valid_domain(d: &str) -> bool {
    let d = d.strip_suffix('.').unwrap_or(d);
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

/// A name made of the labels as they are: SPF may ask for names with
/// characters host names cannot have (`%`, `:`, spaces, from macros).
fn query_name(d: &str) -> Option<Name> {
    let d = d.strip_suffix('.').unwrap_or(d);
    if d.is_empty() || d.len() > 253 || d.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    let mut n = Name::from_labels(d.split('.').map(|l| l.as_bytes())).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// A name from DNS as its labels joined by dots, without the escaping of
/// its presentation form, so that it can be asked for again as it is.
fn name_text(n: &Name) -> String {
    n.iter()
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
}

/// Counts one more against a limit: past it, the check is a permerror.
fn bump(counter: &mut u32, max: u32) -> Result<(), SpfResult> {
    *counter += 1;
    if *counter > max {
        Err(SpfResult::PermError)
    } else {
        Ok(())
    }
}

fn result_of(q: Qualifier) -> SpfResult {
    match q {
        Qualifier::Pass => SpfResult::Pass,
        Qualifier::Fail => SpfResult::Fail,
        Qualifier::SoftFail => SpfResult::SoftFail,
        Qualifier::Neutral => SpfResult::Neutral,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - bits as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - bits as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

impl<'a> Check<'a> {
    async fn lookup(&self, name: &str, rtype: RecordType) -> Dns<RData> {
        let Some(qname) = query_name(name) else {
            return Dns::Void;
        };
        match self.dns.lookup(qname, rtype).await {
            Ok(found) => {
                let rs: Vec<RData> = found
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if rs.is_empty() {
                    Dns::Void
                } else {
                    Dns::Found(rs)
                }
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Dns::Void,
            Err(_) => Dns::Error,
        }
    }

    /// Each TXT record as its strings joined (§3.3).
    async fn txt(&self, name: &str) -> Dns<Vec<u8>> {
        let found = self.lookup(name, RecordType::TXT).await;
        found.map(|rs| {
            rs.into_iter()
                .filter_map(|r| match r {
                    RData::TXT(t) => {
                        Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect())
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// A or AAAA records of `name`, of the family of the client address.
    async fn addrs(&self, name: &str, v6: bool) -> Dns<IpAddr> {
        let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
        let found = self.lookup(name, rtype).await;
        found.map(|rs| {
            rs.into_iter()
                .filter_map(|r| match r {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect()
        })
    }

    /// Counts a void lookup; past the limit the check is a permerror.
    fn void_lookup(&mut self) -> Result<(), SpfResult> {
        bump(&mut self.void, MAX_VOID_LOOKUPS)
    }

    /// The answer to a mechanism's own query: a void one counts against
    /// the void limit, a failed one makes the check a temperror (§5).
    fn mechanism_answer<T>(&mut self, found: Dns<T>) -> Result<Vec<T>, SpfResult> {
        match found {
            Dns::Found(v) => Ok(v),
            Dns::Void => self.void_lookup().map(|_| Vec::new()),
            Dns::Error => Err(SpfResult::TempError),
        }
    }

    fn dns_term(&mut self) -> Result<(), SpfResult> {
        bump(&mut self.dns_terms, MAX_DNS_TERMS)
    }

    /// PTR names of the client address whose own addresses include it
    /// (§5.5), looking at the first ten.
    async fn validated_names(&mut self, count_void: bool) -> Result<Vec<String>, SpfResult> {
        let ip = self.id.ip;
        let names = match self.dns.reverse_lookup(ip).await {
            Ok(found) => found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::PTR(p) => Some(name_text(&p.0).to_ascii_lowercase()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Vec::new(),
            // "If a DNS error occurs while doing the PTR RR lookup, then
            // this mechanism fails to match."
            Err(_) => return Ok(Vec::new()),
        };
        if names.is_empty() && count_void {
            self.void_lookup()?;
        }
        let mut valid = Vec::new();
        for name in names.into_iter().take(MAX_NAMES) {
            if let Dns::Found(addrs) = self.addrs(&name, ip.is_ipv6()).await {
                if addrs.contains(&ip) {
                    valid.push(name);
                }
            }
        }
        Ok(valid)
    }

    /// Expands a macro-string for `domain`, resolving `p` first if used.
    async fn expand(&mut self, ms: &MacroString, domain: &str) -> String {
        let validated = if ms.uses(b'p') {
            let names = self.validated_names(false).await.unwrap_or_default();
            // Prefer the domain itself, then a subdomain of it (§7.3).
            let d = domain.to_ascii_lowercase();
            let suffix = format!(".{d}");
            names
                .iter()
                .find(|n| **n == d)
                .or_else(|| names.iter().find(|n| n.ends_with(&suffix)))
                .or(names.first())
                .cloned()
        } else {
            None
        };
        let vars = Vars {
            local: self.id.local,
            sender_domain: self.id.domain,
            domain,
            ip: self.id.ip,
            helo: self.id.helo,
            validated: validated.as_deref(),
            receiver: self.receiver,
            now: crate::core::unix_now(),
        };
        expand(ms, &vars)
    }

    async fn target(&mut self, spec: &Option<MacroString>, domain: &str) -> String {
        match spec {
            Some(ms) => to_query_name(&self.expand(ms, domain).await),
            None => domain.to_string(),
        }
    }

    fn check_host(&mut self, domain: String) -> Pin<Box<dyn Future<Output = Eval> + Send + '_>> {
        Box::pin(async move {
            match self.evaluate(&domain).await {
                Ok(e) => e,
                Err(r) => (r, None),
            }
        })
    }

    async fn evaluate(&mut self, domain: &str) -> Result<Eval, SpfResult> {
        // §4.3: a malformed or single-label domain gives "none".
        if !valid_domain(domain) {
            return Ok((SpfResult::None, None));
        }
        // §4.4, §4.5: exactly one "v=spf1" TXT record.
        let records = match self.txt(domain).await {
            Dns::Found(rs) => rs,
            Dns::Void => return Ok((SpfResult::None, None)),
            Dns::Error => return Err(SpfResult::TempError),
        };
        let mut spf = records.iter().filter(|r| record::is_spf1(r));
        let (Some(text), None) = (spf.next(), spf.next()) else {
            return if records.iter().any(|r| record::is_spf1(r)) {
                Err(SpfResult::PermError)
            } else {
                Ok((SpfResult::None, None))
            };
        };
        let rec = record::parse(text).map_err(|_| SpfResult::PermError)?;

        let v6 = self.id.ip.is_ipv6();
        for d in &rec.directives {
            if d.mechanism.queries_dns() {
                self.dns_term()?;
            }
            let matched = match &d.mechanism {
                Mechanism::All => true,
                Mechanism::Ip4 { net, cidr } => in_net(self.id.ip, IpAddr::V4(*net), *cidr),
                Mechanism::Ip6 { net, cidr } => in_net(self.id.ip, IpAddr::V6(*net), *cidr),
                Mechanism::Include(spec) => {
                    let target = self.target(&Some(spec.clone()), domain).await;
                    // §5.2: the included record's result decides whether
                    // this mechanism matches.
                    match self.check_host(target).await.0 {
                        SpfResult::Pass => true,
                        SpfResult::Fail | SpfResult::SoftFail | SpfResult::Neutral => false,
                        SpfResult::TempError => return Err(SpfResult::TempError),
                        SpfResult::PermError | SpfResult::None => return Err(SpfResult::PermError),
                    }
                }
                Mechanism::A(h) => {
                    let target = self.target(&h.domain, domain).await;
                    let bits = if v6 { h.cidr6 } else { h.cidr4 };
                    let found = self.addrs(&target, v6).await;
                    let addrs = self.mechanism_answer(found)?;
                    addrs.iter().any(|a| in_net(self.id.ip, *a, bits))
                }
                Mechanism::Mx(h) => {
                    let target = self.target(&h.domain, domain).await;
                    let bits = if v6 { h.cidr6 } else { h.cidr4 };
                    let found = self.lookup(&target, RecordType::MX).await;
                    let hosts: Vec<String> = self
                        .mechanism_answer(found)?
                        .into_iter()
                        .filter_map(|r| match r {
                            RData::MX(mx) => Some(name_text(&mx.exchange)),
                            _ => None,
                        })
                        .collect();
                    // §4.6.4: more than ten MX names is a permerror.
                    if hosts.len() > MAX_NAMES {
                        return Err(SpfResult::PermError);
                    }
                    let mut hit = false;
                    for host in hosts {
                        let host = host.trim_end_matches('.');
                        if host.is_empty() {
                            continue; // null MX (RFC 7505)
                        }
                        match self.addrs(host, v6).await {
                            Dns::Found(addrs) => {
                                if addrs.iter().any(|a| in_net(self.id.ip, *a, bits)) {
                                    hit = true;
                                    break;
                                }
                            }
                            Dns::Void => {}
                            Dns::Error => return Err(SpfResult::TempError),
                        }
                    }
                    hit
                }
                Mechanism::Ptr(spec) => {
                    let target = self.target(spec, domain).await.to_ascii_lowercase();
                    let suffix = format!(".{target}");
                    self.validated_names(true)
                        .await?
                        .iter()
                        .any(|n| *n == target || n.ends_with(&suffix))
                }
                Mechanism::Exists(spec) => {
                    let target = self.target(&Some(spec.clone()), domain).await;
                    // §5.7: always an A query, whatever the client's family.
                    let found = self.addrs(&target, false).await;
                    !self.mechanism_answer(found)?.is_empty()
                }
            };
            if matched {
                let result = result_of(d.qualifier);
                let why = match (&rec.exp, result) {
                    (Some(exp), SpfResult::Fail) => self.explanation(exp, domain).await,
                    _ => None,
                };
                return Ok((result, why));
            }
        }

        // §6.1: redirect applies when no mechanism matched; its record's
        // result (and explanation) is the result, "none" a permerror.
        if let Some(spec) = &rec.redirect {
            self.dns_term()?;
            let target = self.target(&Some(spec.clone()), domain).await;
            return match self.check_host(target).await {
                (SpfResult::None, _) => Err(SpfResult::PermError),
                other => Ok(other),
            };
        }
        Ok((SpfResult::Neutral, None))
    }

    /// The explanation string of exp= (§6.2); any trouble means none. Its
    /// lookup counts against no limit.
    async fn explanation(&mut self, spec: &MacroString, domain: &str) -> Option<String> {
        let name = to_query_name(&self.expand(spec, domain).await);
        let Dns::Found(records) = self.txt(&name).await else {
            return None;
        };
        let [text] = records.as_slice() else {
            return None;
        };
        let text = std::str::from_utf8(text).ok().filter(|t| t.is_ascii())?;
        let ms = record::macro_string(text, Context::Explanation).ok()?;
        Some(self.expand(&ms, domain).await)
    }
}

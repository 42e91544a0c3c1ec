//! `petrel dns check DOMAIN`: asks the configured resolver for each record
//! the domain needs and says, for each, OK, wrong or missing, with the
//! record to publish. A fresh resolver per check, so an answer cached
//! before a fix does not hide it.

use std::net::IpAddr;

use mail_auth::hickory_resolver::net::{DnsError, NetError};
use mail_auth::hickory_resolver::proto::rr::{Name, RData, RecordType};
use mail_auth::hickory_resolver::TokioResolver;
use serde::Serialize;

use super::advice::{self, DnsRecord};
use crate::core::{Core, Endpoints};
use crate::queue::route::{Lookup, Resolver};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Wrong,
    Missing,
    /// The lookup failed (timeout, SERVFAIL): nothing could be said.
    Error,
    /// Not applicable here (a private address has no public PTR).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What is checked: "MX", "SPF", "DKIM", …
    pub check: &'static str,
    /// The name asked for.
    pub name: String,
    pub status: Status,
    /// What the resolver answered, as text.
    pub found: String,
    /// Why it is not OK, or what was verified.
    pub detail: String,
    /// The records to publish, when not OK.
    pub publish: Vec<DnsRecord>,
}

fn finding(
    check: &'static str,
    name: &str,
    status: Status,
    found: String,
    detail: String,
) -> Finding {
    Finding {
        check,
        name: name.to_string(),
        status,
        found,
        detail,
        publish: Vec::new(),
    }
}

/// OK when what was found is `good`, missing when nothing was found,
/// wrong otherwise; `why` says what missing and wrong mean here.
fn verdict(
    check: &'static str,
    name: &str,
    found: String,
    any: bool,
    good: bool,
    why: (&str, String),
) -> Finding {
    let (status, detail) = match (good, any) {
        (true, _) => (Status::Ok, String::new()),
        (false, false) => (Status::Missing, why.0.to_string()),
        (false, true) => (Status::Wrong, why.1),
    };
    finding(check, name, status, found, detail)
}

/// Adds the records to publish to a finding that is not OK.
fn advise(mut f: Finding, records: impl IntoIterator<Item = DnsRecord>) -> Finding {
    if f.status != Status::Ok {
        f.publish.extend(records);
    }
    f
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Addresses that have no meaning outside this network.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// Records of `kind` at `name`: Ok(empty) when there are none.
async fn lookup(dns: &TokioResolver, name: &str, kind: RecordType) -> Result<Vec<RData>, String> {
    let mut qname = Name::from_ascii(name.trim_end_matches('.')).map_err(|e| e.to_string())?;
    qname.set_fqdn(true);
    match dns.lookup(qname, kind).await {
        Ok(found) => Ok(found
            .answers()
            .iter()
            .filter(|r| r.record_type() == kind)
            .map(|r| r.data.clone())
            .collect()),
        Err(NetError::Dns(DnsError::NoRecordsFound(_))) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Each TXT record at `name`, its strings joined.
async fn txt(dns: &TokioResolver, name: &str) -> Result<Vec<String>, String> {
    Ok(lookup(dns, name, RecordType::TXT)
        .await?
        .into_iter()
        .filter_map(|r| match r {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// Addresses of `name` (CNAMEs followed).
async fn addresses(dns: &TokioResolver, name: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for kind in [RecordType::A, RecordType::AAAA] {
        for r in lookup(dns, name, kind).await? {
            match r {
                RData::A(a) => out.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The TXT records at `name` that start with `tag` (case-insensitive).
fn tagged<'a>(records: &'a [String], tag: &str) -> Vec<&'a String> {
    records
        .iter()
        .filter(|r| {
            r.len() >= tag.len()
                && r[..tag.len()].eq_ignore_ascii_case(tag)
                && r[tag.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ';' || c == ' ')
        })
        .collect()
}

/// A tag's value in a `k=v; k=v` record (DKIM, RFC 6376 §3.2).
fn tag_value(record: &str, tag: &str) -> Option<String> {
    record.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        (k.trim() == tag).then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// One TXT policy record (DMARC, MTA-STS, TLS-RPT): exactly one starting
/// with `tag` is OK; none is missing; several are an error for readers.
async fn one_tagged(
    dns: &TokioResolver,
    check: &'static str,
    name: &str,
    tag: &str,
    advice: Option<&DnsRecord>,
) -> Finding {
    let f = match txt(dns, name).await {
        Err(e) => finding(check, name, Status::Error, String::new(), e),
        Ok(all) => {
            let found = tagged(&all, tag);
            let text = found
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            verdict(
                check,
                name,
                text,
                !found.is_empty(),
                found.len() == 1,
                (
                    &format!("no TXT record starting with {tag}"),
                    format!(
                        "{} records start with {tag}: readers take none of them; keep one",
                        found.len()
                    ),
                ),
            )
        }
    };
    advise(f, advice.cloned())
}

/// Every check for `domain`, in the order of the advice.
pub async fn check(core: &Core, domain: &str) -> anyhow::Result<Vec<Finding>> {
    let resolver = Resolver::new(&core.config.resolver)?;
    let dns = resolver.auth.resolver();
    let e = Endpoints::of(core);
    let host = e.host.clone();
    let key = crate::dkim::get(&core.store, domain).await?;
    let expected = advice::records(domain, &e, key.as_ref(), crate::core::unix_now());
    let advice_for = |name: &str, kind: &str| {
        expected
            .iter()
            .find(|r| same_host(&r.name, name) && r.kind == kind)
            .cloned()
    };
    let mut out = Vec::new();

    // The server's own name and its addresses.
    let host_ips = match addresses(dns, &host).await {
        Ok(ips) if ips.is_empty() => {
            let mut f = finding("A/AAAA", &host, Status::Missing, String::new(), format!("{host} has no address: publish an A (and AAAA) record with this server's public address"));
            f.publish.push(DnsRecord {
                name: format!("{host}."),
                kind: "A".into(),
                value: "<this server's public IPv4 address>".into(),
                purpose: "the mail server's address".into(),
            });
            out.push(f);
            Vec::new()
        }
        Ok(ips) => {
            let text = ips
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(finding("A/AAAA", &host, Status::Ok, text, String::new()));
            ips
        }
        Err(err) => {
            out.push(finding("A/AAAA", &host, Status::Error, String::new(), err));
            Vec::new()
        }
    };

    // Reverse DNS of each address: receivers check it (iprev, RFC 8601).
    for ip in &host_ips {
        let name = match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
            }
            IpAddr::V6(v6) => {
                let hex: String = v6.octets().iter().map(|b| format!("{b:02x}")).collect();
                let mut nibbles: Vec<String> = hex.chars().rev().map(String::from).collect();
                nibbles.push("ip6.arpa".into());
                nibbles.join(".")
            }
        };
        if !is_public(*ip) {
            out.push(finding(
                "PTR",
                &name,
                Status::Skipped,
                String::new(),
                format!("{ip} is not a public address"),
            ));
            continue;
        }
        let ptr = DnsRecord {
            name: format!("{name}."),
            kind: "PTR".into(),
            value: format!("{host}."),
            purpose: "reverse DNS (set by whoever holds the address)".into(),
        };
        let f = match lookup(dns, &name, RecordType::PTR).await {
            Err(err) => finding("PTR", &name, Status::Error, String::new(), err),
            Ok(rs) => {
                let names: Vec<String> = rs
                    .iter()
                    .filter_map(|r| match r {
                        RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_string()),
                        _ => None,
                    })
                    .collect();
                let good = names.iter().any(|n| same_host(n, &host));
                verdict("PTR", &name, join(&names), !names.is_empty(), good, (
                    &format!("{ip} has no name: ask the address's provider for a PTR record naming {host}"),
                    format!("{ip} is not named {host}: ask the address's provider to change its PTR record"),
                ))
            }
        };
        out.push(advise(f, [ptr]));
    }

    // MX: mail for the domain comes here.
    let f = match resolver.mx(domain).await {
        Lookup::Found(mx) => {
            let text: Vec<String> = mx.iter().map(|(p, h)| format!("{p} {h}")).collect();
            let good = mx.iter().any(|(_, h)| same_host(h, &host));
            verdict(
                "MX",
                domain,
                join(&text),
                true,
                good,
                (
                    "",
                    format!("no MX names {host}: mail for {domain} goes elsewhere"),
                ),
            )
        }
        Lookup::NotFound => verdict(
            "MX",
            domain,
            String::new(),
            false,
            false,
            (
                &format!("no MX record: senders try {domain}'s own address"),
                String::new(),
            ),
        ),
        Lookup::TempFail(err) => finding("MX", domain, Status::Error, String::new(), err),
    };
    out.push(advise(f, advice_for(domain, "MX")));

    // SPF: one record, and mail from this server's addresses passes it.
    let f = match txt(dns, domain).await {
        Err(err) => finding("SPF", domain, Status::Error, String::new(), err),
        Ok(all) => {
            let spf = tagged(&all, "v=spf1");
            let text = spf
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            match spf.len() {
                0 => finding("SPF", domain, Status::Missing, text, "no SPF record: receivers cannot tell this server may send for the domain".into()),
                1 => {
                    let mut failing = Vec::new();
                    for ip in &host_ips {
                        let r = crate::spf::check_mail_from(dns, &host, *ip, &host, &format!("postmaster@{domain}")).await;
                        if r.result() != mail_auth::SpfResult::Pass {
                            failing.push(format!("{ip}: spf={:?}", r.result()).to_lowercase());
                        }
                    }
                    if failing.is_empty() && !host_ips.is_empty() {
                        finding("SPF", domain, Status::Ok, text, format!("mail from {} passes", join(&host_ips)))
                    } else if host_ips.is_empty() {
                        finding("SPF", domain, Status::Error, text, format!("{host} has no address to check the record with"))
                    } else {
                        finding("SPF", domain, Status::Wrong, text, format!("mail from this server would not pass: {}", failing.join(", ")))
                    }
                }
                n => finding("SPF", domain, Status::Wrong, text, format!("{n} SPF records: a permanent error for every receiver (RFC 7208 §4.5); keep one")),
            }
        }
    };
    let spf = DnsRecord {
        name: format!("{domain}."),
        kind: "TXT".into(),
        value: advice::SPF.into(),
        purpose: "SPF: only the domain's MX hosts send its mail (RFC 7208)".into(),
    };
    out.push(advise(f, [spf]));

    // DKIM: the public key of the key we sign with.
    match &key {
        None => out.push(finding("DKIM", &format!("_domainkey.{domain}"), Status::Missing, String::new(), format!("no signing key for {domain}: `petrel dkim create {domain}` makes one and prints its record"))),
        Some(k) => {
            let name = format!("{}._domainkey.{domain}", k.selector);
            let f = match txt(dns, &name).await {
                Err(err) => finding("DKIM", &name, Status::Error, String::new(), err),
                Ok(all) => {
                    let keys: Vec<String> = all.iter().filter_map(|r| tag_value(r, "p")).collect();
                    verdict("DKIM", &name, all.join(" | "), !all.is_empty(), keys.contains(&k.public_key), (
                        "no key published: receivers cannot verify the signatures",
                        "another key is published: every signature fails".into(),
                    ))
                }
            };
            out.push(advise(f, advice_for(&name, "TXT")));
        }
    }

    let dmarc = format!("_dmarc.{domain}");
    out.push(
        one_tagged(
            dns,
            "DMARC",
            &dmarc,
            "v=DMARC1",
            advice_for(&dmarc, "TXT").as_ref(),
        )
        .await,
    );

    // MTA-STS: the TXT record, and the policy behind it names us.
    if core.config.mta_sts.mode != "off" {
        let name = format!("_mta-sts.{domain}");
        out.push(
            one_tagged(
                dns,
                "MTA-STS",
                &name,
                "v=STSv1",
                advice_for(&name, "TXT").as_ref(),
            )
            .await,
        );
        let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
        let f = match crate::queue::mta_sts::fetch(core, domain).await {
            Ok(p) if p.allows_mx(&host) => finding("MTA-STS policy", &url, Status::Ok, format!("mode {:?}", p.mode).to_lowercase(), String::new()),
            Ok(p) => finding("MTA-STS policy", &url, Status::Wrong, p.mx.join(", "), format!("the policy does not allow {host} as MX")),
            Err(err) => finding("MTA-STS policy", &url, Status::Missing, String::new(), format!("{err}: point mta-sts.{domain} at this server, with a certificate for that name")),
        };
        out.push(advise(f, advice_for(&format!("mta-sts.{domain}"), "CNAME")));
    }

    let tlsrpt = format!("_smtp._tls.{domain}");
    out.push(
        one_tagged(
            dns,
            "TLS-RPT",
            &tlsrpt,
            "v=TLSRPTv1",
            advice_for(&tlsrpt, "TXT").as_ref(),
        )
        .await,
    );

    // RFC 6186 SRV records, one per client service with a listener.
    for (service, _, port) in advice::srv_services(&e) {
        let name = format!("{service}.{domain}");
        let f = match lookup(dns, &name, RecordType::SRV).await {
            Err(err) => finding("SRV", &name, Status::Error, String::new(), err),
            Ok(rs) => {
                let srv: Vec<(u16, String)> = rs
                    .iter()
                    .filter_map(|r| match r {
                        RData::SRV(s) => Some((
                            s.port,
                            s.target.to_ascii().trim_end_matches('.').to_string(),
                        )),
                        _ => None,
                    })
                    .collect();
                let text: Vec<String> = srv.iter().map(|(p, t)| format!("{t}:{p}")).collect();
                let good = srv.iter().any(|(p, t)| *p == port && same_host(t, &host));
                verdict(
                    "SRV",
                    &name,
                    join(&text),
                    !srv.is_empty(),
                    good,
                    (
                        "clients cannot discover this service",
                        format!("expected {host}:{port}"),
                    ),
                )
            }
        };
        out.push(advise(f, advice_for(&name, "SRV")));
    }

    // Client set-up names lead to this server.
    for label in ["autoconfig", "autodiscover"] {
        let name = format!("{label}.{domain}");
        let f = match addresses(dns, &name).await {
            Err(err) => finding("client set-up", &name, Status::Error, String::new(), err),
            Ok(ips) => {
                let good = ips.iter().any(|i| host_ips.contains(i));
                verdict(
                    "client set-up",
                    &name,
                    join(&ips),
                    !ips.is_empty(),
                    good,
                    (
                        "clients cannot find their settings by this name",
                        format!("does not lead to {host}"),
                    ),
                )
            }
        };
        out.push(advise(f, advice_for(&name, "CNAME")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_values() {
        let all = vec![
            "v=spf1 mx -all".to_string(),
            "v=spf10 nonsense".to_string(),
            "google-site-verification=x".to_string(),
        ];
        assert_eq!(tagged(&all, "v=spf1").len(), 1);
        assert_eq!(
            tag_value("v=DKIM1; k=rsa; p=MIIB AAA\t BBB", "p").as_deref(),
            Some("MIIBAAABBB")
        );
        assert!(tag_value("v=DKIM1", "p").is_none());
        assert!(!is_public("127.0.0.1".parse().unwrap()));
        assert!(!is_public("10.1.2.3".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()));
        assert!(is_public("192.0.2.10".parse().unwrap()));
        assert!(is_public("2001:db8::1".parse().unwrap()));
    }
}

//! The records to publish for a hosted domain: where its mail goes (MX),
//! who sends it (SPF), its signing key (DKIM), its policies (DMARC,
//! MTA-STS, TLS-RPT) and how clients find the server (RFC 6186 SRV,
//! autoconfig and autodiscover names).

use serde::{Deserialize, Serialize};

use crate::core::Endpoints;
use crate::dkim::DkimKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub purpose: String,
}

fn rec(name: String, kind: &str, value: String, purpose: impl Into<String>) -> DnsRecord {
    DnsRecord {
        name,
        kind: kind.into(),
        value,
        purpose: purpose.into(),
    }
}

/// The SPF record we suggest: the domain's MX hosts send its mail.
pub const SPF: &str = "v=spf1 mx -all";

/// The SRV services of RFC 6186 (and RFC 8314 for submissions) with the
/// priority we advise and the listener's port. Implicit TLS comes before
/// STARTTLS (RFC 8314 §3), and IMAP before POP3: RFC 6186 §3.4 asks for
/// both sets, the preferred one with the lower priority values.
pub fn srv_services(e: &Endpoints) -> Vec<(&'static str, u16, u16)> {
    [
        ("_submissions._tcp", 0, e.submissions),
        ("_submission._tcp", 5, e.submission),
        ("_imaps._tcp", 0, e.imaps),
        ("_imap._tcp", 5, e.imap),
        ("_pop3s._tcp", 10, e.pop3s),
        ("_pop3._tcp", 20, e.pop3),
    ]
    .into_iter()
    .filter_map(|(s, prio, p)| p.map(|p| (s, prio, p)))
    .collect()
}

/// Every record to publish for `domain` served by `e.host`; the DKIM
/// record when the domain has a key. `mta_sts_id` changes whenever the
/// policy does (RFC 8461 §3.1).
pub fn records(
    domain: &str,
    e: &Endpoints,
    key: Option<&DkimKey>,
    mta_sts_id: i64,
) -> Vec<DnsRecord> {
    let d = domain;
    let host = &e.host;
    let mut out = Vec::new();
    if let Some(k) = key {
        out.push(rec(
            format!("{}._domainkey.{d}.", k.selector),
            "TXT",
            k.txt(),
            "DKIM public key (RFC 6376)",
        ));
    }
    out.push(rec(
        format!("{d}."),
        "MX",
        format!("10 {host}."),
        "where mail for the domain is delivered",
    ));
    out.push(rec(
        format!("{d}."),
        "TXT",
        SPF.into(),
        "SPF: only the domain's MX hosts send its mail (RFC 7208)",
    ));
    out.push(rec(
        format!("_dmarc.{d}."),
        "TXT",
        format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{d}"),
        "DMARC policy (RFC 7489)",
    ));
    out.push(rec(
        format!("_mta-sts.{d}."),
        "TXT",
        format!("v=STSv1; id={mta_sts_id}"),
        format!("MTA-STS policy id (RFC 8461); the policy is served at https://mta-sts.{d}/.well-known/mta-sts.txt"),
    ));
    out.push(rec(
        format!("mta-sts.{d}."),
        "CNAME",
        format!("{host}."),
        "the MTA-STS policy host: this server's https listener answers for it",
    ));
    out.push(rec(
        format!("_smtp._tls.{d}."),
        "TXT",
        format!("v=TLSRPTv1; rua=mailto:postmaster@{d}"),
        "where other servers report TLS failures (RFC 8460)",
    ));
    for (service, priority, port) in srv_services(e) {
        out.push(rec(
            format!("{service}.{d}."),
            "SRV",
            format!("{priority} 1 {port} {host}."),
            "mail client service discovery (RFC 6186, RFC 8314)",
        ));
    }
    for name in ["autoconfig", "autodiscover"] {
        out.push(rec(
            format!("{name}.{d}."),
            "CNAME",
            format!("{host}."),
            "client set-up (Thunderbird autoconfig, Outlook Autodiscover) on the https listener",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_records_follow_the_listeners() {
        let e = Endpoints {
            host: "mail.example.org".into(),
            imaps: Some(993),
            submission: Some(587),
            ..Default::default()
        };
        let r = records("example.org", &e, None, 1);
        let srv: Vec<_> = r.iter().filter(|r| r.kind == "SRV").collect();
        assert_eq!(srv.len(), 2);
        assert_eq!(srv[0].name, "_submission._tcp.example.org.");
        assert_eq!(srv[0].value, "5 1 587 mail.example.org.");
        assert_eq!(srv[1].name, "_imaps._tcp.example.org.");
        assert_eq!(srv[1].value, "0 1 993 mail.example.org.");
        assert!(r
            .iter()
            .all(|r| r.kind != "TXT" || !r.name.contains("_domainkey")));
        assert!(r
            .iter()
            .any(|r| r.name == "_smtp._tls.example.org." && r.value.starts_with("v=TLSRPTv1;")));
    }
}
